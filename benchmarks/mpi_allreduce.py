"""What data parallelism costs here: MPI latency and bandwidth, the all-reduce of one
step's gradients at the benchmark grid's sizes, and the single-process step it must beat.

Run under MPI (2 ranks; every rank takes part in the communication, rank 0 alone
computes the steps while the others wait)::

    mpiexec -n 2 python benchmarks/mpi_allreduce.py --out benchmarks/results/mpi
    mpiexec -n 2 python benchmarks/mpi_allreduce.py --quick --out /tmp/mpi-smoke

It writes ``allreduce.json`` (machine, versions, every raw sample); then
``python benchmarks/mpi_model.py benchmarks/results/mpi`` writes the tables and the model.

Measured, in interleaved rounds (``--rounds``, medians and IQR over rounds):

- **the reduction**: ``a += b`` on one core, per byte (``γ``: the model's compute term);
- **ping-pong** between ranks 0 and 1 (``Send``/``Recv``), 8 B to 64 MiB: half the round
  trip. Latency ``α`` is the 8-byte time, bandwidth ``β`` the large-message slope;
- **all-reduce** of the flat float32 gradient of ``[n, n, n, n, n, 1]``
  (``P = 4n² + 5n + 1`` numbers) for each width: MPI's blocking ``Allreduce`` and
  ``deepnet.distributed``'s ``allreduce_sum`` (non-blocking, with the error channel) and
  ``allreduce_step`` (what ``fit`` calls each step: the gradient and the cost);
- **the step**: ``deepnet.step.train_step`` (NumPy, float32, Adam) at each width and batch
  size with 1 BLAS thread (one rank's share of a core) and with 2 (one process holding
  both cores). Points above ``--max-flops`` per step are not run (the model fits
  ``t = t0 + c·b`` per width instead).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import deepnet as dn
from deepnet.step import train_step

WIDTHS = [64, 128, 256, 512, 1024, 2048, 4096]
BATCHES = [16, 64, 256, 1024, 4096]
PING_SIZES = [8 * 4**k for k in range(13)]  # 8 B .. 128 MiB / 4 = 32 MiB


def params_of(n: int) -> int:
    """Parameters of ``[n, n, n, n, n, 1]``: four ``n×n`` weights and biases, then ``1×n``."""
    return 4 * (n * n + n) + n + 1


def flops_of(n: int, b: int) -> float:
    """``6 · Σ n[l]·n[l-1]·b``, as benchmarks/README.md counts a step."""
    return 6.0 * (4 * n * n + n) * b


def idle_wait(mpi_comm) -> None:
    """A barrier that sleeps (10 ms at a time) instead of polling: while rank 0 times a
    step, the other ranks must leave both cores to it."""
    req = mpi_comm.Ibarrier()
    while not req.Test():
        time.sleep(0.01)


def timed(comm, fn, min_seconds: float, pause: float = 0.0) -> float:
    """Seconds per call of ``fn``: rank 0 picks a repeat count that lasts ``min_seconds``,
    every rank runs that many after a pause (OpenBLAS threads spin ~0.1 s after a call)
    and a barrier; rank 0's time counts."""
    time.sleep(pause)
    fn()
    t0 = time.perf_counter()
    fn()
    once = time.perf_counter() - t0
    reps = comm.broadcast_object(max(1, int(min_seconds / max(once, 1e-7))))
    comm.barrier()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def ping_pong(comm, mpi_comm, size: int, min_seconds: float, pause: float) -> float:
    """Half the round-trip time of ``size`` bytes between ranks 0 and 1 (on rank 0)."""
    buf = np.zeros(size, dtype=np.uint8)

    def exchange() -> None:
        if comm.rank == 0:
            mpi_comm.Send(buf, dest=1, tag=3)
            mpi_comm.Recv(buf, source=1, tag=3)
        elif comm.rank == 1:
            mpi_comm.Recv(buf, source=0, tag=3)
            mpi_comm.Send(buf, dest=0, tag=3)

    return timed(comm, exchange, min_seconds, pause) / 2


def add_seconds_per_byte(min_seconds: float, pause: float) -> float:
    """The reduction's own cost ``γ`` on one core: ``a += b`` on float32 arrays of 64 MiB,
    per byte of ``a`` (what a rank adds up while it all-reduces)."""
    from threadpoolctl import threadpool_limits

    a = np.ones(2**24, dtype=np.float32)
    b = np.ones(2**24, dtype=np.float32)
    time.sleep(pause)
    with threadpool_limits(1):
        np.add(a, b, out=a)
        reps, t0 = 0, time.perf_counter()
        while True:
            np.add(a, b, out=a)
            reps += 1
            if time.perf_counter() - t0 >= min_seconds:
                return (time.perf_counter() - t0) / reps / a.nbytes


def allreduce_times(comm, mpi_comm, params: int, args) -> tuple[float, float, float]:
    """Seconds of MPI's blocking ``Allreduce``, of deepnet's ``allreduce_sum`` (the
    non-blocking request polled with the error channel) and of ``allreduce_step`` (what
    ``fit`` calls: the gradient and the cost together) on one float32 gradient."""
    from mpi4py import MPI

    buf = np.ones(params, dtype=np.float32)
    cost = np.asarray(1.0, dtype=np.float32)
    t_mpi = timed(comm, lambda: mpi_comm.Allreduce(MPI.IN_PLACE, buf), args.min_seconds,
                  args.pause)
    t_sum = timed(comm, lambda: comm.allreduce_sum(buf), args.min_seconds, args.pause)
    t_step = timed(comm, lambda: comm.allreduce_step({}, buf, cost), args.min_seconds,
                   args.pause)
    return t_mpi, t_sum, t_step


