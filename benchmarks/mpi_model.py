"""Where data parallelism pays: a model of step time for K = 1 .. 1024 ranks, from the
measurements of benchmarks/mpi_allreduce.py.

    python benchmarks/mpi_model.py benchmarks/results/mpi      # writes model.md there

Per step, K ranks each compute the gradient of ``B/K`` examples, then sum the gradients
(``4P`` bytes of float32, ``P = 4n² + 5n + 1``) with a ring all-reduce::

    T_K(B) = T_1(B/K) + 2(K-1)/K · 4P / β + 2(K-1) · α + (K-1)/K · 4P · γ

The first two terms of the all-reduce are the issue's ring model; the last, the additions
each rank makes (``γ`` seconds per byte, measured here on one core), is what the ring
model leaves out: without it, the model predicted half of the measured K = 2 all-reduce
here (the tables show both). GPUs add at their memory bandwidth: ``γ = 0`` for NVLink.

``T_1(b)`` is the single-rank step measured with one BLAS thread (one core per rank),
fitted per width as ``t = t0 + c·b`` (least squares in relative error over the measured
batch sizes; see :class:`StepModel`). ``α`` and ``β`` of shared memory are
measured here (ping-pong); the other interconnects' are stated assumptions. Data
parallelism *pays* at ``(n, B)`` when some ``K > 1`` has ``T_K(B) < T_1(B)``; the tables
give the best ``K`` and its speedup. Everything the model leaves out makes it
optimistic: the ranks' compute is assumed equal and perfectly parallel (no stragglers,
no shared memory bandwidth), the all-reduce is not overlapped with the backward pass
(which would make it pessimistic by up to the backward's time), and the ring's ``α`` term
assumes the all-reduce algorithm MPI would choose for large messages.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

#: (name, latency α in s, bandwidth β in bytes/s, where the numbers come from)
ASSUMED = [
    ("25 Gb/s Ethernet (TCP)", 25e-6, 25e9 / 8, "assumed: line rate, typical TCP latency"),
    ("100 Gb/s InfiniBand EDR", 1.5e-6, 100e9 / 8, "assumed: line rate, verbs latency"),
    ("400 Gb/s InfiniBand NDR", 1.0e-6, 400e9 / 8, "assumed: line rate, verbs latency"),
    ("NVLink 4 (NCCL)", 10e-6, 300e9, "assumed: ~2/3 of 450 GB/s per direction; "
     "NCCL's launch latency"),
]
KS = [2**k for k in range(11)]  # 1 .. 1024
GLOBAL_BATCHES = [64, 256, 1024, 4096, 16384, 65536]
#: Ranks one machine's shared memory can join (the cores of a large node).
SHARED_MEMORY_MAX_K = 64


def median_iqr(values: list[float]) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    med = float(np.median(v))
    q1, q3 = np.percentile(v, [25, 75])
    return med, float(q3 - q1) / med if med > 0 else 0.0


def fit_link(ping: dict[str, list[float]]) -> tuple[float, float]:
    """``(α, β)``: the 8-byte half round trip, and the slope over messages ≥ 1 MiB."""
    sizes = sorted(int(s) for s in ping)
    alpha = median_iqr(ping[str(sizes[0])])[0]
    big = [s for s in sizes if s >= 2**20] or sizes[-2:]
    t = [median_iqr(ping[str(s)])[0] for s in big]
    slope = np.polyfit(big, t, 1)[0] if len(big) > 1 else t[0] / big[0]
    return alpha, 1.0 / slope


def ring(K: int, nbytes: float, alpha: float, beta: float, gamma: float = 0.0) -> float:
    """The ring all-reduce: the issue's ``2(K-1)/K·bytes/β + 2(K-1)·α``, plus the
    additions ``(K-1)/K·bytes·γ``; 0 for one rank."""
    if K == 1:
        return 0.0
    return 2 * (K - 1) / K * nbytes / beta + 2 * (K - 1) * alpha + (K - 1) / K * nbytes * gamma


def flops_per_example(n: int) -> float:
    """``6 · Σ n[l]·n[l-1]`` of ``[n, n, n, n, n, 1]``: a step's flops per example."""
    return 6.0 * (4 * n * n + n)


