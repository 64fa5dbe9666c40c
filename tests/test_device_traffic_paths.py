"""Host traffic of every path a GPU user runs, counted on the CuPy stand-in on device 1.

``tests/test_device_traffic.py`` traps a bare ``train_step``. Here the whole ``fit`` runs
(validation, early stopping, callbacks, checkpoints, every optimizer and schedule, the
held-out fraction, memory maps, ``train_metrics=False``, no buffers), and ``predict`` /
``evaluate`` and the scikit-learn estimators, on ``tests/fake_cupy.py`` with the network
on device 1 and device 0 current before each call (so a leak to device 0 fails too), and
the host reads and host copies are counted:

- per step: none, so the same fit with 5x the steps per epoch moves exactly as much;
- per epoch: a few (the shuffle order in, the epoch's numbers out, what a callback reads);
- per chunk of ``predict``/``evaluate``/the validation: none, so a pass in 20 chunks moves
  as much as one in 1 chunk;
- memory maps are streamed: each step copies its own batch in (X and Y), nothing more.
"""

from __future__ import annotations

import fake_cupy
import numpy as np
import pytest

import deepnet as dn
from deepnet import training

M = 200


@pytest.fixture
def fake():
    with fake_cupy.installed(n_devices=2) as f:
        yield f


def _data(output="sigmoid", m=M, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((5, m))
    if output == "softmax":
        return X, rng.integers(0, 3, size=m)
    if output == "linear":
        return X, rng.standard_normal((1, m))
    return X, (rng.random((1, m)) > 0.5).astype(float)


def _memmaps(tmp_path, X, Y):
    out = []
    for name, a in (("X", X), ("Y", Y)):
        mm = np.lib.format.open_memmap(tmp_path / f"{name}.npy", mode="w+", dtype=a.dtype,
                                       shape=a.shape)
        mm[...] = a
        mm.flush()
        out.append(np.load(tmp_path / f"{name}.npy", mmap_mode="r"))
    return out


def _traffic(fake, run, *args, **kwargs):
    """``(host-to-device copies, device-to-host reads)`` of ``run(*args, **kwargs)``."""
    fake.h2d = fake.d2h = 0
    fake._set_current(0)
    run(*args, **kwargs)
    assert fake.current() == 0  # the caller's device is current again
    return fake.h2d, fake.d2h


CASES = {
    "plain": ({}, {}),
    "validation": ({}, {"validation": "pair"}),
    "validation fraction": ({}, {"validation": 0.25}),
    "early stopping": ({}, {"validation": "pair", "early_stopping": 100}),
    "callback": ({}, {"callbacks": "noop"}),
    "checkpoint each epoch": ({}, {"callbacks": "save"}),
    "gd": ({}, {"optimizer": "gd"}),
    "momentum": ({}, {"optimizer": "momentum"}),
    "rmsprop": ({}, {"optimizer": "rmsprop"}),
    "inverse_time": ({}, {"schedule": "inverse_time"}),
    "exponential": ({}, {"schedule": "exponential"}),
    "step schedule": ({}, {"schedule": "step"}),
    "no train metrics": ({}, {"train_metrics": False}),
    "no prefetch": ({}, {"prefetch": False}),
    "no buffers": ({"reuse_buffers": False}, {}),
    "float32": ({"dtype": "float32"}, {}),
    "softmax": ({"output": "softmax"}, {}),
    "linear": ({"output": "linear"}, {}),
}


def _fit_kwargs(spec, tmp_path):
    kw = dict(spec)
    Xv, Yv = _data(seed=1, m=60)
    if kw.get("validation") == "pair":
        kw["validation"] = (Xv, Yv)
    if kw.get("callbacks") == "noop":
        kw["callbacks"] = [lambda net, epoch, logs: None]
    elif kw.get("callbacks") == "save":
        kw["callbacks"] = [lambda net, epoch, logs: net.save(tmp_path / "c.npz")]
    if "schedule" in kw:
        kw["optimizer"] = dn.optimizers.get("adam", 0.01)
        kw["optimizer"].schedule = dn.schedules.get_schedule(kw.pop("schedule"))
    return kw


@pytest.mark.parametrize("case", list(CASES))
def test_a_fits_traffic_does_not_grow_with_its_steps(fake, tmp_path, case, monkeypatch):
    net_kw, spec = CASES[case]
    monkeypatch.setattr(training, "EVAL_CHUNK", 7)  # the validation in several chunks
    X, Y = _data(net_kw.get("output", "sigmoid"))
    dims = [5, 8, 8, 3 if net_kw.get("output") == "softmax" else 1]
    traffic = {}
    for batch_size in (50, 10):
        for epochs in (1, 3):
            kw = _fit_kwargs(spec, tmp_path)  # a fresh optimizer object each time
            net = dn.DeepNet(dims, backend="cupy", device="1", keep_prob=0.8, l2=0.01,
                             seed=3, **net_kw)
            traffic[batch_size, epochs] = _traffic(
                fake, net.fit, X, Y, epochs=epochs, batch_size=batch_size, progress=False,
                **{"optimizer": "adam", **kw})
            assert net._flat._dev == 1
    assert traffic[50, 1] == traffic[10, 1], traffic  # 4 or 20 steps: the same traffic
    assert traffic[50, 3] == traffic[10, 3], traffic
    reads = (traffic[10, 3][1] - traffic[10, 1][1]) / 2
    copies = (traffic[10, 3][0] - traffic[10, 1][0]) / 2
    saves = len(net.params) + 1 if spec.get("callbacks") == "save" else 0
    assert copies <= 2 and reads <= 1 + saves, traffic  # per epoch


def test_streaming_copies_each_batch_in_once(fake, tmp_path):
    X, Y = _data()
    Xm, Ym = _memmaps(tmp_path, X, Y)
    traffic = {}
    for batch_size in (50, 10):
        net = dn.DeepNet([5, 8, 1], backend="cupy", device="1", keep_prob=0.8, seed=3)
        traffic[batch_size] = _traffic(fake, net.fit, Xm, Ym, epochs=2,
                                       batch_size=batch_size, progress=False)
    steps = {50: 2 * 4, 10: 2 * 20}
    extra = traffic[10][0] - traffic[50][0]
    assert extra == 2 * (steps[10] - steps[50]), traffic  # X's and Y's rows per step
    assert traffic[10][1] == traffic[50][1], traffic  # and no read back per step


@pytest.mark.parametrize("what", ["predict", "predict_proba", "evaluate"])
@pytest.mark.parametrize("subset", [False, True])
def test_inference_traffic_does_not_grow_with_its_chunks(fake, what, subset):
    X, Y = _data()
    net = dn.DeepNet([5, 8, 8, 1], backend="cupy", device="1", l2=0.01, seed=3)
    if subset:  # a device array in: no copy of the data at all
        X = net.xp.asarray(X, device=fake.Device(1))
        Y = net.xp.asarray(Y, device=fake.Device(1))
    traffic = {}
    for chunk in (M, 10):
        run = getattr(net, what)
        args = (X, Y) if what == "evaluate" else (X,)
        traffic[chunk] = _traffic(fake, run, *args, batch_size=chunk)
    assert traffic[M] == traffic[10], traffic


def test_a_held_out_validation_is_not_copied_per_chunk(fake, monkeypatch):
    """``validation=0.25`` holds out rows by index: the validation reads them through the
    index on the device, put there once a fit, not once per chunk and epoch."""
    X, Y = _data()
    traffic = {}
    for chunk in (M, 5):
        monkeypatch.setattr(training, "EVAL_CHUNK", chunk)
        net = dn.DeepNet([5, 8, 1], backend="cupy", device="1", seed=3)
        traffic[chunk] = _traffic(fake, net.fit, X, Y, epochs=3, batch_size=50,
                                  validation=0.25, progress=False)
    assert traffic[M] == traffic[5], traffic


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_the_estimators_traffic_does_not_grow_with_steps(fake, kind, early_stopping):
    pytest.importorskip("sklearn")
    from deepnet.sklearn import DeepNetClassifier, DeepNetRegressor

    rng = np.random.default_rng(0)
    X = rng.standard_normal((M, 5))
    y = (rng.random(M) > 0.5).astype(int) if kind == "classifier" else rng.standard_normal(M)
    Est = DeepNetClassifier if kind == "classifier" else DeepNetRegressor
    traffic = {}
    for batch_size in (50, 10):
        for epochs in (2, 4):
            est = Est(hidden_layer_sizes=(8,), backend="cupy", device="1", random_state=0,
                      batch_size=batch_size, epochs=epochs, n_iter_no_change=100,
                      early_stopping=early_stopping)
            traffic[batch_size, epochs] = _traffic(fake, est.fit, X, y)
    assert traffic[50, 2] == traffic[10, 2] and traffic[50, 4] == traffic[10, 4], traffic
    per_epoch = [(b - a) / 2 for a, b in zip(traffic[10, 2], traffic[10, 4])]
    assert per_epoch[0] <= 1 and per_epoch[1] <= 1, traffic
