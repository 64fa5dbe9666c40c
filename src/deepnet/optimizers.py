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
from typing import Any

from deepnet.backend import Array, into
from deepnet.checks import real_number
from deepnet.errors import InputError
from deepnet.optimizer import Optimizer
from deepnet.schedules import (
    SCHEDULES,
    Constant,
    Exponential,
    InverseTime,
    Schedule,
    Step,
    get_schedule,
)


class GD(Optimizer):
    """Plain gradient descent: ``W -= α dW``; default α = 0.1.

    Parameters as in :class:`Optimizer`.
    """

    name = "gd"

    def _apply(  # type: ignore[override]  # each rule takes its own moments
        self, W: Array, dW: Array, tmp: Array | None = None
    ) -> None:
        W -= into(tmp, "multiply", dW, self.alpha)

    def prescale(self) -> float:
        """``α``: the update is ``W -= α dW``."""
        return self.alpha


class Momentum(Optimizer):
    """Gradient descent with momentum: ``v = β v + (1-β) dW; W -= α v``; default α = 0.1.

    Parameters
    ----------
    learning_rate, schedule, fused
        As in :class:`Optimizer`.
    beta : float
        β in [0, 1).
    """

    name = "momentum"

    moments = ("v",)

    def __init__(self, learning_rate: float | None = None, beta: float = 0.9,
                 schedule: str | Schedule | None = None, *, fused: bool = True) -> None:
        super().__init__(learning_rate, schedule, fused=fused)
        self.beta = real_number(beta, "beta", low=0.0, high=1.0, high_open=True)

    def _apply(  # type: ignore[override]  # each rule takes its own moments
        self, W: Array, dW: Array, v: Array, tmp: Array | None = None
    ) -> None:
        v *= self.beta
        v += into(tmp, "multiply", dW, 1.0 - self.beta)
        W -= into(tmp, "multiply", v, self.alpha)

    def hyperparameters(self) -> dict[str, Any]:
        """``learning_rate`` and ``beta``."""
        return {"learning_rate": self.learning_rate, "beta": self.beta}


class RMSprop(Optimizer):
    """RMSprop: ``s = β2 s + (1-β2) dW²; W -= α dW / (sqrt(s) + ε)``; default α = 0.001.

    Parameters
    ----------
    learning_rate, schedule, fused
        As in :class:`Optimizer`.
    beta2 : float
        β2 in [0, 1).
    epsilon : float
        ε > 0.
    """

    name = "rmsprop"
    moments = ("s",)
    default_learning_rate = 0.001

    def __init__(
        self, learning_rate: float | None = None, beta2: float = 0.999, epsilon: float = 1e-8,
        schedule: str | Schedule | None = None, *, fused: bool = True,
    ) -> None:
        super().__init__(learning_rate, schedule, fused=fused)
        self.beta2 = real_number(beta2, "beta2", low=0.0, high=1.0, high_open=True)
        self.epsilon = real_number(epsilon, "epsilon", low=0.0, low_open=True)

    def _apply(  # type: ignore[override]  # each rule takes its own moments
        self, W: Array, dW: Array, s: Array, tmp: Array | None = None
    ) -> None:
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
        """``learning_rate``, ``beta2`` and ``epsilon``."""
        return {"learning_rate": self.learning_rate, "beta2": self.beta2,
                "epsilon": self.epsilon}


class Adam(Optimizer):
    """Adam with bias correction (formulas above); default α = 0.001, ``fit``'s default.

    ``ε`` is added to ``sqrt(ŝ)``, as ``torch.optim.Adam`` does.

    Parameters
    ----------
    learning_rate, schedule, fused
        As in :class:`Optimizer`.
    beta1, beta2 : float
        β1 and β2 in [0, 1).
    epsilon : float
        ε > 0.

    Examples
    --------
    >>> from deepnet.optimizers import Adam, InverseTime
    >>> Adam(learning_rate=0.01, schedule=InverseTime(decay=0.5))
    Adam(learning_rate=0.01, beta1=0.9, beta2=0.999, epsilon=1e-08, schedule=InverseTime(decay=0.5))
    """

    name = "adam"
    moments = ("v", "s")
    default_learning_rate = 0.001

    def __init__(
        self, learning_rate: float | None = None, beta1: float = 0.9, beta2: float = 0.999,
        epsilon: float = 1e-8, schedule: str | Schedule | None = None, *, fused: bool = True,
    ) -> None:
        super().__init__(learning_rate, schedule, fused=fused)
        self.beta1 = real_number(beta1, "beta1", low=0.0, high=1.0, high_open=True)
        self.beta2 = real_number(beta2, "beta2", low=0.0, high=1.0, high_open=True)
        self.epsilon = real_number(epsilon, "epsilon", low=0.0, low_open=True)

    def _apply(  # type: ignore[override]  # each rule takes its own moments
        self, W: Array, dW: Array, v: Array, s: Array, tmp: Array | None = None
    ) -> None:
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
        """``learning_rate``, ``beta1``, ``beta2`` and ``epsilon``."""
        return {"learning_rate": self.learning_rate, "beta1": self.beta1,
                "beta2": self.beta2, "epsilon": self.epsilon}


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "gd": GD, "momentum": Momentum, "rmsprop": RMSprop, "adam": Adam,
}


def get(optimizer: str | Optimizer, learning_rate: float | None = None) -> Optimizer:
    """An optimizer from its name, or an instance (what ``fit`` calls).

    Parameters
    ----------
    optimizer : str or Optimizer
        ``"gd"``, ``"momentum"``, ``"rmsprop"``, ``"adam"`` (any case), or an instance,
        returned itself.
    learning_rate : float, optional
        α0; ``None`` keeps the instance's, or the rule's default for a name.

    Raises
    ------
    InputError
        For an unknown name or a learning rate that is not positive.
    """
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
