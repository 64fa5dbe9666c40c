"""The libraries: one ``Backend`` (an array library on one device) per loaded library and
device, the loaders that make them, and the namespace of a library's arrays."""

from __future__ import annotations

import contextlib
import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from deepnet.backend.host import (
    DTYPE_NAMES,
    Array,
    _check_dense,
    _check_dtype_kind,
    _dtype_kind,
    _library_of,
    _numpy_dtype,
    _portable,
    _same_device,
    device_label,
    host_array,
    host_input,
    is_cpu_name,
    resolve_dtype_name,
)
from deepnet.errors import BackendError, InputError

BACKEND_NAMES = ("numpy", "cupy", "torch", "array_api_strict")

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
    lib: Any = None  # a module (numpy, cupy, torch), or None
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
            _check_dense(x, what)
            if not _same_device(x.device, self.device):
                raise InputError(
                    f"{what} is on device {device_label(x.device)!r} but the network is on "
                    f"{self.label!r}; move it first ({_move_hint(self)}, or dn.to_numpy(x) "
                    f"for a host copy) or move the network with net.to({self.name!r}, "
                    "device=...)"
                )
            _check_dtype_kind(_dtype_kind(xp, x.dtype), x.dtype, what, x)
            if getattr(x, "requires_grad", False):  # a torch tensor autograd tracks
                x = x.detach()
            if dtype is not None and x.dtype != dtype:
                with self.quiet_float_errors():  # overflow to inf is reported by the caller
                    x = xp.astype(x, dtype)
            return x
        host = x if isinstance(x, np.ndarray) else host_array(x, what)
        _check_dtype_kind(host.dtype.kind, host.dtype, what, host)
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
        if self.name == "array_api_strict":  # host memory too: shared, as NumPy's
            return xp.asarray(host, device=self.device)
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
    if device is not None and device.strip() and not is_cpu_name(device):
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
            f"torch device {device!r} (the device argument or DEEPNET_DEVICE) is not a "
            "torch device; use 'cpu', 'cuda' or 'cuda:N'"
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
    name = "CPU_DEVICE" if not device or is_cpu_name(device) else canonical.get(
        device.lower(), device)
    try:
        dev = xp.Device(name)
    except ValueError as exc:
        raise BackendError(
            f"array_api_strict device {device!r}: expected 'CPU_DEVICE' (or 'cpu', "
            "'cpu:0'), 'device1' or 'device2'"
        ) from exc
    return Backend("array_api_strict", xp, dev, None)


_LOADERS = {
    "numpy": _load_numpy,
    "cupy": _load_cupy,
    "torch": _load_torch,
    "array_api_strict": _load_strict,
}

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

            try:
                return array_api_compat.array_namespace(*arrays)
            except TypeError as exc:  # arrays of two libraries: the kernels never convert
                kinds = sorted({type(a).__module__.split(".")[0] for a in arrays
                                if not isinstance(a, (int, float))})
                raise InputError(
                    f"the arrays given are of different libraries ({', '.join(kinds)}); a "
                    "kernel never copies between them: put them on one backend first, "
                    "e.g. net.backend.asarray(X) (or dn.to_numpy(x) for NumPy)"
                ) from exc
    return xp


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


__all__ = ["BACKEND_NAMES", "DTYPE_NAMES", "Backend", "array_namespace"]
