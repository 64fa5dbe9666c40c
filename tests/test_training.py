"""``fit``: the notes' loop, mini-batches, reproducibility across backends, history,
validation, callbacks, early stopping, divergence and interruption."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_on_backend

import deepnet as dn
from deepnet import loop, optimizers


def _blobs(m: int, n0: int = 4, classes: int = 3, seed: int = 0):
    """Separable-ish clusters: X (n0, m), integer labels (m,)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, m)
    centers = rng.standard_normal((n0, classes)) * 2.0
    X = centers[:, y] + rng.standard_normal((n0, m))
    return X, y


def _binary(m: int, n0: int = 5, seed: int = 1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n0, m))
    Y = (X[0:1] + 0.5 * X[1:2] ** 2 > 0.3).astype(np.float64)
    return X, Y


def _host_params(net) -> dict[str, np.ndarray]:
    return {k: dn.to_numpy(v).copy() for k, v in net.params.items()}


# -- the notes' loop ---------------------------------------------------------------------


def _notes_loop(params, X, Y, lr, iterations):
    """initialize (given), forward, cost, backward, update: relu hidden, sigmoid output."""
    p = {k: v.copy() for k, v in params.items()}
    L = len(p) // 2
    m = X.shape[1]
    costs = []
    for _ in range(iterations):
        A, cache = X, []
        for l in range(1, L + 1):
            Z = p[f"W{l}"] @ A + p[f"b{l}"]
            cache.append((A, Z))
            A = np.maximum(Z, 0) if l < L else 1 / (1 + np.exp(-Z))
        costs.append(-np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A)) / m)
        AL, dA = A, None
        for l in range(L, 0, -1):
            A_prev, Z = cache[l - 1]
            dZ = AL - Y if l == L else dA * (Z > 0)
            dW = dZ @ A_prev.T / m
            db = np.sum(dZ, axis=1, keepdims=True) / m
            dA = p[f"W{l}"].T @ dZ
            p[f"W{l}"] = p[f"W{l}"] - lr * dW
            p[f"b{l}"] = p[f"b{l}"] - lr * db
    return p, costs


def test_full_batch_gd_is_the_notes_loop(backend):
    X, Y = _binary(60)
    net = dn.DeepNet([5, 6, 4, 1], dtype="float64", seed=2, backend=backend)
    start = _host_params(net)
    history = net.fit(X, Y, epochs=25, optimizer="gd", learning_rate=0.3, progress=False)
    expected, costs = _notes_loop(start, X, Y, 0.3, 25)
    np.testing.assert_allclose(history.cost, costs, rtol=1e-10, atol=1e-12)
    for k, v in net.params.items():
        got = assert_on_backend(v, backend, expected[k].shape, "float64")
        np.testing.assert_allclose(got, expected[k], rtol=1e-9, atol=1e-11)
    assert costs[-1] < costs[0]
    assert net.history is history and history.epochs == 25


# -- mini-batches ------------------------------------------------------------------------


def _record_batches(monkeypatch):
    """Wrap the loop's ``step`` to record the batches it is given (on the host)."""
    seen = []
    real = loop.step

    def spy(net, parts, optimizer, m, **kwargs):
        X = np.concatenate([dn.to_numpy(p[0]) for p in parts], axis=1)
        Y = np.concatenate([dn.to_numpy(p[1]) for p in parts], axis=1)
        seen.append((X, Y))
        return real(net, parts, optimizer, m, **kwargs)

    monkeypatch.setattr(loop, "step", spy)
    return seen


