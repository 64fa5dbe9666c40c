"""``python -m deepnet.bench``: the same as ``deepnet bench`` (one line and status 2 for
a user error, 130 for Ctrl-C, also while the interpreter shuts down)."""

from deepnet.bench.cli import main
from deepnet.cli import entry

__all__: list[str] = []

raise SystemExit(entry(lambda: main(prog="python -m deepnet.bench")))
