"""Small data sets in the column layout: ``X`` is ``(n0, m)``, one example per column.

``load_digits`` is the 8×8 handwritten-digits set that scikit-learn ships inside its
package (1797 images, no download; install the ``examples`` extra). The generators
(``make_flower``, ``make_moons``, ``make_circles``) need nothing but NumPy and return
binary labels ``Y`` of shape ``(1, m)`` for a sigmoid output. Everything is a host NumPy
array: networks move their inputs to their own device.

>>> from deepnet import datasets
>>> X, Y = datasets.make_flower(400, seed=1)
>>> X.shape, Y.shape
((2, 400), (1, 400))
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from deepnet import checks
from deepnet.backend import host_rng
from deepnet.errors import DeepNetError, InputError


class MissingDependencyError(DeepNetError, ImportError):
    """An optional library a data set needs is not installed."""


class Split(NamedTuple):
    """A fixed train/test split: ``X_* (n0, m_*)`` in [0, 1], integer labels ``y_* (m_*,)``."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def load_digits(test_size: float = 0.25, seed: int = 0) -> Split:
    """scikit-learn's bundled 8×8 digits, split into train and test sets.

    Parameters
    ----------
    test_size : fraction of the 1797 images held out as the test set.
    seed : seed of the permutation that makes the split; the default gives the same
        split everywhere (1347 train, 450 test). Not stratified.

    Returns
    -------
    Split
        ``X_train (64, 1347)`` and ``X_test (64, 450)`` as float64 pixel intensities
        divided by 16 (so in [0, 1]); ``y_train``, ``y_test`` int64 labels 0..9.
    """
    test_size = checks.real_number(
        test_size, "test_size", low=0.0, high=1.0, low_open=True, high_open=True
    )
    rng = host_rng(seed)
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError as exc:
        raise MissingDependencyError(
            "load_digits needs scikit-learn, which bundles the digits images; install it "
            "with: pip install scikit-learn"
        ) from exc
    bunch = sk_load_digits()
    X = np.asarray(bunch.data, dtype=np.float64) / 16.0  # (1797, 64), pixels 0..16
    y = np.asarray(bunch.target, dtype=np.int64)
    m = y.shape[0]
    order = rng.permutation(m)
    n_test = round(test_size * m)
    if not 1 <= n_test <= m - 1:
        raise InputError(f"test_size={test_size} leaves {n_test} of {m} images for testing")
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
    return Split(
        np.ascontiguousarray(X[train].T), y[train], np.ascontiguousarray(X[test].T), y[test]
    )


def _counts(m: int) -> tuple[int, int]:
    m = checks.positive_int(m, "m")
    if m < 2:
        raise InputError(f"m must be at least 2 (one example of each class); got {m}")
    return m // 2, m - m // 2


def _shuffled(X: np.ndarray, Y: np.ndarray, rng: np.random.Generator):
    order = rng.permutation(X.shape[1])
    return np.ascontiguousarray(X[:, order]), np.ascontiguousarray(Y[:, order])


def make_flower(m: int = 400, seed: int = 0, noise: float = 0.2):
    """The planar "flower" of the notes: two interleaved classes of petals in the plane.

    Returns ``X (2, m)`` and labels ``Y (1, m)`` (int64, 0 or 1), columns shuffled. Each
    class lies along ``r = 4 sin(4t)`` with Gaussian jitter of size ``noise`` in ``t``
    and ``r``; a straight line cannot separate them.
    """
    rng = host_rng(seed)
    noise = checks.real_number(noise, "noise", low=0.0)
    X = np.empty((2, 0))
    Y = np.empty((1, 0), dtype=np.int64)
    for j, n in enumerate(_counts(m)):
        t = np.linspace(j * 3.12, (j + 1) * 3.12, n) + rng.standard_normal(n) * noise
        r = 4.0 * np.sin(4.0 * t) + rng.standard_normal(n) * noise
        X = np.concatenate([X, np.stack([r * np.sin(t), r * np.cos(t)])], axis=1)
        Y = np.concatenate([Y, np.full((1, n), j, dtype=np.int64)], axis=1)
    return _shuffled(X, Y, rng)


def make_moons(m: int = 200, noise: float = 0.1, seed: int = 0):
    """Two interleaving half circles; ``X (2, m)``, ``Y (1, m)`` int64 0/1, shuffled."""
    rng = host_rng(seed)
    noise = checks.real_number(noise, "noise", low=0.0)
    n_out, n_in = _counts(m)
    t_out = np.linspace(0.0, np.pi, n_out)
    t_in = np.linspace(0.0, np.pi, n_in)
    X = np.concatenate(
        [np.stack([np.cos(t_out), np.sin(t_out)]),
         np.stack([1.0 - np.cos(t_in), 0.5 - np.sin(t_in)])], axis=1
    )
    X = X + rng.standard_normal(X.shape) * noise
    Y = np.concatenate([np.zeros(n_out, dtype=np.int64), np.ones(n_in, dtype=np.int64)])
    return _shuffled(X, Y[None, :], rng)


def make_circles(m: int = 200, noise: float = 0.05, factor: float = 0.5, seed: int = 0):
    """A small circle (label 1, radius ``factor``) inside a unit circle (label 0).

    ``X (2, m)``, ``Y (1, m)`` int64 0/1, shuffled.
    """
    rng = host_rng(seed)
    noise = checks.real_number(noise, "noise", low=0.0)
    factor = checks.real_number(factor, "factor", low=0.0, high=1.0, low_open=True,
                                high_open=True)
    n_out, n_in = _counts(m)
    t_out = np.linspace(0.0, 2.0 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0.0, 2.0 * np.pi, n_in, endpoint=False)
    X = np.concatenate(
        [np.stack([np.cos(t_out), np.sin(t_out)]),
         factor * np.stack([np.cos(t_in), np.sin(t_in)])], axis=1
    )
    X = X + rng.standard_normal(X.shape) * noise
    Y = np.concatenate([np.zeros(n_out, dtype=np.int64), np.ones(n_in, dtype=np.int64)])
    return _shuffled(X, Y[None, :], rng)


__all__ = [
    "MissingDependencyError",
    "Split",
    "load_digits",
    "make_circles",
    "make_flower",
    "make_moons",
]
