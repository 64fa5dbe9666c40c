"""A training step never reads a value back to the host and never copies one in.

On a GPU each device-to-host read (``float(x)``, ``bool(x)``, a boolean mask whose count
sizes the result) waits for every queued kernel, and each host-to-device copy of a fresh
array (a dropout mask drawn on the host, a Python scalar that array-api-compat turns
into a tensor) is a transfer and, on torch, a synchronization. CPU tests cannot see
either, so here the arrays themselves refuse them inside ``train_step``:

- ``fake_cupy``: deepnet's CuPy backend on ``tests/fake_cupy.py`` (NumPy underneath,
  array-api-compat's CuPy wrappers on top, its generic ``clip`` included), the arrays
  refusing every host read and host copy while trapped;
- ``array_api_strict`` on both of its devices and ``torch`` (CPU), with their array
  classes' conversions, boolean-mask indexing and host-data constructors patched to
  raise while trapped. NumPy's own arrays cannot be patched; the stand-in runs the same
  kernels on NumPy;
- on a GPU machine, ``torch:cuda`` (the patches and ``torch.cuda.set_sync_debug_mode``)
  and ``cupy`` (``cupyx.allow_synchronize(False)``), where they are selected.

Then the copies are counted on array-api-strict's ``device1`` (a GPU stand-in):
zero per step once the data is on the device, dropout included.
"""

from __future__ import annotations

import contextlib
import itertools

import fake_cupy
import numpy as np
import pytest
from conftest import load_backend, selected_backends

import deepnet as dn
from deepnet import losses, optimizers
from deepnet.step import train_step

HIDDEN = ["relu", "leaky_relu", "tanh", "sigmoid", "linear"]  # one network, all of them
DIMS = [4, 6, 5, 6, 5, 6, 3]
OUTPUTS = ["sigmoid", "softmax", "linear"]
OPTIMIZERS = ["gd", "momentum", "rmsprop", "adam"]


class Trapped(AssertionError):
    """A host read or host copy inside the trapped block (array_api_strict, torch)."""


