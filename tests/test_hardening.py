"""Hardening: every bad input gets a clear deepnet error, numerics hold at the extremes,
and no failure loses a network or a checkpoint.

Each bad-input case asserts the error class (a ``DeepNetError`` subclass), key words of
the message (what was expected and what was received), and that the network's parameters
and history are unchanged afterwards (``refused``). Inputs that deepnet converts on
purpose instead of refusing have their own tests (``test_converted_*``). Everything runs
on every backend of the ``backend`` fixture. ``pytest --collect-only -q`` counts the cases.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
import types

import numpy as np
import pytest
from conftest import ALL_BACKENDS, assert_on_backend

import deepnet as dn
from deepnet import backend as B
from deepnet import cli, optimizers, serialization
from deepnet.backend import device_label

try:
    import torch
except ImportError:  # pragma: no cover - an optional extra
    torch = None

N0, M = 3, 4


# -- helpers ---------------------------------------------------------------------------------


def _host(net) -> dict[str, np.ndarray]:
    return {k: dn.to_numpy(v).copy() for k, v in net.params.items()}


def _assert_params(net, expected: dict[str, np.ndarray]) -> None:
    assert sorted(net.params) == sorted(expected)
    for k, v in expected.items():
        np.testing.assert_array_equal(dn.to_numpy(net.params[k]), v, err_msg=k)


@contextlib.contextmanager
def refused(net, error, *words):
    """The block raises ``error`` (a DeepNetError) whose message has every one of ``words``,
    and ``net`` (if given) keeps its parameters and history."""
    assert issubclass(error, dn.DeepNetError)
    before = _host(net) if net is not None else None
    history = net.history if net is not None else None
    with pytest.raises(error) as info:
        yield info
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in the message: {message}"
    if net is not None:
        _assert_params(net, before)
        assert net.history is history


def _device_of(backend) -> str | None:
    return backend.label.split(":", 1)[1] if ":" in backend.label else None


def _net(backend, output="sigmoid", dims=None, dtype="float32", **kwargs):
    dims = dims or {"sigmoid": [N0, 5, 1], "softmax": [N0, 5, 3], "linear": [N0, 5, 2]}[output]
    return dn.DeepNet(dims, hidden="tanh", output=output, dtype=dtype, seed=3,
                      backend=backend, **kwargs)


def _data(output="sigmoid", m=M, seed=0, nL=None):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N0, m))
    if output == "sigmoid":
        Y = (rng.random((nL or 1, m)) > 0.5).astype(np.float64)
    elif output == "softmax":
        Y = rng.integers(0, nL or 3, m)
    else:
        Y = rng.standard_normal((nL or 2, m))
    return X, Y


# == 1. the hierarchy ==========================================================================

HIERARCHY = [
    ("DeepNetError", (Exception,), ()),
    ("BackendError", (RuntimeError,), (ValueError, TypeError)),
    ("ShapeError", (ValueError,), (TypeError, RuntimeError)),
    ("InputError", (ValueError, TypeError), (RuntimeError,)),
    ("CheckpointError", (ValueError,), (TypeError, RuntimeError)),
    ("DivergenceError", (RuntimeError,), (ValueError, TypeError)),
]


@pytest.mark.parametrize(("name", "builtins", "not_builtins"), HIERARCHY)
def test_error_hierarchy(name, builtins, not_builtins):
    cls = getattr(dn, name)
    assert cls is getattr(dn.errors, name) and name in dn.__all__
    assert issubclass(cls, dn.DeepNetError)
    for base in builtins:
        assert issubclass(cls, base)
        with pytest.raises(base, match="caught as the built-in"):
            raise cls("caught as the built-in")
    for base in not_builtins:
        assert not issubclass(cls, base)


def test_one_except_clause_catches_every_kind():
    for name, _, _ in HIERARCHY:
        try:
            raise getattr(dn, name)("x")
        except dn.DeepNetError as exc:
            assert type(exc).__name__ == name


# == 2. validation at every entry point ===========================================================

# -- the constructor ------------------------------------------------------------------------

CONSTRUCTOR = [
    ({"layer_dims": [3]}, "at least two", "[3]"),
    ({"layer_dims": []}, "at least two", "[]"),
    ({"layer_dims": 5}, "list of layer sizes", "5"),
    ({"layer_dims": "3,4"}, "list of layer sizes", "'3,4'"),
    ({"layer_dims": {3, 4}}, "list of layer sizes", "{3, 4}"),
    ({"layer_dims": None}, "list of layer sizes", "None"),
    ({"layer_dims": [3, 0, 1]}, "layer_dims[1]", "positive integer", "got 0"),
    ({"layer_dims": [3, -2]}, "layer_dims[1]", "positive integer", "-2"),
    ({"layer_dims": [3, 2.5]}, "layer_dims[1]", "positive integer", "2.5"),
    ({"layer_dims": [3, True]}, "layer_dims[1]", "positive integer", "True"),
    ({"layer_dims": [3, "4"]}, "layer_dims[1]", "'4'"),
    ({"layer_dims": [3, None]}, "layer_dims[1]", "None"),
    ({"layer_dims": [3, 2**31]}, "layer_dims[1] = 2147483648", "2**31 - 1", "BLAS"),
    ({"layer_dims": [2**30, 2**30]}, "GiB", "memory", "smaller layers"),
    ({"hidden": "softmax"}, "'softmax' cannot be used here", "relu, leaky_relu, tanh"),
    ({"hidden": "swish"}, "unknown activation 'swish'", "relu"),
    ({"hidden": ["relu", "tanh"]}, "L - 1 = 1", "got 2"),
    ({"hidden": 3}, "activation name or a list", "3"),
    ({"hidden": [None]}, "unknown activation None"),
    ({"output": "relu"}, "'relu' cannot be used here", "sigmoid, softmax, linear"),
    ({"output": "tanh"}, "'tanh' cannot be used here", "sigmoid, softmax, linear"),
    ({"output": None}, "unknown activation None", "sigmoid, softmax, linear"),
    ({"init": "glorot"}, "unknown init 'glorot'", "he, xavier, scaled"),
    ({"l2": -0.1}, "l2 must be >= 0.0", "-0.1"),
    ({"l2": math.nan}, "l2 must be a finite real number", "nan"),
    ({"l2": math.inf}, "l2 must be a finite real number", "inf"),
    ({"l2": "0.1"}, "l2 must be a finite real number", "'0.1'"),
    ({"l2": 10**400}, "l2 must be a finite real number", "beyond the range of a float"),
    ({"keep_prob": 0.0}, "keep_prob must be > 0.0", "0.0"),
    ({"keep_prob": 1.5}, "keep_prob must be <= 1.0", "1.5"),
    ({"keep_prob": -1}, "keep_prob must be > 0.0", "-1"),
    ({"keep_prob": None}, "keep_prob must be a finite real number", "None"),
    ({"dtype": "float16"}, "dtype='float16' is not supported", "float32, float64"),
    ({"dtype": "int32"}, "'int32'", "float32, float64"),
    ({"dtype": np.float16}, "'float16'", "float32, float64"),
    ({"seed": -1}, "seed must be >= 0", "-1"),
    ({"seed": 1.5}, "seed must be an int", "1.5"),
    ({"seed": "0"}, "seed must be an int", "'0'"),
]


@pytest.mark.parametrize(("kwargs", "w"), [(c[0], c[1:]) for c in CONSTRUCTOR],
                         ids=[str(c[0])[:40] for c in CONSTRUCTOR])
def test_constructor_refuses(backend, kwargs, w):
    args = {"layer_dims": [N0, 4, 1], "backend": backend, **kwargs}
    dims = args.pop("layer_dims")
    with refused(None, dn.InputError, *w):
        dn.DeepNet(dims, **args)


@pytest.mark.parametrize(("name", "device", "words"), [
    ("jax", None, ("unknown backend 'jax'", "numpy, cupy, torch, array_api_strict")),
    (3, None, ("unknown backend 3",)),
    ("numpy", "cuda", ("CPU only", "'cuda'")),
    ("array_api_strict", "device9", ("'device9'", "device1")),
    ("torch", "tpu", ("'tpu'", "'cpu', 'cuda' or 'cuda:N'")),
])
def test_constructor_refuses_a_backend_or_device(backend, name, device, words):
    if name == "torch" and torch is None:
        pytest.skip("torch is not installed")
    with refused(None, dn.BackendError, *words):
        dn.DeepNet([N0, 1], backend=name, device=device)


def test_a_backend_object_with_another_device_is_refused(backend):
    other = {"cpu": "device1", "CPU_DEVICE": "device1", "device1": "CPU_DEVICE"}
    label = device_label(backend.device)
    if backend.name == "numpy" or label not in other:
        pytest.skip("this backend has one device here")
    with refused(None, dn.BackendError, backend.label, other[label]):
        dn.DeepNet([N0, 1], backend=backend, device=other[label])


# -- fit's arguments ----------------------------------------------------------------------

FIT = [
    ({"epochs": 0}, dn.InputError, "epochs must be a positive integer", "0"),
    ({"epochs": 2.5}, dn.InputError, "epochs must be a positive integer", "2.5"),
    ({"epochs": None}, dn.InputError, "epochs must be a positive integer", "None"),
    ({"epochs": True}, dn.InputError, "epochs must be a positive integer", "True"),
    ({"batch_size": 0}, dn.InputError, "batch_size must be a positive integer", "0"),
    ({"batch_size": -4}, dn.InputError, "batch_size", "-4"),
    ({"batch_size": 1.5}, dn.InputError, "batch_size", "1.5"),
    ({"batch_size": "32"}, dn.InputError, "batch_size", "'32'"),
    ({"learning_rate": 0}, dn.InputError, "learning_rate must be > 0.0", "0"),
    ({"learning_rate": -1e-3}, dn.InputError, "learning_rate must be > 0.0", "-0.001"),
    ({"learning_rate": math.nan}, dn.InputError, "learning_rate must be a finite", "nan"),
    ({"learning_rate": math.inf}, dn.InputError, "learning_rate must be a finite", "inf"),
    ({"learning_rate": "0.1"}, dn.InputError, "learning_rate", "'0.1'"),
    ({"optimizer": "sgd"}, dn.InputError, "unknown optimizer 'sgd'", "gd, momentum, rmsprop, adam"),
    ({"optimizer": 3}, dn.InputError, "optimizer must be a name", "got 3"),
    ({"optimizer": optimizers.Adam}, dn.InputError, "optimizer must be a name", "Adam"),
    ({"validation": 0.0}, dn.InputError, "validation fraction must be > 0.0", "0.0"),
    ({"validation": 1.0}, dn.InputError, "validation fraction must be < 1.0", "1.0"),
    ({"validation": math.nan}, dn.InputError, "validation fraction", "nan"),
    ({"validation": 0.01}, dn.InputError, "leaves 0 for validation", "m = 20"),
    ({"validation": "0.2"}, dn.InputError, "pair (X_val, Y_val) or a fraction", "str"),
    ({"validation": ([[1.0]],)}, dn.InputError, "pair (X_val, Y_val)", "tuple"),
    ({"early_stopping": -1}, dn.InputError, "EarlyStopping patience", "-1"),
    ({"early_stopping": "yes"}, dn.InputError, "early_stopping must be None", "'yes'"),
    ({"early_stopping": dn.EarlyStopping(monitor="val_cost")}, dn.InputError,
     "'val_cost'", "no validation data"),
    ({"callbacks": [1]}, dn.InputError, "callbacks[0] must be callable", "1"),
    ({"callbacks": 5}, dn.InputError, "callbacks must be a list of callables", "5"),
    ({"progress": "yes"}, dn.InputError, "progress must be True, False or None", "'yes'"),
    ({"seed": -3}, dn.InputError, "seed must be >= 0", "-3"),
]


@pytest.mark.parametrize(("kwargs", "error", "words"), [(c[0], c[1], c[2:]) for c in FIT],
                         ids=[str(c[0])[:40] for c in FIT])
def test_fit_refuses(backend, kwargs, error, words):
    net = _net(backend)
    X, Y = _data(m=20)
    args = {"X": X, "Y": Y, "epochs": 2, "progress": False, **kwargs}
    with refused(net, error, *words):
        net.fit(**args)
    assert net.history is None


def test_fit_refuses_validation_data_of_the_wrong_shape(backend):
    net = _net(backend)
    X, Y = _data(m=20)
    with refused(net, dn.ShapeError, "X_val", "(3, m)", "(4, 5)"):
        net.fit(X, Y, 2, validation=(np.zeros((4, 5)), np.zeros((1, 5))), progress=False)
    with refused(net, dn.ShapeError, "Y_val", "(1, 5)", "(1, 6)"):
        net.fit(X, Y, 2, validation=(np.zeros((3, 5)), np.zeros((1, 6))), progress=False)
    X_val = np.ones((3, 5))
    X_val[1, 2] = np.nan
    with refused(net, dn.InputError, "X_val must be finite", "1 NaN"):
        net.fit(X, Y, 2, validation=(X_val, np.zeros((1, 5))), progress=False)


OPTIMIZER_ARGS = [
    (optimizers.GD, {"learning_rate": 0}, "learning_rate must be > 0.0"),
    (optimizers.Momentum, {"beta": 1.0}, "beta must be < 1.0"),
    (optimizers.Momentum, {"beta": -0.1}, "beta must be >= 0.0"),
    (optimizers.RMSprop, {"beta2": 1.5}, "beta2 must be < 1.0"),
    (optimizers.RMSprop, {"epsilon": math.nan}, "epsilon must be a finite"),
    (optimizers.Adam, {"beta1": 1.0}, "beta1 must be < 1.0"),
    (optimizers.Adam, {"beta2": "0.9"}, "beta2 must be a finite real number"),
    (optimizers.Adam, {"epsilon": 0.0}, "epsilon must be > 0.0"),
    (optimizers.Adam, {"learning_rate": 10**400}, "beyond the range of a float"),
    (optimizers.Adam, {"schedule": "cosine"}, "unknown learning-rate schedule 'cosine'"),
    (optimizers.InverseTime, {"decay": -1}, "decay must be >= 0.0"),
    (optimizers.Exponential, {"rate": 0}, "rate must be > 0.0"),
    (optimizers.Exponential, {"rate": 1.5}, "rate must be <= 1.0"),
    (optimizers.Step, {"every": 0}, "every must be a positive integer"),
    (optimizers.Step, {"drop": 2}, "drop must be <= 1.0"),
    (dn.EarlyStopping, {"min_delta": -1}, "min_delta must be >= 0.0"),
    (dn.EarlyStopping, {"monitor": "loss"}, "monitor must be one of", "'loss'"),
]


@pytest.mark.parametrize(("cls", "kwargs", "words"),
                         [(c[0], c[1], c[2:]) for c in OPTIMIZER_ARGS],
                         ids=[f"{c[0].__name__}-{c[1]}"[:40] for c in OPTIMIZER_ARGS])
def test_optimizer_and_schedule_hyperparameters_are_checked(cls, kwargs, words):
    with refused(None, dn.InputError, *words):
        cls(**kwargs)


def test_an_optimizer_with_state_of_another_network_is_refused(backend):
    X, Y = _data(m=20)
    adam = optimizers.Adam(learning_rate=0.01)
    _net(backend, dims=[N0, 7, 1]).fit(X, Y, 2, optimizer=adam, progress=False)
    net = _net(backend)
    with refused(net, dn.InputError, "this Adam holds state", "shape",
                 "used on another network", "reset()"):
        net.fit(X, Y, 2, optimizer=adam, learning_rate=0.5, progress=False)
    assert adam.learning_rate == 0.01  # the refused fit did not touch it either
    other = "array_api_strict" if backend.name != "array_api_strict" else "numpy"
    twin = dn.DeepNet([N0, 7, 1], hidden="tanh", dtype="float32", backend=other)
    with refused(twin, dn.InputError, "this Adam holds state", "another network",
                 "reset()"):
        twin.fit(X, Y, 2, optimizer=adam, progress=False)
    adam.reset()
    net.fit(X, Y, 2, optimizer=adam, progress=False)  # after reset() it applies


def test_an_optimizer_with_non_finite_state_is_refused(backend):
    X, Y = _data(m=20)
    net = _net(backend)
    adam = optimizers.Adam()
    net.fit(X, Y, 1, optimizer=adam, progress=False)
    v = next(iter(adam.state.values()))["v"]  # W1's, or the flat array's
    v[...] = math.nan
    with refused(net, dn.InputError, "state 'v' for", "holds NaN or inf", "reset()"):
        net.fit(X, Y, 1, optimizer=adam, progress=False)


# -- X: dimensions, shapes, dtypes, values --------------------------------------------------------

X_CASES = {
    "1-D": (np.ones(N0), dn.ShapeError, ("2-D", "(3, m)", "X.reshape(3, 1)")),
    "3-D": (np.ones((N0, M, 1)), dn.ShapeError, ("2-D", "3-D", "(3, 4, 1)")),
    "0-D": (np.float64(1.0), dn.ShapeError, ("2-D", "0-D")),
    "transposed": (np.ones((M, N0)), dn.ShapeError, ("(3, m)", "(4, 3)", "X.T")),
    "wrong n0": (np.ones((N0 + 2, M)), dn.ShapeError, ("(3, m)", "(5, 4)")),
    "empty": (np.ones((N0, 0)), dn.ShapeError, ("no examples", "(3, 0)", "m >= 1")),
    "strings": (np.full((N0, M), "1.0"), dn.InputError, ("real numbers", "<U3")),
    "objects": (np.ones((N0, M), dtype=object), dn.InputError, ("real numbers", "object")),
    "complex": (np.ones((N0, M), dtype=np.complex128), dn.InputError, ("complex",)),
    "datetime": (np.zeros((N0, M), dtype="M8[s]"), dn.InputError, ("real numbers",)),
    "NaN": (np.where(np.eye(N0, M) > 0, np.nan, 1.0), dn.InputError,
            ("X must be finite", "3 NaN or inf")),
    "inf": (np.full((N0, M), -np.inf), dn.InputError, ("X must be finite", "12 NaN or inf")),
    "beyond float32": (np.full((N0, M), 1e39), dn.InputError,
                       ("X must be finite", "float32", "dtype='float64'")),
    "ragged list": ([[1.0, 2.0], [3.0]], dn.InputError, ("does not convert",)),
    "list of strings": ([["a"] * M] * N0, dn.InputError, ("real numbers",)),
    "None": (None, dn.InputError, ("X must be an array", "NoneType")),
    "dict": ({"X": 1}, dn.InputError, ("X must be an array", "dict")),
    "scalar": (3.0, dn.InputError, ("X must be an array", "float")),
}
X_ENTRIES = ["forward", "predict", "predict_proba", "fit", "gradient_check"]


def _call_with_X(net, entry, X):
    _, Y = _data(net.output, m=M)
    if entry == "fit":
        return net.fit(X, Y, 2, progress=False)
    if entry == "gradient_check":
        return dn.gradient_check(net, X, Y)
    return getattr(net, entry)(X)


@pytest.mark.parametrize(("case", "entry"), [
    (c, e) for c in sorted(X_CASES) for e in X_ENTRIES
    # gradient_check computes in float64, where 1e39 is an ordinary finite number
    if not (c == "beyond float32" and e == "gradient_check")])
def test_bad_X_is_refused(backend, case, entry):
    X, error, words = X_CASES[case]
    net = _net(backend)
    with refused(net, error, *words):
        _call_with_X(net, entry, X)


# -- Y: shapes, label ranges, dtypes, values, m ------------------------------------------------

Y_CASES = {
    "sigmoid": {
        "transposed": (np.zeros((M, 1)), dn.ShapeError, ("(1, 4)", "(4, 1)", "Y.T")),
        "mismatched m": (np.zeros((1, M + 1)), dn.ShapeError, ("(1, 4)", "(1, 5)")),
        "mismatched m 1-D": (np.zeros(M + 1), dn.ShapeError, ("(1, 4)", "(1, 5)")),
        "3-D": (np.zeros((1, M, 1)), dn.ShapeError, ("(1, 4)", "(1, 4, 1)")),
        "label 2": (np.array([[0, 1, 2, 1]]), dn.InputError, ("[0, 1]", "0.0 to 2.0")),
        "label -1": (np.array([[0, -1, 1, 1]]), dn.InputError, ("[0, 1]", "-1.0 to 1.0")),
        "NaN": (np.array([[0, np.nan, 1, 1]]), dn.InputError, ("Y must be finite", "1 NaN")),
        "strings": (np.array([["0", "1", "1", "0"]]), dn.InputError, ("real numbers",)),
        "complex": (np.zeros((1, M), dtype=np.complex64), dn.InputError, ("complex",)),
        "None": (None, dn.InputError, ("Y must be an array",)),
    },
    "softmax": {
        "label 3": (np.array([0, 1, 2, 3]), dn.InputError, ("0..2", "nL = 3", "0 to 3")),
        "label -1": (np.array([0, -1, 2, 1]), dn.InputError, ("0..2", "-1 to 2")),
        "label 1.5": (np.array([0, 1.5, 2, 1]), dn.InputError, ("whole numbers 0..2",)),
        "label 1e19": (np.array([0, 1e19, 2, 1]), dn.InputError, ("0..2", "0 to 1e+19")),
        "label NaN": (np.array([0, np.nan, 2, 1]), dn.InputError, ("Y must be finite",)),
        "bool labels": (np.array([True, False, True, True]), dn.InputError,
                        ("class labels must be integers", "bool")),
        "mismatched m": (np.array([0, 1, 2, 1, 0]), dn.ShapeError, ("5 labels", "m = 4")),
        "one-hot sums to 2": (np.ones((3, M)) * np.array([[1], [1], [0]]), dn.InputError,
                              ("one-hot", "sums to 1")),
        "one-hot transposed": (np.eye(M, 3), dn.ShapeError, ("(3, 4)", "(4, 3)", "Y.T")),
        "one-hot above 1": (np.eye(3, M) * 2.0, dn.InputError, ("[0, 1]", "0.0 to 2.0")),
        "strings": (np.array(["a", "b", "c", "a"]), dn.InputError, ("real numbers",)),
        "complex": (np.zeros(M, dtype=np.complex128), dn.InputError, ("complex",)),
    },
    "linear": {
        "1-D for nL=2": (np.zeros(M), dn.ShapeError, ("(2, 4)", "(4,)")),
        "wrong shape": (np.zeros((2, M + 1)), dn.ShapeError, ("(2, 4)", "(2, 5)")),
        "transposed": (np.zeros((M, 2)), dn.ShapeError, ("(2, 4)", "(4, 2)", "Y.T")),
        "inf": (np.full((2, M), np.inf), dn.InputError, ("Y must be finite", "8 NaN")),
        "objects": (np.zeros((2, M), dtype=object), dn.InputError, ("object",)),
    },
}
Y_ENTRIES = ["fit", "cost", "backward", "gradient_check", "validation"]


def _call_with_Y(net, entry, Y):
    X, _ = _data(net.output, m=M)
    if entry == "fit":
        return net.fit(X, Y, 2, progress=False)
    if entry == "validation":
        Xt, Yt = _data(net.output, m=10, seed=1)
        return net.fit(Xt, Yt, 2, validation=(X, Y), progress=False)
    if entry == "gradient_check":
        return dn.gradient_check(net, X, Y)
    AL, caches = net.forward(X)
    if entry == "cost":
        return net.cost(AL, Y, caches)
    return net.backward(AL, Y, caches)


@pytest.mark.parametrize("entry", Y_ENTRIES)
@pytest.mark.parametrize(("output", "case"),
                         [(o, c) for o, cases in Y_CASES.items() for c in sorted(cases)])
def test_bad_Y_is_refused(backend, output, case, entry):
    Y, error, words = Y_CASES[output][case]
    net = _net(backend, output)
    if entry == "validation":
        words = tuple(w.replace("Y must", "Y_val must") for w in words)
    with refused(net, error, *words):
        _call_with_Y(net, entry, Y)


# -- AL and caches given to cost and backward -----------------------------------------------------


def _caches_cases(net, backend):
    X, _ = _data(net.output, m=M)
    AL, caches = net.forward(X)
    longer = net.forward(_data(net.output, m=M + 2)[0])[1]
    other_backend = "array_api_strict" if backend.name == "numpy" else "numpy"
    foreign = _net(other_backend, net.output).forward(X)[1]
    other_dtype = _net(backend, net.output, dtype="float64").forward(X)[1]
    (lin, Z, _), D = caches[0]
    return AL, {
        "not a list": (tuple(caches), dn.InputError, ("list of L = 2 caches", "tuple")),
        "too short": (caches[:1], dn.InputError, ("list of L = 2", "length 1")),
        "junk entry": ([None, caches[1]], dn.InputError, ("caches[0] is not a cache",)),
        "junk array": ([((lin, Z, "A"), D), caches[1]], dn.InputError,
                       ("caches[0]: A is not an array", "str")),
        "other m": (longer, dn.ShapeError, ("caches[0]: A_prev", "(3, 6)", "(3, 4)")),
        "other backend": (foreign, dn.InputError, ("not an array of the network's backend",)),
        "other dtype": (other_dtype, dn.InputError, ("dtype", "float64")),
    }


@pytest.mark.parametrize("entry", ["cost", "backward"])
@pytest.mark.parametrize("case", ["not a list", "too short", "junk entry", "junk array",
                                  "other m", "other backend", "other dtype"])
def test_bad_caches_are_refused(backend, entry, case):
    net = _net(backend, "softmax")
    AL, cases = _caches_cases(net, backend)
    caches, error, words = cases[case]
    _, Y = _data("softmax", m=M)
    with refused(net, error, *words):
        getattr(net, entry)(AL, Y, caches)


AL_CASES = {
    "wrong nL": (np.full((2, M), 0.5), dn.ShapeError, ("AL must have shape (nL, m) = (1, m)",)),
    "no examples": (np.zeros((1, 0)), dn.ShapeError, ("AL holds no examples",)),
    "above 1": (np.full((1, M), 1.5), dn.InputError, ("probabilities in [0, 1]", "1.5")),
    "NaN": (np.full((1, M), np.nan), dn.InputError, ("AL must be finite",)),
    "strings": (np.full((1, M), "a"), dn.InputError, ("real numbers",)),
}


@pytest.mark.parametrize("entry", ["cost", "backward"])
@pytest.mark.parametrize("case", sorted(AL_CASES))
def test_bad_AL_is_refused(backend, entry, case):
    net = _net(backend)
    X, Y = _data(m=M)
    _, caches = net.forward(X)
    AL, error, words = AL_CASES[case]
    with refused(net, error, *words):
        if entry == "cost":
            net.cost(AL, Y)
        else:
            net.backward(AL, Y, caches)


@pytest.mark.parametrize("error", [
    MemoryError("Unable to allocate 8.00 GiB for an array"),
    type("OutOfMemoryError", (RuntimeError,), {})("CUDA out of memory. Tried to allocate"),
], ids=["MemoryError", "OutOfMemoryError"])
def test_running_out_of_memory_while_making_a_network(backend, monkeypatch, error):
    def allocate(*args, **kwargs):
        raise error

    monkeypatch.setattr(dn.initializers, "initialize_parameters", allocate)
    with refused(None, dn.InputError, "layer_dims [3, 500, 1]", "2,501 parameters",
                 "do not fit in the memory", type(error).__name__, "smaller layers"):
        dn.DeepNet([N0, 500, 1], backend=backend)


# -- set_params ---------------------------------------------------------------------------


def _set_params_cases(net):
    good = {k: dn.to_numpy(v) * 0.5 for k, v in net.params.items()}

    def edit(**changes):
        p = dict(good)
        for k, v in changes.items():
            if v is None:
                p.pop(k)
            else:
                p[k] = v
        return p

    W1 = good["W1"]
    other = dn.DeepNet([N0, 7, 1], backend="numpy")
    return {
        "missing key": (edit(b2=None), dn.InputError, ("missing ['b2']", "unexpected []")),
        "extra key": ({**good, "W3": W1}, dn.InputError, ("unexpected ['W3']",)),
        "lower-case keys": ({k.lower(): v for k, v in good.items()}, dn.InputError,
                            ("missing ['W1', 'W2']", "unexpected ['w1', 'w2']")),
        "transposed W": (edit(W1=W1.T), dn.ShapeError, ("W1 must have shape (5, 3)", "(3, 5)")),
        "1-D b": (edit(b1=np.zeros(5)), dn.ShapeError, ("b1 must have shape (5, 1)", "(5,)")),
        "complex": (edit(W2=good["W2"] + 1j), dn.InputError, ("W2 must hold real", "complex")),
        "strings": (edit(b2=np.array([["0"]])), dn.InputError, ("b2 must hold real",)),
        "NaN": (edit(W1=np.where(W1 > 0, np.nan, W1)), dn.InputError, ("W1 must be finite",)),
        "inf": (edit(b1=np.full((5, 1), np.inf)), dn.InputError, ("b1 must be finite",)),
        "None value": ({**good, "W2": None}, dn.InputError, ("W2 must be an array",)),
        "not a dict": (list(good.values()), dn.InputError, ("params must be a dict", "list")),
        "other architecture": (other.params, dn.ShapeError, ("W1 must have shape (5, 3)",
                                                             "(7, 3)")),
    }


@pytest.mark.parametrize("case", ["missing key", "extra key", "lower-case keys",
                                  "transposed W", "1-D b", "complex", "strings", "NaN", "inf",
                                  "None value", "not a dict", "other architecture"])
def test_set_params_refuses(backend, case):
    net = _net(backend)
    params, error, words = _set_params_cases(net)[case]
    with refused(net, error, *words):
        net.set_params(params)


# -- environment variables -----------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.setattr(B, "_override", [])
    for var in ("DEEPNET_BACKEND", "DEEPNET_DEVICE", "DEEPNET_DTYPE"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


@pytest.mark.parametrize("value", ["jax", "numpy2", "Torch!", "num py"])
def test_unknown_deepnet_backend(clean_env, value):
    clean_env.setenv("DEEPNET_BACKEND", value)
    with refused(None, dn.BackendError, "DEEPNET_BACKEND", repr(value),
                 "numpy, cupy, torch, array_api_strict"):
        dn.DeepNet([N0, 1])


@pytest.mark.parametrize("library", ["torch", "array_api_strict", "cupy"])
@pytest.mark.parametrize("via", ["argument", "environment"])
def test_library_not_installed(clean_env, library, via):
    clean_env.setattr(B, "_cache", {})
    real = importlib.import_module

    def missing(name, *args, **kwargs):
        if name == library or name.startswith(library + "."):
            raise ModuleNotFoundError(f"No module named {library!r}")
        return real(name, *args, **kwargs)

    clean_env.setattr(importlib, "import_module", missing)
    hint = {"torch": "pip install torch", "array_api_strict": "pip install array-api-strict",
            "cupy": "pip install cupy-cuda12x"}[library]
    with refused(None, dn.BackendError, f"backend {library!r}", "not installed", hint):
        if via == "environment":
            clean_env.setenv("DEEPNET_BACKEND", library)
            dn.DeepNet([N0, 1])
        else:
            dn.DeepNet([N0, 1], backend=library)


def test_cupy_without_a_gpu(clean_env):
    fake = types.ModuleType("cupy")

    def no_device():
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=no_device))
    clean_env.setitem(sys.modules, "cupy", fake)
    clean_env.setitem(sys.modules, "array_api_compat.cupy",
                      types.ModuleType("array_api_compat.cupy"))
    clean_env.setattr(B, "_cache", {})
    clean_env.setenv("DEEPNET_BACKEND", "cupy")
    with refused(None, dn.BackendError, "'cupy' needs a CUDA device", "no CUDA-capable",
                 "'numpy' or 'torch'"):
        dn.DeepNet([N0, 1])


def test_torch_cuda_without_a_gpu(clean_env):
    if torch is None:
        pytest.skip("torch is not installed")
    clean_env.setattr(B, "_cache", {})
    clean_env.setattr(torch.cuda, "is_available", lambda: False)  # also on a GPU machine
    clean_env.setenv("DEEPNET_BACKEND", "torch")
    clean_env.setenv("DEEPNET_DEVICE", "cuda")
    with refused(None, dn.BackendError, "'cuda'", "no CUDA device", "use device 'cpu'"):
        dn.DeepNet([N0, 1])


@pytest.mark.parametrize("value", ["float16", "int32", "double", "float 32"])
def test_unknown_deepnet_dtype(clean_env, backend, value):
    clean_env.setenv("DEEPNET_DTYPE", value)
    with refused(None, dn.InputError, f"DEEPNET_DTYPE={value!r}", "float32, float64"):
        dn.DeepNet([N0, 1], backend=backend)


BAD_DEVICES = {"numpy": ("cuda", "CPU only"), "array_api_strict": ("device9", "device1"),
               "torch": ("tpu", "'cpu', 'cuda' or 'cuda:N'"), "cupy": ("x", "index")}


def test_bad_deepnet_device(clean_env, backend):
    device, word = BAD_DEVICES[backend.name]
    clean_env.setenv("DEEPNET_BACKEND", backend.name)
    clean_env.setenv("DEEPNET_DEVICE", device)
    with refused(None, dn.BackendError, repr(device), word):
        dn.DeepNet([N0, 1])


# -- checkpoints ---------------------------------------------------------------------------


def _saved(tmp_path, name="net.npz", **kwargs):
    net = _net("numpy", **kwargs)
    net.fit(*_data(m=20), 2, progress=False)
    path = tmp_path / name
    net.save(path)
    return net, path


def _rewrite(path, **changes):
    with np.load(path) as npz:
        entries = {k: npz[k] for k in npz.files}
    for k, v in changes.items():
        if v is None:
            entries.pop(k)
        else:
            entries[k] = v
    np.savez(path, **entries)


def _config_with(path, **edits):
    with np.load(path) as npz:
        config = json.loads(str(npz["config"]))
    config.update(edits)
    return np.array(json.dumps(config))


CHECKPOINTS = {
    "missing": ("does not exist",),
    "directory": ("is a directory",),
    "empty": ("not a .npz (zip) file", "0 bytes"),
    "text": ("not a .npz (zip) file",),
    "truncated": ("truncated",),
    "torn member": ("damaged",),
    "foreign npz": ("not a deepnet checkpoint", "'weights'"),
    "future version": ("format version 7", "reads versions 1 to 1", "upgrade deepnet"),
    "version not an int": ("format version is missing or not an integer",),
    "invalid JSON config": ("'config' is not valid JSON",),
    "config not an object": ("'config' must be a JSON object",),
    "config lacks keys": ("configuration lacks", "'hidden'"),
    "bad layer_dims": ("layer_dims must be a list of at least two positive integers",),
    "bad activation": ("invalid configuration", "unknown activation 'swish'"),
    "bad l2": ("invalid configuration", "l2 must be >= 0.0"),
    "bad dtype": ("saved dtype", "float16"),
    "architecture mismatch": ("W1 has shape (5, 3) but layer_dims [3, 6, 1] needs (6, 3)",),
    "missing parameter": ("missing parameters ['b2']",),
    "integer parameter": ("W2 has dtype int64", "expected floats"),
    "NaN parameter": ("b1 holds NaN or inf",),
    "bad history": ("'history' must be a JSON object",),
}


def _bad_checkpoint(tmp_path, case):
    _, path = _saved(tmp_path)
    raw = path.read_bytes()
    if case == "missing":
        return tmp_path / "nowhere.npz"
    if case == "directory":
        return tmp_path
    if case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("W1 = [[1, 2]]\n")
    elif case == "truncated":
        path.write_bytes(raw[: len(raw) * 2 // 3])
    elif case == "torn member":
        import zipfile

        with zipfile.ZipFile(path) as z:
            info = z.getinfo("W1.npy")
        data = bytearray(raw)
        start = info.header_offset + 30 + len(info.filename) + 90
        data[start:start + 16] = bytes(16)
        path.write_bytes(bytes(data))
    elif case == "foreign npz":
        np.savez(path, W1=np.zeros((5, 3)), weights=np.ones(3))
    else:
        changes = {
            "future version": {"__version__": np.array(7)},
            "version not an int": {"__version__": np.array("1")},
            "invalid JSON config": {"config": np.array("{'layer_dims': [3, 5, 1]")},
            "config not an object": {"config": np.array("[3, 5, 1]")},
            "config lacks keys": {"config": np.array(json.dumps({"layer_dims": [3, 5, 1]}))},
            "bad layer_dims": {"config": _config_with(path, layer_dims=[3, "5", 1])},
            "bad activation": {"config": _config_with(path, hidden=["swish"])},
            "bad l2": {"config": _config_with(path, l2=-1.0)},
            "bad dtype": {"config": _config_with(path, dtype="float16")},
            "architecture mismatch": {"config": _config_with(path, layer_dims=[3, 6, 1])},
            "missing parameter": {"b2": None},
            "integer parameter": {"W2": np.zeros((1, 5), dtype=np.int64)},
            "NaN parameter": {"b1": np.full((5, 1), np.nan)},
            "bad history": {"history": np.array(json.dumps({"cost": "low"}))},
        }[case]
        _rewrite(path, **changes)
    return path


@pytest.mark.parametrize("case", list(CHECKPOINTS))
def test_bad_checkpoints_are_refused(backend, tmp_path, case):
    path = _bad_checkpoint(tmp_path, case)
    with refused(None, dn.CheckpointError, *CHECKPOINTS[case]):
        dn.load(path, backend=backend.name, device=_device_of(backend))


@pytest.mark.parametrize(("path", "words"), [
    (None, ("path must be a str or os.PathLike", "NoneType")),
    (3, ("path must be a str or os.PathLike", "int")),
    ("", ("is not a valid file name",)),
    ("bad\x00name.npz", ("is not a valid file name",)),
    ("x" * 300 + ".npz", ("File name too long",)),
])
def test_load_and_save_refuse_what_is_not_a_file_name(backend, tmp_path, monkeypatch, path,
                                                      words):
    monkeypatch.chdir(tmp_path)
    net = _net(backend)
    with refused(None, dn.CheckpointError, "load", *words):
        dn.load(path, backend=backend.name, device=_device_of(backend))
    with refused(net, dn.CheckpointError, "save", *words):
        net.save(path)
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_a_missing_directory_and_a_directory(backend, tmp_path):
    net = _net(backend)
    with refused(net, dn.CheckpointError, "does not exist", "create it first"):
        net.save(tmp_path / "no" / "such" / "dir.npz")
    with refused(net, dn.CheckpointError, "is a directory"):
        net.save(tmp_path)
    with refused(None, dn.CheckpointError, "save needs a deepnet.DeepNet", "Parameters"):
        dn.save(net.params, tmp_path / "p.npz")


def test_load_refuses_a_bad_dtype_argument_as_the_callers_error(backend, tmp_path):
    _, path = _saved(tmp_path)
    with refused(None, dn.InputError, "dtype='float16' is not supported", "float32, float64"):
        dn.load(path, backend=backend.name, device=_device_of(backend), dtype="float16")


def test_a_checkpoint_of_another_architecture_does_not_fit_a_live_network(backend, tmp_path):
    _, path = _saved(tmp_path, dims=[N0, 6, 1])
    other = dn.load(path, backend=backend.name, device=_device_of(backend))
    net = _net(backend)
    with refused(net, dn.ShapeError, "W1 must have shape (5, 3)", "(6, 3)"):
        net.set_params(other.params)
    _, path2 = _saved(tmp_path, name="deeper.npz", dims=[N0, 5, 5, 1])
    deeper = dn.load(path2, backend=backend.name, device=_device_of(backend))
    with refused(net, dn.InputError, "unexpected ['W3', 'b3']"):
        net.set_params(deeper.params)


# -- arrays from another library or device -----------------------------------------------------

SOURCES = ["numpy", "list", "torch", "torch requires_grad", "torch bfloat16", "torch:cuda",
           "array_api_strict", "array_api_strict:device1"]
SOURCE_DEVICE = {"torch": "cpu", "torch requires_grad": "cpu", "torch bfloat16": "cpu",
                 "torch:cuda": "cuda:0", "array_api_strict": "CPU_DEVICE",
                 "array_api_strict:device1": "device1"}


def _from(source, host):
    if source == "numpy":
        return host
    if source == "list":
        return host.tolist()
    if source.startswith("torch"):
        if torch is None:
            pytest.skip("torch is not installed")
        t = torch.asarray(host.copy())
        if source == "torch:cuda":
            if not torch.cuda.is_available():
                pytest.skip("torch sees no CUDA device here")
            t = t.to("cuda:0")
        if source.endswith("requires_grad"):
            t.requires_grad_(True)
        if source.endswith("bfloat16"):
            t = t.to(torch.bfloat16)
        return t
    name, device = ALL_BACKENDS[source]
    other = dn.get_backend(name, device)
    return other.xp.asarray(host, device=other.device)


def _refuses_the_device(backend, source):
    """An array of the network's own library on another device (strict's CPU_DEVICE into
    a device1 network, a CUDA tensor into a CPU one): deepnet never copies it silently."""
    library = source.split(" ")[0].split(":")[0]
    return (source in SOURCE_DEVICE and library == backend.name
            and SOURCE_DEVICE[source] != device_label(backend.device))


@pytest.mark.parametrize("entry", ["forward", "fit", "set_params", "cost"])
@pytest.mark.parametrize("source", SOURCES)
def test_arrays_of_another_library_or_device(backend, source, entry):
    """Moved explicitly (through the host), or refused naming net.to for the same
    library on another device — never copied between devices behind the user's back."""
    net = _net(backend, dtype="float64")
    X, Y = _data(m=M)
    X = X.astype(np.float32)  # exact in bfloat16? no: compare to the moved values below
    if source.endswith("bfloat16"):
        X = np.round(X * 4) / 4  # a few bits: exact in bfloat16
    carried = _from(source, X)
    if _refuses_the_device(backend, source):
        with refused(net, dn.InputError, "is on device", backend.label, "net.to("):
            if entry == "forward":
                net.forward(carried)
            elif entry == "fit":
                net.fit(carried, Y, 1, progress=False)
            elif entry == "set_params":
                net.set_params({**net.params, "W2": _from(source, np.zeros((1, 5)))})
            else:
                net.cost(_from(source, np.full((1, M), 0.5)), Y)
        return
    twin = _net(backend, dtype="float64")
    if entry == "forward":
        got, _ = net.forward(carried)
        ref, _ = twin.forward(X)
        np.testing.assert_array_equal(assert_on_backend(got, backend, (1, M), "float64"),
                                      dn.to_numpy(ref))
    elif entry == "fit":
        net.fit(carried, Y, 2, progress=False)
        twin.fit(X, Y, 2, progress=False)
        _assert_params(net, _host(twin))
    elif entry == "set_params":
        W2 = np.round(np.linspace(-1, 1, 5)[None, :] * 4) / 4
        net.set_params({**net.params, "W2": _from(source, W2)})
        got = assert_on_backend(net.params["W2"], backend, (1, 5), "float64")
        np.testing.assert_array_equal(got, W2)
    else:
        AL = np.full((1, M), 0.5)
        assert net.cost(_from(source, AL), Y) == pytest.approx(math.log(2), rel=1e-6)


