"""Learning-rate schedules: ``α(epoch)`` from ``α0``, applied once per epoch.

Epochs count from 0 over every ``fit`` an optimizer object runs, so a schedule continues
where the last ``fit`` left it.
"""

from __future__ import annotations

from deepnet.checks import positive_int, real_number
from deepnet.errors import InputError


class Schedule:
    """Base of the learning-rate schedules: ``α(epoch)`` from ``α0``.

    A subclass implements ``__call__``; an optimizer calls it once per epoch.
    """

    def __call__(self, alpha0: float, epoch: int) -> float:
        """The learning rate of ``epoch``.

        Parameters
        ----------
        alpha0 : float
            The optimizer's ``learning_rate``.
        epoch : int
            The epoch, counted from 0 over every ``fit`` the optimizer ran.

        Returns
        -------
        float
            ``α`` for that epoch.
        """
        raise NotImplementedError


class Constant(Schedule):
    """``α = α0``: no decay (the default)."""

    def __call__(self, alpha0: float, epoch: int) -> float:
        """``α0`` (parameters as in :meth:`Schedule.__call__`)."""
        return alpha0

    def __repr__(self) -> str:
        return "Constant()"


class InverseTime(Schedule):
    """``α = α0 / (1 + decay · epoch)``: the notes' learning-rate decay.

    Parameters
    ----------
    decay : float
        The decay rate, ≥ 0.

    Examples
    --------
    >>> from deepnet.optimizers import InverseTime
    >>> [InverseTime(decay=1.0)(0.1, epoch) for epoch in range(3)]
    [0.1, 0.05, 0.03333333333333333]
    """

    def __init__(self, decay: float = 1.0) -> None:
        self.decay = real_number(decay, "decay", low=0.0)

    def __call__(self, alpha0: float, epoch: int) -> float:
        """``α0 / (1 + decay · epoch)`` (parameters as in :meth:`Schedule.__call__`)."""
        return alpha0 / (1.0 + self.decay * epoch)

    def __repr__(self) -> str:
        return f"InverseTime(decay={self.decay})"


class Exponential(Schedule):
    """``α = α0 · rate^epoch``: exponential decay.

    Parameters
    ----------
    rate : float
        The factor per epoch, in (0, 1].
    """

    def __init__(self, rate: float = 0.95) -> None:
        self.rate = real_number(rate, "rate", low=0.0, high=1.0, low_open=True)

    def __call__(self, alpha0: float, epoch: int) -> float:
        """``α0 · rate^epoch`` (parameters as in :meth:`Schedule.__call__`)."""
        return alpha0 * self.rate**epoch

    def __repr__(self) -> str:
        return f"Exponential(rate={self.rate})"


class Step(Schedule):
    """``α = α0 · drop^⌊epoch / every⌋``: step decay.

    Parameters
    ----------
    drop : float
        The factor of each step, in (0, 1].
    every : int
        Epochs between steps.
    """

    def __init__(self, drop: float = 0.5, every: int = 10) -> None:
        self.drop = real_number(drop, "drop", low=0.0, high=1.0, low_open=True)
        self.every = positive_int(every, "every")

    def __call__(self, alpha0: float, epoch: int) -> float:
        """``α0 · drop^⌊epoch / every⌋`` (parameters as in :meth:`Schedule.__call__`)."""
        return alpha0 * self.drop ** (epoch // self.every)

    def __repr__(self) -> str:
        return f"Step(drop={self.drop}, every={self.every})"


SCHEDULES = {"constant": Constant, "inverse_time": InverseTime, "exponential": Exponential,
             "step": Step}


def get_schedule(schedule: str | Schedule | None) -> Schedule:
    """A schedule from its name, an instance, or ``None`` (constant).

    Parameters
    ----------
    schedule : str, Schedule or None
        ``"constant"``, ``"inverse_time"``, ``"exponential"``, ``"step"`` (with their
        default arguments), a :class:`Schedule`, or ``None`` for :class:`Constant`.

    Raises
    ------
    InputError
        For any other value.
    """
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
