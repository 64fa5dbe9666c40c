"""A fuzz of the public API: random bad arguments get deepnet's errors, and nothing else.

Each test takes one entry point, fills its arguments with valid values, swaps one to three
of them for a value drawn from ``JUNK`` (wrong types, None, negative, zero, huge, NaN and
infinite numbers, strings, nested lists, dicts with junk, arrays of wrong shapes and
dtypes, other libraries' and devices' arrays, objects whose conversion fails) or from a
near miss of the right value (an array of almost the right shape, a cache with one entry
damaged, a checkpoint with a flipped byte), and calls it. The call must either succeed (the
junk happened to be valid: a list of numbers is an array, ``2**63`` epochs is a number of
epochs) or raise a ``DeepNetError`` with a message. Anything else — IndexError,
AttributeError, KeyError, a TypeError or ValueError from NumPy's or torch's internals,
ZeroDivisionError, OverflowError, MemoryError, or a RuntimeWarning that ``-W error``
turns into an exception — fails the test, naming the call. A refused call leaves the
network's parameters and history as they were.

Two kinds of value are not fuzzed because they are valid and merely expensive: layer
sizes between 20 and 2**31 (a legal network, possibly gigabytes), and huge ``epochs``
without the stopping callback (a legal, endless fit). Sizes of 2**31 and more are fuzzed
(refused: BLAS indexes dimensions with 32-bit integers).

``pytest tests/test_fuzz.py -s`` prints how many calls each target made and how many were
refused; ``HYPOTHESIS_PROFILE=thorough`` runs twelve times as many.
"""

from __future__ import annotations

import collections
import contextlib
import io
import json
import math
import os
import string
import tempfile
from decimal import Decimal
from fractions import Fraction
from numbers import Integral
from pathlib import Path

import numpy as np
import pytest
from conftest import ALL_BACKENDS
from hypothesis import given, note, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import deepnet as dn
from deepnet import backend as B
from deepnet import optimizers

try:
    import torch
except ImportError:  # pragma: no cover - torch is an optional extra
    torch = None
try:
    import array_api_strict as strict
except ImportError:  # pragma: no cover
    strict = None

#: target -> [refused, accepted]
COUNTS: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])


def _n(examples: int) -> int:
    """``examples`` under the default profile (25 examples), scaled for the others."""
    return max(5, examples * settings().max_examples // 25)


# -- junk ---------------------------------------------------------------------------------


class _RaisingArray:
    """An object whose conversion to an array fails (a broken ``__array__``)."""

    def __array__(self, dtype=None, copy=None):
        raise RuntimeError("conversion refused by this object")

    def __repr__(self) -> str:
        return "_RaisingArray()"


class _Shaped:
    """An object with a ``shape`` attribute and nothing else."""

    def __init__(self, shape):
        self.shape = shape

    def __repr__(self) -> str:
        return f"_Shaped({self.shape!r})"


class _RaisingLen:
    """A sequence-looking object whose ``len`` and iteration fail."""

    def __len__(self):
        raise RuntimeError("no length")

    def __iter__(self):
        raise RuntimeError("no iteration")

    def __repr__(self) -> str:
        return "_RaisingLen()"


NUMBERS = st.one_of(
    st.integers(-20, 20),
    st.sampled_from([0, -1, 1, 2, 2**31, 2**63, 10**30, 10**400, -(10**400)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -0.0, 5e-324, 0.5, 1e-300]),
    st.complex_numbers(allow_nan=True, allow_infinity=True),
    st.fractions(max_denominator=50),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from([np.float32(1.5), np.float64(np.nan), np.int64(-3), np.int64(4),
                     np.uint8(255), np.bool_(True), np.complex128(1j), np.float16(np.inf),
                     Decimal("NaN"), Fraction(1, 3)]),
)
NAMES = ["", "relu", "RELU", "tanh", "softmax", "sigmoid", "linear", "he", "xavier", "gd",
         "adam", "sgd", "float16", "float32", "float64", "int32", "cuda", "cuda:7", "cpu",
         "device1", "device9", "numpy", "torch", "jax", " numpy ", "nan", "-1", "1e3",
         "array_api_strict", "cupy", "val_cost", "accuracy"]
TEXT = st.text(max_size=10) | st.sampled_from(NAMES)
OBJECTS = st.sampled_from([
    object(), _RaisingArray(), _Shaped("ab"), _Shaped(5), _Shaped((2, "x")), _Shaped(None),
    _Shaped((3, 5)), _Shaped((True, 1)), _RaisingLen(), Ellipsis, slice(1, 2), {1, 2},
    frozenset(), range(3), b"bytes", bytearray(b"ab"), np.random.default_rng(0),
    np.float64, b"float64",
])
HOST_DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int64, np.uint8, np.bool_,
               np.complex64, np.complex128, np.dtype("U3"), np.dtype("S2"),
               np.dtype("M8[s]"), np.dtype("m8[s]")]
