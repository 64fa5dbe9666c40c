"""Fused optimizer updates: the backend hook behind ``Optimizer.step``.

The portable update (``Optimizer._apply``) is a dozen elementwise passes over the flat
parameter array — Adam's ``v``, ``s``, the bias corrections, the square root, the
quotient — each reading and writing every parameter. Where a library can do the same
arithmetic in fewer passes, :func:`kernel` returns a function that does:

=========  =================================================================  ==========
library    how                                                                passes
=========  =================================================================  ==========
torch      ``torch._fused_adam_`` (one kernel, vectorized and threaded on      Adam 1,
           the CPU); in-place ``add_(alpha=)``, ``addcmul_``, ``addcdiv_``     momentum 3,
           chains for momentum and RMSprop                                      RMSprop 5
CuPy       one ``ElementwiseKernel`` per rule (untested here: no GPU)          1
NumPy      the portable passes over cache-sized blocks of the flat array,      same, in
           so each block's passes stay in L2 (no fused ufuncs exist)           cache
strict     none: the portable update
=========  =================================================================  ==========

Each kernel computes what ``_apply`` computes (the same formula and order of operations
where the library allows it); the tests hold every kernel to the portable update. This
module is part of the backend layer: it alone here names torch and CuPy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from deepnet.backend import Array

#: Elements per block of the NumPy update: 64 Ki float32 numbers are 256 KiB per array,
#: five arrays (W, dW, v, s, scratch) fit a 2 MiB L2 (benchmarks/NOTES.md).
NUMPY_BLOCK = 65536

Kernel = Callable[..., None]  # kernel(optimizer, W, dW, *moments, tmp)


def kernel(rule: str, W: Array) -> Kernel | None:
    """The fused form of update ``rule`` (``"adam"``, ...) for arrays like ``W``, or
    ``None`` where the portable update is what runs."""
    module = type(W).__module__.split(".")[0]
    if module == "numpy":
        return _numpy_blocks if W.ndim == 1 and W.shape[0] > NUMPY_BLOCK else None
    if module == "torch":
        return _TORCH.get(rule)
    if module == "cupy":
        return _cupy_kernels().get(rule)
    return None


# -- NumPy: the portable update, block by block ----------------------------------------------


def _numpy_blocks(opt: Any, W: Array, dW: Array, *state_and_tmp: Array | None) -> None:
    n = W.shape[0]
    for start in range(0, n, NUMPY_BLOCK):
        block = slice(start, min(start + NUMPY_BLOCK, n))
        opt._apply(W[block], dW[block], *(x if x is None else x[block] for x in state_and_tmp))


# -- torch ---------------------------------------------------------------------------------


def _torch_momentum(opt: Any, W: Array, dW: Array, v: Array, tmp: Array | None) -> None:
    v.mul_(opt.beta).add_(dW, alpha=1.0 - opt.beta)
    W.add_(v, alpha=-opt.alpha)


def _torch_rmsprop(opt: Any, W: Array, dW: Array, s: Array, tmp: Array | None) -> None:
    import torch

    s.mul_(opt.beta2).addcmul_(dW, dW, value=1.0 - opt.beta2)
    denom = torch.sqrt(s, out=tmp) if tmp is not None else torch.sqrt(s)
    denom.add_(opt.epsilon)
    W.addcdiv_(dW, denom, value=-opt.alpha)


def _torch_adam(opt: Any, W: Array, dW: Array, v: Array, s: Array, tmp: Array | None) -> None:
    import torch

    step = _step_tensor(opt, W)
    torch._fused_adam_(
        [W], [dW], [v], [s], [], [step], lr=opt.alpha, beta1=opt.beta1, beta2=opt.beta2,
        weight_decay=0.0, eps=opt.epsilon, amsgrad=False, maximize=False,
    )


def _step_tensor(opt: Any, W: Array) -> Array:
    """The step count as a tensor on ``W``'s device (what the fused kernel reads), kept
    beside the optimizer and brought to ``opt.t`` in place — no host-to-device copy."""
    import torch

    cached = getattr(opt, "_fused_step", None)
    if cached is None or cached[0].device != W.device:
        cached = [torch.zeros((), dtype=torch.float32, device=W.device), -1]
        opt._fused_step = cached
    if cached[1] != opt.t:
        if cached[1] == opt.t - 1:
            cached[0].add_(1.0)
        else:  # a restored or reset optimizer: set it (a fill, not a copy)
            cached[0].fill_(float(opt.t))
        cached[1] = opt.t
    return cached[0]


_TORCH: dict[str, Kernel] = {
    "momentum": _torch_momentum,
    "rmsprop": _torch_rmsprop,
    "adam": _torch_adam,
}


# -- CuPy: one elementwise kernel per rule (compiled on first use) ------------------------

_CUPY: dict[str, Kernel] | None = None


def _cupy_kernels() -> dict[str, Kernel]:
    global _CUPY
    if _CUPY is None:
        import cupy

        momentum = cupy.ElementwiseKernel(
            "T g, T beta, T alpha", "T W, T v",
            "v = beta * v + (1 - beta) * g; W -= alpha * v", "deepnet_momentum")
        rmsprop = cupy.ElementwiseKernel(
            "T g, T beta2, T eps, T alpha", "T W, T s",
            "s = beta2 * s + (1 - beta2) * g * g; W -= alpha * g / (sqrt(s) + eps)",
            "deepnet_rmsprop")
        adam = cupy.ElementwiseKernel(
            "T g, T beta1, T beta2, T eps, T step_size, T root_c2", "T W, T v, T s",
            "v = beta1 * v + (1 - beta1) * g; s = beta2 * s + (1 - beta2) * g * g; "
            "W -= step_size * v / (sqrt(s) / root_c2 + eps)",
            "deepnet_adam")

        def run_momentum(opt, W, dW, v, tmp):
            momentum(dW, W.dtype.type(opt.beta), W.dtype.type(opt.alpha), W, v)

        def run_rmsprop(opt, W, dW, s, tmp):
            t = W.dtype.type
            rmsprop(dW, t(opt.beta2), t(opt.epsilon), t(opt.alpha), W, s)

        def run_adam(opt, W, dW, v, s, tmp):
            t = W.dtype.type
            step_size = opt.alpha / (1.0 - opt.beta1**opt.t)
            root_c2 = math.sqrt(1.0 - opt.beta2**opt.t)
            adam(dW, t(opt.beta1), t(opt.beta2), t(opt.epsilon), t(step_size), t(root_c2),
                 W, v, s)

        _CUPY = {"momentum": run_momentum, "rmsprop": run_rmsprop, "adam": run_adam}
    return _CUPY


__all__ = ["NUMPY_BLOCK", "kernel"]
