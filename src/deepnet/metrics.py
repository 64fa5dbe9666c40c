"""Evaluation metrics of ``A[L]`` against ``Y`` (both ``(nL, m)``), as sums on the device.

Each function returns a 0-d array: a **sum** over the examples (and output units), so
batches and processes add up; the caller divides once. What a network reports follows
its output (``metric_for``): classifiers the accuracy, regression the mean squared error.

* ``softmax``: an example is right when ``argmax A[L] = argmax Y`` — accuracy is
  ``hits / m``;
* ``sigmoid``: each output unit is a 0/1 decision at 0.5 — accuracy is
  ``hits / (m · nL)`` (multi-label: the fraction of right labels);
* ``linear``: ``Σ (a - y)²`` — the mean squared error is ``sum / (m · nL)``, scikit-
  learn's convention (the cost ``(1/(2m)) Σ (a - y)²`` differs by ``2/nL``).
"""

from __future__ import annotations

from typing import NamedTuple

from deepnet.backend import Array, array_namespace


def softmax_hits(AL: Array, Y: Array) -> Array:
    """The number of columns whose largest ``A[L]`` is where ``Y``'s is."""
    xp = array_namespace(AL, Y)
    hit = xp.argmax(AL, axis=0) == xp.argmax(Y, axis=0)
    return xp.sum(xp.astype(hit, AL.dtype))


def sigmoid_hits(AL: Array, Y: Array) -> Array:
    """The number of entries where ``A[L] > 0.5`` agrees with ``Y > 0.5``."""
    xp = array_namespace(AL, Y)
    return xp.sum(xp.astype((AL > 0.5) == (Y > 0.5), AL.dtype))


def squared_error(AL: Array, Y: Array) -> Array:
    """``Σ (a - y)²`` over every entry."""
    xp = array_namespace(AL, Y)
    D = AL - Y
    return xp.sum(D * D)


class Metric(NamedTuple):
    """A metric: its name in a history (``accuracy``, ``mse``), its sum, and whether it
    counts per example (``True``) or per entry (``False``) when averaged."""

    name: str
    total: object
    per_example: bool
    higher_is_better: bool


METRICS = {
    "softmax": Metric("accuracy", softmax_hits, True, True),
    "sigmoid": Metric("accuracy", sigmoid_hits, False, True),
    "linear": Metric("mse", squared_error, False, False),
}


def metric_for(output: str) -> Metric:
    """The metric a network with this output activation reports."""
    return METRICS[output]


def mean(metric: Metric, total: float, m: int, nL: int) -> float:
    """The metric's mean from its sum over ``m`` examples of ``nL`` outputs."""
    return total / (m if metric.per_example else m * nL)


__all__ = ["METRICS", "Metric", "mean", "metric_for", "sigmoid_hits", "softmax_hits",
           "squared_error"]