NUMERIC_KINDS = "biuf"
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)


def _object_array(values):
    return np.array([*values, None], dtype=object)[:-1]


HOST_ARRAYS = st.one_of(
    hnp.arrays(st.sampled_from(HOST_DTYPES), SHAPES),
    st.lists(NUMBERS | TEXT | st.none(), min_size=1, max_size=6).map(_object_array),
)


@st.composite
def carried(draw, host_arrays, backend=None):
    """A host array, or the same numbers as a list, a torch tensor, an array_api_strict
    array on either device, or an array of ``backend`` itself."""
    a = draw(host_arrays)
    carriers = ["host", "list"]
    if a.dtype.kind in NUMERIC_KINDS + "c":
        carriers += ["torch", "strict", "strict1", "same"]
    how = draw(st.sampled_from(carriers))
    if how == "list":
        return a.tolist()
    try:
        if how == "torch" and torch is not None:
            t = torch.asarray(a.copy())
            dtype = draw(st.sampled_from([None, torch.bfloat16, torch.float16, torch.float64,
                                          torch.int64, torch.complex64]))
            if dtype is not None and not (t.is_complex() and not dtype.is_complex):
                t = t.to(dtype)
            if t.is_floating_point() and draw(st.booleans()):
                t.requires_grad_(True)
            return t
        if how in ("strict", "strict1") and strict is not None:
            dev = strict.Device("CPU_DEVICE" if how == "strict" else "device1")
            return strict.asarray(a, device=dev)
        if how == "same" and backend is not None:
            return backend.xp.asarray(a, device=backend.device)
    except (TypeError, ValueError, RuntimeError):
        pass  # a dtype that library does not hold: keep the host array
    return a


BASE = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT, OBJECTS, carried(HOST_ARRAYS))
JUNK = st.recursive(
    BASE,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=3) | st.integers(-3, 3), inner, max_size=3),
    ),
    max_leaves=6,
)


def near_arrays(shape, backend=None):
    """Arrays of ``shape`` or of a near miss of it, of any dtype, carried anywhere."""
    n, m = shape if len(shape) == 2 else (shape[0], 1)
    shapes = st.sampled_from(
        [tuple(shape), (m, n), (n,), (m,), (n, 0), (0, m), (n + 1, m), (n, m, 1), (),
         (1, n, m), (n, m + 1)]
    )
    host = hnp.arrays(st.sampled_from(HOST_DTYPES), shapes)
    return carried(host, backend)


# -- the check ----------------------------------------------------------------------------


def _snapshot(net):
    if not isinstance(net, dn.DeepNet):
        return None
    return {k: dn.to_numpy(v).copy() for k, v in net.params.items()}, net.history