def test_minibatches_shuffle_each_epoch_and_keep_the_last_partial_batch(monkeypatch):
    X, y = _blobs(50, seed=4)
    seen = _record_batches(monkeypatch)
    net = dn.DeepNet([4, 5, 3], output="softmax", dtype="float64", backend="numpy")
    net.fit(X, y, epochs=3, batch_size=16, optimizer="momentum", seed=9, progress=False)
    assert [b[0].shape[1] for b in seen] == [16, 16, 16, 2] * 3
    orders = []
    for e in range(3):
        Xe = np.concatenate([b[0] for b in seen[4 * e : 4 * e + 4]], axis=1)
        # each epoch is a permutation of all m columns, with Y gathered alongside
        order = [int(np.flatnonzero((X == Xe[:, [j]]).all(axis=0))[0]) for j in range(50)]
        assert sorted(order) == list(range(50))
        Ye = np.concatenate([b[1] for b in seen[4 * e : 4 * e + 4]], axis=1)
        np.testing.assert_array_equal(np.argmax(Ye, axis=0), y[order])
        orders.append(order)
    assert orders[0] != orders[1] != orders[2]
    # the host RNG's permutation, cut into batches, each batch's examples in order
    first = np.random.default_rng(9).permutation(50)
    assert orders[0] == [int(j) for start in range(0, 50, 16)
                         for j in np.sort(first[start:start + 16])]


def test_full_batch_is_one_step_per_epoch(monkeypatch):
    X, Y = _binary(30)
    seen = _record_batches(monkeypatch)
    net = dn.DeepNet([5, 3, 1], dtype="float64", backend="numpy")
    net.fit(X, Y, epochs=4, batch_size=None, progress=False)
    net.fit(X, Y, epochs=2, batch_size=30, progress=False)  # batch ≥ m: the same
    assert len(seen) == 6
    for Xb, _ in seen:
        np.testing.assert_array_equal(Xb, X)


def test_cost_is_read_back_once_per_epoch(monkeypatch):
    calls = []
    real = loop.to_numpy

    def counting(x):
        calls.append(tuple(x.shape))
        return real(x)

    monkeypatch.setattr(loop, "to_numpy", counting)
    X, y = _blobs(64)
    net = dn.DeepNet([4, 6, 3], output="softmax", backend="numpy")
    net.fit(X, y, epochs=5, batch_size=8, validation=(X[:, :10], y[:10]), progress=False)
    assert len(calls) == 5  # 8 batches per epoch, one read per epoch


def test_epoch_cost_is_the_size_weighted_mean_of_batch_costs(monkeypatch):
    X, y = _blobs(20, seed=5)
    costs, sizes = [], []
    real = loop.step

    def spy(net, parts, optimizer, m, **kwargs):
        J, value = real(net, parts, optimizer, m, **kwargs)
        costs.append(float(J))
        sizes.append(m)
        return J, value

    monkeypatch.setattr(loop, "step", spy)
    net = dn.DeepNet([4, 3], output="softmax", dtype="float64", backend="numpy")
    history = net.fit(X, y, epochs=1, batch_size=8, progress=False)
    assert sizes == [8, 8, 4]
    assert history.cost[0] == pytest.approx(np.dot(costs, sizes) / 20, rel=1e-12)


# -- reproducibility ---------------------------------------------------------------------

CONFIG = {"epochs": 4, "batch_size": 16, "optimizer": "adam", "learning_rate": 0.01,
          "seed": 5}


def _train(backend, dtype_name, **overrides):
    X, y = _blobs(70, n0=6, seed=11)
    net = dn.DeepNet([6, 8, 5, 3], output="softmax", dtype=dtype_name, seed=3,
                     keep_prob=overrides.pop("keep_prob", 1.0), backend=backend)
    kwargs = {**CONFIG, **overrides}
    history = net.fit(X, y, progress=False, **kwargs)
    return net, history


def test_same_seed_same_parameters():
    a, ha = _train("numpy", "float64", keep_prob=0.8, validation=0.2)
    b, hb = _train("numpy", "float64", keep_prob=0.8, validation=0.2)
    for k, v in a.params.items():
        np.testing.assert_array_equal(dn.to_numpy(v), dn.to_numpy(b.params[k]))
    assert ha.cost == hb.cost and ha.val_cost == hb.val_cost
    c, _ = _train("numpy", "float64", keep_prob=0.8, validation=0.2, seed=6)
    assert not np.array_equal(dn.to_numpy(a.params["W1"]), dn.to_numpy(c.params["W1"]))


