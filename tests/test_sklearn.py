"""deepnet.sklearn: the estimators against the plain deepnet path, on every backend.

The oracle for each estimator is the network deepnet itself trains from the same seed and
settings on ``X.T``: the estimator must give exactly its outputs. scikit-learn's own checks
are in test_sklearn_checks.py, pipelines and searches in test_sklearn_workflows.py.
"""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

pytest.importorskip("sklearn")
os.environ.setdefault("SCIPY_ARRAY_API", "1")  # read when array_api_dispatch is turned on

import sklearn
from conftest import assert_on_backend, tolerance
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.exceptions import NotFittedError

import deepnet as dn
from deepnet.sklearn import DeepNetClassifier, DeepNetRegressor


def _where(backend) -> tuple[str, str | None]:
    """``(backend, device)`` arguments that name the fixture's backend."""
    return backend.name, (None if backend.label == backend.name else
                          backend.label.split(":", 1)[1])


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(axis=0)) / X.std(axis=0), y


def _regression(rng, m=60, n0=3, k=1):
    X = rng.standard_normal((m, n0))
    W = rng.standard_normal((n0, k))
    y = np.tanh(X @ W) + 0.05 * rng.standard_normal((m, k))
    return X, (y[:, 0] if k == 1 else y)


# -- hyperparameters -------------------------------------------------------------------

ISSUE_PARAMETERS = {
    "hidden_layer_sizes", "activation", "optimizer", "learning_rate", "momentum", "beta1",
    "beta2", "batch_size", "epochs", "l2", "keep_prob", "init", "early_stopping",
    "validation_fraction", "backend", "device", "dtype", "random_state", "verbose",
}


@pytest.mark.parametrize("Est", [DeepNetClassifier, DeepNetRegressor])
def test_every_hyperparameter_is_a_constructor_argument_stored_unchanged(Est):
    opt = dn.optimizers.Adam(learning_rate=0.01)
    params = dict(
        hidden_layer_sizes=[7, 5], activation=["tanh", "relu"], optimizer=opt,
        learning_rate=None, momentum=0.5, beta1=0.8, beta2=0.99, batch_size=None,
        epochs=3, l2=0.1, keep_prob=0.8, init="xavier", early_stopping=True,
        validation_fraction=0.2, n_iter_no_change=4, tol=0.0, backend="numpy",
        device=None, dtype="float32", random_state=np.random.RandomState(0), verbose=1,
    )
    est = Est(**params)
    got = est.get_params()
    assert set(got) == ISSUE_PARAMETERS | {"n_iter_no_change", "tol"}
    assert all(got[k] is v for k, v in params.items())  # the very objects, unchanged
    twin = clone(est)
    assert twin.get_params()["hidden_layer_sizes"] == [7, 5]
    assert repr(twin.get_params()["optimizer"]) == repr(opt)


BAD = [
    ("hidden_layer_sizes", (10, 0), r"hidden_layer_sizes\[1\] must be a positive integer"),
    ("hidden_layer_sizes", "100", "tuple of hidden layer sizes"),
    ("activation", "softmax", "unknown hidden activation 'softmax'"),
    ("activation", ["relu", "tanh"], "one per hidden layer"),
    ("optimizer", "sgd", "optimizer must be one of"),
    ("learning_rate", 0.0, "learning_rate must be > 0"),
    ("momentum", 1.0, "momentum must be < 1"),
    ("beta2", -0.5, "beta2 must be >= 0"),
    ("batch_size", 0, "batch_size"),
    ("batch_size", "all", "batch_size"),
    ("epochs", 2.5, "epochs must be a positive integer"),
    ("l2", -1.0, "l2 must be >= 0"),
    ("keep_prob", 0.0, "keep_prob must be > 0"),
    ("init", "glorot", "init must be one of"),
    ("early_stopping", "yes", "early_stopping must be True or False"),
    ("validation_fraction", 1.0, "validation_fraction must be < 1"),
    ("n_iter_no_change", 0, "n_iter_no_change must be a positive integer"),
    ("tol", float("nan"), "tol must be a finite real number"),
    ("backend", "jax", "backend must be None"),
    ("dtype", "float16", "float16"),
    ("random_state", -1, "random_state must be None, an int >= 0"),
    ("verbose", "loud", "verbose must be True or False"),
]