def only_deepnet_errors(target, call, net=None, *, may_change=False):
    """Run ``call()``; anything but success or a DeepNetError fails, naming the exception."""
    before = _snapshot(net)
    try:
        with contextlib.redirect_stdout(io.StringIO()) as out:
            result = call()
    except dn.DeepNetError as exc:
        COUNTS[target][0] += 1
        message = str(exc)
        assert message.strip(), f"{type(exc).__name__} without a message"
        assert "Traceback" not in message
        note(f"refused: {type(exc).__name__}: {message[:200]}")
        if before is not None:
            params, history = before
            after = {k: dn.to_numpy(v) for k, v in net.params.items()}
            if isinstance(exc, dn.DivergenceError):  # the last finite epoch is put back
                assert all(np.all(np.isfinite(v)) for v in after.values())
            else:
                assert net.history is history, "a refused call changed net.history"
                for k, v in params.items():
                    np.testing.assert_array_equal(after[k], v, err_msg=f"{k} changed")
        return None
    except Exception as exc:
        raise AssertionError(
            f"{target} leaked {type(exc).__module__}.{type(exc).__name__}: {exc}"
        ) from exc
    COUNTS[target][1] += 1
    assert out.getvalue() == "", "the library printed to stdout"
    if before is not None and not may_change:
        params, _ = before
        for k, v in params.items():
            np.testing.assert_array_equal(dn.to_numpy(net.params[k]), v)
    return result


def _replace(data, valid: dict, strategies: dict, *, keep_together=()):
    """``valid`` with one to three entries swapped for drawn values."""
    names = list(valid)
    chosen = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True),
                       label="replaced")
    for a, b in keep_together:  # never both: their combination is valid but endless
        if a in chosen and b in chosen:
            chosen.remove(b)
    kwargs = dict(valid)
    for name in chosen:
        kwargs[name] = data.draw(strategies.get(name, JUNK) | JUNK, label=name)
    return kwargs


# -- networks ------------------------------------------------------------------------------

N0, M = 3, 5
OUTPUTS = {
    "sigmoid": ([N0, 4, 2], "tanh", "float64"),
    "softmax": ([N0, 4, 3], "relu", "float32"),
    "linear": ([N0, 2], "relu", "float32"),
}


def _net(backend, output, **kwargs):
    dims, hidden, dtype = OUTPUTS[output]
    return dn.DeepNet(dims, hidden=hidden, output=output, dtype=dtype, seed=1,
                      backend=backend, **kwargs)


def _data(output, m=M, seed=0):
    rng = np.random.default_rng(seed)
    dims = OUTPUTS[output][0]
    X = rng.standard_normal((N0, m))
    if output == "sigmoid":
        Y = (rng.random((dims[-1], m)) > 0.5).astype(np.float64)
    elif output == "softmax":
        Y = rng.integers(0, dims[-1], m)
    else:
        Y = rng.standard_normal((dims[-1], m))
    return X, Y


def _y_shape(output):
    dims = OUTPUTS[output][0]
    return (M,) if output == "softmax" else (dims[-1], M)


OUTPUT = st.sampled_from(sorted(OUTPUTS))


def _device_of(backend):
    return backend.label.split(":", 1)[1] if ":" in backend.label else None


# -- DeepNet(...) -----------------------------------------------------------------------


@settings(max_examples=_n(60))
@given(data=st.data())
def test_fuzz_constructor(backend, data):
    valid = {"layer_dims": [3, 4, 1], "hidden": "relu", "output": "sigmoid", "init": "he",
             "l2": 0.0, "keep_prob": 1.0, "dtype": None, "seed": 0,
             "backend": backend.name, "device": _device_of(backend)}
    strategies = {
        "layer_dims": st.lists(NUMBERS, max_size=4) | carried(HOST_ARRAYS),
        "hidden": TEXT | st.lists(TEXT | JUNK, max_size=3),
        "output": TEXT, "init": TEXT, "dtype": TEXT, "backend": TEXT, "device": TEXT,
        "l2": NUMBERS, "keep_prob": NUMBERS, "seed": NUMBERS,
    }
    kwargs = _replace(data, valid, strategies)
    layer_dims = kwargs.pop("layer_dims")
    net = only_deepnet_errors("DeepNet(...)", lambda: dn.DeepNet(layer_dims, **kwargs))
    if net is not None:
        assert net.L == len(net.layer_dims) - 1


# -- forward, predict, predict_proba --------------------------------------------------------