class StepModel:
    """``T_1(n, b) = t0 + c·b`` fitted to the measured 1-thread steps (the fit even where a
    point was measured, so that the model is smooth in ``b``: a noisy sample does not
    make one batch size look better than its neighbours). Widths measured at 3 or more
    batch sizes get their own
    least-squares fit (in relative error, ``c ≥ 0``); the others (the widest, measured at
    small batches only) take ``c`` from the nearest such width, scaled by the flops per
    example, and ``t0`` from their smallest measured batch."""

    def __init__(self, steps: dict[str, list[float]], threads: int = 1) -> None:
        self.measured: dict[tuple[int, int], float] = {}
        for key, values in steps.items():
            n, b, th = (int(x) for x in key.split(","))
            if th == threads and values:
                self.measured[(n, b)] = median_iqr(values)[0]
        self.fits: dict[int, tuple[float, float]] = {}
        self.source: dict[int, str] = {}
        widths = sorted({n for n, _ in self.measured})
        points = {n: sorted((b, t) for (m, b), t in self.measured.items() if m == n)
                  for n in widths}
        for least in (3, 2):  # 2 only when no width has 3 (a smoke run)
            for n in widths:
                if len(points[n]) >= least:
                    bs, ts = (np.asarray(v, dtype=float) for v in zip(*points[n]))
                    c, t0 = np.polyfit(bs, ts, 1, w=1.0 / ts)
                    if c > 0:
                        self.fits[n] = (max(float(t0), 0.0), float(c))
                        self.source[n] = f"fit over {len(bs)} batch sizes"
            if self.fits:
                break
        fitted = sorted(self.fits)
        for n in widths:
            if n in self.fits:
                continue
            if not fitted:  # nothing to borrow from: proportional to b
                b0, t_b0 = points[n][-1]
                self.fits[n], self.source[n] = (0.0, t_b0 / b0), "t / b"
                continue
            near = min(fitted, key=lambda m: abs(np.log(m / n)))
            c = self.fits[near][1] * flops_per_example(n) / flops_per_example(near)
            b0, t_b0 = points[n][0]
            self.fits[n] = (max(t_b0 - c * b0, 0.0), c)
            self.source[n] = f"c from n = {near} × flops ratio"

    def __call__(self, n: int, b: float) -> float:
        t0, c = self.fits[n]
        return t0 + c * b


def fmt_time(t: float) -> str:
    if t >= 1:
        return f"{t:.2f} s"
    if t >= 1e-3:
        return f"{t * 1e3:.3g} ms"
    return f"{t * 1e6:.3g} µs"


def best_k(model: StepModel, n: int, B: int, alpha: float, beta: float,
           gamma: float, max_k: int = KS[-1]) -> tuple[int, float]:
    """The K (≤ B, ≤ ``max_k``) with the shortest step, and its speedup over one rank."""
    nbytes = 4.0 * (4 * n * n + 5 * n + 1)
    t1 = model(n, B)
    times = {K: model(n, B / K) + ring(K, nbytes, alpha, beta, gamma)
             for K in KS if K <= min(B, max_k)}
    K = min(times, key=times.get)
    return K, t1 / times[K]


def efficient_k(model: StepModel, n: int, B: int, alpha: float, beta: float,
                gamma: float, max_k: int = KS[-1]) -> tuple[int, float]:
    """The largest K (≤ B, ≤ ``max_k``) whose speedup is at least K/2 (efficiency ≥ 50 %),
    and that speedup; ``(1, 1.0)`` when no K > 1 reaches it."""
    nbytes = 4.0 * (4 * n * n + 5 * n + 1)
    t1 = model(n, B)
    best = (1, 1.0)
    for K in KS[1:]:
        if K > min(B, max_k):
            break
        speedup = t1 / (model(n, B / K) + ring(K, nbytes, alpha, beta, gamma))
        if speedup >= K / 2:
            best = (K, speedup)
    return best


def two_pay_from(model: StepModel, n: int, alpha: float, beta: float, gamma: float) -> str:
    """The smallest global batch (a power of 2 up to 2^20) at which two ranks beat one."""
    nbytes = 4.0 * (4 * n * n + 5 * n + 1)
    for k in range(1, 21):
        B = 2**k
        if model(n, B / 2) + ring(2, nbytes, alpha, beta, gamma) < model(n, B):
            return f"{B:,}"
    return "never (≤ 2^20)"


