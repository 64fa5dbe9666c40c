"""The data path's targets (issue 9), measured on the peer task (784-256-256-10, Adam).

``layouts``   one epoch of ``fit`` with X as a C-ordered ``(n0, m)`` array, as ``X.T`` of
              row-major data (F-ordered) and as a memory map in the page cache, in
              rounds; printed: each layout's epoch time over the C-ordered one (median of
              per-round ratios, range). Target: at most 1.1.
``checks``    what ``fit`` spends on its inputs (the example-major tables of X and Y:
              conversion and the finiteness check) against one epoch, per backend.
              Target: at most 5% of an epoch.
``subnormal`` an epoch on uncentered [0, 1) inputs against the same on standardized
              inputs (Adam's moments of always-zero pixels decay towards subnormal
              numbers). Target: at least 0.9x the speed.
``startup``   seconds from a fresh interpreter's ``import deepnet`` to the end of the
              first training step (median of 5 fresh processes).
``memmap``    a fit on a large ``.npy`` memory map (``--gib``, default 4): the process's
              anonymous memory (RssAnon) at each epoch's end, and the parameters against
              the same fit on the array loaded into memory, bit for bit.

    python benchmarks/data_path.py layouts checks subnormal startup [--rounds 5]
    python benchmarks/data_path.py memmap --gib 4 --dir /tmp
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import deepnet as dn

DIMS = [784, 256, 256, 10]
FIT = {"epochs": 1, "optimizer": "adam", "learning_rate": 1e-3, "progress": False}


def _task(m: int = 60_000, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.random((m, 784), dtype=np.float32), rng.integers(0, 10, m)


def _epoch(X, y, batch: int, backend: str = "numpy") -> float:
    net = dn.DeepNet(DIMS, output="softmax", seed=0, backend=backend)
    t0 = time.perf_counter()
    net.fit(X, y, batch_size=batch, **FIT)
    return time.perf_counter() - t0


def _summary(ratios: list[float]) -> str:
    return f"{statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})"


def layouts(rounds: int) -> None:
    rows, y = _task()
    C = np.ascontiguousarray(rows.T)  # (n0, m), C-ordered: the notes' layout in memory
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "X.npy", rows)
        mapped = np.load(Path(tmp) / "X.npy", mmap_mode="r")
        np.asarray(mapped).sum()  # into the page cache
        cases = {"X.T of row-major (F-ordered)": rows.T, "memory map (page cache)": mapped.T}
        for batch in (128, 1024):
            _epoch(C[:, :4096], y[:4096], batch)  # warm-up
            ratios: dict[str, list[float]] = {k: [] for k in cases}
            for _ in range(rounds):
                base = _epoch(C, y, batch)
                for name, X in cases.items():
                    ratios[name].append(_epoch(X, y, batch) / base)
            for name, r in ratios.items():
                print(f"layouts: batch {batch}, {name} / C-ordered: {_summary(r)}")


def checks(rounds: int) -> None:
    from deepnet import data

    rows, y = _task()
    for backend in ("numpy", "torch", "array_api_strict"):
        try:
            b = dn.get_backend(backend)
        except dn.BackendError as exc:
            print(f"checks: {backend} skipped ({exc})")
            continue
        net = dn.DeepNet(DIMS, output="softmax", seed=0, backend=b)
        shares = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            Xt = data.features(b, rows.T, 784, net.dtype, "X")
            data.labels(b, y, output="softmax", nL=10, m=Xt.m, dtype=net.dtype)
            intake = time.perf_counter() - t0
            shares.append(intake / _epoch(rows.T, y, 1024, backend))
        print(f"checks: {backend}, input handling / one epoch at batch 1024: "
              f"{_summary(shares)}")


def subnormal(rounds: int) -> None:
    rows, y = _task()
    standardized = (rows - rows.mean(axis=0)) / (rows.std(axis=0) + 1e-6)
    uncentered = rows.copy()
    uncentered[:, :100] = 0.0  # always-zero pixels, as MNIST's borders: their dW is 0
    for batch in (32, 128):
        ratios = []
        for _ in range(rounds):
            ratios.append(_epoch(standardized.T, y, batch) / _epoch(uncentered.T, y, batch))
        print(f"subnormal: batch {batch}, speed uncentered / standardized: {_summary(ratios)}")


def startup(rounds: int) -> None:
    code = ("import time; t0 = time.perf_counter(); import numpy as np; import deepnet as dn;"
            "from deepnet.step import train_step; from deepnet.optimizers import Adam;"
            "net = dn.DeepNet([784, 256, 256, 10], output='softmax');"
            "X = net._check_X(np.zeros((784, 32))); Y = net._check_Y(np.zeros(32, int), 32);"
            "train_step(net, X, Y, Adam()); print(time.perf_counter() - t0)")
    times = [float(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                  text=True, check=True).stdout) for _ in range(rounds)]
    print(f"startup: import deepnet to the end of the first step: "
          f"{statistics.median(times):.3f} s ({min(times):.3f}-{max(times):.3f})")


def _rss_anon_mib() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssAnon")) / 1024


def memmap(gib: float, directory: str, batch: int = 1024) -> None:
    m = int(gib * 2**30 / (784 * 4))
    path = Path(directory) / "deepnet-data-path.npy"
    rng = np.random.default_rng(0)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(m, 784))
    for start in range(0, m, 50_000):
        stop = min(start + 50_000, m)
        out[start:stop] = rng.random((stop - start, 784), dtype=np.float32)
    out.flush()
    del out
    y = rng.integers(0, 10, m)
    try:
        X = np.load(path, mmap_mode="r").T
        net = dn.DeepNet(DIMS, output="softmax", seed=0)
        base = _rss_anon_mib()
        peaks: list[float] = []
        t0 = time.perf_counter()
        net.fit(X, y, batch_size=batch, callbacks=[lambda *a: peaks.append(_rss_anon_mib())],
                **FIT)
        seconds = time.perf_counter() - t0
        params = sum(v.size for v in net.params.values()) * 4 / 2**20
        print(f"memmap: {m:,} examples ({path.stat().st_size / 2**30:.2f} GiB), one epoch "
              f"at batch {batch} in {seconds:.1f} s; RssAnon {base:.0f} MiB before, "
              f"{max(peaks):.0f} MiB at the epoch's end (parameters {params:.1f} MiB)")
        twin = dn.DeepNet(DIMS, output="softmax", seed=0)
        twin.fit(np.load(path).T, y, batch_size=batch, **FIT)  # the array in memory
        same = all(np.array_equal(dn.to_numpy(net.params[k]), dn.to_numpy(v))
                   for k, v in twin.params.items())
        print(f"memmap: parameters equal to the same fit in memory, bit for bit: {same}")
    finally:
        path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="+",
                        choices=["layouts", "checks", "subnormal", "startup", "memmap"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--gib", type=float, default=4.0)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()
    for what in args.what:
        if what == "memmap":
            memmap(args.gib, args.dir)
        else:
            globals()[what](args.rounds)


if __name__ == "__main__":
    main()