@settings(max_examples=_n(60))
@given(data=st.data())
def test_fuzz_forward_and_predict(backend, data):
    output = data.draw(OUTPUT)
    net = _net(backend, output)
    X = data.draw(near_arrays((N0, M), backend) | JUNK, label="X")
    method = data.draw(st.sampled_from(["forward", "predict", "predict_proba"]))
    result = only_deepnet_errors(f"net.{method}", lambda: getattr(net, method)(X), net)
    if result is not None:
        AL = result[0] if method == "forward" else result
        if method == "forward" or backend.owns(X):
            assert backend.owns(AL)  # forward stays on the backend
        else:  # predictions follow the caller's library (NumPy for lists and NumPy)
            lib = type(X).__module__.split(".")[0]
            assert type(AL).__module__.split(".")[0] == (
                lib if lib in ("torch", "cupy", "array_api_strict") else "numpy")


# -- cost and backward ------------------------------------------------------------------------


def _damaged_caches(data, net, caches, backend):
    """The caches with one thing wrong (or the whole argument junk)."""
    how = data.draw(st.sampled_from(
        ["junk", "drop", "entry", "inner", "array", "other_m", "tuple", "other_backend",
         "other_dtype", "none_inner"]), label="damage")
    caches = list(caches)
    l = data.draw(st.integers(0, len(caches) - 1), label="layer")
    if how == "junk":
        return data.draw(JUNK)
    if how == "drop":
        return caches[:l] + caches[l + 1:]
    if how == "entry":
        caches[l] = data.draw(JUNK)
    elif how == "inner":
        (linear, Z, A), D = caches[l]
        caches[l] = ((data.draw(JUNK), Z, A), D)
    elif how == "array":
        (linear, Z, A), D = caches[l]
        A_prev, W, b = linear
        which = data.draw(st.integers(0, 4))
        bad = data.draw(near_arrays(tuple(W.shape), backend) | JUNK)
        parts = [A_prev, W, b, Z, A]
        parts[which] = bad
        caches[l] = ((tuple(parts[:3]), parts[3], parts[4]), D)
    elif how == "other_m":
        X, _ = _data(net.output, m=M + 2, seed=3)
        caches = net.forward(X)[1]
    elif how == "tuple":
        return tuple(caches)
    elif how == "other_backend":
        other = "array_api_strict" if backend.name == "numpy" else "numpy"
        twin = _net(other, net.output)
        caches = twin.forward(_data(net.output)[0])[1]
    elif how == "other_dtype":
        twin = dn.DeepNet(net.layer_dims, hidden=net.hidden, output=net.output,
                          dtype="float32" if net.dtype_name == "float64" else "float64",
                          backend=backend)
        caches = twin.forward(_data(net.output)[0])[1]
    else:
        caches[l] = (None, None)
    return caches


@settings(max_examples=_n(80))
@given(data=st.data())
def test_fuzz_cost_and_backward(backend, data):
    output = data.draw(OUTPUT)
    net = _net(backend, output)
    X, Y = _data(output)
    AL, caches = net.forward(X)
    method = data.draw(st.sampled_from(["cost", "backward"]))
    valid = {"AL": AL, "Y": Y, "caches": caches}
    strategies = {
        "AL": near_arrays(tuple(AL.shape), backend),
        "Y": near_arrays(_y_shape(output), backend),
        "caches": st.just(None) if method == "cost" else st.nothing(),
    }
    kwargs = _replace(data, valid, strategies)
    if kwargs["caches"] is caches and data.draw(st.booleans(), label="damage caches"):
        kwargs["caches"] = _damaged_caches(data, net, caches, backend)
    fn = getattr(net, method)
    result = only_deepnet_errors(f"net.{method}", lambda: fn(**kwargs), net)
    if result is not None and method == "cost":
        assert type(result) is float and math.isfinite(result)
    if result is not None and method == "backward":
        assert sorted(result) == sorted("d" + k for k in net.params)


# -- fit --------------------------------------------------------------------------------------


def _stop_after_two(net, epoch, logs):
    return epoch < 1


