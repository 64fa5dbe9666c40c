"""backend: choosing the library, device and dtype; moving arrays in and out."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import types

import numpy as np
import pytest
from conftest import ALL_BACKENDS, assert_on_backend

import deepnet as dn
from deepnet import backend as B
from deepnet.backend import device_label


@pytest.fixture
def clean_default(monkeypatch):
    """No set_backend/use_backend override and no DEEPNET_* variables, restored after."""
    monkeypatch.setattr(B, "_override", [])
    for var in ("DEEPNET_BACKEND", "DEEPNET_DEVICE", "DEEPNET_DTYPE"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def _name_and_device(request) -> tuple[str, str | None]:
    """The ``(name, device)`` the conftest fixture loaded this test's backend with."""
    return ALL_BACKENDS[request.node.callspec.params["backend"]]


# -- to_numpy and asarray on every backend -------------------------------------------------


def test_to_numpy_round_trip(backend, dtype_name, rng):
    host = rng.standard_normal((3, 5)).astype(dtype_name)
    x = backend.asarray(host, backend.dtype(dtype_name))
    back = assert_on_backend(x, backend, shape=(3, 5), dtype_name=dtype_name)
    assert isinstance(back, np.ndarray)
    assert back.dtype == np.dtype(dtype_name)
    np.testing.assert_array_equal(back, host)


def test_to_numpy_of_integer_and_bool_arrays(backend):
    host = np.array([[0, 3, -2]], dtype=np.int64)
    x = backend.asarray(host)
    assert backend.owns(x)
    np.testing.assert_array_equal(dn.to_numpy(x), host)
    mask = backend.xp.asarray(host, device=backend.device) > 0
    np.testing.assert_array_equal(dn.to_numpy(mask), host > 0)


def test_to_numpy_of_numpy_is_identity():
    host = np.arange(6.0).reshape(2, 3)
    assert dn.to_numpy(host) is host


def test_asarray_from_lists_and_ints_casts_to_the_dtype(backend, dtype_name):
    x = backend.asarray([[1, 2], [3, 4]], backend.dtype(dtype_name))
    host = assert_on_backend(x, backend, shape=(2, 2), dtype_name=dtype_name)
    np.testing.assert_array_equal(host, np.array([[1, 2], [3, 4]], dtype=dtype_name))


def test_asarray_moves_another_librarys_array(backend):
    torch = pytest.importorskip("torch")
    if backend.name == "torch":
        strict = dn.get_backend("array_api_strict")
        other = strict.asarray(np.arange(6.0).reshape(2, 3))
    else:
        other = torch.arange(6.0, dtype=torch.float64).reshape(2, 3)
    x = backend.asarray(other, backend.dtype("float64"))
    host = assert_on_backend(x, backend, shape=(2, 3), dtype_name="float64")
    np.testing.assert_array_equal(host, np.arange(6.0).reshape(2, 3))


@pytest.mark.parametrize(
    "bad, words",
    [
        (np.array([[1 + 2j, 3j]]), ["real numbers", "complex"]),
        (np.array([["a", "b"]]), ["real numbers"]),
        (np.array([[object(), None]], dtype=object), ["real numbers"]),
    ],
    ids=["complex", "string", "object"],
)
def test_asarray_refuses_non_real_inputs(backend, bad, words):
    with pytest.raises(dn.InputError) as info:
        backend.asarray(bad, backend.dtype("float64"), what="X")
    message = str(info.value)
    assert "X" in message
    for word in words:
        assert word in message


def test_asarray_refuses_an_own_complex_array():
    torch = pytest.importorskip("torch")
    backend = dn.get_backend("torch")
    with pytest.raises(dn.InputError, match="complex"):
        backend.asarray(torch.zeros((2, 2), dtype=torch.complex64), what="X")


def test_device1_refuses_an_array_on_cpu_device():
    strict_cpu = dn.get_backend("array_api_strict")
    strict_dev1 = dn.get_backend("array_api_strict", "device1")
    x = strict_cpu.asarray(np.ones((2, 3)))
    with pytest.raises(dn.InputError) as info:
        strict_dev1.asarray(x, strict_dev1.dtype("float64"), what="X")
    message = str(info.value)
    assert "CPU_DEVICE" in message and "device1" in message
    assert "net.to" in message


