"""``python -m deepnet.bench``: the same as ``deepnet bench``."""

from deepnet.bench.cli import main

__all__: list[str] = []

raise SystemExit(main(prog="python -m deepnet.bench"))
