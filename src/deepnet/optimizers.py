"""Update rules, sorted by complexity: GD, Momentum, RMSprop, Adam; and learning-rate decay.

Each optimizer updates the parameter arrays **in place** (``W -= ...``, standard in-place
operators) and keeps its per-parameter state (``v``, ``s``) on the parameters' device::

    gd        W -= α dW
    momentum  v = β v + (1-β) dW;            W -= α v
    rmsprop   s = β2 s + (1-β2) dW²;          W -= α dW / (sqrt(s) + ε)
    adam      v = β1 v + (1-β1) dW;  s = β2 s + (1-β2) dW²;
              v̂ = v / (1-β1^t);  ŝ = s / (1-β2^t);   W -= α v̂ / (sqrt(ŝ) + ε)

``α`` is ``learning_rate`` decayed by the optimizer's ``schedule`` once per epoch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from deepnet import fused
from deepnet.backend import Array, array_namespace, into, out_supported
from deepnet.checks import real_number
from deepnet.errors import InputError
from deepnet.schedules import (
    SCHEDULES,
    Constant,
    Exponential,
    InverseTime,
    Schedule,
    Step,
    get_schedule,
)

# -- optimizers -------------------------------------------------------------------------


class Optimizer:
    """Base: holds ``learning_rate`` (α0), the schedule and the current α."""

    name = "optimizer"

    #: the α0 used when none is given (``fit``, the CLI and the constructor alike)
    default_learning_rate = 0.1

    def __init__(self, learning_rate: float | None = None,
                 schedule: str | Schedule | None = None, *, fused: bool = True):
        if learning_rate is None:
            learning_rate = self.default_learning_rate
        self.learning_rate = real_number(
            learning_rate, "learning_rate", low=0.0, low_open=True
        )
        self.fused = bool(fused)
        self.shapes: dict[str, tuple[int, ...]] | None = None  # of the network it updates
        self.schedule = get_schedule(schedule)
        self.alpha = self.learning_rate
        self.t = 0  # number of updates made
        self.epochs = 0  # number of epochs completed, over every fit this optimizer ran
        self.state: dict[str, dict[str, Array]] = {}

    def set_epoch(self, epoch: int) -> None:
        """Set α for ``epoch`` (0-based, counted over every fit) from the schedule.

        ``fit`` calls it with :attr:`epochs`, so an optimizer object passed to a second
        ``fit`` continues its schedule where the first left it.
        """
        self.alpha = self.schedule(self.learning_rate, epoch)

    #: names of the per-parameter moments this rule keeps (``v``, ``s``)
    moments: tuple[str, ...] = ()

    def step(self, params: Mapping[str, Array], grads: Mapping[str, Array]) -> None:
        """Update every ``params[k]`` in place from ``grads["d" + k]``.

        Where the backend has a fused form of this rule (``deepnet.fused``: one pass on
        torch and CuPy, cache-sized blocks on NumPy) and :attr:`fused` is on, that runs;
        else the portable update (:meth:`_apply`), which array-api-strict always runs.
        """
        self.t += 1
        for key, W in params.items():
            dW = grads["d" + key]
            state = [self._zeros(key, name, W) for name in self.moments]
            tmp = self._scratch(key, W)
            kernel = fused.kernel(self.name, W) if self.fused else None
            if kernel is None:
                self._apply(W, dW, *state, tmp)
            else:
                kernel(self, W, dW, *state, tmp)
        if self.moments and self.t % self._flush_every() == 0:
            self._flush_tiny()

    def _apply(self, W: Array, dW: Array, *state_and_tmp: Array | None) -> None:
        """The portable update of ``W`` (in place) from ``dW`` and the moments."""
        raise NotImplementedError

    def _flush_every(self) -> int:
        """Steps between flushes: a moment just above the threshold must not decay below
        the smallest normal number in between (``β^K ≥ 2^-10`` for the smallest ``β``)."""
        betas = [b for b in (getattr(self, n, None) for n in ("beta", "beta1", "beta2"))
                 if b is not None]
        smallest = min(betas, default=0.5)
        if smallest <= 0.0:
            return 1
        return max(1, int(10.0 / -math.log2(smallest)))

    def _flush_tiny(self) -> None:
        """Set moments smaller than ``2^20`` times the dtype's smallest normal number to
        zero — what a GPU's or XLA's flush-to-zero does — so they never decay into
        subnormal numbers, which CPUs add and multiply up to 50x slower (measured: an Adam
        update 5x slower on NumPy, 190x on torch, benchmarks/NOTES.md)."""
        for slot in self.state.values():
            for name in self.moments:
                v = slot.get(name)
                if v is None:
                    continue
                xp = array_namespace(v)
                threshold = float(xp.finfo(v.dtype).smallest_normal) * 2.0**20
                tmp = slot.get("scratch")
                keep = into(tmp, "abs", v)
                keep = into(tmp, "greater_equal", keep, threshold)
                if tmp is None:
                    keep = xp.astype(keep, v.dtype)
                v *= keep

    def prescale(self) -> float | None:
        """``c`` where the update is exactly ``W -= c · dW`` (GD: ``α``), else ``None``.

        A training step can then have the backward pass deliver ``c · dW`` directly and
        call :meth:`step_prescaled`, one pass over each ``W`` instead of two.
        """
        return None

    def step_prescaled(self, params: Mapping[str, Array], grads: Mapping[str, Array]) -> None:
        """``W -= dW`` for gradients that already carry :meth:`prescale`'s factor."""
        self.t += 1
        for key, W in params.items():
            W -= grads["d" + key]

    def _zeros(self, key: str, name: str, like: Array) -> Array:
        slot = self.state.setdefault(key, {})
        if name not in slot:
            xp = array_namespace(like)
            slot[name] = xp.zeros(like.shape, dtype=like.dtype, device=like.device)
        return slot[name]

    def _scratch(self, key: str, like: Array) -> Array | None:
        """A reusable buffer shaped like ``like``, where the backend can write into one.

        With it, an update allocates nothing (``backend.into``); without it (array-api-
        strict) every temporary is a new array. The results are the same.
        """
        if not out_supported(like):
            return None
        return self._zeros(key, "scratch", like)

    def check_state(self, params: Mapping[str, Array],
                    shapes: Mapping[str, tuple[int, ...]] | None = None) -> None:
        """Refuse moments made for other parameters than ``params``, or non-finite ones.

        ``params`` is what the network's step updates (``DeepNet._update_targets()``: the
        parameter dict, or one flat array of them all) and ``shapes`` the network's
        parameter shapes (``W1 (n1, n0)``, ...), which the state is tied to: a flat array
        of the same length from another architecture is refused too. An optimizer object
        carries its state from one ``fit`` to the next; used on a network of another
        architecture, backend, device or dtype, that state cannot apply.
        """
        hint = ("it was used on another network; call optimizer.reset() first, or pass a "
                "new optimizer (or its name)")
        if shapes is not None:
            shapes = {k: tuple(v) for k, v in shapes.items()}
            if self.state and self.shapes is not None and self.shapes != shapes:
                raise InputError(
                    f"this {type(self).__name__} holds state for parameters of shapes "
                    f"{_layout(self.shapes)}, but the network's are {_layout(shapes)}; "
                    f"{hint}"
                )
        name_of = {"params": "the flat array of all parameters"}
        for key, slot in self.state.items():
            W = params.get(key) if isinstance(key, str) else None
            if W is None:
                raise InputError(
                    f"this {type(self).__name__} holds state for {name_of.get(key, key)!s} "
                    f"but the network's update has {[name_of.get(k, k) for k in params]}; "
                    f"{hint}"
                )
            what = name_of.get(key, key)
            for name, v in slot.items():
                same = (type(v) is type(W) and tuple(v.shape) == tuple(W.shape)
                        and v.dtype == W.dtype and str(v.device) == str(W.device))
                if not same:
                    raise InputError(
                        f"this {type(self).__name__} holds state {name!r} for {what} of "
                        f"shape {tuple(v.shape)}, {v.dtype} on {v.device} "
                        f"({type(v).__module__}), but the network's is {tuple(W.shape)}, "
                        f"{W.dtype} on {W.device}; {hint}"
                    )
                if name != "scratch":
                    xp = array_namespace(v)
                    if not bool(xp.all(xp.isfinite(v))):
                        raise InputError(
                            f"this {type(self).__name__}'s state {name!r} for {what} holds "
                            f"NaN or inf (left by a diverged run?); {hint}"
                        )

    def bind(self, shapes: Mapping[str, tuple[int, ...]]) -> None:
        """Tie this optimizer's state to a network's parameter shapes (``fit`` calls it
        after :meth:`check_state`)."""
        self.shapes = {k: tuple(v) for k, v in shapes.items()}

    def reset(self) -> None:
        """Forget the state (moments, step and epoch counts)."""
        self.t = 0
        self.epochs = 0
        self.state = {}
        self.shapes = None

    def hyperparameters(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args}, schedule={self.schedule!r})"


