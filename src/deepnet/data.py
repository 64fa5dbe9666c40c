"""The data path: from the caller's arrays (or memory maps) to ``A[0]`` of each step.

The API keeps the notes' column layout — ``X`` is ``(n0, m)``, one example per column —
but ``fit`` stores a training set **example-major**: one example per row, ``(m, n0)``.
Gathering a mini-batch is then a copy of ``B`` contiguous rows into a reused buffer
(``backend.gather_rows``), and its transposed view is the ``(n0, B)`` ``A[0]`` of the
step: BLAS reads a transposed operand without a copy. Picking ``B`` columns of a
column-layout array instead touches ``B`` scattered numbers in each of ``n0`` rows (25x
slower at ``n0 = 784``), and on the transpose of a row-major array it was a cliff.

A :class:`Table` holds ``m`` examples as rows:

* in memory, on the network's device — no copy at all when the caller's data already is
  example-major (``X.T`` of a row-major ``(m, n0)`` array) of the right dtype and
  library, else exactly one;
* or **streamed** from a NumPy memory map (``np.load(path, mmap_mode="r")``,
  ``np.memmap``) in either layout: batches are read, converted and checked on the host
  and moved to the device one at a time, by a prefetch thread (``deepnet.prefetch``).

Either kind may carry an ``index`` (the examples a validation split left for training):
batch positions map through it on the host, once per epoch. Batches always list their
examples in increasing order (the shuffle decides *which* examples form a batch), so a
memory map is read front to back within a batch and a table in memory gives bit for bit
the same batches as the same data streamed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from deepnet import checks, inputs
from deepnet.backend import Array, Backend, host_input
from deepnet.errors import InputError, ShapeError

#: Host memory one conversion or check handles at a time.
CHUNK_BYTES = 16 * 2**20


@dataclass(eq=False)
class Table:
    """``m`` examples of ``k`` numbers each, one per row.

    Attributes
    ----------
    rows : array (M, k)
        On the network's device, or (``streamed``) a host memory map whose rows are
        converted batch by batch.
    m : int
        The number of examples (``len(index)`` where an index is given, else ``M``).
    k : int
        Numbers per example: ``n0`` for features, ``nL`` for labels.
    index : numpy.ndarray (m,) or None
        Sorted host int64 positions: the rows of ``rows`` this table holds; ``None`` for
        all of them in order.
    convert : callable or None
        For a streamed table, the function that turns a host block of rows into the
        network's dtype (checking it); ``None`` in memory.
    name : str
        What the rows are, for messages (``"X"``, ``"Y_val"``).
    filename : str or None
        The memory map's file, for messages and to notice it changing.
    """

    rows: Any
    m: int
    k: int
    index: np.ndarray | None = None
    convert: Any = None
    name: str = "X"
    filename: str | None = None

    @property
    def streamed(self) -> bool:
        """Whether the rows are read from a memory map batch by batch."""
        return self.convert is not None

    def subset(self, positions: np.ndarray) -> Table:
        """The examples at ``positions`` (sorted host int64) of this table, without a copy
        of the rows (only the index is new)."""
        index = positions if self.index is None else self.index[positions]
        return Table(self.rows, len(index), self.k, index, self.convert, self.name,
                     self.filename)

    def source_rows(self, positions: np.ndarray) -> np.ndarray:
        """The rows of ``rows`` that hold the examples at ``positions`` (both host int64
        arrays)."""
        return positions if self.index is None else self.index[positions]


def memmap_file(x: Any) -> str | None:
    """The file behind a NumPy memory map (or a view of one); ``None`` for other arrays.

    Parameters
    ----------
    x : object
        Anything a caller passes as data.
    """
    if isinstance(x, np.memmap):
        name = getattr(x, "filename", None)
        return str(name) if name else "<memory map>"
    return None


# -- tables from the caller's arrays ---------------------------------------------------------


def features(backend: Backend, X: Any, n0: int, dtype: Any, what: str = "X") -> Table:
    """Features as an example-major table on ``backend`` (streamed from a memory map).

    Shape and dtype are checked first, with the messages of ``inputs.features``; then
    every value is checked to be finite in one read (a sum per chunk, no temporary as
    large as ``X``).

    Parameters
    ----------
    backend : Backend
        The network's.
    X : array (n0, m) or memory map
        Examples in columns, of any library and memory order.
    n0 : int
        The input size the network expects.
    dtype : dtype
        The network's floating dtype.
    what : str
        The argument's name in messages (``"X"``, ``"X_val"``).

    Returns
    -------
    Table
        ``m`` rows of ``n0`` numbers: no copy where ``X`` already is example-major of the
        right dtype and library (``X.T`` of row-major data), else one.

    Raises
    ------
    ShapeError, InputError
        For a wrong shape or dtype, or values that are NaN or inf.
    """
    inputs.feature_shape(X, n0, what)
    filename = memmap_file(X)
    if filename is not None:
        host = host_input(X, what)
        checks.real_dtype(host.dtype, what)
        rows = host.T
        _check_finite_host(rows, what, filename, np.dtype(checks.dtype_name(dtype)))
        return Table(rows, rows.shape[0], n0, convert=_caster(backend, dtype, what, filename),
                     name=what, filename=filename)
    rows = _device_rows(backend, X, dtype, what)
    checks.all_finite(rows, what)
    return Table(rows, rows.shape[0], n0, name=what)


def labels(backend: Backend, Y: Any, *, output: str, nL: int, m: int, dtype: Any,
           what: str = "Y") -> Table:
    """Labels as an example-major table: ``(m, nL)`` rows of the canonical float labels
    (one-hot for integer class labels).

    Labels in memory are checked and converted by ``inputs.labels`` (they are ``nL/n0``
    of the data's size). A memory map of labels is checked chunk by chunk on the host
    and streamed like the features.

    Parameters
    ----------
    backend : Backend
    Y : array (nL, m) or (m,), or memory map
        In any layout ``Model.cost`` accepts.
    output : str
        The network's output activation (which layouts are allowed).
    nL : int
        Output units.
    m : int
        The number of examples ``X`` has.
    dtype : dtype
        The network's floating dtype.
    what : str
        The argument's name in messages.

    Returns
    -------
    Table
    """
    filename = memmap_file(Y)
    if filename is None:
        canonical = inputs.labels(backend, Y, output=output, nL=nL, m=m, dtype=dtype,
                                  what=what)
        return Table(_row_major(backend, canonical.T), m, nL, name=what)
    host = host_input(Y, what)
    checks.real_dtype(host.dtype, what)
    numpy = _numpy_backend()
    np_dtype = np.dtype(checks.dtype_name(dtype))
    where = f"{what} ({filename})"
    if host.ndim == 1 and (output == "softmax" or nL == 1):
        columns = host[None, :]
    elif host.ndim == 2 and host.shape[0] == nL:
        columns = host
    else:
        raise ShapeError(
            f"{where} must hold labels of shape (nL, m) = ({nL}, {m})"
            + (" or class labels of shape (m,)" if output == "softmax" else "")
            + f"; got {tuple(host.shape)}"
        )
    if columns.shape[1] != m:
        raise ShapeError(f"{where} has {columns.shape[1]} examples but X has m = {m}")

    def canonical_rows(block: np.ndarray) -> np.ndarray:
        # block: (rows of) columns in the caller's layout, examples along the last axis
        labels_in = block[0] if host.ndim == 1 else block
        got = inputs.labels(numpy, labels_in, output=output, nL=nL, m=block.shape[1],
                            dtype=np_dtype, what=where)
        return np.ascontiguousarray(got.T)

    step = max(1, CHUNK_BYTES // max(1, columns.shape[0] * columns.itemsize))
    for start in range(0, m, step):  # every label checked before any work, in chunks
        canonical_rows(columns[:, start:start + step])
    return Table(columns.T, m, nL, convert=lambda rows: canonical_rows(rows.T), name=what,
                 filename=filename)


def _device_rows(backend: Backend, X: Any, dtype: Any, what: str) -> Array:
    """``X (n0, m)`` as ``(m, n0)`` row-major rows on the device, copied at most once."""
    if backend.owns(X) or not isinstance(X, np.ndarray):
        Xd = backend.asarray(X, dtype, what=what)  # another library's arrays, lists
        return _row_major(backend, Xd.T)
    host = host_input(X, what)
    checks.real_dtype(host.dtype, what, host)
    rows = host.T
    target = np.dtype(checks.dtype_name(dtype))
    if rows.flags.c_contiguous and rows.dtype == target:
        ready = rows
    else:
        ready = np.empty(rows.shape, dtype=target)
        step = max(1, CHUNK_BYTES // max(1, rows.shape[1] * rows.itemsize))
        with np.errstate(over="ignore", invalid="ignore"):  # inf: reported by the check
            for start in range(0, rows.shape[0], step):
                ready[start:start + step] = rows[start:start + step]
    return backend.from_host_rows(ready)


def _row_major(backend: Backend, x: Array) -> Array:
    from deepnet.backend import row_major

    return row_major(x)


def _numpy_backend() -> Backend:
    from deepnet.backend import get_backend

    return get_backend("numpy")


def _caster(backend: Backend, dtype: Any, what: str,
            filename: str) -> Callable[[np.ndarray], np.ndarray]:
    """The conversion of a streamed block of feature rows: dtype, then a finiteness check
    naming the file (the file may change under the fit)."""
    target = np.dtype(checks.dtype_name(dtype))

    def convert(block: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            out = np.ascontiguousarray(block, dtype=target)
            finite = np.isfinite(out.sum()) or np.isfinite(out).all()
        if not finite:
            raise InputError(
                f"{what} ({filename}) holds NaN or inf in the rows just read: the file "
                "changed under the fit, or its values overflow the network's dtype"
            )
        return out

    return convert


def _check_finite_host(rows: np.ndarray, what: str, filename: str,
                       target: np.dtype) -> None:
    """Every value of a memory map finite as ``target`` (the network's dtype: float64
    values beyond float32's range become inf), read once in chunks (bounded memory)."""
    if rows.dtype.kind not in "fc":
        return
    narrower = rows.dtype.itemsize > target.itemsize
    step = max(1, CHUNK_BYTES // max(1, rows.shape[1] * rows.itemsize))
    try:
        for start in range(0, rows.shape[0], step):
            block = rows[start:start + step]
            with np.errstate(over="ignore", invalid="ignore"):
                if narrower:
                    block = block.astype(target)
                if np.isfinite(block.sum()) or np.isfinite(block).all():
                    continue
            bad = int(np.count_nonzero(~np.isfinite(block)))
            beyond = (f"; values beyond ±{np.finfo(target).max:.3g} become inf as "
                      f"{target.name}: scale the data or use dtype='float64'"
                      if narrower else "")
            raise InputError(
                f"{what} ({filename}) must be finite; it holds NaN or inf ({bad} in the "
                f"examples {start} to {min(start + step, rows.shape[0]) - 1}){beyond}"
            )
    except OSError as exc:
        raise InputError(f"{what}: cannot read the memory map {filename} ({exc})") from exc


def file_size(filename: str | None) -> int | None:
    """The size in bytes of a memory map's file now: ``None`` when it has no name, -1
    when it cannot be read."""
    if filename is None or filename.startswith("<"):
        return None
    try:
        return os.stat(filename).st_size
    except OSError:
        return -1


__all__ = ["CHUNK_BYTES", "Table", "features", "file_size", "labels", "memmap_file"]
