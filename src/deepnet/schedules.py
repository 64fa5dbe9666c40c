"""Learning-rate schedules: ``α(epoch)`` from ``α0``, applied once per epoch.

Epochs count from 0 over every ``fit`` an optimizer object runs, so a schedule continues
where the last ``fit`` left it.
"""

from __future__ import annotations

from deepnet.checks import positive_int, real_number
from deepnet.errors import InputError


class Schedule:
    """``α(epoch)`` from ``α0``; epochs count from 0."""

    def __call__(self, alpha0: float, epoch: int) -> float:
        raise NotImplementedError


class Constant(Schedule):
    """``α = α0``."""

    def __call__(self, alpha0: float, epoch: int) -> float:
        return alpha0

    def __repr__(self) -> str:
        return "Constant()"


class InverseTime(Schedule):
    """``α = α0 / (1 + decay · epoch)``."""

    def __init__(self, decay: float = 1.0) -> None:
        self.decay = real_number(decay, "decay", low=0.0)

    def __call__(self, alpha0: float, epoch: int) -> float:
        return alpha0 / (1.0 + self.decay * epoch)

    def __repr__(self) -> str:
        return f"InverseTime(decay={self.decay})"


class Exponential(Schedule):
    """``α = α0 · rate^epoch``."""

    def __init__(self, rate: float = 0.95) -> None:
        self.rate = real_number(rate, "rate", low=0.0, high=1.0, low_open=True)

    def __call__(self, alpha0: float, epoch: int) -> float:
        return alpha0 * self.rate**epoch

    def __repr__(self) -> str:
        return f"Exponential(rate={self.rate})"


class Step(Schedule):
    """``α = α0 · drop^⌊epoch / every⌋``."""

    def __init__(self, drop: float = 0.5, every: int = 10) -> None:
        self.drop = real_number(drop, "drop", low=0.0, high=1.0, low_open=True)
        self.every = positive_int(every, "every")

    def __call__(self, alpha0: float, epoch: int) -> float:
        return alpha0 * self.drop ** (epoch // self.every)

    def __repr__(self) -> str:
        return f"Step(drop={self.drop}, every={self.every})"


SCHEDULES = {"constant": Constant, "inverse_time": InverseTime, "exponential": Exponential,
             "step": Step}


def get_schedule(schedule: str | Schedule | None) -> Schedule:
    """A schedule from its name, an instance, or ``None`` (constant)."""
    if schedule is None:
        return Constant()
    if isinstance(schedule, Schedule):
        return schedule
    if isinstance(schedule, str) and schedule in SCHEDULES:
        return SCHEDULES[schedule]()
    raise InputError(
        f"unknown learning-rate schedule {schedule!r}; expected one of "
        f"{', '.join(SCHEDULES)} or a deepnet.optimizers.Schedule"
    )


__all__ = ["SCHEDULES", "Constant", "Exponential", "InverseTime", "Schedule", "Step",
           "get_schedule"]
