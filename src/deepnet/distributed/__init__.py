"""Data-parallel training across processes: ``comm = deepnet.distributed.init()``.

The same script runs anywhere: under ``mpiexec``/``srun``/``mpirun`` the communicator is
MPI (mpi4py; ``pip install 'deepnet[mpi]'``), under ``torchrun`` it is torch.distributed
(gloo on the CPU, NCCL on CUDA), under MPI with the CuPy backend it is NCCL, and in a
plain process it is the single-process communicator (rank 0 of 1). Importing deepnet
imports none of mpi4py, torch.distributed or cupy.

>>> import deepnet as dn
>>> comm = dn.distributed.init()
>>> comm.rank, comm.size, comm.is_root
(0, 1, True)

A collective (``allreduce_sum``, ``broadcast``, ``agree``, ...) must be called by every
rank in the same order. An exception on one rank reaches every other rank through
``comm.fail(exc)`` (or ``with comm.guard():``), and they raise the same error class,
naming the rank it came from, instead of waiting forever; see
:mod:`deepnet.distributed.base` for what else ends a wait.
"""

from deepnet.distributed.base import Communicator, SingleCommunicator, raised_everywhere
from deepnet.distributed.launch import Launch, active, detect, init, start_command

__all__ = [
    "Communicator",
    "Launch",
    "SingleCommunicator",
    "active",
    "detect",
    "init",
    "raised_everywhere",
    "start_command",
]
