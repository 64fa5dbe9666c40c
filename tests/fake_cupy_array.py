"""The array class and ``ElementwiseKernel`` of the CuPy stand-in (``tests/fake_cupy.py``).

A ``cupy.ndarray`` here is a NumPy array and the fake device it lives on; every operation
on it (NumPy's ufunc and function protocols) runs on the current device and refuses an
operand from another; host reads and host copies raise while the stand-in is trapping.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import numpy as np

__all__ = ["DeviceMismatch", "ElementwiseKernel", "HostSyncError", "array_class", "creation",
           "like"]


class HostSyncError(AssertionError):
    """A device-to-host read or a host-to-device copy where none may happen."""


class DeviceMismatch(ValueError):
    """An operand on another device than the current one (CuPy without peer access)."""


class ElementwiseKernel:
    """``cupy.ElementwiseKernel`` for simple kernels: statements ``x = e``, ``x op= e`` and
    ``T x = e`` separated by ``;``, where ``e`` is arithmetic and ``sqrt``/``exp``/``log``
    calls. Evaluated with NumPy, whole arrays at a time (the same values as one thread
    per element, since an elementwise kernel reads only its own element). Outputs are
    written in place; every array argument must be on the current device."""

    _STATEMENT = re.compile(r"^(?:T\s+)?(\w+)\s*([-+*/]?=)\s*(.+)$", re.S)

    def __init__(self, fake: Any, in_params: str, out_params: str, operation: str,
                 name: str = "kernel", **kwargs: Any) -> None:
        self.fake, self.name = fake, name
        self.inputs = [p.split()[-1] for p in in_params.split(",") if p.strip()]
        self.outputs = [p.split()[-1] for p in out_params.split(",") if p.strip()]
        self.statements = []
        for text in operation.split(";"):
            if text.strip():
                match = self._STATEMENT.match(text.strip())
                if match is None:
                    raise NotImplementedError(f"fake ElementwiseKernel cannot run {text!r}")
                self.statements.append((match[1], match[2], match[3]))

    def __call__(self, *args: Any) -> None:
        names = self.inputs + self.outputs
        if len(args) != len(names):
            raise TypeError(f"{self.name} takes {len(names)} arguments, got {len(args)}")
        env = {"sqrt": np.sqrt, "exp": np.exp, "log": np.log, "abs": np.abs}
        for n, a in zip(names, args):
            env[n] = self.fake.unwrap(a, f"{self.name}({n})")
        for target, op, expr in self.statements:
            value = eval(expr, {"__builtins__": {}}, env)  # a test double: trusted text
            if target in self.outputs:
                out = env[target]
                if op == "=":
                    out[...] = value
                else:
                    getattr(np, {"+=": "add", "-=": "subtract", "*=": "multiply",
                                 "/=": "divide"}[op])(out, value, out=out, casting="unsafe")
            else:
                env[target] = value if op == "=" else eval(f"_t {op[0]} _v", {},
                                                            {"_t": env[target], "_v": value})


def creation(fake: Any, func: Any) -> Any:
    @functools.wraps(func)
    def create(*args: Any, **kwargs: Any) -> Any:
        kwargs.pop("order", None)
        return fake.wrap(func(*args, **kwargs))

    return create


def like(fake: Any, func: Any) -> Any:
    # CuPy allocates on the current device whatever device ``x`` is on
    @functools.wraps(func)
    def create(x: Any, *args: Any, **kwargs: Any) -> Any:
        template = np.empty(x.shape, dtype=x.dtype)
        return fake.wrap(func(template, *args, **kwargs))

    return create


def _is_mask(key: Any, fake: Any) -> bool:
    keys = key if isinstance(key, tuple) else (key,)
    for k in keys:
        dtype = getattr(k, "dtype", None)
        if dtype is not None and np.dtype(dtype) == np.bool_ and getattr(k, "ndim", 0) > 0:
            return True
        if isinstance(k, list) and k and all(isinstance(v, bool) for v in k):
            return True
    return False


def array_class(fake: Any) -> type:
    class ndarray(np.lib.mixins.NDArrayOperatorsMixin):
        """``cupy.ndarray``: a NumPy array on fake device ``_dev``."""

        __array_priority__ = 100

        def __init__(self, data: np.ndarray, device: int) -> None:
            self._a = data
            self._dev = device

        # -- what CuPy computes on the device ----------------------------------------
        def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any):
            args = [fake.unwrap(x, ufunc.__name__) for x in inputs]
            out = kwargs.get("out")
            if out is not None:
                kwargs["out"] = tuple(fake.unwrap(o, "out") for o in out)
            result = getattr(ufunc, method)(*args, **kwargs)
            if out is not None:
                return out[0] if len(out) == 1 else out
            return fake.wrap(result)

        def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any):
            result = func(*fake.unwrap(list(args), func.__name__),
                          **{k: fake.unwrap(v, k) for k, v in kwargs.items()})
            return fake.wrap(result)

        # -- what CuPy refuses --------------------------------------------------------
        def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
            raise TypeError(
                "Implicit conversion to a NumPy array is not allowed. Please use `.get()` "
                "to construct a NumPy array explicitly."
            )

        # -- device-to-host reads -------------------------------------------------------
        def get(self, stream: Any = None) -> np.ndarray:
            fake._read("get()")
            return self._a.copy()

        def _scalar(self, what: str) -> Any:
            fake._read(what)
            return self._a

        def __bool__(self) -> bool:
            return bool(self._scalar("bool()"))

        def __float__(self) -> float:
            return float(self._scalar("float()"))

        def __int__(self) -> int:
            return int(self._scalar("int()"))

        def __complex__(self) -> complex:
            return complex(self._scalar("complex()"))

        def __index__(self) -> int:
            return self._scalar("operator.index()").__index__()

        def item(self, *args: Any) -> Any:
            return self._scalar("item()").item(*args)

        def tolist(self) -> Any:
            return self._scalar("tolist()").tolist()

        # -- attributes ---------------------------------------------------------------
        shape = property(lambda self: self._a.shape)
        dtype = property(lambda self: self._a.dtype)
        ndim = property(lambda self: self._a.ndim)
        size = property(lambda self: self._a.size)
        nbytes = property(lambda self: self._a.nbytes)
        strides = property(lambda self: self._a.strides)
        flags = property(lambda self: self._a.flags)
        device = property(lambda self: fake.Device(self._dev))
        T = property(lambda self: fake.ndarray(self._a.T, self._dev))
        mT = property(lambda self: fake.ndarray(np.swapaxes(self._a, -1, -2), self._dev))

        def __len__(self) -> int:
            return len(self._a)

        def __repr__(self) -> str:
            return f"fake_cupy.array({self._a!r}, device={self._dev})"

        # -- indexing: views need no kernel; masks and gathers run on the device ------------
        def __getitem__(self, key: Any) -> Any:
            if _is_mask(key, fake) and fake.trap:
                raise HostSyncError("boolean-mask indexing inside the step (reads the count)")
            if isinstance(key, fake.ndarray) or (
                isinstance(key, tuple) and any(isinstance(k, fake.ndarray) for k in key)
            ):
                return fake.wrap(self._a[fake.unwrap(key, "index")])
            return fake.ndarray(self._a[fake.unwrap(key, "index")], self._dev)

        def __setitem__(self, key: Any, value: Any) -> None:
            if _is_mask(key, fake) and fake.trap:
                raise HostSyncError("boolean-mask assignment inside the step (reads the count)")
            if isinstance(value, (np.ndarray, list, tuple)):
                fake._copy_in("writing host data into a device array")
                value = np.asarray(value)
            else:
                value = fake.unwrap(value, "value")
            fake.unwrap(self, "target")  # the copy kernel runs on the current device
            self._a[fake.unwrap(key, "index")] = value

        # -- methods CuPy has, run on the current device ----------------------------------
        def astype(self, dtype: Any, order: Any = "K", casting: Any = None,
                   subok: Any = None, copy: bool = True) -> Any:
            data = fake.unwrap(self, "astype")
            out = data.astype(dtype, copy=copy)
            return self if out is data else fake.wrap(out)

        def copy(self, order: Any = "C") -> Any:
            return fake.wrap(fake.unwrap(self, "copy").copy())

        def reshape(self, *shape: Any, order: Any = "C") -> Any:
            return fake.ndarray(self._a.reshape(*shape), self._dev)

        def view(self, *args: Any) -> Any:
            return fake.ndarray(self._a.view(*args), self._dev)

        def transpose(self, *axes: Any) -> Any:
            return fake.ndarray(self._a.transpose(*axes), self._dev)

        def ravel(self) -> Any:
            return fake.wrap(fake.unwrap(self, "ravel").ravel())

        def fill(self, value: Any) -> None:
            fake.unwrap(self, "fill").fill(value)

        def __getattr__(self, name: str) -> Any:
            # sum, max, mean, ... as methods: the NumPy method, checked and wrapped
            attr = getattr(np.ndarray, name)
            if not callable(attr):
                raise AttributeError(name)

            def method(*args: Any, **kwargs: Any) -> Any:
                data = fake.unwrap(self, name)
                return fake.wrap(getattr(data, name)(
                    *fake.unwrap(list(args), name),
                    **{k: fake.unwrap(v, k) for k, v in kwargs.items()},
                ))

            return method

    ndarray.__module__ = "cupy"
    ndarray.__qualname__ = ndarray.__name__ = "ndarray"
    return ndarray