@settings(max_examples=_n(80))
@given(data=st.data())
def test_fuzz_fit(backend, data):
    output = data.draw(OUTPUT)
    net = _net(backend, output)
    X, Y = _data(output)
    valid = {"X": X, "Y": Y, "epochs": 2, "batch_size": None, "optimizer": "gd",
             "learning_rate": 0.1, "seed": 0, "validation": None, "early_stopping": None,
             "callbacks": [_stop_after_two], "progress": False}
    stale = optimizers.Adam()
    stale.step({"W1": np.ones((2, 2))}, {"dW1": np.ones((2, 2))})  # state of another net
    strategies = {
        "X": near_arrays((N0, M), backend),
        "Y": near_arrays(_y_shape(output), backend),
        "epochs": NUMBERS, "batch_size": NUMBERS, "learning_rate": NUMBERS, "seed": NUMBERS,
        "optimizer": TEXT | st.sampled_from([optimizers.GD(), optimizers.Momentum(),
                                             optimizers.Adam(), stale]),
        "validation": NUMBERS | st.tuples(near_arrays((N0, 2), backend),
                                          near_arrays((*_y_shape(output)[:-1], 2),
                                                      backend)),
        "early_stopping": NUMBERS | st.sampled_from([dn.EarlyStopping(1),
                                                     dn.EarlyStopping(monitor="val_cost")]),
        "callbacks": st.lists(JUNK, max_size=2),
        "progress": JUNK,
    }
    kwargs = _replace(data, valid, strategies, keep_together=[("epochs", "callbacks")])
    if (isinstance(kwargs["epochs"], Integral) and kwargs["epochs"] > 2
            and kwargs["callbacks"] is not valid["callbacks"]):
        kwargs["epochs"] = 2  # a valid but huge number of epochs needs the stopper
    history = only_deepnet_errors("net.fit", lambda: net.fit(**kwargs), net, may_change=True)
    if history is not None:
        assert net.history is history and 1 <= history.epochs <= 2
        assert all(np.all(np.isfinite(dn.to_numpy(v))) for v in net.params.values())


# -- set_params ----------------------------------------------------------------------------


@settings(max_examples=_n(60))
@given(data=st.data())
def test_fuzz_set_params(backend, data):
    output = data.draw(OUTPUT)
    net = _net(backend, output)
    params = {k: dn.to_numpy(v) * 0.5 for k, v in net.params.items()}
    how = data.draw(st.sampled_from(["junk", "value", "drop", "add", "other_net", "many"]))
    if how == "junk":
        params = data.draw(JUNK)
    elif how == "value":
        key = data.draw(st.sampled_from(sorted(params)))
        params[key] = data.draw(near_arrays(params[key].shape, backend) | JUNK)
    elif how == "drop":
        params.pop(data.draw(st.sampled_from(sorted(params))))
    elif how == "add":
        params[data.draw(TEXT | st.integers(-3, 3) | st.floats())] = data.draw(JUNK)
    elif how == "other_net":
        other = dn.DeepNet([N0, 6, 2], backend=backend)
        params = other.params
    else:
        for key in data.draw(st.lists(st.sampled_from(sorted(params)), unique=True)):
            params[key] = data.draw(near_arrays(params[key].shape, backend))
    only_deepnet_errors("net.set_params", lambda: net.set_params(params), net,
                        may_change=True)


# -- gradient_check -----------------------------------------------------------------------


@settings(max_examples=_n(30))
@given(data=st.data())
def test_fuzz_gradient_check(backend, data):
    output = data.draw(OUTPUT)
    net = _net(backend, output)
    X, Y = _data(output, m=3)
    valid = {"net": net, "X": X, "Y": Y, "epsilon": 1e-7}
    strategies = {"X": near_arrays((N0, 3), backend),
                  "Y": near_arrays((*_y_shape(output)[:-1], 3), backend),
                  "epsilon": NUMBERS}
    kwargs = _replace(data, valid, strategies)
    result = only_deepnet_errors("dn.gradient_check",
                                 lambda: dn.gradient_check(**kwargs), net)
    if result is not None:
        assert isinstance(result, float)


# -- checkpoints ------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=8,
)


def _entries(path):
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory(prefix="deepnet-fuzz-") as d:
        yield Path(d)


