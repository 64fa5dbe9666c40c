"""Mini-batches of an (X, Y) pair of tables (``deepnet.data``), on the network's device.

One epoch is a plan — the host RNG's permutation of the example positions cut into
batches, each batch's positions sorted — and the loader turns each batch into ``A[0]``
and ``Y`` on the device:

* tables in memory: the epoch's positions go to the device **once** (one transfer per
  epoch, none per step); each batch's rows are gathered into a reused buffer
  (``backend.gather_rows``) and passed as its transposed view;
* streamed tables (memory maps): a background thread reads, converts and checks each
  batch's rows on the host and moves them to the device, one batch ahead of the step
  (:class:`Prefetcher`); with ``prefetch=False`` the same work is done in line.

A batch may be cut into **parts**: the share of process ``rank`` of ``size`` (data
parallel), and, for a streamed full batch, chunks of ``chunk`` examples so that memory
stays bounded; ``deepnet.step.step`` sums their gradients.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from deepnet.backend import Array, Backend, gather_rows
from deepnet.data import Table, file_size
from deepnet.errors import InputError

#: Examples per part of a streamed full batch.
STREAM_CHUNK = 4096


def plan(rng: np.random.Generator, m: int, batch_size: int | None) -> list[np.ndarray]:
    """The epoch's batches: positions ``0..m-1`` shuffled by ``rng`` and cut into batches
    of ``batch_size`` (the last one smaller), each sorted.

    Parameters
    ----------
    rng : numpy.random.Generator
        The host generator of the shuffles.
    m : int
        The number of examples.
    batch_size : int or None
        ``None`` (or ``≥ m``) is one full batch in order, with no draw from ``rng``.

    Returns
    -------
    list of numpy.ndarray
        Each batch's example positions, sorted, as host int64 arrays.
    """
    if batch_size is None or batch_size >= m:
        return [np.arange(m, dtype=np.int64)]
    order = rng.permutation(m)
    full = (m // batch_size) * batch_size
    head = np.sort(order[:full].reshape(-1, batch_size), axis=1)
    batches = list(head)
    if full < m:
        batches.append(np.sort(order[full:]))
    return batches


def share(b: int, rank: int, size: int) -> tuple[int, int]:
    """The columns ``[start, stop)`` of a batch of ``b`` that process ``rank`` of ``size``
    computes: contiguous shares whose sizes differ by at most one.

    Parameters
    ----------
    b : int
        The batch's size.
    rank, size : int
        This process's rank and the number of processes.

    Examples
    --------
    >>> from deepnet.loader import share
    >>> [share(10, rank, 3) for rank in range(3)]
    [(0, 3), (3, 6), (6, 10)]
    """
    return rank * b // size, (rank + 1) * b // size


class Loader:
    """Batches of ``X`` and ``Y`` (tables of the same ``m`` examples) on ``backend``.

    Parameters
    ----------
    backend : Backend
        Where the batches go.
    X : Table
        The features, ``m`` rows of ``n0``.
    Y : Table or None
        The labels, ``m`` rows of ``nL``; ``None`` for inputs only (``predict``).
    dtype : dtype
        The network's floating dtype.
    rank, size : int
        This process's share of each batch (data parallel); 0 and 1 alone.
    prefetch : bool
        Read streamed batches in a background thread, one ahead.
    """

    def __init__(self, backend: Backend, X: Table, Y: Table | None, dtype: Any, *,
                 rank: int = 0, size: int = 1, prefetch: bool = True) -> None:
        if Y is not None and X.m != Y.m:
            raise InputError(f"X has {X.m} examples but Y has {Y.m}")
        self.backend, self.X, self.dtype = backend, X, dtype
        self.Y: Any = Y  # a Table; None only for a loader of features (predict)
        self.m, self.rank, self.size = X.m, rank, size
        self.streamed = X.streamed or (Y is not None and Y.streamed)
        self.prefetch = prefetch
        self._buffers: dict[int, tuple[Array | None, Array | None]] = {}
        self._whole: tuple[Array, Array] | None = None
        self._indices: dict[int, Array] = {}  # id(table.index) -> it on the device
        self._sizes = (file_size(X.filename), None if Y is None else file_size(Y.filename))

    # -- one epoch ------------------------------------------------------------------------
    def epoch(self, batches: list[np.ndarray]) -> Iterator[tuple[list, int]]:
        """The epoch's batches on the device, in ``batches``' order.

        Parameters
        ----------
        batches : list of numpy.ndarray
            The epoch's plan (:func:`plan`).

        Yields
        ------
        parts : list of (A0, Y, offset)
            This process's parts of the batch: ``A0 (n0, b')`` and ``Y (nL, b')`` column
            views on the device, and the position of their first column in the batch.
        b : int
            The batch's size (every process's columns).
        """
        if not self.streamed:
            yield from self._in_memory(batches)
            return
        work = self._streamed(batches)
        if not self.prefetch:
            yield from work
            return
        with Prefetcher(work) as ahead:
            yield from ahead

    def _in_memory(self, batches: list[np.ndarray]) -> Iterator[tuple[list, int]]:
        if len(batches) == 1 and len(batches[0]) == self.m:
            X, Y = self._full()
            start, stop = share(self.m, self.rank, self.size)
            yield [(X[:, start:stop], Y[:, start:stop], start)], self.m
            return
        lengths = [len(b) for b in batches]
        order = np.concatenate(batches)
        rows_x = self.X.source_rows(order)
        same = self.Y.index is self.X.index or (
            self.Y.index is not None and self.X.index is not None
            and np.array_equal(self.Y.index, self.X.index))
        rows_y = rows_x if same else self.Y.source_rows(order)
        idx_x = self.backend.asarray(rows_x, what="shuffle order")  # once per epoch
        idx_y = idx_x if same else self.backend.asarray(rows_y, what="shuffle order")
        offset = 0
        for b in lengths:
            start, stop = share(b, self.rank, self.size)
            part = stop - start
            xbuf, ybuf = self._buffer(part)
            sl = slice(offset + start, offset + stop)
            Xb = gather_rows(self.X.rows, idx_x[sl], out=xbuf)
            Yb = gather_rows(self.Y.rows, idx_y[sl], out=ybuf)
            yield [(Xb.T, Yb.T, start)], b
            offset += b

    def sequential(self, chunk: int) -> Iterator[tuple[Array, Array | None, int]]:
        """This process's share of the examples in order, ``chunk`` at a time (for
        evaluation: views where the rows need no gather).

        Parameters
        ----------
        chunk : int
            Examples per item.

        Yields
        ------
        A0 : array (n0, b)
        Y : array (nL, b) or None
            ``None`` for a loader of features only.
        offset : int
            The position of the first example.
        """
        start, stop = share(self.m, self.rank, self.size)
        tables = [self.X] if self.Y is None else [self.X, self.Y]
        for at in range(start, stop, chunk):
            end = min(at + chunk, stop)
            if not self.streamed and all(t.index is None for t in tables):
                got = [t.rows[at:end, ...].T for t in tables]
            elif not self.streamed:  # rows by an index: put on the device once, sliced
                got = [t.rows[at:end, ...].T if t.index is None
                       else gather_rows(t.rows, self._device_index(t)[at:end]).T
                       for t in tables]
            else:
                positions = np.arange(at, end, dtype=np.int64)
                got = [self._read(t, positions).T for t in tables]
            yield got[0], (got[1] if len(got) > 1 else None), at

    def _device_index(self, table: Table) -> Array:
        """``table.index`` on the device, copied in once per loader (the evaluation of a
        held-out subset reads it every epoch, a chunk at a time)."""
        key = id(table.index)
        if key not in self._indices:
            self._indices[key] = self.backend.asarray(table.index, what="rows")
        return self._indices[key]

    def _full(self) -> tuple[Array, Array]:
        """The whole table as ``(A0, Y)`` column views, gathered once if it is a subset."""
        if self._whole is None:
            xrows, yrows = self.X.rows, self.Y.rows
            if self.X.index is not None:
                xrows = gather_rows(xrows, self.backend.asarray(self.X.index, what="rows"))
            if self.Y.index is not None:
                yrows = gather_rows(yrows, self.backend.asarray(self.Y.index, what="rows"))
            self._whole = (xrows.T, yrows.T)
        return self._whole

    def _buffer(self, b: int) -> tuple[Array | None, Array | None]:
        """Reused gather buffers for ``b`` rows (at most two sizes: a batch and the last,
        smaller one), or ``None`` where the backend cannot write into buffers."""
        if not self.backend.supports_out:
            return None, None
        if b not in self._buffers:
            if len(self._buffers) >= 2:
                self._buffers.pop(next(iter(self._buffers)))
            xp, dev = self.backend.xp, self.backend.device
            self._buffers[b] = (xp.empty((b, self.X.k), dtype=self.dtype, device=dev),
                                xp.empty((b, self.Y.k), dtype=self.dtype, device=dev))
        return self._buffers[b]

    # -- streamed tables ----------------------------------------------------------------
    def _streamed(self, batches: list[np.ndarray]) -> Iterator[tuple[list, int]]:
        for positions in batches:
            b = len(positions)
            start, stop = share(b, self.rank, self.size)
            mine = positions[start:stop]
            chunk = STREAM_CHUNK if len(batches) == 1 else max(1, stop - start)
            parts = []
            for at in range(0, len(mine), chunk):
                piece = mine[at:at + chunk]
                parts.append((self._read(self.X, piece).T, self._read(self.Y, piece).T,
                              start + at))
            yield parts, b

    def _read(self, table: Table, positions: np.ndarray) -> Array:
        """Rows of ``table`` at ``positions``, converted, on the device."""
        if not table.streamed:
            idx = self.backend.asarray(table.source_rows(positions), what="rows")
            return gather_rows(table.rows, idx)
        self._check_file(table)
        try:
            block = np.take(table.rows, table.source_rows(positions), axis=0)
        except OSError as exc:
            raise InputError(f"{table.name}: reading {table.filename} failed ({exc})") from exc
        host = table.convert(block)
        return self.backend.from_host_rows(host) if self.backend.name != "numpy" else host

    def _check_file(self, table: Table) -> None:
        before = self._sizes[0] if table is self.X else self._sizes[1]
        now = file_size(table.filename)
        if before is not None and now != before:
            raise InputError(
                f"{table.name}: the file {table.filename} changed under the fit (size "
                f"{before} bytes, now {now}); the parameters of the last completed epoch "
                "are kept"
            )


class Prefetcher:
    """Runs an iterator one item ahead in a background thread.

    Items come out in the order the iterator makes them; an exception inside it is
    raised in the consumer at the item where it happened. Used as a context manager:
    leaving the block (normally, by an exception or Ctrl-C) stops the thread and joins
    it, so no thread outlives the epoch.

    Parameters
    ----------
    source : iterator
        What to run ahead.
    depth : int
        How many items may wait, made but not yet taken.
    """

    _DONE = object()

    def __init__(self, source: Iterator[Any], depth: int = 1) -> None:
        self._source = source
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="deepnet-prefetch",
                                        daemon=True)

    def __enter__(self) -> Prefetcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self._queue.get()
            if item is self._DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item

    def _run(self) -> None:
        try:
            for item in self._source:
                if not self._put(item):
                    return
            self._put(self._DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(_Failure(exc))

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def close(self) -> None:
        """Stop the thread (it may be blocked on a full queue) and wait for it."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(timeout=0.05)
        close = getattr(self._source, "close", None)
        if close is not None:
            close()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


__all__ = ["STREAM_CHUNK", "Loader", "Prefetcher", "plan", "share"]
