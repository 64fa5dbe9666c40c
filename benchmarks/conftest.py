"""Options of the benchmark suite: backends, dtype, and a reduced grid for smoke runs.

``DEEPNET_BENCH_BACKENDS=numpy,torch`` restricts the backends (default: every one; those
that cannot run here are skipped with their reason). ``--bench-dtype float64`` or
``DEEPNET_BENCH_DTYPE=float64`` selects the dtype (default float32).
``DEEPNET_BENCH_SMOKE=1`` keeps only n ≤ 256 and m ≤ 512, still every kind of case on
every backend.
"""

from __future__ import annotations

import os

import pytest

DTYPES = ("float32", "float64")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--bench-dtype", default=None, choices=DTYPES,
        help="dtype of the benchmark suite (default: DEEPNET_BENCH_DTYPE or float32)",
    )


@pytest.fixture(scope="session")
def bench_dtype(request: pytest.FixtureRequest) -> str:
    """The dtype every benchmark runs in."""
    name = request.config.getoption("--bench-dtype") or os.environ.get(
        "DEEPNET_BENCH_DTYPE", "float32"
    )
    if name not in DTYPES:
        raise pytest.UsageError(f"DEEPNET_BENCH_DTYPE={name!r}; valid: {', '.join(DTYPES)}")
    return name