@settings(max_examples=_n(80))
@given(data=st.data())
def test_fuzz_load(backend, data, workdir, monkeypatch):
    monkeypatch.chdir(workdir)  # a junk string is a file name relative to here
    net = _net("numpy", data.draw(OUTPUT))
    good = workdir / "good.npz"
    net.save(good)
    path = workdir / "fuzzed.npz"
    how = data.draw(st.sampled_from(
        ["path", "bytes", "flip", "truncate", "entry", "config", "config_value", "history",
         "args"]), label="how")
    kwargs = {"backend": backend.name, "device": _device_of(backend)}
    target = path
    if how == "path":
        target = data.draw(JUNK | st.text(alphabet=string.ascii_letters + ".\x00", max_size=8)
                           .map(lambda t: workdir / t))
    elif how == "bytes":
        path.write_bytes(data.draw(st.binary(max_size=300) | st.just(b"PK\x03\x04" * 9)))
    elif how in ("flip", "truncate"):
        raw = bytearray(good.read_bytes())
        if how == "flip":
            for i in data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1,
                                        max_size=4)):
                raw[i] ^= data.draw(st.integers(1, 255))
        else:
            raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
        path.write_bytes(bytes(raw))
    else:
        entries = _entries(good)
        if how == "entry":
            key = data.draw(st.sampled_from([*sorted(entries), "extra"]))
            value = data.draw(HOST_ARRAYS | st.none())
            if value is None or value.dtype.kind == "O":
                entries.pop(key, None)
            else:
                entries[key] = value
        elif how == "config":
            entries["config"] = np.array(json.dumps(data.draw(JSON)))
        elif how == "config_value":
            config = json.loads(str(entries["config"]))
            key = data.draw(st.sampled_from(sorted(config)))
            config[key] = data.draw(JSON)
            entries["config"] = np.array(json.dumps(config))
        elif how == "history":
            entries["history"] = np.array(json.dumps(data.draw(JSON)))
        else:
            kwargs = _replace(data, {**kwargs, "dtype": None},
                              {"backend": TEXT, "device": TEXT, "dtype": TEXT})
        np.savez(path, **entries)
    loaded = only_deepnet_errors("dn.load", lambda: dn.load(target, **kwargs))
    if loaded is not None:
        assert isinstance(loaded, dn.DeepNet)
        for v in loaded.params.values():
            assert np.all(np.isfinite(dn.to_numpy(v)))


@settings(max_examples=_n(40))
@given(data=st.data())
def test_fuzz_save(backend, data, workdir, monkeypatch):
    monkeypatch.chdir(workdir)  # a junk string is a file name: it lands here
    net = _net(backend, "sigmoid")
    names = st.text(alphabet=string.ascii_letters + ".-_ \x00", max_size=12) | st.sampled_from(
        ["", ".", "..", "x" * 300, "dir"])
    (workdir / "dir").mkdir(exist_ok=True)
    valid = {"net": net, "path": workdir / "saved.npz"}
    strategies = {"path": names.map(lambda t: workdir / t) | names.map(
        lambda t: os.fsencode(str(workdir / t)))}
    kwargs = _replace(data, valid, strategies)
    only_deepnet_errors("dn.save", lambda: dn.save(**kwargs), net)
    assert not [p for p in workdir.iterdir() if p.name.endswith(".tmp")]


# -- choosing backends ---------------------------------------------------------------------


@pytest.fixture
def restore_default(monkeypatch):
    monkeypatch.setattr(B, "_override", [])
    for var in ("DEEPNET_BACKEND", "DEEPNET_DEVICE", "DEEPNET_DTYPE"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


ENV_TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
                   max_size=10) | st.sampled_from(NAMES)