class GD(Optimizer):
    """Plain gradient descent: ``W -= α dW``."""

    name = "gd"

    def _apply(self, W: Array, dW: Array, tmp: Array | None = None) -> None:
        W -= into(tmp, "multiply", dW, self.alpha)

    def prescale(self) -> float:
        return self.alpha


class Momentum(Optimizer):
    """``v = β v + (1-β) dW; W -= α v``."""

    name = "momentum"

    moments = ("v",)

    def __init__(self, learning_rate: float | None = None, beta: float = 0.9, schedule=None,
                 *, fused: bool = True):
        super().__init__(learning_rate, schedule, fused=fused)
        self.beta = real_number(beta, "beta", low=0.0, high=1.0, high_open=True)

    def _apply(self, W: Array, dW: Array, v: Array, tmp: Array | None = None) -> None:
        v *= self.beta
        v += into(tmp, "multiply", dW, 1.0 - self.beta)
        W -= into(tmp, "multiply", v, self.alpha)

    def hyperparameters(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "beta": self.beta}


class RMSprop(Optimizer):
    """``s = β2 s + (1-β2) dW²; W -= α dW / (sqrt(s) + ε)``."""

    name = "rmsprop"
    moments = ("s",)
    default_learning_rate = 0.001

    def __init__(
        self, learning_rate: float | None = None, beta2: float = 0.999, epsilon: float = 1e-8,
        schedule=None, *, fused: bool = True,
    ):
        super().__init__(learning_rate, schedule, fused=fused)
        self.beta2 = real_number(beta2, "beta2", low=0.0, high=1.0, high_open=True)
        self.epsilon = real_number(epsilon, "epsilon", low=0.0, low_open=True)

    def _apply(self, W: Array, dW: Array, s: Array, tmp: Array | None = None) -> None:
        s *= self.beta2
        t = into(tmp, "multiply", dW, dW)
        t *= 1.0 - self.beta2
        s += t
        t = into(tmp, "sqrt", s)
        t += self.epsilon
        t = into(tmp, "divide", dW, t)
        t *= self.alpha
        W -= t

    def hyperparameters(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "beta2": self.beta2,
                "epsilon": self.epsilon}


