"""The communicator interface, the single-process communicator, and the waiting loop every
multi-process communicator shares.

A collective is started as a non-blocking request and waited for in
:meth:`Communicator._wait`, which at the same time watches these, so that no rank waits
forever:

- the **error channel**: a rank that stops with an exception (bad input,
  ``DivergenceError``, Ctrl-C) posts it with :meth:`Communicator.fail`; every rank waiting
  in a collective raises the same error class, with the message naming the rank. On MPI
  a rank that leaves the run (its communicator closes at exit) also says how many
  collectives it made, and a rank waiting for one it never started stops;
- the **processes of the other ranks on this machine** (checked every
  :data:`CHECK_EVERY` seconds): one that exited or was killed is named in a
  ``DistributedError``;
- a **timeout** (``DEEPNET_COMM_TIMEOUT``, default :data:`DEFAULT_TIMEOUT` seconds) for a
  peer on another machine that hangs without exiting.

The first :data:`SPIN` seconds of a wait poll without sleeping (as blocking MPI calls do,
so a short collective pays no sleep); after that the loop sleeps between polls, at most
:data:`MAX_SLEEP`, so a rank waiting for a slow peer leaves the CPU to it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import time
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from deepnet.backend import Array
from deepnet.distributed import protocol
from deepnet.distributed.steps import StepHooks
from deepnet.errors import DistributedError, InputError

SPIN = 0.02
MAX_SLEEP = 2e-4
CHECK_EVERY = 0.25
DEFAULT_TIMEOUT = 1800.0


def timeout_from_env(timeout: float | None = None) -> float | None:
    """``timeout``, else ``DEEPNET_COMM_TIMEOUT`` (seconds; ``0`` or ``none``: no limit),
    else :data:`DEFAULT_TIMEOUT`."""
    text: Any
    if timeout is not None:
        text, source = timeout, "timeout"
    else:
        text, source = os.environ.get("DEEPNET_COMM_TIMEOUT", "").strip(), "DEEPNET_COMM_TIMEOUT"
        if not text:
            return DEFAULT_TIMEOUT
        if text.lower() == "none":
            return None
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = float("nan")
    if not value >= 0.0 or value == float("inf"):
        raise InputError(f"{source} must be a number of seconds >= 0 (0: no limit); got {text!r}")
    return value or None


class Communicator(StepHooks):
    """A group of ``size`` processes, each holding one ``rank``, that reduce arrays together.

    Attributes
    ----------
    rank, size : this process's index and the number of processes.
    name : ``"single"``, ``"mpi"``, ``"torch.distributed"`` or ``"nccl"``.
    timeout : seconds a collective may wait for the other ranks (``None``: no limit).

    Every collective must be called by every rank, in the same order. Arrays may come
    from any deepnet backend; a library the transport cannot reach goes through the host
    with an explicit copy (:func:`deepnet.backend.to_numpy`).
    """

    name = "communicator"

    def __init__(self, rank: int, size: int, timeout: float | None = None) -> None:
        self.rank, self.size, self.timeout = int(rank), int(size), timeout
        self._stopped: BaseException | None = None  # what broke this communicator
        self._told = False  # whether fail() already posted an error
        self._peers: list[tuple[str, str, str, int]] = []
        self._collectives = 0  # collectives started so far (the same count on every rank)
        self._current = -1  # the index of the one being waited for
        self._left: dict[int, int] = {}  # rank -> collectives it made before it left

    # -- description --------------------------------------------------------------------
    @property
    def is_root(self) -> bool:
        """Whether this is rank 0: the rank that logs, shows progress and writes files."""
        return self.rank == 0

    def describe(self) -> str:
        """``"2 ranks over mpi (rank 0: pid 812 on vm; rank 1: pid 813 on vm)"``."""
        where = f" ({protocol.describe_peers(self._peers)})" if self._peers else ""
        noun = "rank" if self.size == 1 else "ranks"
        return f"{self.size} {noun} over {self.name}{where}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} rank {self.rank} of {self.size}>"

    # -- collectives ----------------------------------------------------------------------
    def allreduce_sum(self, x: Array) -> Array:
        """Sum ``x`` over the ranks, in place, in one collective; returns ``x``.

        The result is the same, bit for bit, on every rank.
        """
        self._sum_arrays([x], "allreduce_sum")
        return x

    def allreduce_host(self, values: Any) -> np.ndarray:
        """``values`` (numbers) as a float64 NumPy array, summed over the ranks."""
        buf = np.array(values, dtype=np.float64)
        self._wait(self._start_allreduce(buf), "allreduce_host")
        return buf

    def broadcast(self, x: Array, root: int = 0) -> Array:
        """Overwrite ``x`` on every rank with rank ``root``'s ``x``; returns ``x``."""
        root = self._check_root(root)
        buf, write_back = protocol.host_buffer(x, "broadcast's array")
        self._wait(self._start_broadcast(buf, root), "broadcast")
        if write_back is not None and self.rank != root:
            write_back()
        return x

    def broadcast_object(self, obj: Any = None, root: int = 0) -> Any:
        """Rank ``root``'s ``obj`` (any picklable object) on every rank."""
        root = self._check_root(root)
        data = protocol.dumps(obj) if self.rank == root else b""
        n = np.array([len(data)], dtype=np.int64)
        self._wait(self._start_broadcast(n, root), "broadcast_object")
        buf = (np.frombuffer(data, dtype=np.uint8).copy() if self.rank == root
               else np.empty(int(n[0]), dtype=np.uint8))
        self._wait(self._start_broadcast(buf, root), "broadcast_object")
        return obj if self.rank == root else pickle.loads(buf.tobytes())

    def allgather_object(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        data = protocol.dumps(obj)
        lengths = self._allgather_fixed(np.array([len(data)], dtype=np.int64), "allgather_object")
        out = np.empty(int(lengths.sum()), dtype=np.uint8)
        mine = np.frombuffer(data, dtype=np.uint8)
        self._wait(self._start_allgatherv(mine, out, lengths), "allgather_object")
        ends = np.cumsum(lengths)
        return [pickle.loads(out[e - n : e].tobytes()) for e, n in zip(ends, lengths)]

    def barrier(self) -> None:
        """Wait until every rank has called ``barrier``."""
        self.allreduce_host([0.0])

    def agree(self, what: str | Mapping[str, Any], value: Any = None) -> None:
        """Check that every rank passed the same ``value`` for ``what`` (a description:
        ``"X shape"``, ``"seed"``, ``"architecture"``...), or the same values for each
        item of a mapping ``what``.

        One collective of 32 bytes per rank when they agree. When they differ, every rank
        raises the same :class:`~deepnet.errors.RankMismatchError`, naming each item that
        differs, the ranks and their values. Arrays (of any backend) are compared by their
        bytes, shape and dtype, anything else by its ``repr``.
        """
        items = dict(what) if isinstance(what, Mapping) else {what: value}
        bad = [k for k in items if not isinstance(k, str)]
        if bad or not items:
            raise InputError(
                f"agree needs a description (str) of what is compared, or a mapping of them; "
                f"got {protocol.describe_value(bad[0] if bad else what)}"
            )
        digests = {k: protocol.fingerprint(v) for k, v in items.items()}
        total = hashlib.sha256(b"".join(digests.values())).digest()
        mine = np.frombuffer(total, dtype=np.uint8).copy()
        every = self._allgather_fixed(mine, f"agree({next(iter(items))!r})")
        if (every.reshape(self.size, -1) == mine).all():
            return
        described = {k: (digests[k].hex(), protocol.describe_value(v)) for k, v in items.items()}
        raise raised_everywhere(
            protocol.mismatch_error(self.allgather_object(described), self.size)
        )

    # -- errors ------------------------------------------------------------------------------
    def fail(self, exc: BaseException) -> None:
        """Tell every other rank that this one stops with ``exc``; they raise it too.

        Call it from an ``except`` block (or use :meth:`guard`). Posting happens once per
        communicator; an error that came from another rank is not sent back. Afterwards
        this communicator refuses new collectives, except where nothing can be pending:
        with one rank, and for an error marked by :func:`raised_everywhere` (which every
        rank raises at the same point: nothing to tell, the communicator stays usable).
        """
        origin = getattr(exc, "origin_rank", self.rank)
        if self.size == 1 or origin is None:
            return
        if self._stopped is None:
            self._stopped = exc
        if self._told or origin != self.rank:
            return
        self._told = True
        with contextlib.suppress(Exception):
            exc.origin_rank = self.rank  # type: ignore[attr-defined]
        with contextlib.suppress(Exception):  # best effort: the transport may be gone
            self._post_error(protocol.encode_error(exc, self.rank))

    @contextlib.contextmanager
    def guard(self) -> Iterator[Communicator]:
        """``with comm.guard():`` — any exception inside stops every rank with it."""
        try:
            yield self
        except BaseException as exc:
            self.fail(exc)
            raise

    def close(self) -> None:
        """Release the transport's resources (skipped after a failure: a collective that
        can never complete cannot be freed)."""

    # -- the waiting loop --------------------------------------------------------------------
    def _wait(self, handle: Any, what: str) -> None:
        """Until ``handle`` (or every handle of a list) completes; raises what another
        rank posted, a lost local peer, or a timeout, after posting it to the others."""
        pending = list(handle) if isinstance(handle, list) else [handle]
        if self._stopped is not None:
            raise DistributedError(
                f"{what}: this communicator stopped after an error "
                f"({type(self._stopped).__name__}: {protocol.message_of(self._stopped)}); "
                "start a new run"
            )
        self._current, self._collectives = self._collectives, self._collectives + 1
        start = time.monotonic()
        next_check = start + CHECK_EVERY
        delay = 0.0
        try:
            self._check_left(what)
            while pending:
                pending = [h for h in pending if not self._poll(h, what)]
                if not pending:
                    break
                now = time.monotonic()
                if now >= next_check:
                    self._check_peers(what, now - start)
                    next_check = now + CHECK_EVERY
                if now - start > SPIN:
                    time.sleep(delay)
                    delay = min(2 * delay or 1e-5, MAX_SLEEP)
        except BaseException as exc:
            if self._stopped is None and self.size > 1:
                self._stopped = exc  # a collective is left pending: no more of them
            raise

    def _check_left(self, what: str) -> None:
        """Raise if a rank that left the run never started the collective waited for."""
        for r, made in self._left.items():
            if self._current >= made:
                err = DistributedError(
                    f"rank {r} of {self.size} left the run (it closed its communicator or "
                    f"exited) after {made} collectives, while rank {self.rank} waited in "
                    f"{what}, its collective number {self._current + 1}: every rank must "
                    "call the same collectives in the same order; every rank stops"
                )
                self.fail(err)
                raise err

    def _check_peers(self, what: str, waited: float) -> None:
        lost = protocol.lost_local_peers(self._peers, self.rank) if self._peers else []
        if lost:
            r = lost[0]
            host, _, _, pid = self._peers[r]
            err = DistributedError(
                f"rank {r} of {self.size} (pid {pid} on {host}) is gone: it exited or was "
                f"killed while rank {self.rank} waited {waited:.1f} s in {what}; every rank "
                "stops"
            )
        elif self.timeout is not None and waited > self.timeout:
            err = DistributedError(
                f"rank {self.rank} of {self.size} waited {waited:.0f} s in {what} (the limit, "
                "DEEPNET_COMM_TIMEOUT) for the other ranks: one of them is stuck or much "
                "slower, or did not call the same collective; every rank stops"
            )
        else:
            return
        self.fail(err)
        raise err

    def _transport_error(self, what: str, exc: BaseException) -> DistributedError:
        """A transport's own failure, as a DistributedError naming a lost rank if any."""
        lost = protocol.lost_local_peers(self._peers, self.rank) if self._peers else []
        who = (f"rank {lost[0]} of {self.size} (pid {self._peers[lost[0]][3]} on "
               f"{self._peers[lost[0]][0]}) is gone; " if lost else "")
        err = DistributedError(
            f"{what} failed on rank {self.rank} of {self.size}: {who}the {self.name} "
            f"transport reported {type(exc).__name__}: {str(exc)[:500]}"
        )
        self.fail(err)
        return err

    def _check_root(self, root: Any) -> int:
        if isinstance(root, bool) or not isinstance(root, (int, np.integer)) or not (
            0 <= root < self.size
        ):
            raise InputError(f"root must be a rank 0..{self.size - 1}; got {root!r}")
        return int(root)

    def _allgather_fixed(self, mine: np.ndarray, what: str) -> np.ndarray:
        out = np.empty(mine.size * self.size, dtype=mine.dtype)
        counts = np.full(self.size, mine.size, dtype=np.int64)
        self._wait(self._start_allgatherv(mine, out, counts), what)
        return out

    # -- what a transport provides ---------------------------------------------------------
    def _start_allreduce(self, buf: np.ndarray) -> Any:
        raise NotImplementedError

    def _start_broadcast(self, buf: np.ndarray, root: int) -> Any:
        raise NotImplementedError

    def _start_allgatherv(self, mine: np.ndarray, out: np.ndarray, counts: np.ndarray) -> Any:
        raise NotImplementedError

    def _poll(self, handle: Any, what: str) -> bool:
        """Whether ``handle`` completed; raises an error another rank posted."""
        raise NotImplementedError

    def _post_error(self, payload: bytes) -> None:
        raise NotImplementedError


def raised_everywhere(exc: BaseException) -> BaseException:
    """Mark ``exc`` as raised by every rank at the same point of the run, decided from
    values every rank holds (an all-reduced cost that is NaN, an ``agree`` that failed):
    :meth:`Communicator.fail` then neither sends it nor stops the communicator, so a
    caller may catch it and go on (a smaller learning rate, other inputs). Returns ``exc``.
    """
    exc.origin_rank = None  # type: ignore[attr-defined]
    return exc


class SingleCommunicator(Communicator):
    """One process: every collective returns at once and changes nothing."""

    name = "single"

    def __init__(self) -> None:
        super().__init__(0, 1, None)

    def _start_allreduce(self, buf: np.ndarray) -> None:
        return None

    def _start_broadcast(self, buf: np.ndarray, root: int) -> None:
        return None

    def _start_allgatherv(self, mine: np.ndarray, out: np.ndarray, counts: np.ndarray) -> None:
        out[...] = mine

    def _poll(self, handle: Any, what: str) -> bool:
        return True

    def _post_error(self, payload: bytes) -> None:
        return None

    def allreduce_sum(self, x: Array) -> Array:
        _check_array(x, "allreduce_sum's array")
        return x

    def broadcast(self, x: Array, root: int = 0) -> Array:
        self._check_root(root)
        _check_array(x, "broadcast's array")
        return x


def _check_array(x: Any, what: str) -> None:
    if not protocol.is_array(x):
        raise InputError(f"{what} must be an array of a deepnet backend; got {type(x).__name__}")


__all__ = [
    "CHECK_EVERY",
    "DEFAULT_TIMEOUT",
    "MAX_SLEEP",
    "SPIN",
    "Communicator",
    "SingleCommunicator",
    "raised_everywhere",
    "timeout_from_env",
]