@pytest.mark.parametrize("param, value, match", BAD, ids=[f"{p}={v!r}" for p, v, _ in BAD])
def test_a_bad_hyperparameter_is_refused_by_fit_with_its_name_before_any_work(
    iris, param, value, match
):
    X, y = iris
    est = DeepNetClassifier(**{param: value})  # neither __init__ nor set_params check
    est.set_params(**{param: value})
    with pytest.raises(dn.InputError, match=match) as err:
        est.fit(X, y)
    assert f"DeepNetClassifier parameter {param}" in str(err.value)  # named, every one
    assert not hasattr(est, "net_") and not hasattr(est, "n_features_in_")


@pytest.mark.parametrize("Est", [DeepNetClassifier, DeepNetRegressor])
def test_a_device_that_does_not_exist_is_named_with_its_parameter(iris, Est):
    X, y = iris
    est = Est((4,), epochs=1, backend="numpy", device="nonsense")
    with pytest.raises(dn.BackendError, match=f"{Est.__name__} parameters backend='numpy', "
                       "device='nonsense': backend 'numpy' runs on the CPU only"):
        est.fit(X, y)
    assert not hasattr(est, "net_")


# -- the oracle: the network deepnet trains itself --------------------------------------


def test_the_classifier_trains_exactly_the_network_deepnet_trains(backend, iris):
    X, y = iris
    name, device = _where(backend)
    clf = DeepNetClassifier(
        (8, 6), activation="tanh", optimizer="momentum", learning_rate=0.05,
        momentum=0.8, batch_size=32, epochs=4, l2=0.01, keep_prob=0.9, init="xavier",
        backend=name, device=device, dtype="float64", random_state=3,
    ).fit(X, y)
    net = dn.DeepNet([4, 8, 6, 3], hidden="tanh", output="softmax", init="xavier", l2=0.01,
                     keep_prob=0.9, dtype="float64", seed=3, backend=name, device=device)
    history = net.fit(X.T, y, epochs=4, batch_size=32,
                      optimizer=dn.optimizers.Momentum(learning_rate=0.05, beta=0.8),
                      learning_rate=None, seed=None, progress=False, train_metrics=False)
    AL = dn.to_numpy(net.predict_proba(X.T))
    assert clf.net_.backend.label == backend.label
    np.testing.assert_array_equal(clf.predict_proba(X), AL.T)
    np.testing.assert_array_equal(clf.predict(X), np.argmax(AL, axis=0))
    assert clf.loss_curve_ == history.cost and clf.n_iter_ == 4
    assert clf.classes_.tolist() == [0, 1, 2] and clf.n_outputs_ == 3
    assert clf.n_features_in_ == 4 and clf.history_.cost == history.cost
    assert clf.score(X, y) == pytest.approx(np.mean(np.argmax(AL, axis=0) == y))


def test_the_regressor_trains_exactly_the_network_deepnet_trains(backend, rng):
    X, y = _regression(rng, k=2)
    name, device = _where(backend)
    reg = DeepNetRegressor((5,), optimizer="adam", learning_rate=0.01, batch_size=16,
                           epochs=3, backend=name, device=device, dtype="float32",
                           random_state=1).fit(X, y)
    net = dn.DeepNet([3, 5, 2], output="linear", init="xavier", dtype="float32", seed=1,
                     backend=name, device=device)
    net.fit(X.T, y.T, epochs=3, batch_size=16, optimizer=dn.optimizers.Adam(0.01),
            learning_rate=None, seed=None, progress=False, train_metrics=False)
    pred = reg.predict(X)
    assert pred.dtype == np.float32 and pred.shape == (60, 2)
    np.testing.assert_array_equal(pred, dn.to_numpy(net.predict(X.T)).T)