@pytest.mark.parametrize("optimizer", ["adam", "momentum"])
def test_same_parameters_on_every_backend(backend, dtype_name, optimizer):
    tol = 1e-9 if dtype_name == "float64" else 1e-4
    ref, href = _train("numpy", dtype_name, optimizer=optimizer, validation=0.2)
    net, history = _train(backend, dtype_name, optimizer=optimizer, validation=0.2)
    for k, v in net.params.items():
        got = assert_on_backend(v, backend, ref.params[k].shape, dtype_name)
        np.testing.assert_allclose(got, dn.to_numpy(ref.params[k]), rtol=tol, atol=tol)
    np.testing.assert_allclose(history.cost, href.cost, rtol=tol, atol=tol)
    np.testing.assert_allclose(history.val_accuracy, href.val_accuracy, atol=1e-12)


# -- history and validation ---------------------------------------------------------------


def test_history_fields_and_validation_pair(monkeypatch):
    X, y = _blobs(80, seed=2)
    hits = []  # the oracle of the running accuracy: each batch before its update
    real = loop.step

    def spy(net, parts, optimizer, m, **kwargs):
        for Xb, Yb, _ in parts:
            AL, _ = net._forward(Xb)
            hits.append(int(np.sum(np.argmax(dn.to_numpy(AL), 0) ==
                                   np.argmax(dn.to_numpy(Yb), 0))))
        return real(net, parts, optimizer, m, **kwargs)

    monkeypatch.setattr(loop, "step", spy)
    Xv, yv = _blobs(30, seed=3)
    net = dn.DeepNet([4, 6, 3], output="softmax", dtype="float64", backend="numpy")
    schedule = optimizers.Step(drop=0.5, every=2)
    history = net.fit(X, y, epochs=5, batch_size=32,
                      optimizer=optimizers.Momentum(learning_rate=0.2, schedule=schedule),
                      validation=(Xv, yv), progress=False)
    assert isinstance(history, dn.History) and net.history is history
    for name in ("cost", "val_cost", "accuracy", "val_accuracy", "time", "learning_rate"):
        assert len(getattr(history, name)) == 5, name
    assert history.learning_rate == [0.2, 0.2, 0.1, 0.1, 0.05]
    assert all(t > 0 for t in history.time)
    AL = net.predict_proba(Xv)
    assert history.val_cost[-1] == pytest.approx(net.cost(AL, yv), rel=1e-12)
    assert history.val_accuracy[-1] == pytest.approx(
        np.mean(dn.to_numpy(net.predict(Xv)) == yv), abs=1e-12)
    assert history.accuracy[-1] == pytest.approx(sum(hits[-3:]) / 80, abs=1e-12)
    assert history.mse == history.val_mse == []
    assert history.monitor == "val_cost"
    assert history.best_epoch == int(np.argmin(history.val_cost))
    assert not history.stopped_early
    assert dn.History.from_dict(history.to_dict()) == history


def test_linear_output_reports_the_mean_squared_error():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 40))
    Y = np.concatenate([X[:1] - 2 * X[1:2], X[2:] ** 2])
    net = dn.DeepNet([3, 4, 2], output="linear", backend="numpy", dtype="float64")
    history = net.fit(X, Y, epochs=3, learning_rate=0.05, validation=(X[:, :9], Y[:, :9]),
                      progress=False)
    assert len(history.cost) == len(history.val_cost) == len(history.mse) == 3
    assert history.accuracy == [] and history.val_accuracy == []
    AL = dn.to_numpy(net.predict_proba(X[:, :9]))
    assert history.val_mse[-1] == pytest.approx(np.mean((AL - Y[:, :9]) ** 2), rel=1e-12)
    # full batch with plain GD: the epoch's mse is the step's, before its update
    AL0 = dn.to_numpy(net.predict_proba(X))
    again = net.fit(X, Y, epochs=1, batch_size=None, optimizer="gd", progress=False)
    assert again.mse[0] == pytest.approx(np.mean((AL0 - Y) ** 2), rel=1e-12)


