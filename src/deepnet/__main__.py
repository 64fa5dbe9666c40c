"""``python -m deepnet``: the ``deepnet`` command."""

import sys

from deepnet.cli import entry

__all__: list[str] = []

sys.exit(entry())
