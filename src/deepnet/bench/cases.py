"""What the sweep times: the network, its flops, the target names, and one callable per case.

The network under test has 4 hidden ReLU layers of width ``n`` and one sigmoid output,
``[n, n, n, n, n, 1]``, trained full-batch (``m`` examples) with plain gradient descent.
At each grid point ``(n, m)`` and for each backend the sweep times

``step``      ``deepnet.step.train_step`` (forward, cost, backward, in-place update);
``floor``     the 14 matmuls a step needs, on arrays of the same shapes in the backend's
              own library (written into preallocated outputs where it has ``out=``);
``forward``, ``backward`` (optional);

and, once per device, an idiomatic PyTorch step (``nn.Sequential`` + ``BCEWithLogitsLoss``
+ ``optim.SGD``) as the reference. Flops per step are ``6 · Σ n[l]·n[l-1]·m``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "BASELINE",
    "CPU_TARGETS",
    "DEEPNET_CASES",
    "DEFAULT_MAX_WIDTH",
    "GPU_TARGETS",
    "HIDDEN_LAYERS",
    "LEARNING_RATE",
    "REFERENCE_PREFIX",
    "Case",
    "deepnet_cases",
    "floor_case",
    "floor_matmuls",
    "is_gpu",
    "is_large",
    "is_reference",
    "layer_dims",
    "library_of",
    "make_data",
    "parse_target",
    "pretty",
    "reference_case",
    "reference_target",
    "step_flops",
]

HIDDEN_LAYERS = 4
LEARNING_RATE = 0.01
CPU_TARGETS = ("numpy", "array_api_strict", "torch")
GPU_TARGETS = ("cupy", "torch:cuda")
DEEPNET_CASES = ("step", "floor", "forward", "backward")
DEFAULT_MAX_WIDTH = {"array_api_strict": 256}
REFERENCE_PREFIX = "pytorch@"
BASELINE = "numpy"
_PRETTY = {"numpy": "NumPy", "array_api_strict": "array-api-strict", "cupy": "CuPy"}


# -- the pure parts: shapes, flops, names -------------------------------------------------


def layer_dims(n: int) -> list[int]:
    """``[n, n, n, n, n, 1]``: input of width ``n``, 4 hidden layers, one output unit."""
    return [n] * (HIDDEN_LAYERS + 1) + [1]


def step_flops(dims: Sequence[int], m: int) -> int:
    """Flops of one training step, ``6 · Σ_l n[l]·n[l-1]·m`` (the convention reported)."""
    return 6 * m * sum(dims[l] * dims[l - 1] for l in range(1, len(dims)))


def floor_matmuls(dims: Sequence[int], m: int) -> list[tuple[str, int, int, int]]:
    """The matmuls one step needs, as ``(what, rows, inner, cols)``.

    Forward ``W[l] @ A[l-1]`` for every layer, backward ``dZ[l] @ A[l-1].T`` for every
    layer and ``W[l].T @ dZ[l]`` for ``l >= 2`` (``dA[0]`` is not needed): ``3L - 1``.
    """
    L = len(dims) - 1
    ops = [(f"Z{l} = W{l} @ A{l - 1}", dims[l], dims[l - 1], m) for l in range(1, L + 1)]
    ops += [(f"dW{l} = dZ{l} @ A{l - 1}.T", dims[l], m, dims[l - 1]) for l in range(L, 0, -1)]
    ops += [(f"dA{l - 1} = W{l}.T @ dZ{l}", dims[l - 1], dims[l], m) for l in range(L, 1, -1)]
    return ops


def parse_target(label: str) -> tuple[str, str | None]:
    """``"torch:cuda:1"`` → ``("torch", "cuda:1")``; ``"numpy"`` → ``("numpy", None)``."""
    name, _, device = label.partition(":")
    return name, (device or None)


def is_reference(target: str) -> bool:
    """Whether ``target`` is a native-PyTorch reference (``pytorch@cpu``, ``pytorch@cuda:0``)."""
    return target.startswith(REFERENCE_PREFIX)


def is_gpu(target: str) -> bool:
    """Whether ``target`` (a backend label or a reference) runs on a GPU."""
    if is_reference(target):
        return target != REFERENCE_PREFIX + "cpu"
    name, device = parse_target(target)
    return name == "cupy" or (name == "torch" and (device or "cpu").startswith("cuda"))


def library_of(target: str) -> str:
    """The library whose thread pools ``target`` uses: ``numpy`` for NumPy and the referee
    (both run on NumPy's BLAS), ``torch`` for the torch backend and native PyTorch."""
    if is_reference(target):
        return "torch"
    name = parse_target(target)[0]
    return "numpy" if name == "array_api_strict" else name


def reference_target(target: str) -> str:
    """The PyTorch reference on ``target``'s device: ``pytorch@cpu``, ``pytorch@cuda:0``."""
    name, device = parse_target(target)
    if not is_gpu(target):
        return REFERENCE_PREFIX + "cpu"
    if name == "cupy":
        return f"{REFERENCE_PREFIX}cuda:{(device or '0').removeprefix('cuda:')}"
    return REFERENCE_PREFIX + (device if device and ":" in device else "cuda:0")


def is_large(target: str, n: int, m: int) -> bool:
    """Points too big for a 2-core CPU run: n ≥ 4096 on the CPU, n > 256 on the referee."""
    if is_gpu(target):
        return False
    if parse_target(target)[0] == "array_api_strict":
        return n > DEFAULT_MAX_WIDTH["array_api_strict"]
    return n >= 4096


def pretty(target: str) -> str:
    """The name a report prints: ``NumPy``, ``native PyTorch (cpu)``, ``torch:cuda``."""
    if is_reference(target):
        return f"native PyTorch ({target.removeprefix(REFERENCE_PREFIX)})"
    return _PRETTY.get(target, target)


# -- the cases: one callable per thing timed, plus the device sync that ends it ----------


@dataclass
class Case:
    """``fn()`` does one unit of work (queued, on a GPU); ``sync()`` waits for the device."""

    target: str
    kind: str
    fn: Callable[[], Any]
    sync: Callable[[], None]

    def __call__(self) -> Any:
        """One unit of work, synchronized (what pytest-benchmark times)."""
        out = self.fn()
        self.sync()
        return out


def _no_sync() -> None:
    return None


def make_data(n: int, m: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Host data: ``X (n, m)`` standard normal, ``Y (1, m)`` of 0/1 labels."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, m))
    Y = (rng.random((1, m)) < 0.5).astype(np.float64)
    return X, Y


def deepnet_cases(
    target: str, n: int, m: int, dtype: str = "float32", seed: int = 0,
    kinds: Iterable[str] = DEEPNET_CASES,
) -> dict[str, Case]:
    """deepnet's ``step``/``forward``/``backward`` and the GEMM ``floor`` on ``target``.

    Raises ``BackendError`` where ``target`` cannot run, ``ValueError`` for an unknown kind.
    """
    import deepnet as dn
    from deepnet.optimizers import GD
    from deepnet.step import train_step

    kinds = list(kinds)
    unknown = [k for k in kinds if k not in DEEPNET_CASES]
    if unknown:
        raise ValueError(f"unknown case kinds {unknown}; valid: {', '.join(DEEPNET_CASES)}")
    name, device = parse_target(target)
    net = dn.DeepNet(layer_dims(n), hidden="relu", output="sigmoid", dtype=dtype, seed=seed,
                     backend=name, device=device)
    sync = net.backend.synchronize
    cases: dict[str, Case] = {}
    if {"step", "forward", "backward"} & set(kinds):
        Xh, Yh = make_data(n, m, seed)
        X = net._check_X(Xh)
        Y = net._check_Y(Yh, m)
    if "forward" in kinds:
        cases["forward"] = Case(target, "forward", lambda: net._forward(X)[0], sync)
    if "backward" in kinds:
        AL, caches = net._forward(X)
        cases["backward"] = Case(target, "backward", lambda: net._backward(AL, Y, caches), sync)
    if "step" in kinds:
        optimizer = GD(learning_rate=LEARNING_RATE)
        cases["step"] = Case(target, "step", lambda: train_step(net, X, Y, optimizer), sync)
    if "floor" in kinds:
        cases["floor"] = floor_case(net.backend, target, n, m, dtype, seed)
    return cases


def floor_case(backend: Any, target: str, n: int, m: int, dtype: str, seed: int = 0) -> Case:
    """The 14 matmuls of one step on ``backend``, inputs and outputs preallocated."""
    dims = layer_dims(n)
    L = len(dims) - 1
    rng = np.random.default_rng(seed + 1)
    dt = backend.dtype(dtype)

    def rand(shape: tuple[int, int]) -> Any:  # never zeros: they can run faster
        return backend.asarray(rng.standard_normal(shape) * 0.1, dt)

    W = {l: rand((dims[l], dims[l - 1])) for l in range(1, L + 1)}
    A = {l: rand((dims[l], m)) for l in range(L)}
    dZ = {l: rand((dims[l], m)) for l in range(1, L + 1)}
    pairs = [(W[l], A[l - 1]) for l in range(1, L + 1)]
    pairs += [(dZ[l], A[l - 1].T) for l in range(L, 0, -1)]
    pairs += [(W[l].T, dZ[l]) for l in range(L, 1, -1)]
    if backend.supports_out:
        matmul = backend.lib.matmul
        xp = backend.xp
        ops = [(a, b, xp.empty((a.shape[0], b.shape[1]), dtype=dt, device=backend.device))
               for a, b in pairs]

        def floor() -> Any:
            for a, b, out in ops:
                matmul(a, b, out=out)
            return ops[-1][2]
    else:
        def floor() -> Any:
            for a, b in pairs:
                out = a @ b
            return out

    return Case(target, "floor", floor, backend.synchronize)


def reference_case(device: str, n: int, m: int, dtype: str = "float32", seed: int = 0) -> Case:
    """An idiomatic PyTorch training step (row layout) on ``device`` ("cpu", "cuda:0")."""
    import torch
    from torch import nn

    dev = torch.device(device)
    tdtype = getattr(torch, dtype)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = []
        for _ in range(HIDDEN_LAYERS):
            layers += [nn.Linear(n, n), nn.ReLU()]
        layers.append(nn.Linear(n, 1))
        model = nn.Sequential(*layers).to(device=dev, dtype=tdtype)
    Xh, Yh = make_data(n, m, seed)
    X = torch.as_tensor(np.ascontiguousarray(Xh.T), dtype=tdtype, device=dev)
    Y = torch.as_tensor(np.ascontiguousarray(Yh.T), dtype=tdtype, device=dev)
    loss_fn = nn.BCEWithLogitsLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)

    def step() -> Any:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(X), Y)
        loss.backward()
        optimizer.step()
        return loss

    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else _no_sync
    return Case(REFERENCE_PREFIX + device, "step", step, sync)