def test_device1_arrays_reach_the_host_only_through_to_numpy():
    """The stand-in GPU really does refuse a silent host copy; to_numpy is the door."""
    strict_dev1 = dn.get_backend("array_api_strict", "device1")
    x = strict_dev1.asarray(np.arange(4.0))
    with pytest.raises((RuntimeError, TypeError, ValueError)):
        np.asarray(x)
    np.testing.assert_array_equal(dn.to_numpy(x), np.arange(4.0))


# -- dtypes --------------------------------------------------------------------------------


def test_backend_dtypes(backend, dtype_name):
    assert backend.dtype(dtype_name) == getattr(backend.xp, dtype_name)


@pytest.mark.parametrize("bad", ["float16", "int32", "double", "", 64])
def test_unknown_dtype_names_are_refused(bad):
    with pytest.raises(dn.InputError) as info:
        B.resolve_dtype_name(bad)
    assert "float32, float64" in str(info.value)
    with pytest.raises(dn.InputError, match="valid dtypes: float32, float64"):
        dn.DeepNet([2, 1], dtype=bad, backend="numpy")


def test_dtype_objects_are_understood():
    assert B.resolve_dtype_name(np.float64) == "float64"
    assert B.resolve_dtype_name(np.dtype("float32")) == "float32"
    import array_api_strict

    assert B.resolve_dtype_name(array_api_strict.float64) == "float64"
    torch = pytest.importorskip("torch")
    assert B.resolve_dtype_name(torch.float32) == "float32"


# -- environment variables -------------------------------------------------------------


def test_default_is_numpy_float32(clean_default):
    assert dn.get_backend().name == "numpy"
    assert B.resolve_dtype_name() == "float32"
    net = dn.DeepNet([2, 3, 1])
    assert net.backend.name == "numpy"
    assert net.dtype_name == "float32"
    assert dn.to_numpy(net.params["W1"]).dtype == np.float32


def test_deepnet_backend_and_device_variables(clean_default, backend, request):
    name, device = _name_and_device(request)
    clean_default.setenv("DEEPNET_BACKEND", name)
    if device is not None:
        clean_default.setenv("DEEPNET_DEVICE", device)
    assert dn.get_backend() is backend
    net = dn.DeepNet([2, 3, 1])
    assert net.backend is backend
    assert_on_backend(net.params["W1"], backend, shape=(3, 2))


def test_deepnet_backend_variable_is_case_and_space_tolerant(clean_default):
    clean_default.setenv("DEEPNET_BACKEND", " Array_API_Strict ")
    assert dn.get_backend().name == "array_api_strict"


def test_deepnet_device_variable_picks_the_device(clean_default):
    clean_default.setenv("DEEPNET_BACKEND", "array_api_strict")
    clean_default.setenv("DEEPNET_DEVICE", "device1")
    net = dn.DeepNet([2, 1])
    assert device_label(net.params["W1"].device) == "device1"


@pytest.mark.parametrize("dtype_name_env", ["float32", "float64"])
def test_deepnet_dtype_variable(clean_default, dtype_name_env):
    clean_default.setenv("DEEPNET_DTYPE", dtype_name_env)
    net = dn.DeepNet([2, 1])
    assert net.dtype_name == dtype_name_env
    assert dn.to_numpy(net.params["W1"]).dtype == np.dtype(dtype_name_env)
    # an explicit dtype wins over the variable
    other = "float64" if dtype_name_env == "float32" else "float32"
    assert dn.DeepNet([2, 1], dtype=other).dtype_name == other


def test_deepnet_dtype_variable_unknown(clean_default):
    clean_default.setenv("DEEPNET_DTYPE", "float16")
    with pytest.raises(dn.InputError) as info:
        dn.DeepNet([2, 1])
    assert "DEEPNET_DTYPE" in str(info.value) and "float16" in str(info.value)
    assert "float32, float64" in str(info.value)