def _k_tables(choose: Any, model: Any, widths: Any, cpu_links: Any, gammas: Any) -> list[str]:
    """Per link, a table over widths × global batches of ``choose(...)``'s ``K: speedup``."""
    out: list[str] = []
    for name, a, b, _ in cpu_links:
        max_k = SHARED_MEMORY_MAX_K if name.startswith("shared") else KS[-1]
        out += [f"*{name}*", "", "| n | " + " | ".join(f"B = {B}" for B in GLOBAL_BATCHES) + " |",
                "| ---: |" + " ---: |" * len(GLOBAL_BATCHES)]
        for n in widths:
            cells = []
            for B in GLOBAL_BATCHES:
                K, speedup = choose(model, n, B, a, b, gammas[name], max_k)
                cells.append("1" if K == 1 else f"{K}: {speedup:.3g}×")
            out.append(f"| {n} | " + " | ".join(cells) + " |")
        out.append("")
    return out


def report(data: dict) -> str:
    alpha, beta = fit_link(data["ping"])
    gamma = median_iqr(data["add_per_byte"])[0]
    model = StepModel(data["step"], threads=1)
    widths = sorted(int(n) for n in data["allreduce"])
    out = [f"Measured by `{data['command']}` on {data['machine'].get('host')} "
           f"({data['machine'].get('cpus')} CPUs; {data['machine'].get('mpi', 'MPI ?')}); "
           f"{data['rounds']} interleaved rounds; load average "
           f"{data['machine'].get('loadavg_start')} at the start, "
           f"{data['machine'].get('loadavg_end')} at the end.", ""]
    out += ["**Shared memory, 2 ranks (measured):** latency α = "
            f"{fmt_time(alpha)} (8-byte half round trip), bandwidth β = {beta / 1e9:.2f} GB/s "
            f"(slope over messages ≥ 1 MiB). The additions: γ = {gamma * 1e9:.3g} ns per byte "
            f"({1 / gamma / 1e9:.3g} GB/s, `a += b` on one core).", "",
            "| message | half round trip (median) | IQR/median | GB/s |",
            "| ---: | ---: | ---: | ---: |"]
    for size in sorted(int(s) for s in data["ping"]):
        t, iqr = median_iqr(data["ping"][str(size)])
        out.append(f"| {size:,} B | {fmt_time(t)} | {iqr:.0%} | {size / t / 1e9:.3g} |")
    out += ["", "**All-reduce of one step's float32 gradient, K = 2, shared memory (measured)** "
            "against the ring model with the α, β above, and the step it is added to "
            "(1 BLAS thread, batch 256 per rank):", "",
            "| n | parameters | MPI Allreduce | deepnet allreduce_sum | fit's allreduce_step | "
            "step ÷ MPI | ring model | MPI ÷ ring | ring + γ | MPI ÷ (ring + γ) | "
            "step (b = 256) | allreduce_step ÷ step |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for n in widths:
        e = data["allreduce"][str(n)]
        t_mpi, iqr_mpi = median_iqr(e["mpi"])
        t_dn, iqr_dn = median_iqr(e["deepnet"])
        t_st, iqr_st = median_iqr(e["step"])
        ratio = float(np.median(np.asarray(e["step"]) / np.asarray(e["mpi"])))
        pred = ring(2, 4.0 * e["params"], alpha, beta)
        full = ring(2, 4.0 * e["params"], alpha, beta, gamma)
        step = model.measured.get((n, 256), model(n, 256))
        fitted = "" if (n, 256) in model.measured else " (fit)"
        out.append(f"| {n} | {e['params']:,} | {fmt_time(t_mpi)} ± {iqr_mpi:.0%} | "
                   f"{fmt_time(t_dn)} ± {iqr_dn:.0%} | {fmt_time(t_st)} ± {iqr_st:.0%} | "
                   f"{ratio:.2f} | {fmt_time(pred)} | {t_mpi / pred:.2f} | {fmt_time(full)} | "
                   f"{t_mpi / full:.2f} | {fmt_time(step)}{fitted} | "
                   f"{t_st / step:.2f} |")
    out += ["", "**One rank's step** (`train_step`, NumPy float32, Adam; median over rounds; "
            "1 and 2 BLAS threads; `fit` = the model's `t0 + c·b` at that point):", "",
            "| n | b | 1 thread | 2 threads | fit (1 thread) | fit from |",
            "| ---: | ---: | ---: | ---: | ---: | --- |"]
    two = StepModel(data["step"], threads=2)
    for (n, b), t in sorted(model.measured.items()):
        t2 = two.measured.get((n, b))
        t0, c = model.fits[n]
        out.append(f"| {n} | {b} | {fmt_time(t)} | {fmt_time(t2) if t2 else '—'} | "
                   f"{fmt_time(t0 + c * b)} | {model.source.get(n, '—')} |")
    out += ["", "**This machine, K = 2 (mpiexec -n 2, 1 thread each) against one process "
            "with 2 threads**, predicted from the measured parts: `T_1(B/2) + all-reduce` ÷ "
            "`T_2threads(B)` (below 1: the two ranks are faster):", "",
            "| n | " + " | ".join(f"B = {b}" for b in sorted({b for _, b in two.measured}))
            + " |", "| ---: |" + " ---: |" * len({b for _, b in two.measured})]
    for n in widths:
        cells = []
        for b in sorted({b for _, b in two.measured}):
            t2 = two.measured.get((n, b))
            if t2 is None or (n, b) not in model.measured:
                cells.append("—")
                continue
            t_st = median_iqr(data["allreduce"][str(n)]["step"])[0]
            cells.append(f"{(model(n, b / 2) + t_st) / t2:.2f}")
        out.append(f"| {n} | " + " | ".join(cells) + " |")
    links = [("shared memory (measured here)", alpha, beta, "measured: ping-pong above")]
    links += ASSUMED
    gammas = {name: 0.0 if name.startswith("NVLink") else gamma for name, *_ in links}
    out += ["", "**Interconnects** (α, β of the ring model; γ as measured here, 0 for "
            "NVLink):", "", "| interconnect | α | β | source |", "| --- | ---: | ---: | --- |"]
    out += [f"| {name} | {fmt_time(a)} | {b / 1e9:.3g} GB/s | {src} |"
            for name, a, b, src in links]
    out += ["", "**All-reduce time per step** (model), by width and number of ranks K:", ""]
    for name, a, b, _ in links:
        out += [f"*{name}*", "", "| n | " + " | ".join(f"K = {K}" for K in KS[1:]) + " |",
                "| ---: |" + " ---: |" * (len(KS) - 1)]
        for n in widths:
            nbytes = 4.0 * (4 * n * n + 5 * n + 1)
            cells = [fmt_time(ring(K, nbytes, a, b, gammas[name])) for K in KS[1:]]
            out.append(f"| {n} | " + " | ".join(cells) + " |")
        out.append("")
    cpu_links = [link for link in links if not link[0].startswith("NVLink")]
    out += ["**Where it pays** (model; CPU ranks of one core each, the step times above; "
            "NVLink is left out: it joins GPUs, whose step times were not measured here). "
            "First, the smallest global batch B at which two ranks are faster than one:", "",
            "| n | " + " | ".join(name for name, *_ in cpu_links) + " |",
            "| ---: |" + " ---: |" * len(cpu_links)]
    for n in widths:
        out.append(f"| {n} | " + " | ".join(two_pay_from(model, n, a, b, gammas[name])
                                            for name, a, b, _ in cpu_links) + " |")
    out += ["", f"Then the best K ≤ min(1024, B) (shared memory: ≤ {SHARED_MEMORY_MAX_K}, one "
            "node) for each width n and global batch B, as `K: speedup over one rank` "
            "(the parallel efficiency is speedup ÷ K); `1` where no K > 1 is faster:", ""]
    out += _k_tables(best_k, model, widths, cpu_links, gammas)
    out += ["And the largest K at which the ranks still work at 50 % efficiency or more "
            "(speedup ≥ K/2), as `K: speedup`:", ""]
    out += _k_tables(efficient_k, model, widths, cpu_links, gammas)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    folder = Path(argv[0] if argv else "bench-results/mpi")
    data = json.loads((folder / "allreduce.json").read_text())
    text = report(data)
    (folder / "model.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
