"""What ``fit(..., comm=comm)`` asks of a communicator: agree on the inputs before the
first step, and sum each step's gradients and cost over the ranks.

``Communicator`` inherits these; they use only its collectives (``agree``,
``_start_allreduce``, ``_start_in_place``, ``_wait``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from deepnet.backend import Array, array_namespace, to_numpy
from deepnet.distributed import protocol
from deepnet.errors import InputError

#: Examples of each table whose values ``agree_fit`` compares (evenly spaced).
SAMPLE = 16
#: Host arrays up to this many bytes in all are copied into one buffer and summed in one
#: collective; larger ones are summed in place as requests in flight together (two
#: concurrent requests cost 5x one on MPICH's shared memory for a 4 KB gradient, while
#: copying a large gradient costs more than the second request).
PACK_BYTES = 256 * 2**10
#: What ``_start_in_place`` returns for an array it cannot sum in its own memory.
STAGE = object()


class StepHooks:
    """``agree_fit`` and ``allreduce_step``, the two calls of the ``fit`` loop (a mixin of
    ``Communicator``, whose members it uses)."""

    size: int
    agree: Callable[..., None]
    _start_allreduce: Callable[..., Any]
    _wait: Callable[..., None]

    def agree_fit(self, net: Any, X: Any, Y: Any, val: tuple | None, batch_size: int | None,
                  seed: int | None, rng: np.random.Generator, *, epochs: int | None = None,
                  optimizer: Any = None, learning_rate: float | None = None,
                  stopper: Any = None, monitor: str | None = None) -> None:
        """Check, in one collective, that every rank starts the same fit: the network
        (each constructor argument), its initial parameters, the training and validation
        sets (sizes, and the values of :data:`SAMPLE` evenly spaced examples), the batch
        size, the seed, the state of the shuffling and dropout RNGs, and what else decides
        the updates and the number of steps: ``epochs``, ``optimizer`` (a name or an
        ``Optimizer``, see :func:`run_items`), ``learning_rate``, ``stopper`` (an
        ``EarlyStopping`` or ``None``) and its ``monitor`` (left out where ``epochs`` is
        ``None``). A difference raises the same
        :class:`~deepnet.errors.RankMismatchError` on every rank, naming what differs,
        before any step: ranks that would update differently, or stop at different epochs
        (and then call different collectives), never start.

        ``X``, ``Y`` and ``val``'s are the data path's tables (``deepnet.data.Table``).
        """
        items: dict[str, Any] = {f"network {k}": v for k, v in net.config().items()}
        items["backend"] = net.backend.name
        flat = getattr(net, "_flat", None)
        items["initial parameters"] = (flat if flat is not None else
                                       [net._params[k] for k in sorted(net._params)])
        tables = {"X": X, "Y": Y}
        if val is not None:
            tables.update({"X_val": val[0], "Y_val": val[1]})
        for name, table in tables.items():
            items[f"{name} size"] = (table.m, table.k)
            items[f"{name} sample"] = _sample(net.backend, table)
        items["batch size"] = batch_size
        items["seed"] = seed
        items["shuffle RNG state"] = rng.bit_generator.state
        items["dropout RNG state"] = net._rng.bit_generator.state
        if epochs is not None:
            items.update(run_items(epochs, optimizer, learning_rate, stopper, monitor))
        self.agree(items)

    def allreduce_step(self, grads: Mapping[str, Array], flat: Array | None, J: Array) -> Array:
        """Sum a step over the ranks: the gradients in place (``flat``, the one array they
        are views of, where there is one; else each array of ``grads``) and the cost
        ``J`` of this rank's share (a 0-d array), returned summed, on ``J``'s device.

        The gradient and the cost travel together: packed into one host buffer (one
        collective) when they are small (:data:`PACK_BYTES`) or out of the transport's
        reach (array-api-strict, CuPy without NCCL); else summed in place, as requests
        in flight at once (NumPy, CPU tensors, CUDA tensors over NCCL).
        """
        if self.size == 1:
            return J
        xp = array_namespace(J)
        total = xp.reshape(xp.asarray(J, copy=True), (1,))
        arrays = [flat] if flat is not None else list(grads.values())
        self._sum_arrays([*arrays, total], "allreduce_step")
        return xp.reshape(total, ())

    def _sum_arrays(self, arrays: Sequence[Array], what: str) -> None:
        """Sum each of ``arrays`` over the ranks, in place, waiting for all at once."""
        sizes = [_host_nbytes(x) for x in arrays]
        small = (len(arrays) > 1 and None not in sizes
                 and sum(s for s in sizes if s is not None) <= PACK_BYTES)
        handles, staged = [], []
        for x in arrays:
            handle = STAGE if small else self._start_in_place(x)
            if handle is STAGE:
                staged.append(x)
            else:
                handles.append(handle)
        write_back = None
        if len(staged) == 1:
            buf, write_back = protocol.host_buffer(staged[0], f"{what}'s array")
            handles.append(self._start_allreduce(buf))
        elif staged:
            buf, write_back = _packed(staged, what)
            handles.append(self._start_allreduce(buf))
        self._wait(handles, what)
        if write_back is not None:
            write_back()

    def _start_in_place(self, x: Array) -> Any:
        """A request summing ``x`` in its own memory, or :data:`STAGE` where it must go
        through the host. Here: NumPy arrays and CPU tensors that are contiguous."""
        if _host_nbytes(x) is not None:
            buf, write_back = protocol.host_buffer(x, "array")
            if write_back is None:
                return self._start_allreduce(buf)
        return STAGE


def run_items(epochs: int, optimizer: Any, learning_rate: float | None, stopper: Any,
              monitor: str | None) -> dict[str, Any]:
    """What ``agree_fit`` compares of a fit's settings besides the network and the data:
    ``optimizer`` is a name (any case) or an ``Optimizer`` object, compared by its rule,
    hyperparameters and schedule (its ``repr``), its step and epoch counts, whether it
    runs fused updates, and the values of its moments (an object carried over from an
    earlier fit)."""
    items: dict[str, Any] = {"epochs": epochs, "learning rate": learning_rate,
                             "early stopping": stopper, "monitor": monitor}
    if isinstance(optimizer, str):
        items["optimizer"] = optimizer.lower()
        return items
    items["optimizer"] = repr(optimizer)
    items["optimizer counts (steps, epochs)"] = (getattr(optimizer, "t", None),
                                                 getattr(optimizer, "epochs", None))
    items["optimizer fused"] = getattr(optimizer, "fused", None)
    moments = getattr(optimizer, "moments", ())
    state = getattr(optimizer, "state", {}) or {}
    items["optimizer state"] = {key: {name: v for name, v in slot.items() if name in moments}
                                for key, slot in state.items()}
    return items


def _host_view(x: Array) -> np.ndarray | None:
    """``x``'s memory as a writable NumPy array (NumPy, CPU tensors), else ``None``."""
    lib = protocol.library_of(x)
    if lib == "numpy" and x.flags.writeable:
        return x
    if lib == "torch" and x.device.type == "cpu" and not x.requires_grad:
        return x.numpy()
    return None


