"""Before and after, side by side: the kernels issue 14 changed, on NumPy and torch (CPU).

Each case times the code as it was (inlined below, as it stood before the change) and
the library's code now, in interleaved rounds (the order alternating), and reports the
median of the per-round ratios new/old with their range. Below 1: the new code is faster.
Also counted, on torch: the operations each version dispatches (views left out), one
CUDA kernel launch each, which is what a GPU pays for at small sizes.

    python benchmarks/gpu_kernels.py                   # every case, numpy and torch
    python benchmarks/gpu_kernels.py --quick           # a smoke run (seconds)
    python benchmarks/gpu_kernels.py --out results.md  # also write the table

Run it on a quiet machine; torch is pinned to one thread like NumPy's ufuncs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

import deepnet as dn
from deepnet import activations, dropout, losses
from deepnet.backend import array_namespace, into
from deepnet.hooks import constant, prefers_fewer_kernels, squared_norm

# -- the code as it was -------------------------------------------------------------------


def old_sigmoid(Z, out=None):
    xp = array_namespace(Z)
    e = xp.exp(-xp.abs(Z))
    numerator = xp.where(Z >= 0, xp.ones_like(e), e)
    e += 1.0
    return into(out, "divide", numerator, e)


def old_bce(ZL, Y):
    xp = array_namespace(ZL, Y)
    loss = xp.clip(ZL, 0.0, None) - ZL * Y + xp.log1p(xp.exp(-xp.abs(ZL)))
    return xp.sum(loss) / ZL.shape[1]


def logaddexp_bce(ZL, Y):
    """The five-kernel form, not taken: slow on NumPy (its logaddexp is not vectorized)."""
    xp = array_namespace(ZL, Y)
    zero = constant(0.0, ZL)
    return xp.sum(xp.logaddexp(zero, ZL) - ZL * Y) / ZL.shape[1]


def old_relu(Z, out, zeros):
    return into(out, "maximum", Z, zeros)


def old_l2_cost(Ws):
    xp = array_namespace(Ws[0])
    return sum(xp.sum(W**2) for W in Ws)


def new_l2_cost(Ws):
    return sum(squared_norm(W) for W in Ws)


def old_l2_grad(Ws, dWs, c):
    """The decay as it was, and still is: a temporary per layer."""
    for W, dW in zip(Ws, dWs):
        dW += W * c


def old_masks(rng, widths, m, keep_prob, backend, dtype):
    return [backend.asarray((rng.random((n, m)) < keep_prob) / keep_prob, dtype)
            for n in widths]


def _coefficients(net, c):
    """The flat vector ``c`` on every weight, 0 on every bias."""
    from deepnet.buffers import flat_views

    flat, views = flat_views(net, net.param_shapes())
    for key, view in views.items():
        view[...] = c if key.startswith("W") else 0.0
    return flat


# -- timing -------------------------------------------------------------------------------


def _time(f: Callable[[], object], budget: float) -> float:
    """Seconds per call: the best of three batches sized to about ``budget`` seconds."""
    f()
    t0 = time.perf_counter()
    f()
    once = max(time.perf_counter() - t0, 1e-7)
    n = max(1, int(budget / 3 / once))
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def compare(old: Callable, new: Callable, rounds: int, budget: float) -> dict:
    ratios, olds, news = [], [], []
    for r in range(rounds):
        pair = [(0, old), (1, new)] if r % 2 == 0 else [(1, new), (0, old)]
        got = {}
        for i, f in pair:
            got[i] = _time(f, budget)
        olds.append(got[0])
        news.append(got[1])
        ratios.append(got[1] / got[0])
    return {"old_us": statistics.median(olds) * 1e6, "new_us": statistics.median(news) * 1e6,
            "ratio": statistics.median(ratios), "lo": min(ratios), "hi": max(ratios)}


_NO_KERNEL = ("view", "reshape", "_unsafe_view", "expand", "alias", "as_strided", "t",
              "transpose", "unsqueeze", "squeeze", "slice", "select", "detach", "lift_fresh",
              "_to_copy_noop", "empty", "empty_like", "empty_strided", "result_type")


def count_kernels(backend, f: Callable[[], object]) -> int | None:
    """The aten operations ``f`` runs that launch work (views left out): on CUDA, one
    kernel launch each. Counted on torch only (``None`` elsewhere)."""
    if backend.name != "torch":
        return None
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.overloadpacket.__name__ not in _NO_KERNEL:
                Count.n += 1
            return func(*args, **(kwargs or {}))

    with Count():
        f()
    return Count.n


# -- the cases ------------------------------------------------------------------------------


def cases(backend, quick: bool):
    xp, dtype = backend.xp, backend.dtype("float32")
    rng = np.random.default_rng(0)

    def arr(shape, scale=3.0):
        return backend.asarray(rng.standard_normal(shape) * scale, dtype)

    shapes = [(64, 64), (256, 512)] if quick else [(64, 64), (256, 512), (1024, 1024)]
    for shape in shapes:
        Z = arr(shape)
        out = xp.empty(shape, dtype=dtype, device=backend.device)
        yield (f"sigmoid {shape[0]}x{shape[1]}, into a buffer",
               lambda Z=Z, out=out: old_sigmoid(Z, out),
               lambda Z=Z, out=out: activations.sigmoid(Z, out=out))
        yield (f"sigmoid {shape[0]}x{shape[1]}, allocating",
               lambda Z=Z: old_sigmoid(Z), lambda Z=Z: activations.sigmoid(Z))
        zeros = xp.zeros(shape, dtype=dtype, device=backend.device)
        yield (f"relu {shape[0]}x{shape[1]}, into a buffer",
               lambda Z=Z, out=out, zeros=zeros: old_relu(Z, out, zeros),
               lambda Z=Z, out=out, zeros=zeros: activations.relu(Z, out=out, zeros=zeros))
    for shape in ([(1, 64), (1, 4096)] if quick else [(1, 64), (1, 4096), (10, 4096)]):
        Z = arr(shape)
        Y = backend.asarray((rng.random(shape) > 0.5).astype(float), dtype)
        yield (f"BCE cost {shape[0]}x{shape[1]}",
               lambda Z=Z, Y=Y: old_bce(Z, Y), lambda Z=Z, Y=Y: losses.bce_from_logits(Z, Y))
        if not prefers_fewer_kernels(Z):
            yield (f"BCE cost {shape[0]}x{shape[1]}, logaddexp form (not taken here)",
                   lambda Z=Z, Y=Y: old_bce(Z, Y), lambda Z=Z, Y=Y: logaddexp_bce(Z, Y))
    nets = [[64, 32, 10], [784, 256, 256, 10]] if quick else [
        [64, 32, 10], [784, 256, 256, 10], [1024, 1024, 1024, 1]]
    for dims in nets:
        net = dn.DeepNet(dims, l2=0.1, backend=backend, dtype="float32")
        Ws = [net.params[f"W{l}"] for l in range(1, net.L + 1)]
        ws = net._workspace(8)
        dWs = [ws.dW[l] for l in range(1, net.L + 1)] if ws is not None else None
        label = "-".join(map(str, dims))
        yield (f"L2 cost {label}", lambda Ws=Ws: old_l2_cost(Ws),
               lambda Ws=Ws: new_l2_cost(Ws))
        if ws is not None:  # the gradient's decay stays as it was: both options lost
            views = [xp.reshape(xp.empty_like(W), W.shape) for W in Ws]

            def buffered_grad(Ws=Ws, dWs=dWs, views=views):
                for W, dW, v in zip(Ws, dWs, views):
                    dW += into(v, "multiply", W, 0.01)

            coef, scratch = _coefficients(net, 0.01), xp.empty_like(net._flat)

            def flat_grad(net=net, ws=ws, coef=coef, scratch=scratch):
                ws.grads_flat += into(scratch, "multiply", net._flat, coef)

            yield (f"L2 gradient {label}, reused buffers (not taken)",
                   lambda Ws=Ws, dWs=dWs: old_l2_grad(Ws, dWs, 0.01), buffered_grad)
            yield (f"L2 gradient {label}, one flat pass (not taken)",
                   lambda Ws=Ws, dWs=dWs: old_l2_grad(Ws, dWs, 0.01), flat_grad)
    for widths, m in ([([256, 256], 64)] if quick else
                      [([256, 256], 64), ([256, 256], 512), ([1024, 1024], 256)]):
        like = xp.zeros((1, m), dtype=dtype, device=backend.device)
        host = np.random.default_rng(1)
        yield (f"dropout masks {'+'.join(map(str, widths))} x {m}",
               lambda widths=widths, m=m, host=host: old_masks(host, widths, m, 0.8,
                                                               backend, dtype),
               lambda like=like, widths=widths, host=host: dropout.masks(
                   like, widths, dropout.step_key(host), 0.8))


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--backends", default="numpy,torch")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--out", default=None, help="also write the markdown table here")
    args = parser.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 7)
    budget = 0.01 if args.quick else 0.15
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    lines = [
        f"command: {' '.join(['python', 'benchmarks/gpu_kernels.py', *(argv or sys.argv[1:])])}",
        "",
        "| backend | case | old µs | new µs | new/old (median, range) | launches old → new |",
        "| --- | --- | ---: | ---: | --- | --- |",
    ]
    print("\n".join(lines), flush=True)
    for name in args.backends.split(","):
        try:
            backend = dn.get_backend(name)
        except dn.BackendError as exc:
            print(f"| {name} | skipped: {exc} | | | | |")
            continue
        for label, old, new in cases(backend, args.quick):
            r = compare(old, new, rounds, budget)
            k_old, k_new = count_kernels(backend, old), count_kernels(backend, new)
            kernels = "" if k_old is None else f"{k_old} → {k_new}"
            line = (f"| {name} | {label} | {r['old_us']:.1f} | {r['new_us']:.1f} | "
                    f"{r['ratio']:.2f} ({r['lo']:.2f}-{r['hi']:.2f}) | {kernels} |")
            lines.append(line)
            print(line, flush=True)
    text = "\n".join(lines) + "\n"
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text)
    return text


if __name__ == "__main__":
    main()