def test_deepnet_backend_variable_unknown(clean_default):
    clean_default.setenv("DEEPNET_BACKEND", "jax")
    with pytest.raises(dn.BackendError) as info:
        dn.get_backend()
    message = str(info.value)
    assert "DEEPNET_BACKEND" in message and "jax" in message
    for name in dn.BACKEND_NAMES:
        assert name in message
    with pytest.raises(dn.BackendError, match="jax"):
        dn.DeepNet([2, 1])


@pytest.mark.parametrize("bad", ["jax", "", "np", 3])
def test_unknown_backend_names(bad):
    with pytest.raises(dn.BackendError) as info:
        dn.get_backend(bad)
    message = str(info.value)
    assert "unknown backend" in message
    for name in dn.BACKEND_NAMES:
        assert name in message
    with pytest.raises(dn.BackendError, match="unknown backend"):
        dn.set_backend(bad)
    with pytest.raises(dn.BackendError, match="unknown backend"):
        dn.DeepNet([2, 1], backend=bad)


def test_unknown_devices():
    with pytest.raises(dn.BackendError, match="CPU only"):
        dn.get_backend("numpy", "cuda")
    with pytest.raises(dn.BackendError, match="device1"):
        dn.get_backend("array_api_strict", "device9")


def test_torch_cuda_missing_is_a_backend_error():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    with pytest.raises(dn.BackendError, match="no CUDA device"):
        dn.get_backend("torch", "cuda")


def test_cupy_here_is_usable_or_says_why():
    try:
        backend = dn.get_backend("cupy")
    except dn.BackendError as exc:
        message = str(exc)
        assert ("cupy-cuda12x" in message) or ("CUDA device" in message), message
        assert "deepnet[" not in message  # "deepnet" on PyPI is an unrelated project
    else:
        assert backend.name == "cupy"


def test_cupy_not_installed_names_the_real_packages(monkeypatch):
    monkeypatch.setattr(B, "_cache", {})
    real_import = importlib.import_module

    def no_cupy(name, *args, **kwargs):
        if name == "cupy" or name.startswith("cupy."):
            raise ModuleNotFoundError("No module named 'cupy'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", no_cupy)
    with pytest.raises(dn.BackendError) as info:
        dn.get_backend("cupy")
    message = str(info.value)
    assert "not installed" in message
    assert "pip install cupy-cuda12x" in message and "pip install cupy-cuda13x" in message
    assert "deepnet[" not in message  # "deepnet" on PyPI is an unrelated project


def _fake_cupy(monkeypatch, get_device_count):
    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDeviceCount=get_device_count)
    )
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setitem(
        sys.modules, "array_api_compat.cupy", types.ModuleType("array_api_compat.cupy")
    )
    monkeypatch.setattr(B, "_cache", {})


def test_cupy_without_a_driver_says_there_is_no_cuda_device(monkeypatch):
    def no_driver():
        raise RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient")

    _fake_cupy(monkeypatch, no_driver)
    with pytest.raises(dn.BackendError) as info:
        dn.get_backend("cupy")
    message = str(info.value)
    assert "needs a CUDA device" in message and "insufficient" in message


def test_cupy_with_zero_devices_says_so(monkeypatch):
    _fake_cupy(monkeypatch, lambda: 0)
    with pytest.raises(dn.BackendError, match="needs a CUDA device"):
        dn.get_backend("cupy")


def test_available_backends_reports_every_name():
    report = dn.available_backends()
    assert set(report) == set(dn.BACKEND_NAMES)
    assert report["numpy"] == "ok"
    assert report["array_api_strict"] == "ok"
    for name, status in report.items():
        assert status == "ok" or name in status or "install" in status or "CUDA" in status


# -- set_backend and use_backend ----------------------------------------------------------


def test_set_backend_overrides_the_environment(clean_default):
    clean_default.setenv("DEEPNET_BACKEND", "numpy")
    chosen = dn.set_backend("array_api_strict", device="device1")
    assert chosen.name == "array_api_strict"
    assert dn.get_backend() is chosen
    net = dn.DeepNet([2, 1])
    assert net.backend is chosen
    assert device_label(net.params["W1"].device) == "device1"
    again = dn.set_backend("numpy")
    assert dn.get_backend() is again
    assert dn.DeepNet([2, 1]).backend.name == "numpy"