# -- inputs converted on purpose ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["bool", "int64", "int8", "uint16", "float16", "float64->32",
                                  "nested list"])
def test_converted_X(backend, kind):
    """Booleans, integers, float16 and float64 become the network's float dtype on purpose:
    each has an exact (or correctly rounded) float value."""
    net = _net(backend)  # float32
    rng = np.random.default_rng(5)
    ints = rng.integers(-3, 4, (N0, M))
    X = {"bool": ints > 0, "int64": ints, "int8": ints.astype(np.int8),
         "uint16": np.abs(ints).astype(np.uint16), "float16": ints.astype(np.float16) / 4,
         "float64->32": ints / 3.0, "nested list": (ints / 2).tolist()}[kind]
    expected = np.asarray(X).astype(np.float32)
    got, caches = net.forward(X)
    A0 = caches[0][0][0][0]
    np.testing.assert_array_equal(assert_on_backend(A0, backend, (N0, M), "float32"), expected)
    np.testing.assert_array_equal(dn.to_numpy(got), dn.to_numpy(net.forward(expected)[0]))


@pytest.mark.parametrize(("output", "Y", "same_as"), [
    ("sigmoid", np.array([[True, False, True, True]]), np.array([[1.0, 0.0, 1.0, 1.0]])),
    ("sigmoid", np.array([1, 0, 1, 1]), np.array([[1.0, 0.0, 1.0, 1.0]])),
    ("sigmoid", np.array([[0.2, 0.0, 1.0, 0.7]]), np.array([[0.2, 0.0, 1.0, 0.7]])),
    ("softmax", np.array([2, 0, 1, 1]), np.eye(3)[:, [2, 0, 1, 1]]),
    ("softmax", np.array([2.0, 0.0, 1.0, 1.0]), np.eye(3)[:, [2, 0, 1, 1]]),
    ("softmax", np.array([2, 0, 1, 1], dtype=np.uint8), np.eye(3)[:, [2, 0, 1, 1]]),
    ("softmax", np.eye(3, dtype=np.int64)[:, [2, 0, 1, 1]], np.eye(3)[:, [2, 0, 1, 1]]),
    ("linear", np.arange(8).reshape(2, 4), np.arange(8.0).reshape(2, 4)),
])
def test_converted_Y(backend, output, Y, same_as):
    """0/1 booleans and integers, integer class labels (m,) and integer one-hot matrices
    are labels on purpose; each gives exactly the cost and gradients of its float form."""
    net = _net(backend, output, dtype="float64")
    X, _ = _data(output, m=M)
    AL, caches = net.forward(X)
    # the same numbers (float64); a sum over a non-C-ordered copy may round differently
    assert net.cost(AL, Y, caches) == pytest.approx(net.cost(AL, same_as, caches), rel=1e-14)
    a, b = net.backward(AL, Y, caches), net.backward(AL, same_as, caches)
    for k in a:
        np.testing.assert_allclose(dn.to_numpy(a[k]), dn.to_numpy(b[k]), rtol=1e-14,
                                   atol=1e-15)


