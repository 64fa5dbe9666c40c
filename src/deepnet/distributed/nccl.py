"""CuPy arrays over NCCL (``cupy.cuda.nccl``), bootstrapped and guarded over MPI.

**Untested here**: this machine has no GPU, and NCCL needs one GPU per rank. The
design: ``mpiexec -n K`` starts one rank per GPU (``DEEPNET_DEVICE`` = the rank's local
index); rank 0 makes NCCL's unique id and broadcasts it over MPI; CuPy arrays are reduced
in place by NCCL on the current stream, and the wait polls a CUDA event together with
the MPI error channel, so a failing rank still stops the others (which then abort the
NCCL communicator, freeing kernels that wait for a peer that will not come). Host arrays,
objects and agreements go over MPI. To test it: a node with two GPUs,
``mpiexec -n 2 python tests/distributed_worker.py primitives`` with
``DEEPNET_BACKEND=cupy`` (the worker checks every collective against NumPy).
"""

from __future__ import annotations

from typing import Any

from deepnet.backend import Array
from deepnet.distributed.mpi import MPICommunicator
from deepnet.errors import BackendError


class NCCLCommunicator(MPICommunicator):
    """MPI for control, NCCL for CuPy arrays."""

    name = "nccl"

    def __init__(self, *, timeout: float | None = None) -> None:
        try:  # before MPI starts: a missing CuPy leaves nothing half made
            import cupy
            from cupy.cuda import nccl
        except ImportError as exc:
            raise BackendError(
                f"the nccl communicator needs CuPy with NCCL ({exc}); install "
                "'deepnet[cuda12]' and NCCL, or use DEEPNET_COMM=mpi"
            ) from exc
        super().__init__(timeout=timeout)
        self._cupy, self._nccl_mod = cupy, nccl
        try:
            uid = self.broadcast_object(nccl.get_unique_id() if self.is_root else None)
            self._nccl = nccl.NcclCommunicator(self.size, uid, self.rank)
        except BaseException as exc:
            self.fail(exc)
            self.close()
            raise
        self._types = {"float32": nccl.NCCL_FLOAT32, "float64": nccl.NCCL_FLOAT64}

    def _native(self, x: Array) -> Any:
        ok = (isinstance(x, self._cupy.ndarray) and x.flags.c_contiguous
              and str(x.dtype) in self._types)
        return x if ok else None

    def _start_in_place(self, x: Array) -> Any:
        if self._native(x) is None:
            return super()._start_in_place(x)
        stream = self._cupy.cuda.get_current_stream()
        self._nccl.allReduce(x.data.ptr, x.data.ptr, x.size, self._types[str(x.dtype)],
                             self._nccl_mod.NCCL_SUM, stream.ptr)
        return _Pending(stream.record())

    def broadcast(self, x: Array, root: int = 0) -> Array:
        if self._native(x) is None:
            return super().broadcast(x, root)
        root = self._check_root(root)
        stream = self._cupy.cuda.get_current_stream()
        self._nccl.bcast(x.data.ptr, x.size, self._types[str(x.dtype)], root, stream.ptr)
        self._wait(_Pending(stream.record()), "broadcast")
        return x

    def _poll(self, handle: Any, what: str) -> bool:
        if not isinstance(handle, _Pending):
            return super()._poll(handle, what)
        if self._ereq.Test(self._status):
            try:
                self._record(what)  # raises an error record; notes a rank that left
            except BaseException:
                self._abort()
                raise
        return handle.event.done

    def fail(self, exc: BaseException) -> None:
        super().fail(exc)
        self._abort()

    def _abort(self) -> None:
        nccl = getattr(self, "_nccl", None)
        if nccl is not None:
            self._nccl = None
            nccl.abort()


class _Pending:
    """An NCCL collective on a stream: done when its event is."""

    def __init__(self, event: Any) -> None:
        self.event = event


__all__ = ["NCCLCommunicator"]