def test_use_backend_nests_and_restores(clean_default):
    outside = dn.get_backend()
    assert outside.name == "numpy"
    with dn.use_backend("array_api_strict") as first:
        assert dn.get_backend() is first
        assert dn.DeepNet([2, 1]).backend is first
        with dn.use_backend("array_api_strict", device="device1") as second:
            assert second is not first
            assert dn.get_backend() is second
            assert device_label(dn.DeepNet([2, 1]).params["W1"].device) == "device1"
        assert dn.get_backend() is first
    assert dn.get_backend() is outside


def test_use_backend_restores_after_an_exception(clean_default):
    with pytest.raises(KeyError), dn.use_backend("array_api_strict"):
        raise KeyError("boom")
    assert dn.get_backend().name == "numpy"


def test_use_backend_inside_set_backend_returns_to_it(clean_default):
    chosen = dn.set_backend("array_api_strict")
    with dn.use_backend("numpy"):
        assert dn.get_backend().name == "numpy"
    assert dn.get_backend() is chosen


def test_set_backend_inside_use_backend_outlives_the_block(clean_default):
    # numpy and array_api_strict: both are installed wherever the test extra is (torch is
    # optional, and this test is about the override stack, not about a library)
    with dn.use_backend("numpy"):
        chosen = dn.set_backend("array_api_strict")
        assert dn.get_backend().name == "numpy"  # the block still wins inside it
    assert dn.get_backend() is chosen


def test_use_backend_unknown_name_changes_nothing(clean_default):
    with pytest.raises(dn.BackendError), dn.use_backend("jax"):
        pass  # pragma: no cover
    assert B._override == []


def test_explicit_backend_argument_wins_over_use_backend(clean_default):
    with dn.use_backend("array_api_strict"):
        assert dn.DeepNet([2, 1], backend="numpy").backend.name == "numpy"


# -- host RNG ----------------------------------------------------------------------------


def test_host_rng():
    gen = np.random.default_rng(3)
    assert B.host_rng(gen) is gen
    np.testing.assert_array_equal(
        B.host_rng(7).standard_normal(4), np.random.default_rng(7).standard_normal(4)
    )
    assert isinstance(B.host_rng(None), np.random.Generator)


@pytest.mark.parametrize("bad", [True, -1, 1.5, "0"])
def test_host_rng_refuses_bad_seeds(bad):
    with pytest.raises(dn.InputError, match="seed"):
        B.host_rng(bad)
    with pytest.raises(dn.InputError, match="seed"):
        dn.DeepNet([2, 1], seed=bad, backend="numpy")


# -- lazy imports ------------------------------------------------------------------------


def _run_python(code: str, **env) -> str:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPNET_")}
    full_env.update(env)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full_env, check=True
    )
    return done.stdout.strip()


def test_importing_deepnet_imports_neither_torch_nor_cupy():
    code = (
        "import sys, deepnet as dn\n"
        "print('torch' in sys.modules, 'cupy' in sys.modules)\n"
        "net = dn.DeepNet([2, 3, 1], backend='numpy')\n"
        "import numpy as np\n"
        "net.forward(np.ones((2, 4)))\n"
        "print('torch' in sys.modules, 'cupy' in sys.modules)\n"
    )
    # DEEPNET_BACKEND=torch must not be read (or acted on) at import time either
    out = _run_python(code, DEEPNET_BACKEND="torch")
    assert out.splitlines() == ["False False", "False False"]


def test_the_lazy_import_check_can_see_torch():
    """Control for the test above: using the torch backend does import torch."""
    pytest.importorskip("torch")
    code = (
        "import sys, deepnet as dn\n"
        "dn.DeepNet([2, 1])\n"
        "print('torch' in sys.modules)\n"
    )
    assert _run_python(code, DEEPNET_BACKEND="torch") == "True"