def step_seconds(n: int, b: int, threads: int, min_seconds: float) -> float:
    """One ``train_step`` on ``[n, n, n, n, n, 1]`` with a batch of ``b`` (rank 0 alone)."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    net = dn.DeepNet([n] * 5 + [1], seed=0, backend="numpy", dtype="float32")
    X = net._check_X(rng.standard_normal((n, b)).astype(np.float32))
    Y = net._check_Y((rng.random((1, b)) > 0.5).astype(np.float32), b)
    opt = dn.optimizers.get("adam", 1e-4)
    with threadpool_limits(threads):
        for _ in range(2):
            train_step(net, X, Y, opt)
        reps, t0 = 0, time.perf_counter()
        while True:
            train_step(net, X, Y, opt)
            reps += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= min_seconds:
                return elapsed / reps


def machine() -> dict:
    info = {"host": socket.gethostname(), "python": platform.python_version(),
            "platform": platform.platform(), "cpus": os.cpu_count(),
            "numpy": np.__version__, "deepnet": dn.__version__}
    try:
        from mpi4py import MPI

        info["mpi"] = MPI.Get_library_version().strip().splitlines()[0]
        import mpi4py

        info["mpi4py"] = mpi4py.__version__
    except ImportError:
        pass
    try:
        import threadpoolctl

        info["blas"] = [{k: p.get(k) for k in ("internal_api", "version", "num_threads")}
                        for p in threadpoolctl.threadpool_info()]
    except ImportError:
        pass
    try:
        info["git"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], text=True,
                                     capture_output=True, check=False,
                                     cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        pass
    try:
        info["loadavg_start"] = os.getloadavg()
    except OSError:
        pass
    return info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("bench-results/mpi"))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--widths", type=lambda t: [int(x) for x in t.split(",")], default=WIDTHS)
    p.add_argument("--batches", type=lambda t: [int(x) for x in t.split(",")], default=BATCHES)
    p.add_argument("--max-flops", type=float, default=3e10, help="skip larger step points")
    p.add_argument("--min-seconds", type=float, default=0.05, help="per sample")
    p.add_argument("--pause", type=float, default=0.2, help="sleep before each sample")
    p.add_argument("--quick", action="store_true", help="a smoke run: tiny grid, 2 rounds")
    args = p.parse_args(argv)
    if args.quick:
        args.widths, args.batches, args.rounds = [64, 256], [16, 64], 2
        args.min_seconds, args.pause = 0.005, 0.0
    comm = dn.distributed.init()
    if comm.size < 2 or comm.name != "mpi":
        print("run under MPI with at least 2 ranks: mpiexec -n 2 python "
              "benchmarks/mpi_allreduce.py", file=sys.stderr)
        return 2
    from mpi4py import MPI

    mpi_comm = MPI.COMM_WORLD.Dup()  # the benchmark's own traffic, apart from deepnet's
    sizes = PING_SIZES[:7] if args.quick else PING_SIZES
    result = {"machine": machine(), "ranks": comm.size, "rounds": args.rounds,
              "command": f"mpiexec -n {comm.size} python benchmarks/mpi_allreduce.py "
              + " ".join(argv if argv is not None else sys.argv[1:]),
              "ping": {}, "allreduce": {}, "step": {}, "add_per_byte": []}
    steps = [(n, b) for n in args.widths for b in args.batches
             if flops_of(n, b) <= args.max_flops]
    for rnd in range(args.rounds):
        for size in sizes:
            t = ping_pong(comm, mpi_comm, size, args.min_seconds, args.pause)
            result["ping"].setdefault(str(size), []).append(t)
        for n in args.widths:
            times = allreduce_times(comm, mpi_comm, params_of(n), args)
            entry = result["allreduce"].setdefault(
                str(n), {"params": params_of(n), "mpi": [], "deepnet": [], "step": []})
            for key, t in zip(("mpi", "deepnet", "step"), times):
                entry[key].append(t)
        if comm.is_root:
            result["add_per_byte"].append(add_seconds_per_byte(args.min_seconds, args.pause))
        idle_wait(mpi_comm)
        for n, b in steps:  # rank 0 computes; the others sleep in a barrier
            for threads in (1, 2):
                if comm.is_root:
                    time.sleep(args.pause)
                    t = step_seconds(n, b, threads, args.min_seconds)
                    result["step"].setdefault(f"{n},{b},{threads}", []).append(t)
            idle_wait(mpi_comm)
        if comm.is_root:
            print(f"round {rnd + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    if comm.is_root:
        try:
            result["machine"]["loadavg_end"] = os.getloadavg()
        except OSError:
            pass
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "allreduce.json").write_text(json.dumps(result, indent=1))
        print(f"wrote {args.out / 'allreduce.json'}; now: python benchmarks/mpi_model.py "
              f"{args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
