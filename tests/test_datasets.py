"""Bundled digits and the dependency-free generators, in the column layout."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import deepnet as dn
from deepnet import datasets


def test_load_digits_layout_and_fixed_split():
    sk = pytest.importorskip("sklearn.datasets")
    d = datasets.load_digits()
    assert isinstance(d, datasets.Split)
    assert d.X_train.shape == (64, 1348) and d.X_test.shape == (64, 449)
    assert d.y_train.shape == (1348,) and d.y_test.shape == (449,)
    assert d.y_train.dtype == np.int64 and set(np.unique(d.y_train)) == set(range(10))
    assert d.X_train.dtype == np.float64
    assert d.X_train.min() == 0.0 and d.X_train.max() == 1.0
    again = datasets.load_digits()
    for a, b in zip(d, again):
        np.testing.assert_array_equal(a, b)
    # every image exactly once, in the train or the test set
    ref = sk.load_digits()
    images = np.concatenate([d.X_train, d.X_test], axis=1).T * 16
    labels = np.concatenate([d.y_train, d.y_test])
    order = np.lexsort(images.T[::-1])
    ref_order = np.lexsort(ref.data.T[::-1])
    np.testing.assert_array_equal(images[order], ref.data[ref_order])
    np.testing.assert_array_equal(labels[order], ref.target[ref_order])


def test_load_digits_other_splits():
    pytest.importorskip("sklearn")
    d = datasets.load_digits(test_size=0.5, seed=3)
    assert d.X_test.shape[1] in (898, 899) and d.X_train.shape[1] + d.X_test.shape[1] == 1797
    assert not np.array_equal(d.y_test[:50], datasets.load_digits().y_test[:50])
    with pytest.raises(dn.InputError, match="test_size must be <"):
        datasets.load_digits(test_size=1.0)
    with pytest.raises(dn.InputError, match="seed must be"):
        datasets.load_digits(seed="zero")


def test_load_digits_without_scikit_learn_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(datasets.MissingDependencyError, match=r"pip install scikit-learn") as info:
        datasets.load_digits()
    assert isinstance(info.value, ImportError) and isinstance(info.value, dn.DeepNetError)


@pytest.mark.parametrize("make", [datasets.make_flower, datasets.make_moons,
                                  datasets.make_circles])
def test_generators_layout_balance_and_seeds(make):
    X, Y = make(101, seed=4)
    assert X.shape == (2, 101) and Y.shape == (1, 101)
    assert X.dtype == np.float64 and Y.dtype == np.int64
    assert np.all(np.isfinite(X)) and set(np.unique(Y)) == {0, 1}
    assert abs(int(Y.sum()) - 50.5) <= 0.5
    X2, Y2 = make(101, seed=4)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(Y, Y2)
    X3, _ = make(101, seed=5)
    assert not np.array_equal(X, X3)
    assert Y[0, :50].min() != Y[0, :50].max()  # columns are shuffled, not sorted by class
    with pytest.raises(dn.InputError, match="m must be"):
        make(1)


def test_flower_is_the_notes_petals():
    X, _ = datasets.make_flower(2000, seed=0, noise=0.0)
    r = np.hypot(X[0], X[1])
    t = np.arctan2(X[0], X[1])  # the notes use x = r sin t, y = r cos t
    np.testing.assert_allclose(r, np.abs(4 * np.sin(4 * t)), atol=1e-9)


def test_generators_are_learnable_but_not_linearly():
    X, Y = datasets.make_moons(400, noise=0.1, seed=0)
    linear = dn.DeepNet([2, 1], dtype="float64", backend="numpy")
    linear.fit(X, Y, epochs=300, optimizer="adam", learning_rate=0.05, progress=False)
    deep = dn.DeepNet([2, 16, 16, 1], dtype="float64", backend="numpy")
    deep.fit(X, Y, epochs=300, optimizer="adam", learning_rate=0.02, progress=False)
    acc = {name: float(np.mean(dn.to_numpy(net.predict(X)) == Y))
           for name, net in (("linear", linear), ("deep", deep))}
    assert acc["deep"] > 0.97 and acc["linear"] < 0.92, acc


def test_circles_radii():
    X, Y = datasets.make_circles(400, noise=0.0, factor=0.3, seed=0)
    r = np.hypot(X[0], X[1])
    np.testing.assert_allclose(r[Y[0] == 0], 1.0)
    np.testing.assert_allclose(r[Y[0] == 1], 0.3)
    with pytest.raises(dn.InputError, match="factor must be <"):
        datasets.make_circles(10, factor=1.0)
