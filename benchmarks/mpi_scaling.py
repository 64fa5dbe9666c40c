"""Whole fits across processes on this machine: ``mpiexec -n 2`` (one BLAS thread per
rank) and ``mpiexec -n 1`` against one process holding both cores with two threads.

    python benchmarks/mpi_scaling.py --out benchmarks/results/mpi      # about 10 minutes
    python benchmarks/mpi_scaling.py --quick --out /tmp/mpi-scaling     # a smoke run

**Needs ``fit(..., comm=comm)``** (the lead's integration of issue 15): until ``fit``
takes ``comm``, every worker stops with exit status 3 and says so.

The task is issue 9's: softmax ``[784, 256, 256, 10]``, Adam (α = 1e-3), float32,
``--examples`` synthetic MNIST-shaped examples labelled by a random linear teacher, in
memory on every rank (each rank reads only its shard of every batch). For each global
batch size and configuration, a fresh process (or ``mpiexec``) runs ``--epochs`` epochs;
the first is warm-up, the time per epoch is the median of the others (``History.time``,
measured inside ``fit``: process start-up is not counted). Configurations run in
interleaved rounds; ratios are medians of per-round ratios, with min and max.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

CONFIGS = {  # name -> (launcher prefix, BLAS threads per process)
    "1 process, 2 threads": ([], 2),
    "mpiexec -n 1, 1 thread": (["-n", "1"], 1),
    "mpiexec -n 2, 1 thread each": (["-n", "2"], 1),
}
BASELINE = "1 process, 2 threads"
ONE_RANK = "mpiexec -n 1, 1 thread"


def task(examples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``X (784, m)`` in [0, 1) and integer labels ``(m,)`` from a random linear teacher."""
    rng = np.random.default_rng(seed)
    X = rng.random((784, examples), dtype=np.float32)
    teacher = rng.standard_normal((10, 784)).astype(np.float32)
    return X, np.argmax(teacher @ (X - 0.5), axis=0)


def worker(args: argparse.Namespace) -> int:
    from threadpoolctl import threadpool_limits

    import deepnet as dn

    if "comm" not in inspect.signature(dn.DeepNet.fit).parameters:
        print("mpi_scaling.py needs DeepNet.fit(..., comm=comm), which this deepnet does "
              "not have yet (issue 15's integration into fit)", file=sys.stderr)
        return 3
    comm = dn.distributed.init()
    X, y = task(args.examples)
    with threadpool_limits(args.threads):
        net = dn.DeepNet([784, 256, 256, 10], output="softmax", seed=0, dtype="float32")
        history = net.fit(X, y, epochs=args.epochs, batch_size=args.batch_size,
                          optimizer="adam", learning_rate=1e-3, seed=0, progress=False,
                          train_metrics=False, comm=comm)
    if comm.is_root:
        print("RESULT " + json.dumps({"epoch_seconds": history.time, "ranks": comm.size,
                                      "cost": history.cost}), flush=True)
    return 0


def run_config(name: str, batch: int, args: argparse.Namespace) -> dict:
    prefix, threads = CONFIGS[name]
    command = [sys.executable, __file__, "--worker", "--threads", str(threads),
               "--batch-size", str(batch), "--epochs", str(args.epochs),
               "--examples", str(args.examples)]
    if prefix:
        mpiexec = Path(sys.executable).with_name("mpiexec")
        command = [str(mpiexec) if mpiexec.exists() else shutil.which("mpiexec") or "mpiexec",
                   *prefix, *command]
    proc = subprocess.run(command, capture_output=True, text=True, check=False, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"{name}, batch {batch}: exit {proc.returncode}\n{proc.stderr}")
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def driver(args: argparse.Namespace) -> int:
    samples: dict[str, dict[str, list[float]]] = {}
    for rnd in range(args.rounds):
        for batch in args.batches:
            for name in CONFIGS:
                result = run_config(name, batch, args)
                per_epoch = float(np.median(result["epoch_seconds"][1:]))
                samples.setdefault(str(batch), {}).setdefault(name, []).append(per_epoch)
        print(f"round {rnd + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    lines = [f"`python benchmarks/mpi_scaling.py {' '.join(sys.argv[1:])}`; {args.rounds} "
             f"rounds, {args.examples} examples, {args.epochs} epochs (first one warm-up); "
             f"load average at the end {os.getloadavg()}.", "",
             "Time ratios: median [min, max] of the per-round ratios (below 1: faster).", "",
             "| batch | configuration | s/epoch (median) | ÷ 1 process, 2 threads | "
             "÷ mpiexec -n 1, 1 thread |", "| ---: | --- | ---: | --- | --- |"]

    def ratio(values: list[float], base: list[float]) -> str:
        r = np.asarray(values) / np.asarray(base)
        return f"{np.median(r):.2f} [{r.min():.2f}, {r.max():.2f}]"

    for batch, by_config in samples.items():
        for name, values in by_config.items():
            lines.append(f"| {batch} | {name} | {np.median(values):.3f} | "
                         f"{ratio(values, by_config[BASELINE])} | "
                         f"{ratio(values, by_config[ONE_RANK])} |")
    text = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scaling.json").write_text(json.dumps(samples, indent=1))
    (args.out / "scaling.md").write_text(text + "\n")
    print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--batch-size", type=int, default=1024, help=argparse.SUPPRESS)
    p.add_argument("--batches", type=lambda t: [int(x) for x in t.split(",")],
                   default=[256, 1024, 4096])
    p.add_argument("--examples", type=int, default=16384)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path("bench-results/mpi"))
    p.add_argument("--quick", action="store_true", help="a smoke run")
    args = p.parse_args(argv)
    if args.quick:
        args.batches, args.examples, args.epochs, args.rounds = [256], 1024, 2, 1
    return worker(args) if args.worker else driver(args)


if __name__ == "__main__":
    sys.exit(main())