def test_binary_labels_of_any_type_train_one_sigmoid_unit(rng):
    X = rng.standard_normal((80, 2))
    y = np.where(X[:, 0] + X[:, 1] > 0, "dog", "cat")
    clf = DeepNetClassifier((8,), learning_rate=0.05, epochs=60, random_state=0).fit(X, y)
    assert clf.classes_.tolist() == ["cat", "dog"] and clf.net_.layer_dims == (2, 8, 1)
    assert clf.net_.output == "sigmoid" and clf.n_outputs_ == 1
    P = clf.predict_proba(X)
    p = dn.to_numpy(clf.net_.predict_proba(X.T))[0]
    np.testing.assert_array_equal(P, np.stack([1 - p, p], axis=1))
    assert clf.predict(X).tolist() == np.where(p > 0.5, "dog", "cat").tolist()
    assert clf.score(X, y) > 0.95
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), P, rtol=1e-12)


def test_integer_and_string_labels_of_many_classes_train_a_softmax(iris):
    X, y = iris
    species = np.array(["setosa", "versicolor", "virginica"])
    names = species[y]
    a = DeepNetClassifier((8,), learning_rate=0.02, epochs=40, random_state=0).fit(X, y + 10)
    b = DeepNetClassifier((8,), learning_rate=0.02, epochs=40, random_state=0).fit(X, names)
    assert a.classes_.tolist() == [10, 11, 12] and a.net_.output == "softmax"
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert (b.predict(X) == species[a.predict(X) - 10]).all() and a.score(X, y + 10) > 0.9


def test_multilabel_targets_train_one_sigmoid_unit_per_label(rng):
    X = rng.standard_normal((90, 3))
    Y = (X[:, :3] > 0).astype(np.int64)  # three independent labels
    clf = DeepNetClassifier((12,), learning_rate=0.05, epochs=80, random_state=0).fit(X, Y)
    assert clf.net_.layer_dims == (3, 12, 3) and clf.net_.output == "sigmoid"
    assert clf.classes_.tolist() == [0, 1, 2]
    P = clf.predict_proba(X)
    np.testing.assert_array_equal(P, dn.to_numpy(clf.net_.predict_proba(X.T)).T)
    pred = clf.predict(X)
    assert pred.dtype == np.int64 and pred.shape == (90, 3)
    np.testing.assert_array_equal(pred, (P > 0.5).astype(np.int64))
    assert clf.score(X, Y) > 0.9  # subset accuracy


@pytest.mark.parametrize("shape", ["(m,)", "(m, 1)", "(m, 3)"])
def test_regression_predictions_have_the_targets_shape(rng, shape):
    k = 3 if shape == "(m, 3)" else 1
    X, y = _regression(rng, k=k)
    if shape == "(m, 1)":
        y = y[:, None]
    reg = DeepNetRegressor((16,), activation="tanh", learning_rate=0.02, epochs=150,
                           random_state=0).fit(X, y)
    assert reg.predict(X).shape == y.shape and reg.n_outputs_ == k
    assert reg.score(X, y) > 0.8


# -- partial_fit ------------------------------------------------------------------------


def test_partial_fit_is_fit_one_epoch_at_a_time(backend, iris):
    X, y = iris
    name, device = _where(backend)
    kw = dict(hidden_layer_sizes=(6,), batch_size=50, learning_rate=0.01, backend=name,
              device=device, dtype="float64", random_state=7)
    whole = DeepNetClassifier(epochs=3, **kw).fit(X, y)
    steps = DeepNetClassifier(**kw)
    for _ in range(3):
        steps.partial_fit(X, y, classes=[0, 1, 2])  # the Adam moments carry over
    np.testing.assert_array_equal(steps.predict_proba(X), whole.predict_proba(X))
    assert steps.loss_curve_ == whole.loss_curve_ and steps.n_iter_ == 3
    assert steps.optimizer_.t == whole.optimizer_.t == 9