def _host_nbytes(x: Array) -> int | None:
    """Bytes of ``x`` where it lives in host memory (NumPy, CPU tensors), else ``None``."""
    lib = protocol.library_of(x)
    if lib == "numpy":
        return int(x.nbytes)
    if lib == "torch" and x.device.type == "cpu":
        return int(x.numel() * x.element_size())
    return None


def _packed(arrays: Sequence[Array], what: str) -> tuple[np.ndarray, Any]:
    """One host buffer holding every array of ``arrays`` (one dtype), and the function
    that writes the summed pieces back, each to its array's device."""
    host = [np.asarray(to_numpy(x)) for x in arrays]
    for h in host:
        if h.dtype.kind not in "fiu" or h.dtype != host[0].dtype:
            dtypes = [str(h.dtype) for h in host]
            raise InputError(f"{what}: the arrays must share one real dtype; got {dtypes}")
    buf = np.concatenate([h.ravel() for h in host])

    def write_back() -> None:
        offset = 0
        for x, h in zip(arrays, host):
            piece = buf[offset: offset + h.size].reshape(h.shape)
            view = _host_view(x)
            if view is not None:
                np.copyto(view, piece)
            else:
                x[...] = array_namespace(x).asarray(piece, device=x.device)
            offset += h.size

    return buf, write_back


def _sample(backend: Any, table: Any) -> np.ndarray:
    """Up to :data:`SAMPLE` evenly spaced examples of a data-path table, on the host."""
    if table.m == 0:
        return np.empty((0, table.k))
    positions = np.unique(np.linspace(0, table.m - 1, min(table.m, SAMPLE)).astype(np.int64))
    rows = table.source_rows(positions)
    if table.streamed:
        return np.ascontiguousarray(table.convert(np.take(table.rows, rows, axis=0)))
    xp = backend.xp
    picked = xp.take(table.rows, backend.asarray(rows, what="sample rows"), axis=0)
    return np.ascontiguousarray(to_numpy(picked))


__all__ = ["PACK_BYTES", "SAMPLE", "STAGE", "StepHooks", "run_items"]
