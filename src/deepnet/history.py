"""What one ``fit`` records and how it is told to stop: ``History``, ``EarlyStopping``,
callbacks and ``StopTraining``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from numbers import Integral
from typing import Any

from deepnet import checks
from deepnet.errors import InputError

MONITORS = ("cost", "val_cost", "accuracy", "val_accuracy", "mse", "val_mse")
METRIC_NAMES = ("accuracy", "val_accuracy", "mse", "val_mse")
Callback = Callable[[Any, int, dict], Any]  # cb(net, epoch, logs)


class StopTraining(Exception):
    """Raise from a callback to end training after the current epoch."""


@dataclass
class History:
    """Per-epoch numbers of one ``fit``; lists are indexed by epoch (0-based).

    Attributes
    ----------
    cost : training cost of each epoch: the mean of its mini-batch costs weighted by
        batch size, each taken before that batch's update (dropout and L2 included).
        With ``batch_size=None`` it is the notes' cost of iteration ``i``.
    val_cost : cost on the validation set after each epoch (empty without validation).
    accuracy : the fraction of training examples classified right during each epoch
        (sigmoid and softmax outputs): each batch counted before its update, dropout
        included, as the cost is (Keras reports the same; no second pass over the set).
    val_accuracy : validation accuracy after each epoch (classification with validation).
    mse : the training set's mean squared error ``Σ (a - y)² / (m nL)`` during each
        epoch, counted like ``accuracy`` (linear outputs).
    val_mse : the validation set's mean squared error after each epoch.
    time : wall seconds of each epoch (training, evaluation and the one read back).
    learning_rate : the α each epoch used (after the optimizer's schedule).
    best_epoch : index of the epoch with the best monitored value (``monitor``).
    monitor : the quantity ``best_epoch`` refers to.
    stopped_early : whether early stopping or a callback ended training before ``epochs``.
    """

    cost: list[float] = field(default_factory=list)
    val_cost: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    mse: list[float] = field(default_factory=list)
    val_mse: list[float] = field(default_factory=list)
    time: list[float] = field(default_factory=list)
    learning_rate: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    monitor: str = "cost"
    stopped_early: bool = False

    @property
    def epochs(self) -> int:
        """The number of completed epochs."""
        return len(self.cost)

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and numbers (JSON-ready; a checkpoint stores this)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        """The inverse of :meth:`to_dict`; unknown keys are ignored."""
        if not isinstance(data, Mapping):
            raise InputError(f"History.from_dict needs a mapping; got {type(data).__name__}")
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in names})

    def __repr__(self) -> str:
        last = f", last cost {self.cost[-1]:.6g}" if self.cost else ""
        return f"History({self.epochs} epochs{last}, best_epoch={self.best_epoch})"


@dataclass(frozen=True)
class EarlyStopping:
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs in a row; with ``restore_best`` the network ends with the best epoch's parameters.

    ``monitor`` ``None`` means ``"val_cost"`` when ``fit`` has validation data, else
    ``"cost"``; costs and mean squared errors must decrease, accuracies increase.
    """

    patience: int = 5
    min_delta: float = 0.0
    monitor: str | None = None
    restore_best: bool = True

    def __post_init__(self) -> None:
        checks.positive_int(self.patience, "EarlyStopping patience")
        checks.real_number(self.min_delta, "EarlyStopping min_delta", low=0.0)
        if self.monitor is not None and self.monitor not in MONITORS:
            raise InputError(
                f"EarlyStopping monitor must be one of {', '.join(MONITORS)}; "
                f"got {self.monitor!r}"
            )


def _check_early_stopping(early_stopping: Any) -> EarlyStopping | None:
    if early_stopping is None or early_stopping is False:
        return None
    if isinstance(early_stopping, EarlyStopping):
        return early_stopping
    if isinstance(early_stopping, Integral) and not isinstance(early_stopping, bool):
        return EarlyStopping(patience=int(early_stopping))
    raise InputError(
        "early_stopping must be None, a patience (int) or deepnet.EarlyStopping(...); "
        f"got {early_stopping!r}"
    )


def _check_callbacks(callbacks: Any) -> list[Callback]:
    if callbacks is None:
        return []
    if callable(callbacks):
        return [callbacks]
    if not isinstance(callbacks, Sequence):
        raise InputError(f"callbacks must be a list of callables; got {callbacks!r}")
    for i, cb in enumerate(callbacks):
        if not callable(cb):
            raise InputError(
                f"callbacks[{i}] must be callable as cb(net, epoch, logs); got {cb!r}"
            )
    return list(callbacks)


def _check_monitor(monitor: str, *, validation: bool, metric: str, metrics: bool) -> None:
    """``monitor`` must be something this fit records: ``metric`` is the network's
    (``accuracy`` or ``mse``), ``metrics`` whether training metrics are on."""
    if monitor.startswith("val_") and not validation:
        raise InputError(
            f"early stopping monitors {monitor!r} but fit has no validation data; pass "
            "validation=(X_val, Y_val) or a fraction, or monitor 'cost'"
        )
    name = monitor.removeprefix("val_")
    if name in ("accuracy", "mse") and name != metric:
        raise InputError(
            f"early stopping monitors {monitor!r}, but this network reports {metric!r} "
            "(accuracy for sigmoid and softmax outputs, mse for linear ones)"
        )
    if monitor == metric and not metrics:
        raise InputError(f"early stopping monitors {monitor!r} but train_metrics=False")


__all__ = ["METRIC_NAMES", "MONITORS", "Callback", "EarlyStopping", "History", "StopTraining"]