@settings(max_examples=_n(60))
@given(data=st.data())
def test_fuzz_backend_choice(backend, data, restore_default):
    name = data.draw(TEXT | JUNK | st.sampled_from([b for b, _ in ALL_BACKENDS.values()]),
                     label="name")
    device = data.draw(st.none() | TEXT | JUNK, label="device")
    how = data.draw(st.sampled_from(["set_backend", "use_backend", "get_backend", "net.to",
                                     "backend_object", "env"]))
    B._override[:] = []
    if how == "set_backend":
        only_deepnet_errors(how, lambda: dn.set_backend(name, device))
    elif how == "use_backend":
        def enter():
            with dn.use_backend(name, device) as chosen:
                assert dn.get_backend() is chosen
        only_deepnet_errors(how, enter)
    elif how == "get_backend":
        only_deepnet_errors(how, lambda: dn.get_backend(name, device))
    elif how == "net.to":
        net = _net(backend, "sigmoid")
        twin = only_deepnet_errors(how, lambda: net.to(name, device), net)
        if twin is not None:
            for k, v in net.params.items():
                np.testing.assert_array_equal(dn.to_numpy(twin.params[k]), dn.to_numpy(v))
    elif how == "backend_object":
        only_deepnet_errors(how, lambda: dn.DeepNet([2, 1], backend=backend, device=device))
    else:
        with restore_default.context() as env:
            for var in ("DEEPNET_BACKEND", "DEEPNET_DEVICE", "DEEPNET_DTYPE"):
                value = data.draw(st.none() | ENV_TEXT, label=var)
                if value is not None:
                    env.setenv(var, value)
            only_deepnet_errors("environment", lambda: dn.DeepNet([2, 1]))
    B._override[:] = []


# -- optimizers, schedules, early stopping -----------------------------------------------------

CLASSES = {  # name -> (callable, required arguments, optional ones)
    "GD": (optimizers.GD, [], ["learning_rate", "schedule"]),
    "Momentum": (optimizers.Momentum, [], ["learning_rate", "beta", "schedule"]),
    "RMSprop": (optimizers.RMSprop, [], ["learning_rate", "beta2", "epsilon", "schedule"]),
    "Adam": (optimizers.Adam, [], ["learning_rate", "beta1", "beta2", "epsilon",
                                   "schedule"]),
    "InverseTime": (optimizers.InverseTime, [], ["decay"]),
    "Exponential": (optimizers.Exponential, [], ["rate"]),
    "Step": (optimizers.Step, [], ["drop", "every"]),
    "EarlyStopping": (dn.EarlyStopping, [], ["patience", "min_delta", "monitor"]),
    "optimizers.get": (optimizers.get, ["optimizer"], ["learning_rate"]),
    "optimizers.get_schedule": (optimizers.get_schedule, ["schedule"], []),
    "History.from_dict": (dn.History.from_dict, ["data"], []),
}


@settings(max_examples=_n(80))
@given(data=st.data())
def test_fuzz_optimizers_and_friends(data):
    name = data.draw(st.sampled_from(sorted(CLASSES)))
    cls, required, optional = CLASSES[name]
    chosen = required + data.draw(st.lists(st.sampled_from(optional), unique=True)
                                  if optional else st.just([]))
    kwargs = {a: data.draw(NUMBERS | TEXT | JUNK, label=a) for a in chosen}
    made = only_deepnet_errors(name, lambda: cls(**kwargs))
    if isinstance(made, optimizers.Optimizer):
        made.set_epoch(3)
        assert math.isfinite(made.alpha) and made.alpha >= 0.0


# -- the count ----------------------------------------------------------------------------------


def test_zz_report_counts():
    """Print how many fuzzed calls each target made (run with ``-s`` to see it)."""
    if not COUNTS:
        pytest.skip("no fuzz test ran in this session")
    width = max(map(len, COUNTS))
    lines = [f"{'target':<{width}}  refused  accepted"]
    for target, (refused, accepted) in sorted(COUNTS.items()):
        lines.append(f"{target:<{width}}  {refused:7d}  {accepted:8d}")
    total_refused = sum(c[0] for c in COUNTS.values())
    total = sum(sum(c) for c in COUNTS.values())
    lines.append(f"{'all':<{width}}  {total_refused:7d}  {total - total_refused:8d}"
                 f"  ({total} calls; every refusal a DeepNetError)")
    print("\n" + "\n".join(lines))
    assert total_refused > 0
