"""Choosing the array library, device and dtype; moving arrays in and out.

This is the one compat module: only here are ``array_api_compat``, NumPy-as-a-backend,
CuPy and torch imported. A backend is one entry in :data:`_LOADERS`. Nothing is read
from the environment at import time, and CuPy or torch are imported only when a
backend that needs them is first used.

Environment variables (read when a default backend is asked for):

``DEEPNET_BACKEND``  ``numpy`` (default) | ``cupy`` | ``torch`` | ``array_api_strict``
``DEEPNET_DEVICE``   e.g. ``cuda:1`` (torch), ``1`` (cupy), ``device1`` (array_api_strict)
``DEEPNET_DTYPE``    ``float32`` (default) | ``float64``

Names, devices and dtypes are normalised once, here, whether they come from these
variables or from arguments: case and surrounding spaces do not matter (a variable that
is empty or only spaces is unset), and each device
has one canonical name (torch's ``cpu:0`` is ``cpu``, ``cuda`` is the current
``cuda:N``), so one device is always one ``Backend`` object.

The default backend is, in order: the innermost :func:`use_backend` block of the current
thread or asyncio task (a ``contextvars`` variable: blocks in other threads or tasks do not
leak in), else the process default of :func:`set_backend`, else the variables above.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from deepnet.errors import BackendError, InputError

Array = Any  # any array of a standard-conforming library

BACKEND_NAMES = ("numpy", "cupy", "torch", "array_api_strict")
DTYPE_NAMES = ("float32", "float64")

# The real packages: "deepnet" on PyPI is an unrelated project, so no hint names an extra
# of it (in a clone, the extras of pyproject.toml install the same packages).
_INSTALL_HINT = {
    "numpy": "pip install numpy",
    "cupy": "pip install cupy-cuda12x (CUDA 12) or pip install cupy-cuda13x (CUDA 13)",
    "torch": "pip install torch",
    "array_api_strict": "pip install array-api-strict",
}


@dataclass(eq=False)
class Backend:
    """An array library on one device.

    Attributes
    ----------
    name : one of :data:`BACKEND_NAMES`.
    xp : the library's Array API namespace (``array_api_compat`` wrapped where needed).
    device : the device object arrays are created on.
    lib : the native library (numpy, cupy, torch), used only by the ``out=`` hook;
        ``None`` where no such hook exists (array_api_strict).
    """

    name: str
    xp: ModuleType
    device: Any
    lib: ModuleType | None = None
    _sync: Any = field(default=None, repr=False)

    # -- identity -------------------------------------------------------------------
    @property
    def label(self) -> str:
        """``name`` or ``name:device`` for anything but the library's default device."""
        dev = device_label(self.device)
        return self.name if dev in ("cpu", "CPU_DEVICE") else f"{self.name}:{dev}"

    def __repr__(self) -> str:
        return f"Backend({self.label!r})"

    # -- dtypes -----------------------------------------------------------------------
    def dtype(self, name: str | None = None) -> Any:
        """The library's floating dtype called ``name`` (default: ``DEEPNET_DTYPE``)."""
        return getattr(self.xp, resolve_dtype_name(name))

    # -- moving arrays in -------------------------------------------------------------
    def owns(self, x: Array) -> bool:
        """Whether ``x`` is an array of this library (on any device)."""
        return _library_of(x) == self.name

    def asarray(self, x: Any, dtype: Any = None, *, what: str = "array") -> Array:
        """Put ``x`` on this backend's device, as ``dtype`` when given.

        NumPy arrays, Python sequences and other libraries' arrays are moved explicitly
        (through :func:`to_numpy` for the latter). An array of this library on another
        device is refused: deepnet never copies between devices behind the user's back.
        Strings, objects and complex numbers are refused; integers and booleans become
        ``dtype`` on purpose.
        """
        xp = self.xp
        if isinstance(x, np.ndarray):
            x = host_input(x, what)  # np.matrix, masked arrays, byte order
        if self.owns(x):
            if not _same_device(x.device, self.device):
                raise InputError(
                    f"{what} is on device {device_label(x.device)!r} but the network is on "
                    f"{self.label!r}; move it first ({_move_hint(self)}, or dn.to_numpy(x) "
                    f"for a host copy) or move the network with net.to({self.name!r}, "
                    "device=...)"
                )
            _check_dtype_kind(_dtype_kind(xp, x.dtype), x.dtype, what)
            if getattr(x, "requires_grad", False):  # a torch tensor autograd tracks
                x = x.detach()
            if dtype is not None and x.dtype != dtype:
                with self.quiet_float_errors():  # overflow to inf is reported by the caller
                    x = xp.astype(x, dtype)
            return x
        host = x if isinstance(x, np.ndarray) else host_array(x, what)
        _check_dtype_kind(host.dtype.kind, host.dtype, what)
        if any(stride < 0 for stride in host.strides):  # torch refuses negative strides
            host = np.ascontiguousarray(host)
        if dtype is not None:
            with np.errstate(over="ignore", invalid="ignore"):  # inf: reported by the caller
                host = host.astype(_numpy_dtype(dtype), copy=False)
        else:
            host = _portable(host)
        return xp.asarray(host, device=self.device, copy=True)

    def from_host_rows(self, host: np.ndarray) -> Array:
        """A row-major host array (already of the target dtype) on this backend's device.

        No copy where the library can share host memory (NumPy; torch on the CPU); on a
        device, one transfer in chunks of rows, so no second host copy is made. The
        result is never written to by deepnet.
        """
        if self.name == "numpy":
            return host
        if self.name == "torch" and self.device.type == "cpu":
            import warnings

            with warnings.catch_warnings():  # a read-only array (a memory map, a view of
                warnings.simplefilter("ignore", UserWarning)  # the caller's) is never written
                return self.lib.from_numpy(host)
        xp = self.xp
        dtype = getattr(xp, host.dtype.name)
        out = xp.empty(host.shape, dtype=dtype, device=self.device)
        step = max(1, 2**24 // max(1, host.shape[1] * host.itemsize))
        for start in range(0, host.shape[0], step):
            stop = min(start + step, host.shape[0])  # strict refuses slices past the end
            block = np.ascontiguousarray(host[start:stop])
            out[start:stop, ...] = xp.asarray(block, device=self.device)
        return out

    # -- device work -------------------------------------------------------------------
    def activate(self) -> contextlib.AbstractContextManager:
        """A context in which this backend's device is the current one.

        CuPy runs every kernel on the thread's *current* device, whatever device its
        arrays live on; torch and NumPy follow the arrays. So for CuPy this is
        ``cupy.cuda.Device(n)`` (the previous device is current again afterwards), for
        the others a no-op.
        """
        if self.name == "cupy":
            return self.lib.cuda.Device(self.device.id)
        return contextlib.nullcontext()

    def synchronize(self) -> None:
        """Wait until the device has finished all queued work (no-op on the CPU)."""
        if self._sync is not None:
            self._sync()

    @property
    def supports_out(self) -> bool:
        """Whether the ``out=`` hook can write into existing buffers on this backend."""
        return self.lib is not None

    def quiet_float_errors(self) -> contextlib.AbstractContextManager:
        """A context in which overflow, invalid and divide-by-zero do not warn.

        NumPy (and array_api_strict, which computes with NumPy) warn on overflow; ``fit``
        detects non-finite values itself, once per epoch, and raises ``DivergenceError``.
        The other libraries never warn, so for them this is a no-op.
        """
        if self.name in ("numpy", "array_api_strict"):
            return np.errstate(over="ignore", invalid="ignore", divide="ignore")
        return contextlib.nullcontext()


# ---------------------------------------------------------------------------------------
# loaders: one per library


def _import(module: str, backend: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendError(
            f"backend {backend!r} needs the library {module!r}, which is not installed "
            f"here ({exc}); install it with: {_INSTALL_HINT[backend]}"
        ) from exc


def _load_numpy(device: str | None) -> Backend:
    if device is not None and device.lower() not in ("", "cpu"):
        raise BackendError(f"backend 'numpy' runs on the CPU only; got device {device!r}")
    from array_api_compat import numpy as xp

    return Backend("numpy", xp, "cpu", np)


def _load_torch(device: str | None) -> Backend:
    torch = _import("torch", "torch")
    from array_api_compat import torch as xp

    try:
        dev = torch.device((device or "cpu").lower())
    except (RuntimeError, TypeError) as exc:
        raise BackendError(
            f"DEEPNET_DEVICE={device!r} is not a torch device; use 'cpu', 'cuda' or 'cuda:N'"
        ) from exc
    sync = None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise BackendError(
                f"torch device {device!r} asked for, but torch sees no CUDA device here "
                f"(torch {torch.__version__}, CUDA build: {torch.version.cuda}); "
                "use device 'cpu' or a machine with an NVIDIA GPU"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise BackendError(
                f"torch device {device!r} asked for, but only "
                f"{torch.cuda.device_count()} CUDA device(s) exist here"
            )
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
        sync = lambda: torch.cuda.synchronize(dev)  # noqa: E731
    elif dev.type == "cpu":
        dev = torch.device("cpu")  # "cpu:0" names the same device, and tensors say "cpu"
    else:
        raise BackendError(f"torch device {device!r}: deepnet supports 'cpu' and 'cuda[:N]'")
    return Backend("torch", xp, dev, torch, sync)


def _load_cupy(device: str | None) -> Backend:
    cupy = _import("cupy", "cupy")

    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError when no driver is present
        raise BackendError(
            "backend 'cupy' needs a CUDA device, and none is usable here "
            f"({type(exc).__name__}: {exc}); use 'numpy' or 'torch' on this machine"
        ) from exc
    if count == 0:
        raise BackendError("backend 'cupy' needs a CUDA device, and this machine has none")
    text = (device or "0").lower().removeprefix("cuda:")
    if not text.isdigit() or int(text) >= count:
        raise BackendError(
            f"cupy device {device!r}: expected an index 0..{count - 1} (e.g. DEEPNET_DEVICE=1)"
        )
    dev = cupy.cuda.Device(int(text))
    return Backend("cupy", _cupy_namespace(), dev, cupy, dev.synchronize)


_CUPY_CREATION = ("arange", "asarray", "empty", "eye", "full", "linspace", "ones", "zeros")
_CUPY_LIKE = ("empty_like", "full_like", "ones_like", "zeros_like")
_cupy_xp: dict[ModuleType, ModuleType] = {}  # the namespace below, one per cupy module


def _cupy_namespace() -> ModuleType:
    """``array_api_compat.cupy`` with creation functions that honour ``device=``.

    CuPy allocates on the thread's current device, and array-api-compat's creation
    functions (``asarray`` aside) drop ``device=``. Here each one first makes the device
    asked for current, as ``cupy.cuda.Device(n).use()``, and leaves it current: after
    deepnet has created an array on device ``n``, the kernels that follow run on ``n``,
    where their operands live. ``*_like`` functions default to the device of ``x``, as
    the standard says. A training step also runs inside ``Backend.activate()``.
    """
    import cupy

    if cupy in _cupy_xp:
        return _cupy_xp[cupy]
    import functools

    from array_api_compat import cupy as compat

    def use(device: Any) -> None:
        if device is not None:
            cupy.cuda.Device(device).use()

    def creation(f: Any) -> Any:
        @functools.wraps(f)
        def create(*args: Any, device: Any = None, **kwargs: Any) -> Any:
            use(device)
            return f(*args, device=device, **kwargs)

        return create

    def like(f: Any) -> Any:
        @functools.wraps(f)
        def create(x: Any, /, *args: Any, device: Any = None, **kwargs: Any) -> Any:
            use(x.device if device is None else device)
            return f(x, *args, **kwargs)

        return create

    xp = ModuleType(compat.__name__, compat.__doc__)
    xp.__dict__.update({k: v for k, v in vars(compat).items() if not k.startswith("__")})
    for name in _CUPY_CREATION:
        setattr(xp, name, creation(getattr(compat, name)))
    for name in _CUPY_LIKE:
        setattr(xp, name, like(getattr(compat, name)))
    _cupy_xp[cupy] = xp
    return xp


def _load_strict(device: str | None) -> Backend:
    xp = _import("array_api_strict", "array_api_strict")
    canonical = {"cpu_device": "CPU_DEVICE", "cpu": "CPU_DEVICE", "device1": "device1",
                 "device2": "device2"}
    name = canonical.get((device or "CPU_DEVICE").lower(), device)
    try:
        dev = xp.Device(name)
    except ValueError as exc:
        raise BackendError(
            f"array_api_strict device {device!r}: expected 'CPU_DEVICE', 'device1' or 'device2'"
        ) from exc
    return Backend("array_api_strict", xp, dev, None)


_LOADERS = {
    "numpy": _load_numpy,
    "cupy": _load_cupy,
    "torch": _load_torch,
    "array_api_strict": _load_strict,
}

# ---------------------------------------------------------------------------------------
# the default backend: environment variables, set_backend and use_backend

_cache: dict[tuple[str, str | None], Backend] = {}
# one Backend per (library, canonical device label): "cpu:0" and "cpu" load the same one
_canonical: dict[tuple[str, str], Backend] = {}
_lock = threading.Lock()
# set_backend's choice, the process default (a list of at most one Backend)
_override: list[Backend] = []
# the use_backend blocks of the current thread or asyncio task, innermost last
_scoped: contextvars.ContextVar[tuple[Backend, ...]] = contextvars.ContextVar(
    "deepnet_use_backend", default=()
)


def get_backend(name: str | None = None, device: str | None = None) -> Backend:
    """The backend called ``name`` on ``device``.

    With no ``name``, the default: the innermost :func:`use_backend` of this thread or
    asyncio task, else the last :func:`set_backend`, else ``DEEPNET_BACKEND`` and
    ``DEEPNET_DEVICE``.
    """
    device = _device_text(device)
    if isinstance(name, Backend):
        if device is not None:
            asked = get_backend(name.name, device)
            if device_label(asked.device) != device_label(name.device):
                raise BackendError(
                    f"backend {name.label!r} is on device {device_label(name.device)!r}, but "
                    f"device={device!r} was asked for; pass the backend's name with the "
                    "device, or the Backend alone"
                )
        return name
    if name is None:
        default = _default()
        if isinstance(default, Backend):
            return default if device is None else get_backend(default.name, device)
        name, dev_default = default
        device = device if device is not None else dev_default
    key = _normalize_name(name), device
    with _lock:
        backend = _cache.get(key)
        if backend is None:
            loaded = _LOADERS[key[0]](key[1])
            backend = _canonical.setdefault((loaded.name, device_label(loaded.device)), loaded)
            _cache[key] = backend
        return backend


def _default() -> Backend | tuple[str, str | None]:
    """The innermost use_backend, set_backend's choice, or the environment's names."""
    scoped = _scoped.get()
    if scoped:
        return scoped[-1]
    chosen = _override[:1]  # a copy: another thread may call set_backend meanwhile
    if chosen:
        return chosen[0]
    raw = os.environ.get("DEEPNET_BACKEND", "")
    name = raw.strip().lower() or "numpy"
    if name not in _LOADERS:
        raise BackendError(
            f"DEEPNET_BACKEND={raw!r} is not a backend; valid names: "
            f"{', '.join(BACKEND_NAMES)}"
        )
    return name, _device_text(os.environ.get("DEEPNET_DEVICE"))


def _device_text(device: Any) -> str | None:
    """A device as given (a name, an index, a library's device object) as stripped text;
    ``None`` (or an empty name) for the library's default device."""
    if device is None:
        return None
    if type(device).__module__.startswith("cupy") and hasattr(device, "id"):
        device = device.id
    text = str(device).strip()
    return text or None


def _normalize_name(name: Any) -> str:
    if not isinstance(name, str) or name.strip().lower() not in _LOADERS:
        raise BackendError(
            f"unknown backend {name!r}; valid names: {', '.join(BACKEND_NAMES)}"
        )
    return name.strip().lower()


def set_backend(name: str, device: str | None = None) -> Backend:
    """Make ``name`` (on ``device``) the backend new networks are built on: the process
    default, seen by every thread and task outside a :func:`use_backend` block.

    Inside a :func:`use_backend` block the block's backend still wins until it ends.
    Overrides ``DEEPNET_BACKEND``/``DEEPNET_DEVICE`` for this process; returns the backend
    (loaded now, so a missing library is reported here).
    """
    backend = get_backend(name, device)
    with _lock:
        _override[:] = [backend]
    return backend


@contextlib.contextmanager
def use_backend(name: str, device: str | None = None) -> Iterator[Backend]:
    """Within the block, new networks are built on ``name`` (on ``device``).

    The choice holds for the current thread or asyncio task only (a ``contextvars``
    variable): other threads, and tasks not started inside the block, keep theirs. A task
    created inside the block inherits it, as contextvars do; a thread pool's workers do
    not (submit ``contextvars.copy_context().run`` to carry it over).
    """
    backend = get_backend(name, device)
    token = _scoped.set((*_scoped.get(), backend))
    try:
        yield backend
    finally:
        try:
            _scoped.reset(token)
        except ValueError:  # exited in another context than it was entered in
            stack = list(_scoped.get())
            if backend in stack:
                del stack[len(stack) - 1 - stack[::-1].index(backend)]
            _scoped.set(tuple(stack))


def resolve_dtype_name(name: Any = None) -> str:
    """``name``, or ``DEEPNET_DTYPE`` (default ``float32``), checked."""
    source = "dtype"
    if name is None:
        name, source = os.environ.get("DEEPNET_DTYPE", ""), "DEEPNET_DTYPE"
        if not name.strip():
            name = "float32"
    if not isinstance(name, str):
        # a dtype object: np.dtype has .name, np.float64 has __name__, torch.float64 and
        # array_api_strict.float64 print as "<library>.float64"
        text = getattr(name, "name", None)
        if not isinstance(text, str):
            text = getattr(name, "__name__", None)
        if not isinstance(text, str):
            text = str(name)
        name = text.rsplit(".", 1)[-1]
    if name.strip().lower() not in DTYPE_NAMES:
        raise InputError(
            f"{source}={name!r} is not supported; valid dtypes: {', '.join(DTYPE_NAMES)}"
        )
    return name.strip().lower()


# ---------------------------------------------------------------------------------------
# namespaces, host RNG and the one door back to the host

_NAMESPACE_BY_TYPE: dict[type, ModuleType] = {}


def array_namespace(*arrays: Array) -> ModuleType:
    """The Array API namespace shared by ``arrays`` (cached per array type)."""
    first = type(arrays[0])
    xp = _NAMESPACE_BY_TYPE.get(first)
    if xp is None:
        import array_api_compat

        xp = array_api_compat.array_namespace(arrays[0])
        if _library_of(arrays[0]) == "cupy":
            xp = _cupy_namespace()
        _NAMESPACE_BY_TYPE[first] = xp
    for other in arrays[1:]:
        if type(other) is not first and not isinstance(other, (int, float)):
            import array_api_compat

            return array_api_compat.array_namespace(*arrays)
    return xp


# ---------------------------------------------------------------------------------------
# the out= hook: buffer reuse where the library offers it

_OUT_LIBRARY = {"numpy": "numpy", "cupy": "cupy", "torch": "torch"}


def out_supported(x: Array) -> bool:
    """Whether :func:`into` can write into ``x`` (NumPy, CuPy and torch arrays)."""
    ok = _OUT_OK.get(type(x))
    if ok is None:
        ok = _OUT_OK[type(x)] = _library_of(x) in _OUT_LIBRARY
    return ok


_OUT_OK: dict[type, bool] = {}


def into(out: Array | None, name: str, *args: Any) -> Array:
    """``xp.<name>(*args)``, written into ``out`` where the library offers ``out=``.

    The one hook for buffer reuse. NumPy, CuPy and torch all accept ``out=`` on
    ``matmul`` and the elementwise functions, so a kernel written once can fill a
    per-network workspace there (no allocation, no page faults) and allocate where the
    library has no such argument (array-api-strict) or where ``out`` is ``None``.
    Always use the return value: it is ``out`` itself only when the write happened.
    """
    if out is not None:
        key = (type(out), name)
        native = _NATIVE_OUT.get(key)
        if native is None:
            lib = _library_of(out)
            native = False
            if lib in _OUT_LIBRARY:
                native = getattr(importlib.import_module(_OUT_LIBRARY[lib]), name)
            _NATIVE_OUT[key] = native
        if native is not False:
            return native(*args, out=out)
    return getattr(array_namespace(*args), name)(*args)


_NATIVE_OUT: dict[tuple[type, str], Any] = {}


def gather_rows(x: Array, idx: Array, out: Array | None = None) -> Array:
    """``x[idx]`` along axis 0 — the rows ``idx`` of an example-major array — written into
    ``out`` where the library allows it (the data path's hook).

    NumPy's ``take`` with ``mode="wrap"`` skips the bounds pass that ``"raise"`` buffers
    for (the indices come from deepnet's own permutation); torch's CPU ``index_select``
    measured 4x slower than NumPy's ``take`` on the same memory, so CPU tensors are
    gathered through their shared NumPy views.
    """
    lib = _library_of(x)
    if out is not None and lib == "numpy":
        return np.take(x, idx, axis=0, out=out, mode="wrap")
    if out is not None and lib == "torch":
        if x.device.type == "cpu":
            np.take(x.numpy(), idx.numpy(), axis=0, out=out.numpy(), mode="wrap")
            return out
        return importlib.import_module("torch").index_select(x, 0, idx, out=out)
    if out is not None and lib == "cupy":
        return importlib.import_module("cupy").take(x, idx, axis=0, out=out)
    return array_namespace(x).take(x, idx, axis=0)


def is_row_major(x: Array) -> bool:
    """Whether ``x``'s rows are contiguous in memory (C order), where the library says;
    array-api-strict has no memory layout and answers ``True``."""
    lib = _library_of(x)
    if lib in ("numpy", "cupy"):
        return bool(x.flags.c_contiguous)
    if lib == "torch":
        return bool(x.is_contiguous())
    return True


def row_major(x: Array) -> Array:
    """``x`` with contiguous rows: ``x`` itself where it already is, else one copy."""
    if is_row_major(x):
        return x
    lib = _library_of(x)
    if lib in ("numpy", "cupy"):
        return importlib.import_module(lib).ascontiguousarray(x)
    return x.contiguous()  # torch


def host_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """The host ``numpy.random.Generator`` that weights, masks and shuffles come from."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise InputError(f"seed must be an int, a numpy Generator or None; got {seed!r}")
    if seed is not None and seed < 0:
        raise InputError(f"seed must be >= 0; got {seed}")
    return np.random.default_rng(seed)


def _library_of(x: Any) -> str | None:
    module = type(x).__module__.split(".")[0]
    return {
        "numpy": "numpy",
        "cupy": "cupy",
        "torch": "torch",
        "array_api_strict": "array_api_strict",
    }.get(module)


def to_numpy(x: Array) -> np.ndarray:
    """Copy any backend's array to a NumPy array on the host (the one explicit door)."""
    lib = _library_of(x)
    if lib == "numpy" or lib is None:
        return np.asarray(x)
    if lib == "cupy":
        return x.get()
    if lib == "torch":
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":  # NumPy has no bfloat16
            x = x.float()
        return x.resolve_conj().resolve_neg().numpy()
    import array_api_strict

    return np.asarray(x.to_device(array_api_strict.Device("CPU_DEVICE")))


def like(result: Array, reference: Any) -> Array:
    """``result`` as an array of ``reference``'s library, on ``reference``'s device.

    Outputs follow inputs (as scikit-learn's Array API support does): a NumPy array,
    memory map or list in, a NumPy array out; a torch tensor in, a torch tensor on its
    device out. The move, where one is needed, goes through the host explicitly.
    """
    lib = _library_of(reference)
    if lib is None or lib == "numpy":
        return to_numpy(result)
    if lib == _library_of(result) and _same_device(result.device, reference.device):
        return result
    host = to_numpy(result)
    if lib == "cupy":
        cupy = importlib.import_module("cupy")
        with reference.device:
            return cupy.asarray(host)
    namespace = array_namespace(reference)
    return namespace.asarray(host, device=reference.device)


def host_array(x: Any, what: str = "array") -> np.ndarray:
    """``x`` (an array of any library, or a nested sequence) as a host NumPy array."""
    try:
        if isinstance(x, np.ndarray):
            return host_input(x, what)
        if _library_of(x) is not None:
            return to_numpy(x)
        host = np.asarray(x)
    except Exception as exc:  # ragged lists, objects whose __array__ fails, sparse tensors
        raise InputError(
            f"{what} must be an array (n rows, m columns); got {type(x).__name__} "
            f"that does not convert ({type(exc).__name__}: {exc})"
        ) from exc
    return host


def _dtype_kind(xp: ModuleType, dtype: Any) -> str:
    if xp.isdtype(dtype, "bool"):
        return "b"
    if xp.isdtype(dtype, "integral"):
        return "i"
    if xp.isdtype(dtype, "real floating"):
        return "f"
    return "c"


_KIND_NAMES = {"c": "complex numbers", "U": "strings", "S": "bytes", "O": "Python objects",
               "M": "dates", "m": "time spans", "V": "structured records"}


def _check_dtype_kind(kind: str, dtype: Any, what: str) -> None:
    if kind not in "biuf":
        held = _KIND_NAMES.get(kind, "values that are not numbers")
        raise InputError(
            f"{what} must hold real numbers (float, int or bool); got dtype {dtype} "
            f"({held} are not supported)"
        )


def host_input(x: np.ndarray, what: str = "array") -> np.ndarray:
    """A caller's NumPy array as a plain ``ndarray`` in native byte order — the one door
    every host array comes in through.

    ``np.matrix`` and other subclasses become plain arrays (a view, no copy; a memory map
    stays one), big-endian data is converted (one copy), masked arrays are refused: deepnet
    cannot know whether a mask means "missing" or "ignore".
    """
    if isinstance(x, np.ma.MaskedArray):
        raise InputError(
            f"{what} is a NumPy masked array; deepnet cannot know what its mask means. Pass "
            f"{what}.filled(value) for a fill value of your choice, or drop the masked "
            "examples first"
        )
    if type(x) is not np.ndarray and not isinstance(x, np.memmap):
        x = np.asarray(x)  # np.matrix and other subclasses: a plain view
    if x.dtype.byteorder not in "=|" and x.dtype.kind in "biufc":
        x = x.astype(x.dtype.newbyteorder("="))
    return x


def _portable(host: np.ndarray) -> np.ndarray:
    """``host`` in a dtype every backend holds: float16 and long double become float64
    (array_api_strict has no float16), unsigned integers wider than uint8 become int64
    (float64 where a value does not fit)."""
    kind, dtype = host.dtype.kind, host.dtype
    if kind == "f" and dtype not in (np.float32, np.float64):
        return host.astype(np.float64)
    if kind == "u" and dtype.itemsize > 1:
        fits = host.size == 0 or int(host.max()) <= np.iinfo(np.int64).max
        return host.astype(np.int64 if fits else np.float64)
    return host


def _numpy_dtype(dtype: Any) -> np.dtype:
    # NumPy's and CuPy's dtypes are NumPy types (np.float32 has no .name); torch's and
    # array_api_strict's print as "<library>.float32"
    if isinstance(dtype, np.dtype) or (isinstance(dtype, type) and issubclass(dtype, np.generic)):
        return np.dtype(dtype)
    name = getattr(dtype, "name", None)
    if not isinstance(name, str):
        name = str(dtype).rsplit(".", 1)[-1]
    return np.dtype(name)


def device_label(device: Any) -> str:
    """A short printable name of a device (``cpu``, ``cuda:0``, ``device1``, ``0``)."""
    if hasattr(device, "id") and type(device).__module__.startswith("cupy"):
        return str(device.id)
    text = str(device)
    if text.startswith("array_api_strict.Device("):
        return text[len("array_api_strict.Device(") : -1].strip("'\"")
    return text


def _move_hint(backend: Backend) -> str:
    """How to move an array onto ``backend``'s device, in the words of its library (CuPy's
    arrays have no ``to_device`` before CuPy 14, torch's have ``.to``)."""
    dev = device_label(backend.device)
    if backend.name == "torch":
        return f"x.to({dev!r})"
    if backend.name == "cupy":
        return f"with cupy.cuda.Device({dev}): x = cupy.asarray(x)"
    if backend.name == "array_api_strict":
        return f"x.to_device(array_api_strict.Device({dev!r}))"
    return "numpy.asarray(x)"


def free_device_memory(backend: Backend) -> int | None:
    """Bytes the backend's GPU can still hand out, or ``None`` for a host backend.

    The driver's free memory plus what the library's caching allocator holds unused
    (CuPy's memory pool, torch's reserved but unallocated blocks), which it hands out
    first.
    """
    lib = backend.lib
    if backend.name == "cupy" and lib is not None:
        with lib.cuda.Device(backend.device.id):
            free, _ = lib.cuda.runtime.memGetInfo()
        return int(free) + int(lib.get_default_memory_pool().free_bytes())
    if backend.name == "torch" and lib is not None and backend.device.type == "cuda":
        free, _ = lib.cuda.mem_get_info(backend.device)
        cached = lib.cuda.memory_reserved(backend.device) - lib.cuda.memory_allocated(
            backend.device)
        return int(free) + int(cached)
    return None


def _same_device(a: Any, b: Any) -> bool:
    return device_label(a) == device_label(b) or a == b


def available_backends() -> dict[str, str]:
    """Each backend name: ``"ok"`` where it loads here, else the reason it does not."""
    out = {}
    for name in BACKEND_NAMES:
        try:
            get_backend(name)
            out[name] = "ok"
        except BackendError as exc:
            out[name] = str(exc)
    return out