def test_partial_fit_needs_every_class_up_front(iris):
    X, y = iris
    clf = DeepNetClassifier((4,), epochs=1)
    with pytest.raises(dn.InputError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])  # a batch without class 2
    assert clf.net_.output == "softmax" and clf.net_.layer_dims[-1] == 3
    with pytest.raises(dn.InputError, match=r"labels \[3\] that are not among classes "
                       r"\[0, 1, 2\]"):  # as written, not np.int64(3)
        clf.partial_fit(X, y + 1)
    with pytest.raises(dn.InputError, match=r"classes=\[0, 1\] differs from the classes "
                       r"of the first partial_fit call, \[0, 1, 2\]"):
        clf.partial_fit(X, y, classes=[0, 1])
    with pytest.raises(dn.InputError, match=r"y holds 1 class \('a'\) in all 2 samples"):
        DeepNetClassifier().fit(X[:2], np.array(["a", "a"], dtype=object))
    with pytest.raises(dn.InputError, match="features"):
        clf.partial_fit(X[:, :3], y)
    reg = DeepNetRegressor((4,)).partial_fit(X, X[:, :2])
    with pytest.raises(dn.InputError, match="1 output"):
        reg.partial_fit(X, X[:, 0])


# -- bad input: scikit-learn's error types, deepnet's errors -------------------------------


def _sparse(X):
    sp = pytest.importorskip("scipy.sparse")
    return sp.csr_array(X)


BAD_INPUT = [
    ("NaN in X", lambda X, y: (np.where(X > 2, np.nan, X), y), "NaN"),
    ("inf in X", lambda X, y: (np.where(X > 2, np.inf, X), y), "infinity"),
    ("complex X", lambda X, y: (X + 1j, y), "Complex data not supported"),
    ("1-D X", lambda X, y: (X[:, 0], y), "Expected 2D array, got 1D array"),
    ("no samples", lambda X, y: (X[:0], y[:0]), "0 sample"),
    ("no features", lambda X, y: (X[:, :0], y), "0 feature"),
    ("sparse X", lambda X, y: (_sparse(X), y), "densify with X.toarray"),
    ("one class", lambda X, y: (X, np.zeros_like(y)), "needs at least 2 classes"),
    ("fewer labels", lambda X, y: (X, y[:-1]), "inconsistent numbers of samples"),
    ("regression y", lambda X, y: (X, y + 0.5), "Unknown label type"),
    ("no y", lambda X, y: (X, None), "requires y to be passed"),
    ("multiclass-multioutput y", lambda X, y: (X, np.stack([y, y], axis=1)),
     "MultiOutputClassifier"),
]


@pytest.mark.parametrize("make, match", [b[1:] for b in BAD_INPUT],
                         ids=[b[0] for b in BAD_INPUT])
def test_bad_input_gets_a_deepnet_error_of_scikit_learns_type(iris, make, match):
    X, y = make(*iris)
    clf = DeepNetClassifier((4,), epochs=1)
    with pytest.raises(dn.DeepNetError, match=match) as info:
        clf.fit(X, y)
    assert isinstance(info.value, ValueError)  # what scikit-learn's callers catch
    assert not hasattr(clf, "net_") and not hasattr(clf, "n_features_in_")


def test_predict_checks_its_input_and_the_fit(iris):
    X, y = iris
    clf = DeepNetClassifier((4,), epochs=1)
    with pytest.raises(NotFittedError):
        clf.predict(X)
    clf.fit(X, y)
    with pytest.raises(dn.InputError, match="X has 3 features, but DeepNetClassifier is "
                                            "expecting 4 features"):
        clf.predict_proba(X[:, :3])
    with pytest.raises(dn.InputError, match="NaN"):
        clf.predict(np.full_like(X, np.nan))


def test_a_failed_fit_leaves_the_fitted_estimator_as_it_was(rng):
    X, y = _regression(rng)
    reg = DeepNetRegressor((4,), epochs=2, random_state=0).fit(X, y)
    net, before = reg.net_, reg.predict(X)
    X5 = rng.standard_normal((60, 5))
    reg.set_params(optimizer="gd", learning_rate=1e100, batch_size=None, epochs=5)
    with pytest.raises(dn.DivergenceError):
        reg.fit(X5 * 1e3, y * 1e3)
    assert reg.net_ is net and reg.n_features_in_ == 3
    np.testing.assert_array_equal(reg.predict(X), before)