# == 3. numerics at the extremes ============================================================


def _exact_net(backend, dtype_name, output, W):
    dims = [W.shape[1], W.shape[0]]
    net = dn.DeepNet(dims, output=output, dtype=dtype_name, backend=backend)
    net.set_params({"W1": W, "b1": np.zeros((W.shape[0], 1))})
    return net


def test_sigmoid_and_bce_at_logits_of_1e4(backend, dtype_name):
    net = _exact_net(backend, dtype_name, "sigmoid", np.array([[1e4]]))
    X = np.array([[1.0, -1.0, 1.0, -1.0]])  # Z = ±1e4
    Y = np.array([[1.0, 0.0, 0.0, 1.0]])  # right, right, wrong, wrong
    AL, caches = net.forward(X)
    A = assert_on_backend(AL, backend, (1, 4), dtype_name)
    np.testing.assert_array_equal(A, [[1.0, 0.0, 1.0, 0.0]])
    # from the logits: 0 + 0 + 1e4 + 1e4 over m = 4, exactly
    assert net.cost(AL, Y, caches) == 5000.0
    grads = net.backward(AL, Y, caches)
    dZ = A - Y  # [0, 0, 1, -1]
    np.testing.assert_array_equal(dn.to_numpy(grads["dW1"]), dZ @ X.T / 4)  # 0.5
    np.testing.assert_array_equal(dn.to_numpy(grads["db1"]), dZ.sum(1, keepdims=True) / 4)
    # from A[L] alone, with exact 0s and 1s: clipped, never log(0) (-W error would raise)
    tiny = np.finfo(dtype_name).smallest_normal
    cost = net.cost(AL, Y)
    assert math.isfinite(cost)
    assert cost == pytest.approx(-2 * math.log(tiny) / 4, rel=1e-6)


