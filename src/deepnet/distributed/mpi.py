"""The MPI communicator (mpi4py): what ``mpiexec``, ``srun`` or ``mpirun`` started.

Two duplicates of ``COMM_WORLD`` keep the traffic apart: one carries the collectives,
the other the error channel, on which every rank keeps one receive posted from any source
for the next record another rank sends: an error (:meth:`MPICommunicator.fail`), or the
number of collectives a rank made before it left the run (:meth:`MPICommunicator.close`,
at exit), so that a rank still waiting for it stops. Waiting tests the collective and the
channel together (``MPI_Testany``), so a record ends a wait at once.

mpi4py is imported when the first communicator is made, never by ``import deepnet``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from deepnet.distributed import protocol
from deepnet.distributed.base import Communicator
from deepnet.errors import BackendError

_ERROR_TAG = 7001
_SEND_GRACE = 2.0  # seconds fail() waits for its error records to leave


def import_mpi() -> Any:
    """``mpi4py.MPI``, or a :class:`BackendError` saying how to install it."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise BackendError(
            "this process was started by an MPI launcher (mpiexec, srun, mpirun), but "
            f"mpi4py cannot be imported ({exc}); install it with: pip install 'deepnet[mpi]' "
            "(mpi4py and the MPICH wheel), or run without the launcher"
        ) from exc
    return MPI


class MPICommunicator(Communicator):
    """The ranks of an MPI communicator (default ``COMM_WORLD``)."""

    name = "mpi"

    def __init__(self, world: Any = None, *, timeout: float | None = None) -> None:
        MPI = import_mpi()
        self._MPI = MPI
        world = MPI.COMM_WORLD if world is None else world
        super().__init__(world.Get_rank(), world.Get_size(), timeout)
        self._data = world.Dup()
        self._ctrl = world.Dup()
        self._ebuf = bytearray(protocol.MAX_PAYLOAD)
        self._status = MPI.Status()
        self._ereq: Any = None
        self._listen()
        self._sends: list[Any] = []
        self._peers = self.allgather_object(protocol.host_identity())

    def _listen(self) -> None:
        """Post the error channel's receive: the next record from any rank."""
        MPI = self._MPI
        self._ereq = self._ctrl.Irecv([self._ebuf, MPI.BYTE], source=MPI.ANY_SOURCE,
                                      tag=_ERROR_TAG)

    def _record(self, what: str) -> None:
        """Act on the record the error channel received: raise an error; note a rank
        that left (and raise if it never started this collective)."""
        count = self._status.Get_count(self._MPI.BYTE)
        kind, value = protocol.decode_record(bytes(self._ebuf[:count]), self.size)
        if kind == "error":
            raise value
        self._left[value[0]] = value[1]
        self._listen()
        self._check_left(what)

    # -- transport -------------------------------------------------------------------------
    def _start_allreduce(self, buf: np.ndarray) -> Any:
        return self._data.Iallreduce(self._MPI.IN_PLACE, buf, op=self._MPI.SUM)

    def _start_broadcast(self, buf: np.ndarray, root: int) -> Any:
        return self._data.Ibcast(buf, root=root)

    def _start_allgatherv(self, mine: np.ndarray, out: np.ndarray, counts: np.ndarray) -> Any:
        displs = np.concatenate([[0], np.cumsum(counts)[:-1]])
        return self._data.Iallgatherv(mine, [out, (counts.tolist(), displs.tolist())])

    def _poll(self, handle: Any, what: str) -> bool:
        try:
            index, done = self._MPI.Request.Testany([handle, self._ereq], self._status)
        except self._MPI.Exception as exc:
            raise self._transport_error(what, exc) from exc
        if not done:
            return False
        if index == 0:
            return True
        self._record(what)
        return False

    def _post_error(self, payload: bytes) -> None:
        MPI = self._MPI
        self._sends = [self._ctrl.Isend([payload, MPI.BYTE], dest=r, tag=_ERROR_TAG)
                       for r in range(self.size) if r != self.rank]
        deadline = time.monotonic() + _SEND_GRACE
        while not MPI.Request.Testall(self._sends) and time.monotonic() < deadline:
            time.sleep(1e-4)

    def close(self) -> None:
        """Leave the run: tell the other ranks how many collectives this one made (so
        one still waiting for it stops instead of hanging), and cancel the error
        channel's receive. Called at exit; MPI_Finalize frees the rest."""
        MPI = self._MPI
        if self._ereq is None or MPI.Is_finalized():
            return
        if self._stopped is None and self.size > 1:
            self._post_error(protocol.encode_left(self.rank, self._collectives))
        if self._ereq != MPI.REQUEST_NULL:
            self._ereq.Cancel()
            self._ereq.Wait()
        self._ereq = None


__all__ = ["MPICommunicator", "import_mpi"]