class Adam(Optimizer):
    """Adam with bias correction; ``ε`` added to ``sqrt(ŝ)``, as ``torch.optim.Adam`` does."""

    name = "adam"
    moments = ("v", "s")
    default_learning_rate = 0.001

    def __init__(
        self, learning_rate: float | None = None, beta1: float = 0.9, beta2: float = 0.999,
        epsilon: float = 1e-8, schedule=None, *, fused: bool = True,
    ):
        super().__init__(learning_rate, schedule, fused=fused)
        self.beta1 = real_number(beta1, "beta1", low=0.0, high=1.0, high_open=True)
        self.beta2 = real_number(beta2, "beta2", low=0.0, high=1.0, high_open=True)
        self.epsilon = real_number(epsilon, "epsilon", low=0.0, low_open=True)

    def _apply(self, W: Array, dW: Array, v: Array, s: Array,
               tmp: Array | None = None) -> None:
        v *= self.beta1
        v += into(tmp, "multiply", dW, 1.0 - self.beta1)
        s *= self.beta2
        t = into(tmp, "multiply", dW, dW)
        t *= 1.0 - self.beta2
        s += t
        correction1 = 1.0 - self.beta1**self.t
        root_correction2 = math.sqrt(1.0 - self.beta2**self.t)
        # torch.optim.Adam's order: denom = sqrt(s) / sqrt(c2) + ε; W -= (α / c1) v / denom
        t = into(tmp, "sqrt", s)
        t /= root_correction2
        t += self.epsilon
        t = into(tmp, "divide", v, t)
        t *= self.alpha / correction1
        W -= t

    def hyperparameters(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "beta1": self.beta1,
                "beta2": self.beta2, "epsilon": self.epsilon}


def _layout(shapes: Mapping[str, tuple[int, ...]]) -> str:
    """``W1 (5, 3), b1 (5, 1), ...`` in short."""
    text = ", ".join(f"{k} {v}" for k, v in shapes.items())
    return text if len(text) <= 120 else text[:117] + "..."


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "gd": GD, "momentum": Momentum, "rmsprop": RMSprop, "adam": Adam,
}


def get(optimizer: str | Optimizer, learning_rate: float | None = None) -> Optimizer:
    """An optimizer from its name (with ``learning_rate`` when given) or an instance."""
    if isinstance(optimizer, Optimizer):
        if learning_rate is not None:
            optimizer.learning_rate = real_number(
                learning_rate, "learning_rate", low=0.0, low_open=True
            )
            optimizer.alpha = optimizer.learning_rate
        return optimizer
    if not isinstance(optimizer, str) or optimizer.lower() not in OPTIMIZERS:
        raise InputError(
            f"unknown optimizer {optimizer!r}; expected one of {', '.join(OPTIMIZERS)} "
            "or a deepnet.optimizers.Optimizer"
        )
    cls = OPTIMIZERS[optimizer.lower()]
    return cls() if learning_rate is None else cls(learning_rate=learning_rate)


__all__ = [  # the schedules are re-exported: optimizers.Adam(schedule=optimizers.Step())
    "GD",
    "OPTIMIZERS",
    "SCHEDULES",
    "Adam",
    "Constant",
    "Exponential",
    "InverseTime",
    "Momentum",
    "Optimizer",
    "RMSprop",
    "Schedule",
    "Step",
    "get",
    "get_schedule",
]
