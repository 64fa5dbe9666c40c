"""The ``deepnet bench`` command (also ``python -m deepnet.bench``).

``deepnet bench [OPTIONS]`` runs the sweep and writes ``results.json``, ``results.md``,
``crossover.png`` and ``throughput.png`` into ``--out``; ``--render`` re-writes the
reports from saved results (under today's criteria), ``--advise N M`` answers for one
size, ``deepnet bench compare A.json B.json`` compares two runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepnet.bench.advise import advise
from deepnet.bench.cases import CPU_TARGETS, DEEPNET_CASES, GPU_TARGETS, parse_target
from deepnet.bench.compare import compare_runs, render_compare
from deepnet.bench.crossover import crossover_map
from deepnet.bench.grid import Config
from deepnet.bench.options import backend_list, caps, int_list, points, str_list
from deepnet.bench.plots import NO_MATPLOTLIB, have_matplotlib, plot_crossover, plot_throughput
from deepnet.bench.report import markdown_table, render_markdown, share_sentence
from deepnet.bench.results import (
    DEFAULT_OUT,
    OUTPUTS,
    check_out_dir,
    find_results,
    load_results,
    write_json,
    write_text,
)
from deepnet.bench.stats import min_rounds
from deepnet.bench.summary import summarize
from deepnet.bench.sweep import run_sweep
from deepnet.bench.timing import process_age
from deepnet.bench.verdicts import Criteria
from deepnet.cli import Parser
from deepnet.errors import DeepNetError

__all__ = ["DEFAULT_BUDGET", "build_parser", "default_backends", "main", "write_reports"]

DEFAULT_BUDGET = 150.0
DEFAULT_WIDTHS = (64, 256, 1024)
DEFAULT_BATCHES = (64, 512, 4096)


def _criteria_options(p: argparse.ArgumentParser) -> None:
    d = Criteria()
    p.add_argument("--confidence", type=float, default=d.confidence,
                   help=f"confidence of every interval ({d.confidence:g})")
    p.add_argument("--band", type=float, default=d.band,
                   help=f"no verdict unless the interval clears 1 ± band ({d.band:g})")
    p.add_argument("--max-spread", type=float, default=d.max_spread,
                   help=f"IQR/median above which a case is unreliable ({d.max_spread:g})")
    p.add_argument("--max-interference", type=float, default=d.max_interference,
                   help="cores other processes may take in a round, beyond those this "
                        f"process leaves free, before it is set aside ({d.max_interference:g})")


def _criteria(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Criteria:
    if not 0.5 <= args.confidence < 1.0 or not 0.0 < args.band < 1.0 or args.max_spread <= 0 \
            or args.max_interference < 0:
        parser.error(f"--confidence must be in [0.5, 1) (got {args.confidence}), --band in "
                     f"(0, 1) (got {args.band}), --max-spread > 0 (got {args.max_spread}), "
                     f"--max-interference >= 0 (got {args.max_interference})")
    return Criteria(confidence=args.confidence, band=args.band, max_spread=args.max_spread,
                    max_interference=args.max_interference)


def build_parser(prog: str = "deepnet bench") -> argparse.ArgumentParser:
    """The options of the sweep, ``--render`` and ``--advise``."""
    p = Parser(
        prog=prog,
        description="Time deepnet's training step on each backend against the GEMM floor and "
                    "native PyTorch over widths × batch sizes, with a confidence interval on "
                    "every ratio and a verdict only where it is clear; write results.json, "
                    "results.md, crossover.png and throughput.png. "
                    f"`{prog} compare A.json B.json` compares two runs.")
    p.add_argument("--backends", type=backend_list, default=None,
                   help="comma-separated: numpy, array_api_strict, torch, torch:cuda, cupy "
                        "(default: those that run here)")
    p.add_argument("--widths", type=int_list, default=list(DEFAULT_WIDTHS),
                   help="layer widths n (default 64,256,1024)")
    p.add_argument("--batches", type=int_list, default=list(DEFAULT_BATCHES),
                   help="batch sizes m (default 64,512,4096)")
    p.add_argument("--points", type=points, default=[],
                   help="extra (n, m) points beyond the grid, run last, e.g. 8192x8192")
    p.add_argument("--dtype", type=str_list, default=None,
                   help="float32 (default), float64, or both comma-separated")
    p.add_argument("--repeat", type=int, default=6,
                   help="alternating rounds at every point before any verdict (6: the "
                        "fewest for a 95%% interval)")
    p.add_argument("--max-rounds", type=int, default=40,
                   help="rounds at most per point while a verdict is open (40)")
    p.add_argument("--cases", type=str_list, default=["step", "floor"],
                   help="deepnet cases per backend: step, floor, forward, backward "
                        "(default step,floor)")
    p.add_argument("--no-reference", action="store_true", help="skip native PyTorch")
    p.add_argument("--pause", type=float, default=0.2,
                   help="seconds at most to wait for thread pools to go idle when the next "
                        "sample is of another library (0.2)")
    p.add_argument("--min-time", type=float, default=0.05,
                   help="each sample repeats the call until it lasts this long (0.05 s)")
    p.add_argument("--max-width", type=caps, default={},
                   help="per-backend width caps, e.g. array_api_strict=256 (the default cap)")
    p.add_argument("--max-sample-seconds", type=float, default=None,
                   help="drop a case whose first call takes longer than this")
    p.add_argument("--time-budget", type=float, default=DEFAULT_BUDGET,
                   help=f"seconds for the whole command ({DEFAULT_BUDGET:g}); points that "
                        "do not fit are skipped and reported; 0 for no limit")
    _criteria_options(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None,
                   help=f"output folder (default {DEFAULT_OUT}/)")
    p.add_argument("--advise", nargs=2, type=int, metavar=("N", "M"),
                   help="which backend at width N and batch M, from the results in --out "
                        f"(default: ./{DEFAULT_OUT}, else the shipped benchmarks/results/cpu)")
    p.add_argument("--render", action="store_true",
                   help="re-write results.md and the plots from the saved results.json (judged "
                        "by the criteria given here)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _compare_parser(prog: str) -> argparse.ArgumentParser:
    p = Parser(
        prog=f"{prog} compare", description="Compare two runs point by point: the ratio of "
        "step times B ÷ A with its interval; regressions and improvements flagged.")
    p.add_argument("a", type=Path, help="results.json (or its folder) of run A, the base")
    p.add_argument("b", type=Path, help="results.json (or its folder) of run B")
    _criteria_options(p)
    p.add_argument("--fail-on-regression", action="store_true",
                   help="exit with status 1 when a regression is flagged")
    return p


def default_backends() -> tuple[list[str], list[dict[str, str]]]:
    """``(usable, unavailable)``: the CPU backends and GPU targets that run here, and those
    installed that cannot run (CuPy without a device, a CUDA build of torch without a
    GPU), with the reason."""
    from deepnet.backend import get_backend
    from deepnet.errors import BackendError

    usable, unavailable = [], []
    for label in (*CPU_TARGETS, *GPU_TARGETS):
        name = parse_target(label)[0]
        if importlib.util.find_spec(name) is None:
            continue  # not installed: nothing to report
        try:
            get_backend(*parse_target(label))
        except BackendError as exc:
            torch = sys.modules.get("torch")
            if label == "torch:cuda" and (torch is None or torch.version.cuda is None):
                continue  # a CPU build of torch: no GPU expected
            unavailable.append({"target": label, "reason": str(exc)})
            continue
        usable.append(label)
    return usable, unavailable


def _chosen_backends(asked: Sequence[str], parser: argparse.ArgumentParser
                     ) -> tuple[list[str], list[dict[str, str]]]:
    from deepnet.backend import BACKEND_NAMES, get_backend
    from deepnet.errors import BackendError

    usable, unavailable = [], []
    for label in dict.fromkeys(asked):
        if parse_target(label)[0] not in BACKEND_NAMES:
            parser.error(f"--backends: unknown backend {label!r}; valid: "
                         f"{', '.join((*CPU_TARGETS, *GPU_TARGETS))}")
        try:
            get_backend(*parse_target(label))
        except BackendError as exc:
            unavailable.append({"target": label, "reason": str(exc)})
            continue
        usable.append(label)
    return usable, unavailable


def write_reports(results: dict, out: Path, criteria: Criteria | None = None,
                  raw: bool = True) -> dict[str, Path]:
    """``results.json`` (unless ``raw`` is false: ``--render`` leaves the measured data
    alone), ``results.md``, and the plots where matplotlib is installed."""
    rows = summarize(results, criteria)
    files = {"json": write_json(results, out)} if raw else {}
    files["md"] = write_text(out / "results.md", render_markdown(results, rows, criteria))
    if plot_crossover(results, out / "crossover.png", rows, criteria):
        files["crossover"] = out / "crossover.png"
    if plot_throughput(results, out / "throughput.png", rows):
        files["throughput"] = out / "throughput.png"
    return files


def _print_summary(rows: Sequence[dict[str, Any]]) -> None:
    sentences = crossover_map(rows)
    for dtype in sorted({r["dtype"] for r in rows}):
        mine = [r for r in rows if r["dtype"] == dtype]
        print(f"\n{dtype}\n")
        table, notes = markdown_table(mine)
        print(table)
        print("\n".join(f"{i}. {note}" for i, note in enumerate(notes, 1)))
        print("\n".join(sentences.get(dtype, [])))
        for key in ("vs_numpy", "vs_reference", "vs_cpu"):
            text = share_sentence(mine, key)
            if text:
                print(text)


def _compare_main(argv: list[str], prog: str) -> int:
    parser = _compare_parser(prog)
    args = parser.parse_args(argv)
    crit = _criteria(args, parser)
    try:
        a, b = load_results(args.a), load_results(args.b)
    except (FileNotFoundError, ValueError) as exc:
        print(f"{prog} compare: error: {exc}", file=sys.stderr)
        return 2
    changes, only_a, only_b = compare_runs(a, b, crit)
    if not changes:
        kinds = [sorted({s["dtype"] for s in r.get("samples") or []}) for r in (a, b)]
        print(f"{prog} compare: error: the runs share no measured point (dtype, backend, "
              f"n, m): A holds {', '.join(kinds[0]) or 'nothing'}, B holds "
              f"{', '.join(kinds[1]) or 'nothing'}; nothing to compare", file=sys.stderr)
        return 2
    print(render_compare(a, b, changes, only_a, only_b, crit), end="")
    return 1 if args.fail_on_regression and any(c.label == "slower" for c in changes) else 0


def _saved(args: argparse.Namespace, crit: Criteria, prog: str) -> int:
    try:
        if args.render:
            out = args.out or DEFAULT_OUT
            results = load_results(out)
            check_out_dir(out, files=OUTPUTS[1:])  # the measured data is left alone
            files = write_reports(results, out, crit, raw=False)
            print("wrote " + ", ".join(str(f) for f in files.values()))
            if not have_matplotlib():
                print(f"{prog}: {NO_MATPLOTLIB}", file=sys.stderr)
        if args.advise:
            results = load_results(find_results(args.out))
            n, m = args.advise
            print(advise(results, n, m, dtype=args.dtype[0] if args.dtype else None,
                         criteria=crit))
    except (FileNotFoundError, ValueError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None, prog: str = "deepnet bench",
         started: float | None = None) -> int:
    """The ``deepnet bench`` command; returns the exit status.

    ``started`` (a ``time.perf_counter()`` value): when the command began, for the time
    budget. Default: the process's start when this process is the command (``python -m
    deepnet.bench`` or ``deepnet bench``: the interpreter and imports count), else now.

    A deepnet error is one line on stderr and status 2; Ctrl-C is one line and status
    130, whichever way the command was started (every file is written atomically, so
    each is the previous one or a whole new one; ``results.json`` holds the points
    measured before the interrupt).
    """
    try:
        return _main(argv, prog, started)
    except DeepNetError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; every file written is whole (a results.json holds the "
              "points measured so far)", file=sys.stderr)
        return 130


def _main(argv: list[str] | None, prog: str, started: float | None) -> int:
    command = argv is None or (sys.argv[1:2] == ["bench"] and list(argv) == sys.argv[2:])
    start = started if started is not None else (
        time.perf_counter() - (process_age() if command else 0.0))
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["compare"]:
        return _compare_main(argv[1:], prog)
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    crit = _criteria(args, parser)
    if args.advise and min(args.advise) < 1:
        parser.error(f"--advise N M needs a positive width and batch size; got "
                     f"{args.advise[0]} {args.advise[1]}")
    if args.advise or args.render:
        return _saved(args, crit, prog)
    from deepnet.backend import DTYPE_NAMES

    dtypes = [d.lower() for d in args.dtype or ["float32"]]
    bad = [d for d in dtypes if d not in DTYPE_NAMES]
    bad_cases = [c for c in args.cases if c not in DEEPNET_CASES]
    wrong = [text for broken, text in (
        (bad, f"--dtype must be among {', '.join(DTYPE_NAMES)} (got {', '.join(bad)})"),
        (bad_cases, f"--cases must be among {', '.join(DEEPNET_CASES)} (got "
                    f"{', '.join(bad_cases)})"),
        (args.repeat < 1, f"--repeat must be >= 1 (got {args.repeat})"),
        (args.max_rounds < args.repeat,
         f"--max-rounds must be >= --repeat (got {args.max_rounds} < {args.repeat})"),
        (args.time_budget < 0, f"--time-budget must be >= 0 (got {args.time_budget})"),
    ) if broken]
    if wrong:  # only what is wrong, one clause each
        parser.error("; ".join(wrong))
    need = min_rounds(crit.confidence)
    if args.repeat < need:
        print(f"{prog}: --repeat {args.repeat}: a {crit.confidence:.0%} interval needs {need} "
              "rounds; points get them only in the refining pass, as the budget allows",
              file=sys.stderr)
    out = args.out or DEFAULT_OUT
    try:
        check_out_dir(out)
    except DeepNetError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    if args.backends:
        backends, unavailable = _chosen_backends(args.backends, parser)
    else:
        backends, unavailable = default_backends()
    for u in unavailable:
        print(f"{prog}: {u['target']} cannot run here and is skipped: {u['reason']}",
              file=sys.stderr)
    if not backends:
        print(f"{prog}: error: none of the backends asked for can run here", file=sys.stderr)
        return 2
    reference = not args.no_reference
    if reference and importlib.util.find_spec("torch") is None:
        print(f"{prog}: torch is not installed; no native PyTorch reference", file=sys.stderr)
        reference = False
    plots = have_matplotlib()
    if not plots:
        print(f"{prog}: {NO_MATPLOTLIB}", file=sys.stderr)
    budget = args.time_budget or None
    config = Config(
        backends=backends, widths=args.widths, batches=args.batches, dtypes=dtypes,
        repeat=args.repeat, max_rounds=args.max_rounds, cases=tuple(dict.fromkeys(args.cases)),
        reference=reference, pause=args.pause, min_time=args.min_time,
        max_width=args.max_width, max_sample_seconds=args.max_sample_seconds,
        time_budget=budget, report_reserve=_reserve(budget, plots),
        extra_points=tuple(args.points), seed=args.seed, criteria=crit)
    results = run_sweep(config, progress=not args.no_progress, out=out,
                        command=["deepnet", "bench", *argv], start=start,
                        unavailable=unavailable)
    results["elapsed_s"] = time.perf_counter() - start
    files = write_reports(results, out, crit)
    _print_summary(summarize(results, crit))
    if results["skipped"]:
        print(f"\n{len(results['skipped'])} case(s) skipped; see {files['md']}")
    took = time.perf_counter() - start
    print(f"\nwrote {', '.join(str(f) for f in files.values())} in {took:.1f} s"
          + (f" (time budget {budget:g} s)" if budget else ""))
    return 0


def _reserve(budget: float | None, plots: bool) -> float:
    """Seconds of the budget kept for writing the reports (measured: about 0.3 s for the
    markdown, 2-3 s more for the two plots, importing matplotlib included)."""
    if budget is None:
        return 0.0
    return min(0.1 * budget, 1.0 + (3.0 if plots else 0.0))