def _data(output: str, m: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((DIMS[0], m))
    if output == "softmax":
        Y = rng.integers(0, DIMS[-1], size=m)
    elif output == "sigmoid":
        Y = (rng.random((DIMS[-1], m)) > 0.5).astype(float)
    else:
        Y = rng.standard_normal((DIMS[-1], m))
    return X, Y


# -- the traps -----------------------------------------------------------------------------


def _refuse(what: str):
    def refuse(*args, **kwargs):
        raise Trapped(f"{what} inside the training step")

    return refuse


def _mask_guard(original, is_mask, what: str):
    def guarded(self, key, *rest):
        keys = key if isinstance(key, tuple) else (key,)
        if any(is_mask(k) for k in keys):
            raise Trapped(f"boolean-mask {what} inside the training step")
        return original(self, key, *rest)

    return guarded


@contextlib.contextmanager
def _strict_trap():
    import array_api_strict as xp

    Array = xp._array_object.Array

    def is_mask(k):
        return isinstance(k, Array) and k.dtype == xp.bool and k.ndim > 0

    with pytest.MonkeyPatch.context() as mp:
        for name in ("__bool__", "__float__", "__int__", "__index__", "__complex__",
                     "__array__", "__dlpack__", "to_device"):
            mp.setattr(Array, name, _refuse(f"Array.{name}"))
        mp.setattr(Array, "__getitem__", _mask_guard(Array.__getitem__, is_mask, "indexing"))
        mp.setattr(Array, "__setitem__", _mask_guard(Array.__setitem__, is_mask, "assignment"))
        original = xp.asarray

        def asarray(obj, /, **kwargs):
            if not isinstance(obj, Array):
                raise Trapped(f"asarray of a {type(obj).__name__} (a host-to-device copy)")
            return original(obj, **kwargs)

        mp.setattr(xp, "asarray", asarray)
        yield


@contextlib.contextmanager
def _torch_trap():
    import torch

    def is_mask(k):
        return isinstance(k, torch.Tensor) and k.dtype == torch.bool and k.ndim > 0

    with pytest.MonkeyPatch.context() as mp:
        for name in ("__bool__", "__float__", "__int__", "__index__", "__complex__",
                     "__array__", "item", "tolist", "numpy", "cpu"):
            mp.setattr(torch.Tensor, name, _refuse(f"Tensor.{name}"))
        mp.setattr(torch.Tensor, "__getitem__",
                   _mask_guard(torch.Tensor.__getitem__, is_mask, "indexing"))
        mp.setattr(torch.Tensor, "__setitem__",
                   _mask_guard(torch.Tensor.__setitem__, is_mask, "assignment"))
        # a tensor from host data: on CUDA a copy in and a stream synchronization
        for name in ("asarray", "tensor", "as_tensor", "from_numpy"):
            mp.setattr(torch, name, _refuse(f"torch.{name}"))
        yield


@contextlib.contextmanager
def _torch_cuda_trap():
    """The patched torch traps, and CUDA's own: any synchronizing call raises."""
    import torch

    with _torch_trap():
        torch.cuda.set_sync_debug_mode("error")
        try:
            yield
        finally:
            torch.cuda.set_sync_debug_mode(0)


@contextlib.contextmanager
def _cupy_trap():
    """CuPy's own detector: a device synchronization raises ``DeviceSynchronized``."""
    import cupyx

    with cupyx.allow_synchronize(False):
        yield


# the real GPU backends join where they are selected (collected only where they run)
TRAPS = ["fake_cupy", "array_api_strict", "array_api_strict:device1", "torch"] + [
    g for g in ("torch:cuda", "cupy") if g in selected_backends()
]
GPU_TRAPS = {"torch:cuda": _torch_cuda_trap, "cupy": _cupy_trap}


@pytest.fixture(params=TRAPS)
def trapped(request):
    """``(backend, trap)``: a backend and a context that makes its arrays refuse host
    reads and host copies."""
    kind = request.param
    if kind == "fake_cupy":
        with fake_cupy.installed() as fake:
            yield dn.get_backend("cupy"), fake.trapping
        return
    if kind not in selected_backends():
        pytest.skip(f"{kind} not selected by DEEPNET_TEST_BACKENDS")
    backend = load_backend(kind)
    yield backend, GPU_TRAPS.get(kind, _torch_trap if kind == "torch" else _strict_trap)


def _steps(backend, trap, output, opt_name, keep_prob, l2, reuse, steps=2):
    net = dn.DeepNet(DIMS, hidden=HIDDEN, output=output, l2=l2, keep_prob=keep_prob,
                     dtype="float64", seed=1, backend=backend, reuse_buffers=reuse)
    X, Y = _data(output, 7)
    Xd, Yd = net._check_X(X), net._check_Y(Y, 7)
    opt = optimizers.get(opt_name, 0.01)
    costs = []
    for _ in range(steps):
        with trap():
            costs.append(train_step(net, Xd, Yd, opt))
    return net, costs


@pytest.mark.parametrize(("output", "opt_name", "keep_prob", "l2", "reuse"), list(
    itertools.product(OUTPUTS, OPTIMIZERS, [1.0, 0.7], [0.0, 0.1], [True, False])
))
def test_a_training_step_never_touches_the_host(trapped, output, opt_name, keep_prob, l2,
                                                reuse):
    backend, trap = trapped
    net, costs = _steps(backend, trap, output, opt_name, keep_prob, l2, reuse)
    # the same step, untrapped, on NumPy: the trapped arrays computed the real thing
    ref, ref_costs = _steps("numpy", contextlib.nullcontext, output, opt_name, keep_prob,
                            l2, reuse)
    np.testing.assert_allclose([dn.to_numpy(J) for J in costs], ref_costs, rtol=1e-12)
    for key, value in ref.params.items():
        np.testing.assert_allclose(dn.to_numpy(net.params[key]), dn.to_numpy(value),
                                   rtol=1e-11, atol=1e-13)


def _clip_bce(ZL, Y):
    """bce_from_logits as it was before: ``xp.clip`` for ``max(z, 0)``."""
    xp = dn.backend.array_namespace(ZL, Y)
    loss = xp.clip(ZL, 0.0, None) - ZL * Y + xp.log1p(xp.exp(-xp.abs(ZL)))
    return xp.sum(loss) / ZL.shape[1]


def test_the_stand_in_catches_the_generic_clip():
    """Put ``xp.clip`` back into the BCE and the trapped step fails on the CuPy stand-in
    (and only there: NumPy's and torch's ``clip`` are native)."""
    with fake_cupy.installed() as fake:
        backend = dn.get_backend("cupy")
        net = dn.DeepNet(DIMS, hidden=HIDDEN, output="sigmoid", seed=1, backend=backend)
        net.loss = net.loss._replace(from_logits=_clip_bce)
        X, Y = _data("sigmoid", 7)
        Xd, Yd = net._check_X(X), net._check_Y(Y, 7)
        with pytest.raises(fake_cupy.HostSyncError), fake.trapping():
            train_step(net, Xd, Yd, optimizers.get("adam", 0.01))
        # the same loss outside the trap computes the right number
        assert float(_clip_bce(Xd[:3], Xd[:3] > 0)) == pytest.approx(
            float(losses.bce_from_logits(Xd[:3], dn.backend.array_namespace(Xd).astype(
                Xd[:3] > 0, Xd.dtype))), rel=1e-6)


def test_the_stand_in_refuses_host_reads_and_copies():
    """The traps are live: each kind of host traffic raises inside ``trapping()``."""
    with fake_cupy.installed() as fake:
        xp = dn.get_backend("cupy").xp
        x = xp.asarray(np.array([[1.0, -2.0]]))
        assert fake.h2d == 1
        attempts = [
            lambda: float(x[0, 0]), lambda: bool(x[0, 0]), lambda: int(x[0, 0]),
            lambda: x[x > 0], lambda: x.item(0), lambda: x.tolist(), lambda: x.get(),
            lambda: xp.asarray(np.ones(2)), lambda: xp.asarray(1.0),
            lambda: xp.clip(x, 0.0, None),  # array-api-compat's generic wrapper
        ]
        for attempt in attempts:
            with pytest.raises(fake_cupy.HostSyncError), fake.trapping():
                attempt()
        with pytest.raises(TypeError, match="Implicit conversion"):
            np.asarray(x)


@pytest.mark.parametrize("trap", [_strict_trap, _torch_trap])
def test_the_patched_traps_are_live(trap):
    name = "array_api_strict:device1" if trap is _strict_trap else "torch"
    if name not in selected_backends():
        pytest.skip(f"{name} not selected by DEEPNET_TEST_BACKENDS")
    backend = load_backend(name)
    x = backend.asarray(np.array([[1.0, -2.0]]))
    for attempt in (lambda: float(x[0, 0]), lambda: bool(x[0, 0] > 0), lambda: x[x > 0],
                    lambda: backend.asarray(np.ones(2))):
        with pytest.raises(Trapped), trap():
            attempt()


@pytest.mark.parametrize("loss", ["bce_from_output", "ce_from_output", "mse",
                                  "bce_from_logits", "ce_from_logits"])
def test_every_cost_stays_on_the_device(loss):
    with fake_cupy.installed() as fake:
        backend = dn.get_backend("cupy")
        rng = np.random.default_rng(0)
        A = backend.asarray(rng.random((3, 5)))
        Y = backend.asarray((rng.random((3, 5)) > 0.5).astype(float))
        with fake.trapping():
            J = getattr(losses, loss)(A, Y)
        assert np.isfinite(float(J))


# -- host-to-device copies counted on array-api-strict's device1 ------------------------------


@pytest.fixture
def device1():
    if "array_api_strict:device1" not in selected_backends():
        pytest.skip("array_api_strict:device1 not selected by DEEPNET_TEST_BACKENDS")
    return load_backend("array_api_strict:device1")


@contextlib.contextmanager
def _copies_counted():
    """Counts host-to-device copies: ``asarray`` of anything but a device array, and
    ``to_device``."""
    import array_api_strict as xp

    Array = xp._array_object.Array
    counts = {"asarray": 0, "to_device": 0}
    original_asarray, original_to_device = xp.asarray, Array.to_device

    def asarray(obj, /, **kwargs):
        if not isinstance(obj, Array):
            counts["asarray"] += 1
        return original_asarray(obj, **kwargs)

    def to_device(self, device, /, **kwargs):
        counts["to_device"] += 1
        return original_to_device(self, device, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(xp, "asarray", asarray)
        mp.setattr(Array, "to_device", to_device)
        yield counts


def test_the_copy_counter_counts(device1):
    with _copies_counted() as counts:
        device1.asarray(np.ones((2, 3)))
        dn.to_numpy(device1.asarray(np.ones(2)))
    assert counts == {"asarray": 2, "to_device": 1}


@pytest.mark.parametrize(("output", "opt_name", "keep_prob"), list(
    itertools.product(OUTPUTS, OPTIMIZERS, [1.0, 0.5])
))
def test_no_host_to_device_copy_per_step(device1, output, opt_name, keep_prob):
    net = dn.DeepNet(DIMS, hidden=HIDDEN, output=output, l2=0.1, keep_prob=keep_prob,
                     seed=2, backend=device1)
    X, Y = _data(output, 9)
    with _copies_counted() as counts:
        Xd, Yd = net._check_X(X), net._check_Y(Y, 9)
        on_device = dict(counts)
        opt = optimizers.get(opt_name, 0.01)
        for _ in range(3):
            train_step(net, Xd, Yd, opt)
    assert on_device["asarray"] >= 1  # the data went in ...
    assert counts == on_device  # ... and nothing after it, in three steps


def test_host_drawn_dropout_would_be_counted(device1, monkeypatch):
    """The counter sees the old way of making masks: one copy per hidden layer and step."""
    def host_masks(self, X, offset, key):
        return [self.backend.asarray((self._rng.random((n, X.shape[1])) < self.keep_prob)
                                     / self.keep_prob, self.dtype)
                for n in self.layer_dims[1 : self.L]]

    monkeypatch.setattr(dn.model.Model, "_dropout_mask", host_masks)
    net = dn.DeepNet(DIMS, hidden=HIDDEN, keep_prob=0.5, seed=2, backend=device1)
    X, Y = _data("sigmoid", 9)
    Xd, Yd = net._check_X(X), net._check_Y(Y, 9)
    with _copies_counted() as counts:
        for _ in range(3):
            train_step(net, Xd, Yd, optimizers.get("gd", 0.01))
    assert counts["asarray"] == 3 * (len(DIMS) - 2)


def test_a_fits_host_traffic_does_not_grow_with_its_steps():
    """On the CuPy stand-in: host reads and copies per epoch are the same for 4 and for 20
    steps an epoch (a shuffle order in, the epoch's numbers out), dropout and L2 on."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 200))
    Y = (rng.random((1, 200)) > 0.5).astype(float)
    traffic = {}
    with fake_cupy.installed() as fake:
        for batch_size in (50, 10):
            for epochs in (1, 3):
                net = dn.DeepNet([5, 8, 8, 1], backend="cupy", keep_prob=0.8, l2=0.01)
                fake.h2d = fake.d2h = 0
                net.fit(X, Y, epochs=epochs, batch_size=batch_size, optimizer="adam",
                        progress=False)
                traffic[batch_size, epochs] = (fake.h2d, fake.d2h)
    assert traffic[50, 1] == traffic[10, 1] and traffic[50, 3] == traffic[10, 3]
    per_epoch = [(b - a) / 2 for a, b in zip(traffic[10, 1], traffic[10, 3])]
    assert all(n <= 2 for n in per_epoch), traffic