def test_validation_fraction_is_held_out(monkeypatch):
    X, Y = _binary(40)
    seen = _record_batches(monkeypatch)
    net = dn.DeepNet([5, 3, 1], dtype="float64", backend="numpy")
    history = net.fit(X, Y, epochs=2, validation=0.25, seed=1, progress=False)
    assert [b[0].shape[1] for b in seen] == [30, 30]
    train_cols = {tuple(c) for c in seen[0][0].T}
    held = [j for j in range(40) if tuple(X[:, j]) not in train_cols]
    assert len(held) == 10
    assert history.val_cost[-1] == pytest.approx(
        net.cost(net.predict_proba(X[:, held]), Y[:, held]), rel=1e-12)
    assert len(history.val_accuracy) == 2


@pytest.mark.parametrize("bad", [0.0, 1.0, 1.5, -0.2, "0.1", (1,), True])
def test_bad_validation_is_refused(bad):
    X, Y = _binary(20)
    net = dn.DeepNet([5, 3, 1], backend="numpy")
    with pytest.raises(dn.InputError, match="validation"):
        net.fit(X, Y, epochs=1, validation=bad, progress=False)


def test_validation_fraction_must_leave_examples_on_both_sides():
    X, Y = _binary(3)
    net = dn.DeepNet([5, 3, 1], backend="numpy")
    with pytest.raises(dn.InputError, match="leaves 0 for validation"):
        net.fit(X, Y, epochs=1, validation=0.1, progress=False)


# -- argument checks before any work ------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"epochs": 0}, dn.InputError, "epochs must be a positive integer"),
        ({"epochs": 2.5}, dn.InputError, "epochs must be a positive integer"),
        ({"epochs": True}, dn.InputError, "epochs must be a positive integer"),
        ({"batch_size": 0}, dn.InputError, "batch_size must be a positive integer"),
        ({"learning_rate": 0.0}, dn.InputError, "learning_rate must be >"),
        ({"learning_rate": float("nan")}, dn.InputError, "learning_rate must be a finite"),
        ({"optimizer": "sgd"}, dn.InputError, "unknown optimizer 'sgd'"),
        ({"optimizer": 3}, dn.InputError, "optimizer must be a name"),
        ({"early_stopping": "yes"}, dn.InputError, "early_stopping must be"),
        ({"early_stopping": dn.EarlyStopping(monitor="val_cost")}, dn.InputError,
         "no validation data"),
        ({"callbacks": [1]}, dn.InputError, "callbacks\\[0\\] must be callable"),
        ({"progress": "yes"}, dn.InputError, "progress must be"),
        ({"seed": -1}, dn.InputError, "seed must be >= 0"),
        ({"X": np.zeros((4, 20))}, dn.ShapeError, "X must have shape"),
        ({"Y": np.zeros((1, 19))}, dn.ShapeError, "Y must hold 0/1 labels"),
        ({"X": np.full((5, 20), np.nan)}, dn.InputError, "X must be finite"),
        ({"validation": (np.zeros((5, 4)), np.zeros((1, 3)))}, dn.ShapeError, "Y_val"),
    ],
)
def test_bad_arguments_are_refused_before_any_work(kwargs, error, match):
    X, Y = _binary(20)
    net = dn.DeepNet([5, 3, 1], backend="numpy")
    before = _host_params(net)
    args = {"X": X, "Y": Y, "epochs": 3, "progress": False, **kwargs}
    with pytest.raises(error, match=match):
        net.fit(args.pop("X"), args.pop("Y"), args.pop("epochs"), **args)
    for k, v in before.items():
        np.testing.assert_array_equal(dn.to_numpy(net.params[k]), v)
    assert net.history is None