# -- other settings ---------------------------------------------------------------------------


def test_early_stopping_holds_out_a_validation_set_and_keeps_the_best_epoch(iris):
    X, y = iris
    clf = DeepNetClassifier((16,), learning_rate=0.05, epochs=300, early_stopping=True,
                            validation_fraction=0.2, n_iter_no_change=5, random_state=0)
    clf.fit(X, y)
    h = clf.history_
    assert h.monitor == "val_cost" and len(h.val_cost) == clf.n_iter_ == len(h.cost)
    assert h.stopped_early and clf.n_iter_ < 300
    assert h.best_epoch == int(np.argmin(h.val_cost))


@pytest.mark.parametrize("m, n_val", [(2, 1), (5, 1), (11, 2), (151, 16)])
def test_early_stopping_holds_out_at_least_one_example_as_scikit_learn_does(rng, m, n_val):
    # ceil(validation_fraction * m), train_test_split's rule: a small fold still validates
    X, y = _regression(rng, m=m)
    reg = DeepNetRegressor((4,), epochs=2, early_stopping=True, random_state=0).fit(X, y)
    assert len(reg.history_.val_cost) == 2
    net = dn.DeepNet([3, 4, 1], output="linear", init="xavier", dtype="float64", seed=0)
    net.fit(X.T, y, epochs=2, optimizer="adam", learning_rate=1e-3, progress=False,
            validation=n_val / m, early_stopping=dn.EarlyStopping(10, 1e-4, "val_cost"),
            train_metrics=False)
    assert reg.history_.val_cost == net.history.val_cost  # the same n_val held out


def test_early_stopping_on_one_sample_says_so_in_scikit_learns_words():
    # check_fit2d_1sample's patterns ("n_samples=1") with early_stopping=True (the
    # classifier's error, one class, comes first)
    with pytest.raises(dn.InputError, match="n_samples=1, leaving 0 to train on"):
        DeepNetRegressor(early_stopping=True).fit(np.ones((1, 3)), [1.0])


def test_a_sparse_indicator_matrix_trains_as_its_dense_form(rng):
    sparse = pytest.importorskip("scipy.sparse")
    X, Y = rng.standard_normal((30, 3)), rng.integers(0, 2, (30, 3))
    clf = DeepNetClassifier((4,), epochs=2, random_state=0).fit(X, sparse.csr_matrix(Y))
    twin = DeepNetClassifier((4,), epochs=2, random_state=0).fit(X, Y)
    assert clf.n_outputs_ == 3 and list(clf.classes_) == [0, 1, 2]
    assert np.array_equal(clf.predict_proba(X), twin.predict_proba(X))
    reg = DeepNetRegressor((4,), epochs=2, random_state=0).fit(X, sparse.csr_matrix(Y * 1.0))
    assert reg.predict(X).shape == (30, 3)


def test_an_optimizer_object_is_copied_and_its_schedule_used(iris):
    X, y = iris
    opt = dn.optimizers.Adam(learning_rate=0.01, schedule="inverse_time")
    clf = DeepNetClassifier((4,), optimizer=opt, learning_rate=0.5, epochs=3).fit(X, y)
    assert opt.t == 0 and opt.state == {}  # the parameter is untouched
    assert clf.optimizer_ is not opt and clf.optimizer_.t == 3
    assert clf.history_.learning_rate == [0.01, 0.005, 0.01 / 3]


def test_random_state_int_repeats_and_a_generator_draws(iris):
    X, y = iris
    same = [DeepNetClassifier((4,), epochs=2, random_state=5).fit(X, y).predict_proba(X)
            for _ in range(2)]
    np.testing.assert_array_equal(*same)
    rs = np.random.RandomState(0)
    drawn = [DeepNetClassifier((4,), epochs=2, random_state=rs).fit(X, y).predict_proba(X)
             for _ in range(2)]
    assert not np.array_equal(*drawn)