def test_softmax_and_ce_at_logits_of_1e4(backend, dtype_name):
    W = np.array([[1e4, 0.0], [0.0, 1e4], [-1e4, -1e4]])
    net = _exact_net(backend, dtype_name, "softmax", W)
    X = np.array([[1.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    y = np.array([0, 2, 2])  # right, wrong by 2e4, right
    AL, caches = net.forward(X)
    A = assert_on_backend(AL, backend, (3, 3), dtype_name)
    np.testing.assert_array_equal(A, np.eye(3))
    assert net.cost(AL, y, caches) == pytest.approx(2e4 / 3, rel=1e-6)
    grads = net.backward(AL, y, caches)
    dZ = A - np.eye(3)[:, y]
    np.testing.assert_allclose(dn.to_numpy(grads["dW1"]), dZ @ X.T / 3, rtol=1e-6)
    np.testing.assert_allclose(dn.to_numpy(grads["db1"]), dZ.sum(1, keepdims=True) / 3,
                               rtol=1e-6)
    tiny = np.finfo(dtype_name).smallest_normal
    cost = net.cost(AL, y)  # A has an exact 0 at the true class of the middle example
    assert cost == pytest.approx(-math.log(tiny) / 3, rel=1e-6)


@pytest.mark.parametrize("hidden", ["sigmoid", "tanh", "relu", "leaky_relu"])
def test_hidden_activations_at_1e4_stay_finite(backend, dtype_name, hidden):
    net = dn.DeepNet([1, 2, 1], hidden=hidden, output="sigmoid", dtype=dtype_name,
                     backend=backend)
    net.set_params({"W1": np.array([[1e4], [-1e4]]), "b1": np.zeros((2, 1)),
                    "W2": np.array([[1e-4, -1e-4]]), "b2": np.zeros((1, 1))})
    X = np.array([[1.0, -1.0, 0.5]])
    Y = np.array([[1.0, 0.0, 1.0]])
    AL, caches = net.forward(X)
    grads = net.backward(AL, Y, caches)
    assert math.isfinite(net.cost(AL, Y, caches))
    for g in grads.values():
        assert np.all(np.isfinite(dn.to_numpy(g)))
    Z1 = np.array([[1e4], [-1e4]]) @ X
    A1 = {"sigmoid": 1 / (1 + np.exp(-np.clip(Z1, -700, 700))), "tanh": np.tanh(Z1),
          "relu": np.maximum(Z1, 0), "leaky_relu": np.maximum(Z1, 0.01 * Z1)}[hidden]
    np.testing.assert_allclose(dn.to_numpy(caches[0][0][2]), A1, rtol=1e-6, atol=1e-30)


def _unscaled(seed=0, m=64):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N0, m)) * 1e3  # raw, unscaled features ~1e3
    return X, rng


def test_float32_on_unscaled_inputs_diverges_with_a_reason(backend):
    X, rng = _unscaled()
    Y = X[0:1] * 0.5 + rng.standard_normal((1, X.shape[1]))
    net = dn.DeepNet([N0, 8, 1], output="linear", dtype="float32", seed=0, backend=backend)
    snapshots = [_host(net)]
    record = lambda n, epoch, logs: snapshots.append(_host(n))  # noqa: E731
    with pytest.raises(dn.DivergenceError) as info:
        net.fit(X, Y, 100, batch_size=None, optimizer="gd", learning_rate=0.01,
                callbacks=[record], progress=False)
    message = str(info.value)
    done = net.history.epochs
    assert f"diverged in epoch {done + 1} of 100" in message
    assert "scale the inputs" in message and "smaller learning rate" in message
    assert "α = 0.01" in message
    assert all(math.isfinite(c) for c in net.history.cost) and len(snapshots) == done + 1
    _assert_params(net, snapshots[-1])  # the last finite epoch's parameters
    for v in net.params.values():
        assert np.all(np.isfinite(dn.to_numpy(v)))


def test_float32_on_unscaled_inputs_trains_with_adam(backend):
    """Adam's steps do not scale with the gradient, so unscaled inputs train (slowly)."""
    X, _ = _unscaled()
    Y = (X[0:1] + 0.5 * X[1:2] > 0).astype(np.float64)
    net = dn.DeepNet([N0, 8, 1], output="sigmoid", dtype="float32", seed=0, backend=backend)
    history = net.fit(X, Y, 30, batch_size=16, optimizer="adam", learning_rate=1e-3,
                      progress=False)
    assert history.epochs == 30
    assert all(math.isfinite(c) for c in history.cost)
    assert history.cost[-1] < 0.75 * history.cost[0]
    for v in net.params.values():
        assert np.all(np.isfinite(dn.to_numpy(v)))


# == 4. faults =============================================================================


def _blobs(m=40, seed=8):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, m)
    X = rng.standard_normal((N0, 3))[:, y] * 2 + rng.standard_normal((N0, m))
    return X, y