def test_early_stopping_arguments_are_checked():
    with pytest.raises(dn.InputError, match="patience must be a positive integer"):
        dn.EarlyStopping(patience=0)
    with pytest.raises(dn.InputError, match="min_delta must be >="):
        dn.EarlyStopping(min_delta=-1.0)
    with pytest.raises(dn.InputError, match="monitor must be one of"):
        dn.EarlyStopping(monitor="loss")
    rng = np.random.default_rng(0)
    net = dn.DeepNet([2, 1], output="linear", backend="numpy")
    with pytest.raises(dn.InputError, match="this network reports 'mse'"):
        net.fit(rng.standard_normal((2, 8)), rng.standard_normal((1, 8)), epochs=2,
                early_stopping=dn.EarlyStopping(monitor="accuracy"), progress=False)
    with pytest.raises(dn.InputError, match="train_metrics=False"):
        net.fit(rng.standard_normal((2, 8)), rng.standard_normal((1, 8)), epochs=2,
                early_stopping=dn.EarlyStopping(monitor="mse"), train_metrics=False,
                progress=False)
    classifier = dn.DeepNet([2, 1], backend="numpy")
    with pytest.raises(dn.InputError, match="this network reports 'accuracy'"):
        classifier.fit(rng.standard_normal((2, 8)), np.ones((1, 8)), epochs=2,
                       validation=0.5, early_stopping=dn.EarlyStopping(monitor="val_mse"),
                       progress=False)


# -- early stopping ------------------------------------------------------------------------


def test_early_stopping_restores_the_best_epoch(backend):
    X, Y = _binary(60, seed=3)
    kwargs = {"optimizer": "adam", "learning_rate": 0.05, "batch_size": 20, "seed": 4,
              "progress": False}
    # validating on flipped labels: the better the fit, the worse the validation cost
    net = dn.DeepNet([5, 8, 1], dtype="float64", seed=1, backend=backend)
    history = net.fit(X, Y, epochs=50, validation=(X, 1.0 - Y),
                      early_stopping=dn.EarlyStopping(patience=3), **kwargs)
    assert history.stopped_early and history.best_epoch == 0 and history.epochs == 4
    once = dn.DeepNet([5, 8, 1], dtype="float64", seed=1, backend=backend)
    once.fit(X, Y, epochs=1, **kwargs)
    for k, v in net.params.items():
        np.testing.assert_allclose(dn.to_numpy(v), dn.to_numpy(once.params[k]), rtol=1e-12)


def test_early_stopping_keeps_the_minimum_of_the_monitored_cost():
    X, Y = _binary(80, seed=5)
    Xv, Yv = _binary(80, seed=6)
    net = dn.DeepNet([5, 32, 32, 1], dtype="float64", seed=2, backend="numpy")
    history = net.fit(X, Y, epochs=300, optimizer="adam", learning_rate=0.02,
                      batch_size=16, validation=(Xv, Yv), seed=0, progress=False,
                      early_stopping=5)
    best = history.best_epoch
    assert history.stopped_early and history.epochs == best + 6
    assert history.val_cost[best] == min(history.val_cost)
    assert 0 < best
    restored = net.cost(net.predict_proba(Xv), Yv)
    assert restored == pytest.approx(history.val_cost[best], rel=1e-12)
    assert restored < history.val_cost[-1]


def test_min_delta_counts_small_gains_as_none():
    X, Y = _binary(40)
    kwargs = {"optimizer": "gd", "learning_rate": 0.1, "progress": False}
    net = dn.DeepNet([5, 3, 1], dtype="float64", backend="numpy")
    history = net.fit(X, Y, epochs=20, early_stopping=dn.EarlyStopping(2, min_delta=1e9),
                      **kwargs)
    assert history.epochs == 3 and history.best_epoch == 0 and history.monitor == "cost"
    assert history.cost[2] < history.cost[0]  # it did improve, by less than min_delta
    once = dn.DeepNet([5, 3, 1], dtype="float64", backend="numpy")
    once.fit(X, Y, epochs=1, **kwargs)
    for k, v in net.params.items():
        np.testing.assert_array_equal(dn.to_numpy(v), dn.to_numpy(once.params[k]))


