"""``deepnet bench``: the backend sweep, with a confidence interval on every ratio and a
verdict only where it is clear.

Modules, each importing only those above it:

``cases``      the network, its flops, target names, one callable per timed case
``timing``     calibration, one sample, CPU accounting of interference, idle pools
``machine``    host, CPU, GPU, versions, BLAS kernel and thread pools
``stats``      distribution-free intervals and trend tests
``verdicts``   when a ratio may be called faster, slower or the same
``results``    the results file: schema, atomic writes, older schemas, finding runs
``summary``    rows from raw samples: medians, per-round ratios, flags, verdicts
``crossover``  crossover widths from verdicts
``grid``       what a sweep measures: its config and the cases of one point
``sweep``      the adaptive sweep within a time budget
``report``     the markdown report
``plots``      the crossover heatmap and the throughput plot
``advise``     ``--advise N M``
``compare``    ``deepnet bench compare A.json B.json``
``cli``        the command line
"""

from deepnet.bench.cases import (
    Case,
    deepnet_cases,
    floor_case,
    floor_matmuls,
    is_gpu,
    is_large,
    layer_dims,
    make_data,
    parse_target,
    reference_case,
    step_flops,
)
from deepnet.bench.cli import main
from deepnet.bench.grid import Config
from deepnet.bench.results import SCHEMA, load_results
from deepnet.bench.summary import summarize
from deepnet.bench.sweep import run_sweep
from deepnet.bench.verdicts import Criteria

__all__ = [
    "SCHEMA",
    "Case",
    "Config",
    "Criteria",
    "deepnet_cases",
    "floor_case",
    "floor_matmuls",
    "is_gpu",
    "is_large",
    "layer_dims",
    "load_results",
    "main",
    "make_data",
    "parse_target",
    "reference_case",
    "run_sweep",
    "step_flops",
    "summarize",
]