def test_dtype_follows_X_unless_given(iris):
    X, y = iris
    assert DeepNetClassifier((4,), epochs=1).fit(X, y).net_.dtype_name == "float64"
    assert DeepNetClassifier((4,), epochs=1).fit(X.astype(np.float32), y).predict_proba(
        X).dtype == np.float32
    assert DeepNetClassifier((4,), epochs=1, dtype="float32").fit(X, y).net_.dtype_name == (
        "float32")


def test_dataframe_columns_become_feature_names(iris):
    pd = pytest.importorskip("pandas")
    X, y = iris
    df = pd.DataFrame(X, columns=["sl", "sw", "pl", "pw"])
    clf = DeepNetClassifier((4,), epochs=2, random_state=0).fit(df, pd.Series(y))
    assert clf.feature_names_in_.tolist() == ["sl", "sw", "pl", "pw"]
    AL = dn.to_numpy(clf.net_.predict_proba(X.T))
    np.testing.assert_array_equal(clf.predict_proba(df), AL.T)


def test_verbose_shows_a_progress_bar(iris, capsys):
    X, y = iris
    DeepNetClassifier((4,), epochs=3, verbose=True).fit(X, y)
    assert "3/3" in capsys.readouterr().err


# -- pickling, and moving between backends ---------------------------------------------------


def test_a_fitted_estimator_pickles_on_every_backend(backend, iris):
    X, y = iris
    name, device = _where(backend)
    clf = DeepNetClassifier((6,), batch_size=32, epochs=2, keep_prob=0.8, backend=name,
                            device=device, dtype="float64", random_state=0).fit(X, y)
    twin = pickle.loads(pickle.dumps(clf))
    assert twin.net_.backend.label == clf.net_.backend.label
    np.testing.assert_array_equal(twin.predict_proba(X), clf.predict_proba(X))
    assert twin.history_.cost == clf.history_.cost and twin.optimizer_.t == clf.optimizer_.t
    # the optimizer's moments and the network's RNG travel too: the next epoch matches
    clf.partial_fit(X, y)
    twin.partial_fit(X, y)
    np.testing.assert_array_equal(twin.predict_proba(X), clf.predict_proba(X))


def test_setting_backend_moves_a_fitted_network_with_its_optimizer(backend, rng):
    X, y = _regression(rng, k=2)
    name, device = _where(backend)
    reg = DeepNetRegressor((5,), batch_size=20, epochs=2, backend=name, device=device,
                           dtype="float64", random_state=0).fit(X, y)
    moved = pickle.loads(pickle.dumps(reg)).set_params(backend="numpy", device=None)
    tol = tolerance("float64")
    np.testing.assert_allclose(moved.predict(X), reg.predict(X), rtol=tol, atol=tol)
    assert moved.net_.backend.name == "numpy"
    reg.partial_fit(X, y)  # Adam continues from the same moments on either backend
    moved.partial_fit(X, y)
    np.testing.assert_allclose(moved.predict(X), reg.predict(X), rtol=tol, atol=tol)


def test_a_pickle_from_a_backend_that_cannot_run_here_waits_for_another(rng):
    X, y = _regression(rng)
    reg = DeepNetRegressor((5,), epochs=2, random_state=0).fit(X, y)
    state = reg.__getstate__()  # as if pickled where torch sees a 100th GPU
    state["net_"].backend, state["net_"].device = "torch", "cuda:99"
    state.update(backend="torch", device="cuda:99")
    twin = pickle.loads(pickle.dumps(reg))
    twin.__setstate__(state)
    assert "not loaded here" in repr(twin.net_)
    with pytest.raises(dn.BackendError, match=r"fitted on 'torch:cuda:99'.*set_params"):
        twin.predict(X)
    with pytest.raises(dn.BackendError, match="set_params"):
        twin.net_.predict(X.T)
    again = pickle.loads(pickle.dumps(twin))  # still loads, still waiting
    assert "not loaded here" in repr(again.net_)
    twin.set_params(backend="numpy", device=None)
    np.testing.assert_array_equal(twin.predict(X), reg.predict(X))


# -- Array API dispatch ------------------------------------------------------------------------