# -- callbacks -----------------------------------------------------------------------------


def test_callbacks_see_each_epoch_and_can_stop():
    X, Y = _binary(30)
    calls = []

    def watch(net, epoch, logs):
        calls.append((epoch, dict(logs)))
        return None

    def stop_after_three(net, epoch, logs):
        return epoch < 2

    net = dn.DeepNet([5, 3, 1], backend="numpy")
    history = net.fit(X, Y, epochs=10, validation=0.2, callbacks=[watch, stop_after_three],
                      progress=False)
    assert [c[0] for c in calls] == [0, 1, 2]
    assert history.epochs == 3 and history.stopped_early
    logs = calls[1][1]
    assert set(logs) >= {"cost", "val_cost", "accuracy", "val_accuracy", "time",
                         "learning_rate"}
    assert logs["cost"] == history.cost[1] and logs["val_cost"] == history.val_cost[1]


def test_stop_training_from_a_callback():
    X, Y = _binary(30)

    def stop(net, epoch, logs):
        if epoch == 1:
            raise dn.StopTraining

    net = dn.DeepNet([5, 3, 1], backend="numpy")
    history = net.fit(X, Y, epochs=10, callbacks=stop, progress=False)
    assert history.epochs == 2 and history.stopped_early


# -- divergence and interruption ---------------------------------------------------------


def test_absurd_learning_rate_raises_divergence_with_finite_parameters(backend):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 50))
    Y = rng.standard_normal((1, 50))
    net = dn.DeepNet([3, 4, 1], output="linear", dtype="float64", seed=0, backend=backend)
    with pytest.raises(dn.DivergenceError, match=r"diverged in epoch \d+ of 500") as info:
        net.fit(X, Y, epochs=500, batch_size=None, optimizer="gd", learning_rate=10.0,
                progress=False)
    assert "smaller learning rate" in str(info.value)
    done = net.history.epochs
    assert 0 < done < 500 and all(np.isfinite(net.history.cost))
    again = dn.DeepNet([3, 4, 1], output="linear", dtype="float64", seed=0, backend=backend)
    again.fit(X, Y, epochs=done, batch_size=None, optimizer="gd", learning_rate=10.0,
              progress=False)
    for k, v in net.params.items():
        got = assert_on_backend(v, backend, dtype_name="float64")
        assert np.all(np.isfinite(got))
        np.testing.assert_array_equal(got, dn.to_numpy(again.params[k]))


def test_divergence_in_the_first_epoch_puts_back_the_initial_parameters():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3, 20)) * 1e3
    Y = rng.standard_normal((1, 20))
    net = dn.DeepNet([3, 64, 64, 1], output="linear", dtype="float32", seed=0,
                     backend="numpy")
    before = _host_params(net)
    with pytest.raises(dn.DivergenceError, match=r"epoch 1 of 3.*initial parameters"):
        net.fit(X, Y, epochs=3, batch_size=2, optimizer="gd", learning_rate=1e6,
                progress=False)
    assert net.history is None  # no epoch completed: the history it had before
    for k, v in before.items():
        np.testing.assert_array_equal(dn.to_numpy(net.params[k]), v)


def test_keyboard_interrupt_in_a_callback_keeps_the_completed_epochs(backend):
    X, y = _blobs(40, seed=8)

    def interrupt(net, epoch, logs):
        if epoch == 2:
            raise KeyboardInterrupt

    kwargs = {"batch_size": 16, "optimizer": "adam", "learning_rate": 0.01, "seed": 2,
              "progress": False}
    net = dn.DeepNet([4, 5, 3], output="softmax", dtype="float64", backend=backend)
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, y, epochs=10, callbacks=[interrupt], **kwargs)
    assert net.history.epochs == 3
    ref = dn.DeepNet([4, 5, 3], output="softmax", dtype="float64", backend=backend)
    ref.fit(X, y, epochs=3, **kwargs)
    for k, v in net.params.items():
        np.testing.assert_array_equal(dn.to_numpy(v), dn.to_numpy(ref.params[k]))
    assert net.history.cost == ref.history.cost


