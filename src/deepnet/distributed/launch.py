"""How this process was started, and the communicator that goes with it.

``init()`` reads the launcher's environment variables:

============================  ======================================================
started by                    variables
============================  ======================================================
``mpiexec`` (MPICH, Intel)    ``PMI_RANK``, ``PMI_SIZE`` (``MPI_LOCALRANKID``)
``mpirun`` (Open MPI)         ``OMPI_COMM_WORLD_RANK``, ``OMPI_COMM_WORLD_SIZE``
PMIx launchers                ``PMIX_RANK`` (size from MPI itself)
``srun`` (Slurm)              ``SLURM_PROCID``, ``SLURM_STEP_NUM_TASKS``
``torchrun``                  ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``
============================  ======================================================

``DEEPNET_COMM`` (``auto`` | ``mpi`` | ``torch`` | ``nccl`` | ``single``) overrides the
choice; ``DEEPNET_COMM_TIMEOUT`` bounds every wait (seconds, default 1800).
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deepnet.backend import Backend, get_backend
from deepnet.distributed.base import Communicator, SingleCommunicator, timeout_from_env
from deepnet.errors import DeepNetError, InputError

KINDS = ("auto", "mpi", "torch", "nccl", "single")

_MPI_VARS = (  # (rank variable, size variable or None), the first present wins
    ("PMI_RANK", "PMI_SIZE"),
    ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
    ("PMIX_RANK", None),
    ("MV2_COMM_WORLD_RANK", "MV2_COMM_WORLD_SIZE"),
)
_LOCAL_VARS = ("LOCAL_RANK", "MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK",
               "MV2_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID")


@dataclass(frozen=True)
class Launch:
    """What the environment says about this process.

    Attributes
    ----------
    kind : ``"mpi"`` or ``"torch"``.
    rank, size : as the launcher numbered them (``size`` is ``None`` where only MPI
        itself knows it).
    local_rank : the index among the ranks of this machine (``0`` if unknown): which
        GPU a rank should use, e.g. ``DEEPNET_DEVICE=cuda:{local_rank}``.
    source : the variable the rank was read from.
    """

    kind: str
    rank: int
    size: int | None
    local_rank: int
    source: str


def _int(env: Mapping[str, str], name: str) -> int | None:
    text = env.get(name, "").strip()
    return int(text) if text.isdigit() else None


def detect(environ: Mapping[str, str] | None = None) -> Launch | None:
    """The launcher that started this process, from ``environ`` (default ``os.environ``);
    ``None`` for a plain process."""
    env = os.environ if environ is None else environ
    local = next((v for v in (_int(env, n) for n in _LOCAL_VARS) if v is not None), 0)
    if all(env.get(k) for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")):
        rank, size = _int(env, "RANK"), _int(env, "WORLD_SIZE")
        if rank is not None and size is not None:
            return Launch("torch", rank, size, local, "RANK")
    for rank_var, size_var in _MPI_VARS:
        rank = _int(env, rank_var)
        if rank is not None:
            size = _int(env, size_var) if size_var else None
            return Launch("mpi", rank, size, local, rank_var)
    rank, size = _int(env, "SLURM_PROCID"), _int(env, "SLURM_STEP_NUM_TASKS")
    if rank is not None and size is not None and size > 1:  # srun, not the batch script
        return Launch("mpi", rank, size, local, "SLURM_PROCID")
    return None


_lock = threading.Lock()
_active: Communicator | None = None
_previous_hook: Any = None


def init(
    kind: str | None = None, *, backend: str | Backend | None = None,
    timeout: float | None = None,
) -> Communicator:
    """The communicator of this run; the same object on every later call.

    Parameters
    ----------
    kind : ``"mpi"``, ``"torch"`` (torch.distributed), ``"nccl"`` (CuPy over NCCL,
        bootstrapped over MPI), ``"single"``, or ``None``/``"auto"``: ``DEEPNET_COMM``,
        else what launched the process (see the module's table), else ``"single"``.
    backend : the deepnet backend the arrays will live on (default: the default
        backend). Under MPI with CuPy it selects NCCL; under torchrun with CUDA, NCCL
        instead of gloo.
    timeout : seconds any collective may wait (default ``DEEPNET_COMM_TIMEOUT``, else
        1800; ``0``: no limit).

    Examples
    --------
    >>> import deepnet as dn
    >>> comm = dn.distributed.init("single")
    >>> comm.rank, comm.size, comm.name, comm.is_root
    (0, 1, 'single', True)
    """
    global _active
    kind = _resolve_kind(kind)
    with _lock:
        if _active is not None:
            if kind not in ("auto", _active.name, _KIND_OF.get(_active.name)):
                raise InputError(
                    f"deepnet.distributed.init({kind!r}): this process already runs a "
                    f"{_active.name!r} communicator; init() returns it on every call"
                )
            return _active
        _active = _make(kind, backend, timeout_from_env(timeout))
        if _active.name != "single":
            _install_hooks(_active)
        return _active


_KIND_OF = {"mpi": "mpi", "torch.distributed": "torch", "nccl": "nccl", "single": "single"}


def _resolve_kind(kind: str | None) -> str:
    source = "kind"
    if kind is None:
        kind, source = os.environ.get("DEEPNET_COMM", "").strip().lower() or "auto", "DEEPNET_COMM"
    if not isinstance(kind, str) or kind.lower() not in KINDS:
        raise InputError(f"{source}={kind!r} is not a communicator; valid: {', '.join(KINDS)}")
    return kind.lower()


def _make(kind: str, backend: Any, timeout: float | None) -> Communicator:
    launch = detect()
    if kind == "auto":
        kind = "single" if launch is None else launch.kind
        if kind == "mpi" and get_backend(backend).name == "cupy":
            kind = "nccl"
    if kind == "single":
        return SingleCommunicator()
    if kind == "mpi":
        from deepnet.distributed.mpi import MPICommunicator

        return MPICommunicator(timeout=timeout)
    if kind == "nccl":
        from deepnet.distributed.nccl import NCCLCommunicator

        return NCCLCommunicator(timeout=timeout)
    from deepnet.distributed.torchdist import TorchCommunicator

    return TorchCommunicator(backend=get_backend(backend), timeout=timeout)


def _install_hooks(comm: Communicator) -> None:
    """An uncaught exception stops the other ranks too; the transport closes at exit."""
    global _previous_hook
    _previous_hook = sys.excepthook

    def hook(kind: type, exc: BaseException, tb: Any) -> None:
        if comm.size > 1:
            with contextlib.suppress(Exception):
                comm.fail(exc)
        (_previous_hook or sys.__excepthook__)(kind, exc, tb)

    sys.excepthook = hook
    atexit.register(comm.close)


def active() -> Communicator | None:
    """The communicator :func:`init` made, or ``None`` before it was called."""
    return _active


def start_command(command: str | None) -> Communicator:
    """For a command-line program: this run's communicator, and output from rank 0 only.

    Under a launcher the communicator of the run is made here; rank 0 prints which
    process holds which rank (so that a launcher's report of a lost process id names its
    rank), and every other rank's ``sys.stdout`` and ``sys.stderr`` drop what is written
    from here to the end of the process: a command's ranks say nothing rank 0 does not.
    Without a launcher this is the single-process communicator and changes nothing.
    A communicator that cannot be made is one line on stderr and exit status 2.
    """
    name = f"deepnet {command}" if command else "deepnet"
    try:
        comm = init()
    except DeepNetError as exc:  # a bad DEEPNET_COMM, mpi4py missing under mpiexec
        print(f"{name}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if comm.size > 1 and comm.is_root:
        print(f"{name}: {comm.describe()}", file=sys.stderr, flush=True)
    if comm.size > 1 and not comm.is_root:
        sys.stdout, sys.stderr = _Discard(), _Discard()
    return comm


class _Discard(io.TextIOBase):
    """A text stream that drops what is written (a non-root rank's output)."""

    def write(self, text: str) -> int:
        return len(text)

    def isatty(self) -> bool:
        return False


__all__ = ["KINDS", "Launch", "active", "detect", "init", "start_command"]