def test_under_dispatch_inputs_of_a_library_train_there_and_get_its_arrays(backend, iris):
    X, y = iris
    name, device = _where(backend)
    kw = dict(hidden_layer_sizes=(6,), batch_size=50, epochs=2, random_state=0)
    Xd, yd = backend.asarray(X, None), backend.asarray(y, None)
    with sklearn.config_context(array_api_dispatch=True):
        clf = DeepNetClassifier(**kw).fit(Xd, yd)
        P, pred = clf.predict_proba(Xd), clf.predict(Xd)
        score = clf.score(Xd, yd)
    # NumPy inputs train on the backend argument (None: the default backend)
    assert clf.net_.backend.name == (dn.get_backend().name if name == "numpy" else name)
    if name != "numpy":
        assert clf.net_.backend.label == backend.label
        assert_on_backend(P, backend, shape=(150, 3), dtype_name="float64")
        assert_on_backend(pred, backend, shape=(150,))
    # the oracle: NumPy inputs with the backend named, dispatch off
    plain = DeepNetClassifier(backend=name, device=device, **kw).fit(X, y)
    np.testing.assert_array_equal(dn.to_numpy(P), plain.predict_proba(X))
    np.testing.assert_array_equal(dn.to_numpy(pred), plain.predict(X))
    assert score == plain.score(X, y)


def test_under_dispatch_numpy_inputs_train_on_the_backend_argument(iris, backend):
    X, y = iris
    name, device = _where(backend)
    with sklearn.config_context(array_api_dispatch=True):
        reg = DeepNetRegressor((4,), epochs=1, backend=name, device=device).fit(X, y)
        pred = reg.predict(X)
    assert reg.net_.backend.label == backend.label
    assert isinstance(pred, np.ndarray) and pred.shape == (150,)


def test_under_dispatch_a_mismatched_library_is_refused(iris):
    X, y = iris
    strict = dn.get_backend("array_api_strict", "device1")
    Xs = strict.asarray(X, None)
    with sklearn.config_context(array_api_dispatch=True):
        with pytest.raises(dn.InputError, match="backend='numpy'"):
            DeepNetClassifier((4,), epochs=1, backend="numpy").fit(Xs, y)
        clf = DeepNetClassifier((4,), epochs=1).fit(Xs, y)
        with pytest.raises(dn.InputError,
                           match=r"DeepNetClassifier.predict\(\) must use the same namespace"):
            clf.predict(X)
        with pytest.raises(dn.InputError, match="same namespace"):
            clf.predict_proba(dn.get_backend("array_api_strict").asarray(X, None))
    assert isinstance(clf.predict(X), np.ndarray)  # without dispatch NumPy is fine


def test_move_estimator_to_moves_the_network(iris):
    try:  # a private helper of recent scikit-learn
        from sklearn.utils._array_api import get_namespace_and_device, move_estimator_to
    except ImportError:
        pytest.skip("this scikit-learn has no sklearn.utils._array_api.move_estimator_to")

    X, y = iris
    strict = dn.get_backend("array_api_strict", "device1")
    Xs = strict.asarray(X, None)
    with sklearn.config_context(array_api_dispatch=True):
        clf = DeepNetClassifier((4,), epochs=2, random_state=0).fit(Xs, y)
        xp, _, device = get_namespace_and_device(X)
        moved = move_estimator_to(clf, xp, device)
        P, P_strict = moved.predict_proba(X), clf.predict_proba(Xs)
    assert moved.net_.backend.name == "numpy" and clf.net_.backend.label == strict.label
    np.testing.assert_allclose(P, dn.to_numpy(P_strict), rtol=1e-12)
    with pytest.raises(dn.InputError, match=r"turn on sklearn\.set_config"):
        clf.predict(Xs)  # NumPy cannot read device1 arrays


def test_without_scikit_learn_the_import_says_what_to_install(monkeypatch):
    import importlib
    import sys

    for name in [m for m in sys.modules if m == "deepnet.sklearn" or
                 m.startswith("deepnet.sklearn.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(dn.datasets.MissingDependencyError, match=r"pip install -e '\.\[sklearn\]'"):
        importlib.import_module("deepnet.sklearn")