def test_keyboard_interrupt_mid_epoch_puts_back_the_last_completed_epoch(monkeypatch):
    X, y = _blobs(40, seed=8)
    kwargs = {"batch_size": 8, "optimizer": "momentum", "learning_rate": 0.1, "seed": 2,
              "progress": False}
    ref = dn.DeepNet([4, 5, 3], output="softmax", dtype="float64", backend="numpy")
    ref.fit(X, y, epochs=2, **kwargs)
    real = loop.step
    steps = []

    def interrupted(net, parts, optimizer, m, **kw):
        result = real(net, parts, optimizer, m, **kw)  # the update happened: params moved
        steps.append(1)
        if len(steps) == 13:  # third batch of the third epoch (5 batches per epoch)
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(loop, "step", interrupted)
    net = dn.DeepNet([4, 5, 3], output="softmax", dtype="float64", backend="numpy")
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, y, epochs=10, **kwargs)
    assert net.history.epochs == 2
    for k, v in net.params.items():
        np.testing.assert_array_equal(dn.to_numpy(v), dn.to_numpy(ref.params[k]))


# -- progress --------------------------------------------------------------------------------


def test_progress_bar_only_when_asked_and_nothing_else_printed(capsys):
    X, Y = _binary(30)
    net = dn.DeepNet([5, 3, 1], backend="numpy")
    net.fit(X, Y, epochs=3, progress=False)
    net.fit(X, Y, epochs=3)  # auto: stderr is not a terminal under pytest
    out, err = capsys.readouterr()
    assert out == "" and err == ""
    net.fit(X, Y, epochs=3, progress=True, validation=0.2)
    out, err = capsys.readouterr()
    assert out == ""
    assert "3/3" in err and "epoch" in err and "cost=" in err and "val_cost=" in err


def test_fit_function_and_method_agree():
    X, Y = _binary(30)
    a = dn.DeepNet([5, 3, 1], backend="numpy")
    b = dn.DeepNet([5, 3, 1], backend="numpy")
    ha = a.fit(X, Y, 3, 10, "rmsprop", 0.01, seed=1, progress=False)
    hb = dn.fit(b, X, Y, epochs=3, batch_size=10, optimizer="rmsprop", learning_rate=0.01,
                seed=1, progress=False)
    assert ha.cost == hb.cost
    with pytest.raises(dn.InputError, match=r"fit needs a deepnet\.DeepNet"):
        dn.fit("net", X, Y, 1)


def test_the_cheap_finiteness_flag_is_settled_exactly_when_a_sum_overflows(backend):
    """The per-epoch flag sums each parameter; an overflow of finite values is not NaN."""
    from deepnet.loop import all_finite as _all_finite
    from deepnet.loop import exactly_finite as _exactly_finite

    xp = backend.xp
    big = {"W1": backend.asarray(np.full((2, 2), 3e38), backend.dtype("float32"))}
    with backend.quiet_float_errors():  # fit computes the flag in this context too
        flag = bool(_all_finite(big, xp))
    assert _exactly_finite(big, xp)  # every value is finite, whatever the sum said
    if not flag:  # the sum overflowed: check that it really does in float32
        with np.errstate(over="ignore"):
            assert dn.to_numpy(big["W1"]).sum(dtype=np.float32) == np.inf
    bad = {"W1": backend.asarray(np.array([[1.0, np.nan]]), backend.dtype("float32"))}
    assert not bool(_all_finite(bad, xp)) and not _exactly_finite(bad, xp)


