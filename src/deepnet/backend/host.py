"""Arrays on the host: the one door out (``to_numpy``), the one door in for a caller's NumPy
arrays (``host_input``), dtype kinds, device names and the host RNG. Depends on nothing
else of the backend layer."""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import numpy as np

from deepnet.errors import InputError

Array = Any  # any array of a standard-conforming library

DTYPE_NAMES = ("float32", "float64")


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


def host_array(x: Any, what: str = "array") -> np.ndarray:
    """``x`` (an array of any library, or a nested sequence) as a host NumPy array."""
    if _library_of(x) not in (None, "numpy"):
        _check_dense(x, what)
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
    """NumPy's one-letter kind of any library's dtype (``"?"`` for what is not a number)."""
    kind = getattr(dtype, "kind", None)  # NumPy's and CuPy's dtypes say it themselves
    if isinstance(kind, str):
        return kind
    try:
        if xp.isdtype(dtype, "bool"):
            return "b"
        if xp.isdtype(dtype, "integral"):
            return "i"
        if xp.isdtype(dtype, "real floating"):
            return "f"
        if xp.isdtype(dtype, "complex floating"):
            return "c"
    except (TypeError, ValueError):  # a dtype the namespace does not know
        pass
    return "?"


_KIND_NAMES = {"c": "complex numbers", "U": "strings", "S": "bytes", "O": "Python objects",
               "M": "dates", "m": "time spans", "V": "structured records"}


def _check_dtype_kind(kind: str, dtype: Any, what: str, values: Any = None) -> None:
    """Refuse what is not bool, integer or real floating; ``values`` (the host array, where
    there is one) lets the message say what an object array holds."""
    if kind not in "biuf":
        held = _KIND_NAMES.get(kind, "values that are not numbers")
        raise InputError(
            f"{what} must hold real numbers (float, int or bool); got dtype {dtype} "
            f"({held} are not supported){_object_hint(values, what) if kind == 'O' else ''}"
        )


def _object_hint(values: Any, what: str) -> str:
    """What an object array holds, and how to convert it: numbers stored as objects are
    what ``DataFrame.to_numpy()`` (or ``df.T``) gives for columns of mixed dtypes."""
    if not isinstance(values, np.ndarray) or values.size == 0:
        return ""
    try:
        with np.errstate(all="ignore"):
            numbers = bool(np.isfinite(values.astype(np.float64)).all())  # None: NaN
    except Exception:  # a hint must not raise: an int beyond float64, an odd __float__
        numbers = False
    if not numbers:
        return (f". It holds values that are not numbers (None, pd.NA or text?): fill or "
                f"drop the missing values, then pass np.asarray({what}, dtype=np.float64)")
    return (f". Its values are numbers stored as Python objects (a pandas DataFrame with "
            f"columns of mixed dtypes?): pass np.asarray({what}, dtype=np.float64)")


def _check_dense(x: Any, what: str) -> None:
    """Refuse a sparse (or otherwise non-strided) torch tensor: its kernels differ, and
    gathering or transposing it fails deep inside torch."""
    layout = getattr(x, "layout", None)
    if layout is not None and str(layout) != "torch.strided":
        raise InputError(
            f"{what} is a torch tensor of layout {str(layout).rsplit('.', 1)[-1]}; deepnet "
            f"takes dense arrays: pass {what}.to_dense()"
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


def backend_key(name: str) -> str:
    """A backend's name as deepnet spells it: case, spaces and the package's hyphens
    (``Array-API-Strict``) do not matter, in arguments and in ``DEEPNET_BACKEND`` alike."""
    return name.strip().lower().replace("-", "_")


def is_cpu_name(device: str) -> bool:
    """Whether ``device`` names the CPU as torch spells it (``cpu``, ``CPU``, ``cpu:0``):
    accepted by every backend whose arrays live in host memory."""
    return device.strip().lower() in ("cpu", "cpu:0")


def device_label(device: Any) -> str:
    """A short printable name of a device (``cpu``, ``cuda:0``, ``device1``, ``0``)."""
    if hasattr(device, "id") and type(device).__module__.startswith("cupy"):
        return str(device.id)
    text = str(device)
    if text.startswith("array_api_strict.Device("):
        return text[len("array_api_strict.Device(") : -1].strip("'\"")
    return text


def _same_device(a: Any, b: Any) -> bool:
    return device_label(a) == device_label(b) or a == b


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


__all__ = ["DTYPE_NAMES", "Array", "device_label", "host_array", "host_input", "host_rng",
           "resolve_dtype_name", "to_numpy"]