def _opt_state(opt):
    return opt.t, {k: {n: dn.to_numpy(v).copy() for n, v in slot.items() if n != "scratch"}
                   for k, slot in opt.state.items()}


def _assert_same_state(a, b):
    assert a[0] == b[0]
    assert sorted(a[1]) == sorted(b[1])
    for k in a[1]:
        assert sorted(a[1][k]) == sorted(b[1][k])
        for n in a[1][k]:
            np.testing.assert_array_equal(a[1][k][n], b[1][k][n])


def test_divergence_puts_back_the_last_finite_parameters_and_optimizer_state(backend):
    X, _ = _unscaled(m=40)
    Y = X[0:1] * 0.5
    net = dn.DeepNet([N0, 6, 1], output="linear", dtype="float64", seed=1, backend=backend)
    opt = optimizers.Momentum(learning_rate=3e-4)
    params, states = [], []

    def record(n, epoch, logs):
        params.append(_host(n))
        states.append(_opt_state(opt))

    with pytest.raises(dn.DivergenceError, match="were put back"):
        net.fit(X, Y, 200, batch_size=8, optimizer=opt, callbacks=[record], progress=False)
    assert net.history.epochs == len(params) >= 1
    _assert_params(net, params[-1])
    _assert_same_state(_opt_state(opt), states[-1])  # no NaN moments left behind
    opt.check_state(net._update_targets())  # the same optimizer may carry on from there