def test_epoch_snapshots_reuse_their_buffers_and_still_restore_the_best(backend):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2, 40))
    Y = (X[:1] > 0).astype(float)
    net = dn.DeepNet([2, 4, 1], backend=backend, dtype="float64", seed=1)
    seen = []

    def record(net, epoch, logs):
        seen.append({k: dn.to_numpy(v).copy() for k, v in net.params.items()})

    history = net.fit(X, Y, epochs=8, optimizer="gd", learning_rate=5.0, progress=False,
                      early_stopping=dn.EarlyStopping(patience=8), callbacks=[record])
    best = seen[history.best_epoch]
    for key, value in net.params.items():
        np.testing.assert_array_equal(dn.to_numpy(value), best[key])


# -- what a failed fit leaves ----------------------------------------------------------------


def test_a_failed_fit_leaves_history_and_rngs_as_after_the_last_completed_epoch(
        backend, monkeypatch):
    X, y = _blobs(40, seed=8)
    kwargs = {"batch_size": 8, "optimizer": "adam", "learning_rate": 0.01, "progress": False}

    def make():
        return dn.DeepNet([4, 5, 3], output="softmax", dtype="float64", backend=backend,
                          keep_prob=0.7, seed=2)

    net = make()
    first = net.fit(X, y, epochs=2, **kwargs)
    after_two = net._rng.bit_generator.state

    def boom(net, epoch, logs):
        raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError, match="callback failed"):  # after epoch 1 completed
        net.fit(X, y, epochs=3, callbacks=[boom], **kwargs)
    assert net.history.epochs == 1  # the epoch that completed before the callback raised

    twin = make()
    twin.fit(X, y, epochs=2, **kwargs)
    assert twin._rng.bit_generator.state == after_two
    real, calls = loop.step, []

    def failing(*args, **kw):  # the third step of the next fit's first epoch fails
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(loop, "step", failing)
    with pytest.raises(KeyboardInterrupt):
        twin.fit(X, y, epochs=3, seed=None, **kwargs)
    assert twin.history.cost == first.cost  # no epoch completed: the history it had
    assert twin._rng.bit_generator.state == after_two  # the failed epoch's draws undone


def test_validation_data_that_overflows_is_reported_not_early_stopped():
    X, y = _blobs(40, seed=8)
    net = dn.DeepNet([4, 5, 3], output="softmax", dtype="float32", backend="numpy")
    huge = X[:, :10] * 5e37  # finite in float32, but the activations overflow
    with pytest.raises(dn.DivergenceError, match=r"validation cost became .*X_val far "
                       r"larger than X"):
        net.fit(X, y, epochs=5, validation=(huge, y[:10]), early_stopping=2,
                progress=False)
    assert net.history is None


def test_divergence_advice_names_the_real_cause():
    X, y = _blobs(40, seed=8)
    net = dn.DeepNet([4, 5, 3], output="softmax", l2=1e308, backend="numpy")
    with pytest.raises(dn.DivergenceError, match=r"l2 = 1e\+308 is too large"):
        net.fit(X, y, epochs=2, progress=False)
    poisoned = dn.DeepNet([4, 5, 3], output="softmax", backend="numpy")
    poisoned.params["W1"][0, 0] = np.nan  # an in-place write skips the checks
    with pytest.raises(dn.InputError, match="hold NaN or inf before training"):
        poisoned.fit(X, y, epochs=2, progress=False)


def test_a_fit_too_large_for_memory_is_refused_before_any_copy(monkeypatch):
    from deepnet import memory

    X, y = _blobs(400, seed=1)
    net = dn.DeepNet([4, 64, 3], output="softmax", backend="numpy")
    before = {k: dn.to_numpy(v).copy() for k, v in net.params.items()}
    monkeypatch.setattr(memory, "available_host_memory", lambda: 200_000)  # bytes
    with pytest.raises(dn.InputError, match=r"use smaller batches, or pass X as a memory"):
        net.fit(X, y, epochs=1, batch_size=None, progress=False)
    assert net.history is None
    for k, v in net.params.items():
        np.testing.assert_array_equal(dn.to_numpy(v), before[k])
    net.fit(X, y, epochs=1, batch_size=8, progress=False)  # small batches fit
