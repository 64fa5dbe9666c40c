"""The torch.distributed communicator: what ``torchrun`` started.

Gloo carries host (CPU) arrays, NCCL the CUDA tensors of a network on ``torch:cuda``
(NCCL is untested here: this machine has no GPU). The store that every rank already
shares for the rendezvous is also the error channel: a failing rank writes its error
record under one key, and a waiting rank looks for that key (at most
:data:`STORE_POLL` times a second, fewer for large jobs, so the store is not flooded).
Gloo itself reports a peer whose connection closed; the record, when the peer wrote
one before it went, is the error raised.

Only this module imports ``torch.distributed``, when the communicator is made.
"""

from __future__ import annotations

import datetime
import os
import time
from typing import Any

import numpy as np

from deepnet.backend import Array, Backend
from deepnet.distributed import protocol
from deepnet.distributed.base import DEFAULT_TIMEOUT, Communicator
from deepnet.errors import BackendError, InputError

STORE_POLL = 50.0  # store checks per second while waiting (divided by size / 250 beyond)
_ERROR_KEY = "error"


def _import_dist() -> tuple[Any, Any]:
    try:
        import torch
        import torch.distributed as dist
    except ImportError as exc:
        raise BackendError(
            f"torch.distributed is needed here (started by torchrun), but torch cannot be "
            f"imported ({exc}); install it with: pip install 'deepnet[torch]'"
        ) from exc
    if not dist.is_available():
        raise BackendError("this torch build has no torch.distributed; install a build with it")
    return torch, dist


class TorchCommunicator(Communicator):
    """The ranks of ``torch.distributed``'s default group (made here unless it exists)."""

    name = "torch.distributed"

    def __init__(self, backend: Backend | None = None, *, timeout: float | None = None) -> None:
        torch, dist = _import_dist()
        self._torch, self._dist = torch, dist
        env = os.environ
        cuda = (backend is not None and backend.name == "torch"
                and getattr(backend.device, "type", "cpu") == "cuda")
        self._device = backend.device if cuda and backend is not None else torch.device("cpu")
        span = datetime.timedelta(seconds=timeout or 365 * 86400.0)
        self._store = None
        self._owner = not dist.is_initialized()
        if self._owner:
            missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
                       if not env.get(k)]
            if missing:
                raise InputError(
                    f"a torch.distributed communicator needs {', '.join(missing)} in the "
                    "environment: start the script with torchrun (torchrun --nproc-per-node "
                    "K script.py)"
                )
            rank, size = int(env["RANK"]), int(env["WORLD_SIZE"])
            # as torch's env:// rendezvous does: torchrun's agent may host the store already
            agent = env.get("TORCHELASTIC_USE_AGENT_STORE") == str(True)
            store = dist.TCPStore(
                env["MASTER_ADDR"], int(env["MASTER_PORT"]), size,
                is_master=rank == 0 and not agent,
                timeout=datetime.timedelta(seconds=min(timeout or DEFAULT_TIMEOUT, 600.0)),
                multi_tenant=not agent,
            )
            dist.init_process_group(
                "nccl" if cuda else "gloo", store=dist.PrefixStore("pg", store),
                rank=rank, world_size=size, timeout=span,
            )
            self._store = dist.PrefixStore("deepnet", store)
        super().__init__(dist.get_rank(), dist.get_world_size(), timeout)
        self._host_group = dist.new_group(backend="gloo", timeout=span) if cuda else None
        self._poll_every = max(1.0 / STORE_POLL, self.size / (STORE_POLL * 250.0))
        self._next_store_check = 0.0
        self._peers = self.allgather_object(protocol.host_identity())

    # -- arrays ----------------------------------------------------------------------------
    def _native(self, x: Array) -> Any:
        """``x`` itself where the process group can reduce it in place, else ``None``."""
        torch = self._torch
        if (isinstance(x, torch.Tensor) and x.device == self._device and x.is_contiguous()
                and not x.requires_grad and x.dtype.is_floating_point):
            return x
        return None

    def _start_in_place(self, x: Array) -> Any:
        t = self._native(x)
        if t is None:
            return super()._start_in_place(x)
        return self._dist.all_reduce(t, async_op=True), None

    def broadcast(self, x: Array, root: int = 0) -> Array:
        t = self._native(x)
        if t is None:
            return super().broadcast(x, root)
        root = self._check_root(root)
        self._wait((self._dist.broadcast(t, src=root, async_op=True), None), "broadcast")
        return x

    # -- transport (host buffers) ----------------------------------------------------------------
    def _start_allreduce(self, buf: np.ndarray) -> Any:
        t = self._torch.from_numpy(buf)
        return self._dist.all_reduce(t, group=self._host_group, async_op=True), None

    def _start_broadcast(self, buf: np.ndarray, root: int) -> Any:
        t = self._torch.from_numpy(buf)
        return self._dist.broadcast(t, src=root, group=self._host_group, async_op=True), None

    def _start_allgatherv(self, mine: np.ndarray, out: np.ndarray, counts: np.ndarray) -> Any:
        torch, width = self._torch, int(counts.max()) if counts.size else 0
        send = np.zeros(width, dtype=mine.dtype)  # gloo gathers equal sizes: pad to the largest
        send[: mine.size] = mine
        parts = [torch.from_numpy(np.empty(width, dtype=mine.dtype)) for _ in range(self.size)]
        work = self._dist.all_gather(parts, torch.from_numpy(send), group=self._host_group,
                                     async_op=True)

        def unpad() -> None:
            offset = 0
            for part, n in zip(parts, counts.tolist()):
                out[offset : offset + n] = part.numpy()[:n]
                offset += n

        return work, unpad

    def _poll(self, handle: Any, what: str) -> bool:
        work, after = handle
        self._check_store()
        try:
            if not work.is_completed():
                return False
            work.wait()
        except Exception as exc:  # gloo: "Connection closed by peer", timeouts
            remote = self._read_error(grace=1.0)
            if remote is not None:
                raise remote from None
            raise self._transport_error(what, exc) from exc
        if after is not None:
            after()
        return True

    # -- the error channel: the store ----------------------------------------------------------
    def _check_store(self) -> None:
        now = time.monotonic()
        if self._store is None or now < self._next_store_check:
            return
        self._next_store_check = now + self._poll_every
        remote = self._read_error()
        if remote is not None:
            raise remote

    def _read_error(self, grace: float = 0.0) -> BaseException | None:
        if self._store is None:
            return None
        deadline = time.monotonic() + grace
        while True:
            try:
                if self._store.check([_ERROR_KEY]):
                    return protocol.decode_error(bytes(self._store.get(_ERROR_KEY)), self.size)
            except Exception:  # the store's host (rank 0 or the agent) is gone
                return None
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.02)

    def _post_error(self, payload: bytes) -> None:
        if self._store is not None:
            self._store.compare_set(_ERROR_KEY, "", payload)  # the first error wins

    def close(self) -> None:
        """Destroy the process group this communicator made (not after a failure)."""
        if self._owner and self._stopped is None and self._dist.is_initialized():
            self._dist.destroy_process_group()
        self._owner = False


__all__ = ["STORE_POLL", "TorchCommunicator"]
