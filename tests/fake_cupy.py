"""A CuPy stand-in for machines without a GPU: NumPy underneath, CuPy's rules on top.

``installed()`` puts a module called ``cupy`` into ``sys.modules`` and imports
``array_api_compat.cupy`` afresh on top of it, so deepnet's CuPy backend runs through
exactly the compat wrappers it takes on a GPU (the generic ``clip``, ``asarray`` under
``cupy.cuda.Device(device)``, creation functions that drop ``device=``). What the fake
enforces, as CuPy does:

- **Devices.** ``n_devices`` fake GPUs; the current device is per thread
  (``cupy.cuda.Device(n)`` as a context, or ``.use()``); creation functions allocate on
  the current device; every operation runs on the current device and refuses an operand
  that lives on another one (CuPy without peer access: "The device where the array
  resides (1) is different from the current device (0)").
- **No implicit host transfers.** ``numpy.asarray(x)`` (``__array__``) raises as CuPy
  does; a NumPy array as an operand raises as CuPy does.

and, while ``trapping()`` is on (the code under test must stay on the device):

- every **device-to-host read** raises :class:`HostSyncError`: ``bool()``, ``float()``,
  ``int()``, ``complex()``, ``operator.index()``, ``item()``, ``tolist()``, ``get()``
  and boolean-mask indexing (CuPy reads the mask's count back to size the result);
- every **host-to-device copy** raises :class:`HostSyncError`: ``asarray``/``array`` of
  host data (NumPy arrays, lists, Python scalars) and writing host data into an array.

Outside ``trapping()`` the same reads and copies are allowed and counted (``d2h``,
``h2d``). Not modelled: streams, asynchrony, memory pools, cuBLAS, kernels' compilation.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
import types
from collections.abc import Iterator
from typing import Any

import numpy as np
from fake_cupy_array import (
    DeviceMismatch,
    ElementwiseKernel,
    HostSyncError,
    array_class,
    creation,
    like,
)

__all__ = ["DeviceMismatch", "FakeCupy", "HostSyncError", "installed"]


class FakeCupy:
    """One fake CuPy: its module objects, its devices and its transfer counters."""

    def __init__(self, n_devices: int = 2) -> None:
        self.n_devices = n_devices
        self.trap = False
        self.h2d = 0  # host-to-device copies seen outside trapping()
        self.d2h = 0  # device-to-host reads seen outside trapping()
        self._local = threading.local()
        self.module = self._build()

    # -- the current device (per thread, 0 in a new thread, as in CuPy) ---------------
    def current(self) -> int:
        return getattr(self._local, "device", 0)

    def _set_current(self, device: int) -> None:
        self._local.device = device

    # -- transfers ---------------------------------------------------------------------
    @contextlib.contextmanager
    def trapping(self) -> Iterator[None]:
        """Within the block, any host read or host-to-device copy raises."""
        self.trap = True
        try:
            yield
        finally:
            self.trap = False

    def _read(self, what: str) -> None:
        if self.trap:
            raise HostSyncError(f"device-to-host read inside the step: {what}")
        self.d2h += 1

    def _copy_in(self, what: str) -> None:
        if self.trap:
            raise HostSyncError(f"host-to-device copy inside the step: {what}")
        self.h2d += 1

    # -- wrapping and unwrapping ----------------------------------------------------------
    def wrap(self, value: Any, device: int | None = None) -> Any:
        device = self.current() if device is None else device
        if isinstance(value, np.ndarray):
            return self.ndarray(value, device)
        if isinstance(value, np.generic):  # CuPy returns 0-d arrays, never scalars
            return self.ndarray(np.asarray(value), device)
        if isinstance(value, (tuple, list)):
            return type(value)(self.wrap(v, device) for v in value)
        return value

    def unwrap(self, value: Any, what: str = "operand") -> Any:
        """The NumPy array under ``value`` once it is checked to be on the current device."""
        if isinstance(value, self.ndarray):
            if value._dev != self.current():
                raise DeviceMismatch(
                    f"The device where the array resides ({value._dev}) is different from "
                    f"the current device ({self.current()}). Peer access is unavailable "
                    "between these devices."
                )
            return value._a
        if isinstance(value, np.ndarray):
            raise TypeError(f"Unsupported type {type(value)} ({what}): a NumPy array")
        if isinstance(value, (tuple, list)):
            return type(value)(self.unwrap(v, what) for v in value)
        return value

    # -- the module ---------------------------------------------------------------------
    def _build(self) -> types.ModuleType:
        fake = self
        cp = types.ModuleType("cupy")
        for name in dir(np):
            if not name.startswith("_"):
                setattr(cp, name, getattr(np, name))
        cp.__version__ = "14.2.0+fake"
        cp.ndarray = self.ndarray = array_class(self)
        cp.get_array_module = lambda *args: cp

        for name in ("empty", "zeros", "ones"):
            setattr(cp, name, creation(self, getattr(np, name)))
        for name in ("full", "arange", "eye", "identity", "linspace"):
            setattr(cp, name, creation(self, getattr(np, name)))
        for name in ("empty_like", "zeros_like", "ones_like", "full_like"):
            setattr(cp, name, like(self, getattr(np, name)))

        def asarray(obj: Any, dtype: Any = None, order: Any = None, **kwargs: Any) -> Any:
            return array(obj, dtype=dtype, copy=False, order=order, **kwargs)

        def array(obj: Any, dtype: Any = None, copy: Any = True, **kwargs: Any) -> Any:
            kwargs.pop("order", None)
            if isinstance(obj, fake.ndarray):
                if obj._dev != fake.current():  # a device-to-device copy, CuPy's way
                    return fake.ndarray(np.array(obj._a, dtype=dtype), fake.current())
                data = np.array(obj._a, dtype=dtype, copy=copy)
                return obj if data is obj._a else fake.ndarray(data, obj._dev)
            fake._copy_in(f"asarray of a {type(obj).__name__}")
            return fake.ndarray(np.array(obj, dtype=dtype, copy=True), fake.current())

        cp.asarray, cp.array = asarray, array
        cp.ElementwiseKernel = functools.partial(ElementwiseKernel, self)
        cp.ascontiguousarray = lambda a, dtype=None: array(a, dtype=dtype, copy=False)

        class Device:
            """``cupy.cuda.Device``: a context that makes device ``id`` current."""

            def __init__(self, device: Any = None) -> None:
                self.id = fake.current() if device is None else int(device)
                if not 0 <= self.id < fake.n_devices:
                    raise RuntimeError(
                        f"cudaErrorInvalidDevice: invalid device ordinal {self.id}"
                    )
                self._stack: list[int] = []

            def __int__(self) -> int:
                return self.id

            __index__ = __int__

            def use(self) -> None:
                fake._set_current(self.id)

            def __enter__(self) -> Device:
                self._stack.append(fake.current())
                fake._set_current(self.id)
                return self

            def __exit__(self, *exc: Any) -> None:
                fake._set_current(self._stack.pop())

            def synchronize(self) -> None:
                pass

            def __eq__(self, other: object) -> bool:
                return isinstance(other, Device) and other.id == self.id

            def __hash__(self) -> int:
                return hash(("fake-cupy-device", self.id))

            def __repr__(self) -> str:
                return f"<CUDA Device {self.id}>"

        Device.__module__ = "cupy.cuda.device"
        self.Device = Device
        cuda = types.ModuleType("cupy.cuda")
        device_mod = types.ModuleType("cupy.cuda.device")
        runtime = types.ModuleType("cupy.cuda.runtime")
        device_mod.Device = cuda.Device = Device
        runtime.getDeviceCount = lambda: fake.n_devices
        runtime.getDevice = fake.current
        runtime.memGetInfo = lambda: (16 * 2**30, 16 * 2**30)  # (free, total): 16 GiB

        class _Pool:  # CuPy's caching allocator, empty
            def free_bytes(self) -> int:
                return 0

            def free_all_blocks(self) -> None:
                pass

        cp.get_default_memory_pool = _Pool
        cuda.device, cuda.runtime = device_mod, runtime
        cp.cuda = cuda
        linalg = types.ModuleType("cupy.linalg")
        for name in dir(np.linalg):
            if not name.startswith("_"):
                setattr(linalg, name, getattr(np.linalg, name))
        fft = types.ModuleType("cupy.fft")
        for name in dir(np.fft):
            if not name.startswith("_"):
                setattr(fft, name, getattr(np.fft, name))
        cp.linalg, cp.fft = linalg, fft
        self.modules = {
            "cupy": cp, "cupy.cuda": cuda, "cupy.cuda.device": device_mod,
            "cupy.cuda.runtime": runtime, "cupy.linalg": linalg, "cupy.fft": fft,
        }
        return cp


def _compat_names() -> list[str]:
    return [k for k in sys.modules if k == "array_api_compat.cupy"
            or k.startswith("array_api_compat.cupy.")]


@contextlib.contextmanager
def installed(n_devices: int = 2) -> Iterator[FakeCupy]:
    """A fresh fake CuPy as ``cupy`` (and ``array_api_compat.cupy`` on top of it).

    Whatever was there before (a real CuPy on a GPU machine, deepnet's cached CuPy
    backends) is put back afterwards.
    """
    import array_api_compat
    import array_api_compat.common._helpers as helpers

    from deepnet import backend as B

    saved_modules = {k: sys.modules.pop(k) for k in list(sys.modules)
                     if k == "cupy" or k.startswith("cupy.")}
    saved_modules.update({k: sys.modules.pop(k) for k in _compat_names()})
    missing = object()
    saved_attr = array_api_compat.__dict__.pop("cupy", missing)
    from deepnet import fused

    saved_backends = {k: B._cache.pop(k) for k in list(B._cache) if k[0] == "cupy"}
    saved_canonical = {k: B._canonical.pop(k) for k in list(B._canonical) if k[0] == "cupy"}
    saved_kernels, fused._CUPY = getattr(fused, "_CUPY", None), None
    clear = getattr(helpers._issubclass_fast, "cache_clear", lambda: None)
    clear()
    fake = FakeCupy(n_devices)
    sys.modules.update(fake.modules)
    try:
        import array_api_compat.cupy  # (bound to the fake now)

        yield fake
    finally:
        for k in list(fake.modules) + _compat_names():
            sys.modules.pop(k, None)
        array_api_compat.__dict__.pop("cupy", None)
        for k in list(B._cache):
            if k[0] == "cupy":
                del B._cache[k]
        B._cache.update(saved_backends)
        for k in list(B._canonical):
            if k[0] == "cupy":
                del B._canonical[k]
        B._canonical.update(saved_canonical)
        fused._CUPY = saved_kernels
        sys.modules.update(saved_modules)
        if saved_attr is not missing:
            array_api_compat.cupy = saved_attr
        clear()