def _interrupting_callback(at_epoch, snapshots):
    def cb(net, epoch, logs):
        snapshots.append(_host(net))
        if epoch == at_epoch:
            raise KeyboardInterrupt

    return cb


FIT_KW = {"batch_size": 8, "learning_rate": 0.05, "seed": 2, "progress": False}


def test_keyboard_interrupt_from_a_callback(backend, tmp_path):
    X, y = _blobs()
    net = _net(backend, "softmax", dtype="float64")
    snapshots = []
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, y, 10, optimizer="adam", callbacks=[_interrupting_callback(2, snapshots)],
                **FIT_KW)
    assert net.history.epochs == 3 and len(snapshots) == 3
    _assert_params(net, snapshots[-1])  # epoch 3 completed before the callback ran
    ref = _net(backend, "softmax", dtype="float64")
    ref.fit(X, y, 3, optimizer="adam", **FIT_KW)
    _assert_params(net, _host(ref))
    assert net.history.cost == ref.history.cost
    net.save(tmp_path / "after.npz")  # what `deepnet train` does on Ctrl-C
    back = dn.load(tmp_path / "after.npz", backend=backend.name, device=_device_of(backend))
    _assert_params(back, snapshots[-1])
    assert back.history.cost == net.history.cost


@pytest.mark.parametrize("where", ["train_step", "optimizer.step"])
def test_keyboard_interrupt_mid_epoch(backend, monkeypatch, where):
    """Raised after the 3rd of 5 updates of epoch 3: the network goes back to the end of
    epoch 2 — parameters, optimizer moments and step count — with a 2-epoch History."""
    X, y = _blobs()
    opt = optimizers.Adam(learning_rate=0.05)
    net = _net(backend, "softmax", dtype="float64")
    calls = []
    if where == "train_step":
        from deepnet import loop

        real = loop.step

        def step(n, parts, optimizer, m, **kw):
            result = real(n, parts, optimizer, m, **kw)
            calls.append(1)
            if len(calls) == 13:
                raise KeyboardInterrupt
            return result

        monkeypatch.setattr(loop, "step", step)
    else:
        real = opt.step

        def step(params, grads):
            real(params, grads)  # the update happened: the live arrays moved
            calls.append(1)
            if len(calls) == 13:
                raise KeyboardInterrupt

        monkeypatch.setattr(opt, "step", step)
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, y, 10, optimizer=opt, **FIT_KW)
    assert len(calls) == 13 and net.history.epochs == 2
    ref_opt = optimizers.Adam(learning_rate=0.05)
    ref = _net(backend, "softmax", dtype="float64")
    ref.fit(X, y, 2, optimizer=ref_opt, **FIT_KW)
    _assert_params(net, _host(ref))
    _assert_same_state(_opt_state(opt), _opt_state(ref_opt))
    assert net.history.cost == ref.history.cost


# -- saves that fail, are killed, or race ----------------------------------------------------------


def _failing_writer(monkeypatch, error):
    real = np.savez

    def write_part_then_fail(file, **arrays):
        real(file, **dict(list(arrays.items())[:5]))  # some bytes reach the temp file
        file.flush()
        assert os.path.getsize(file.name) > 0
        raise error

    monkeypatch.setattr(serialization.np, "savez", write_part_then_fail)


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"),
                                   RuntimeError("zlib stream error"), KeyboardInterrupt()],
                         ids=["OSError", "RuntimeError", "KeyboardInterrupt"])
def test_a_save_that_fails_midway_keeps_the_previous_checkpoint(backend, tmp_path,
                                                                monkeypatch, error):
    old = _net(backend)
    path = tmp_path / "ckpt.npz"
    old.save(path)
    before = path.read_bytes()
    new = dn.DeepNet([N0, 5, 1], hidden="tanh", seed=99, backend=backend)
    _failing_writer(monkeypatch, error)
    if isinstance(error, KeyboardInterrupt):
        with pytest.raises(KeyboardInterrupt):
            new.save(path)
    else:
        with refused(new, dn.CheckpointError, "could not write the checkpoint",
                     type(error).__name__, str(error), "unchanged"):
            new.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    _assert_params(dn.load(path, backend=backend.name, device=_device_of(backend)),
                   _host(old))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.npz"]  # no temporary left


def test_a_failing_fsync_keeps_the_previous_checkpoint(backend, tmp_path, monkeypatch):
    old = _net(backend)
    path = tmp_path / "ckpt.npz"
    old.save(path)

    def fail(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(serialization.os, "fsync", fail)
    with refused(None, dn.CheckpointError, "Input/output error", "unchanged"):
        dn.DeepNet([N0, 5, 1], seed=7, backend=backend).save(path)
    monkeypatch.undo()
    _assert_params(dn.load(path, backend="numpy"), _host(old))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.npz"]


_CHILD = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    import deepnet as dn
    from deepnet import serialization

    path, mode, backend, device, seed, rounds = sys.argv[1:7]
    device = device or None
    dims = [64, 96, 96, 10]
    net = dn.DeepNet(dims, output="softmax", seed=int(seed), backend=backend, device=device)
    if mode == "hang":  # write part of the temporary file, say so, and hang there
        real = np.savez
        def hang(file, **arrays):
            real(file, **dict(list(arrays.items())[:6]))
            file.flush()
            os.fsync(file.fileno())
            print("writing", flush=True)
            time.sleep(120)
        serialization.np.savez = hang
        net.save(path)
    else:  # on "go", save `rounds` times (killed before the end, or racing another)
        print("ready", flush=True)
        sys.stdin.readline()
        for i in range(int(rounds)):
            net.save(path)
""")


def _child(tmp_path, backend, path, mode, seed, rounds=0):
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    device = _device_of(backend) or ""
    return subprocess.Popen(
        [sys.executable, str(script), str(path), mode, backend.name, device, str(seed),
         str(rounds)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)


def _go(*children):
    for child in children:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()


def _twin(backend, seed):
    return dn.DeepNet([64, 96, 96, 10], output="softmax", seed=seed, backend="numpy")


def _same(a, b):
    return all(np.array_equal(dn.to_numpy(a.params[k]), dn.to_numpy(v))
               for k, v in b.params.items())


def test_a_save_killed_midway_keeps_the_previous_checkpoint(backend, tmp_path):
    path = tmp_path / "ckpt.npz"
    old = _twin(backend, seed=1)
    old.save(path)
    before = path.read_bytes()
    child = _child(tmp_path, backend, path, "hang", seed=2)
    try:
        line = child.stdout.readline()
        assert line.strip() == "writing", child.stderr.read()
        temps = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        assert len(temps) == 1 and temps[0].stat().st_size > 0  # the child is mid-write
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert path.read_bytes() == before
    assert _same(dn.load(path, backend=backend.name, device=_device_of(backend)), old)
    # the killed writer's temporary file stays (nothing runs after SIGKILL); it is hidden
    # (.ckpt.npz.*.tmp) and never read
    assert [p.name.startswith(".ckpt.npz.") for p in tmp_path.iterdir()
            if p.name.endswith(".tmp")] == [True]


def test_a_save_killed_at_a_random_moment_leaves_a_whole_checkpoint(backend, tmp_path):
    path = tmp_path / "ckpt.npz"
    old, new = _twin(backend, seed=1), _twin(backend, seed=2)
    old.save(path)
    rng = np.random.default_rng(0)
    for delay in rng.uniform(0.0, 0.05, 3):
        child = _child(tmp_path, backend, path, "loop", seed=2, rounds=10**6)
        try:
            _go(child)
            time.sleep(delay)
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.kill()
            child.communicate(timeout=30)
        loaded = dn.load(path, backend=backend.name, device=_device_of(backend))
        assert _same(loaded, old) or _same(loaded, new)


def test_two_processes_saving_to_one_path_never_tear_it(backend, tmp_path):
    path = tmp_path / "shared.npz"
    nets = {s: _twin(backend, seed=s) for s in (11, 12)}
    nets[11].save(path)
    children = [_child(tmp_path, backend, path, "rounds", seed=s, rounds=150) for s in nets]
    reads = 0
    try:
        _go(*children)
        while any(c.poll() is None for c in children):  # read while they write
            loaded = dn.load(path, backend="numpy")
            assert any(_same(loaded, n) for n in nets.values())
            reads += 1
    finally:
        for child in children:
            _, err = child.communicate(timeout=120)
            assert child.returncode == 0, err
    assert reads > 0
    final = dn.load(path, backend=backend.name, device=_device_of(backend))
    assert sum(_same(final, n) for n in nets.values()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["child.py", "shared.npz"]


# -- the command line ------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "words"), [
    (["--epochs", "0"], ("--epochs must be a positive integer", "0")),
    (["--learning-rate", "nan"], ("learning_rate must be a finite real number", "nan")),
    (["--learning-rate", "-1"], ("learning_rate must be > 0.0",)),
    (["--keep-prob", "1.5"], ("keep_prob must be <= 1.0",)),
    (["--l2", "-2"], ("l2 must be >= 0.0",)),
    (["--validation", "1.5"], ("--validation must be a fraction in [0, 1)",)),
    (["--layers", "3,8,1"], ("--layers must start with the 2 input features",)),
    (["--layers", "2,8,3"], ("two classes", "must end with 1")),
    (["--hidden", "swish"], ("unknown activation 'swish'",)),
    (["--init", "glorot"], ("unknown init 'glorot'",)),
    (["--checkpoint", "FILE/x.npz"], ("cannot save the checkpoint", "not a directory")),
])
def test_the_command_line_reports_bad_flags_in_one_line(tmp_path, monkeypatch, capsys, args,
                                                        words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "FILE").write_text("a file where a directory should be")
    code = cli.main(["train", "--dataset", "moons", "--no-progress", "--no-plot",
                     "--epochs", "1", *args])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("deepnet train: error: ") and err.count("\n") == 1, err
    for word in words:
        assert word in err
    assert "Traceback" not in err


@pytest.mark.parametrize("args", [["--layers", "3,0,1"], ["--batch-size", "x"],
                                  ["--backend", "jax"], ["--dtype", "float16"],
                                  ["--optimizer", "sgd"]])
def test_the_command_line_refuses_malformed_flags(capsys, args):
    with pytest.raises(SystemExit) as info:
        cli.main(["train", *args])
    assert info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_set_params_never_aliases_the_callers_arrays(backend):
    net = _net(backend, dtype="float64")
    X, Y = _data(m=20)
    given = {k: backend.xp.asarray(dn.to_numpy(v), device=backend.device)
             for k, v in net.params.items()}
    if torch is not None and backend.name == "torch":
        for v in given.values():
            v.requires_grad_(True)
    copies = {k: dn.to_numpy(v).copy() for k, v in given.items()}
    net.set_params(given)
    net.fit(X, Y, 2, learning_rate=0.5, progress=False)  # updates in place
    for k, v in given.items():
        np.testing.assert_array_equal(dn.to_numpy(v), copies[k])
    assert not np.array_equal(dn.to_numpy(net.params["W1"]), copies["W1"])
