"""deepnet.distributed in one process: launcher detection, the single-process communicator
on every backend, the waiting loop's guards (error records, ranks that left, lost peers,
timeouts) and the fit hooks on a scripted transport, the command's session. The shared
protocol is in test_distributed_protocol.py.

The collectives across real processes are in test_distributed_mpi.py (mpiexec) and
test_distributed_torch.py (torch.distributed with gloo).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import deepnet as dn
from deepnet.distributed import base, launch, protocol
from deepnet.errors import (
    DistributedError,
    DivergenceError,
    InputError,
    RankMismatchError,
    ShapeError,
)


@pytest.fixture
def fresh(monkeypatch):
    """No communicator made yet, no launcher in the environment."""
    monkeypatch.setattr(launch, "_active", None)
    for var in ("DEEPNET_COMM", "DEEPNET_COMM_TIMEOUT", "RANK", "WORLD_SIZE", "PMI_RANK",
                "PMI_SIZE", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID",
                "MV2_COMM_WORLD_RANK", "SLURM_STEP_NUM_TASKS"):
        monkeypatch.delenv(var, raising=False)


# -- which launcher started this process ------------------------------------------------------


@pytest.mark.parametrize("env, expected", [
    ({}, None),
    ({"PMI_RANK": "1", "PMI_SIZE": "3", "MPI_LOCALRANKID": "1"}, ("mpi", 1, 3, 1, "PMI_RANK")),
    ({"OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_SIZE": "4",
      "OMPI_COMM_WORLD_LOCAL_RANK": "0"}, ("mpi", 2, 4, 0, "OMPI_COMM_WORLD_RANK")),
    ({"PMIX_RANK": "5"}, ("mpi", 5, None, 0, "PMIX_RANK")),
    ({"SLURM_PROCID": "3", "SLURM_STEP_NUM_TASKS": "8", "SLURM_LOCALID": "3"},
     ("mpi", 3, 8, 3, "SLURM_PROCID")),
    ({"SLURM_PROCID": "0", "SLURM_NTASKS": "8"}, None),  # the batch script, not srun
    ({"RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "h", "MASTER_PORT": "29500",
      "LOCAL_RANK": "1"}, ("torch", 1, 2, 1, "RANK")),
    ({"RANK": "1", "WORLD_SIZE": "2"}, None),  # no rendezvous address: not torchrun
])
def test_detect_reads_each_launchers_variables(env, expected):
    got = launch.detect(env)
    if expected is None:
        assert got is None
    else:
        assert (got.kind, got.rank, got.size, got.local_rank, got.source) == expected


def test_init_without_a_launcher_is_the_single_process_communicator(fresh):
    comm = dn.distributed.init()
    assert isinstance(comm, dn.distributed.SingleCommunicator)
    assert (comm.rank, comm.size, comm.name, comm.is_root) == (0, 1, "single", True)
    assert dn.distributed.init() is comm and dn.distributed.active() is comm
    assert comm.describe() == "1 rank over single"
    with pytest.raises(InputError, match="already runs a 'single' communicator"):
        dn.distributed.init("mpi")


def test_init_refuses_unknown_kinds_and_timeouts(fresh, monkeypatch):
    with pytest.raises(InputError, match="kind='gloo' is not a communicator; valid: auto"):
        dn.distributed.init("gloo")
    monkeypatch.setenv("DEEPNET_COMM", "bogus")
    with pytest.raises(InputError, match="DEEPNET_COMM='bogus'"):
        dn.distributed.init()
    monkeypatch.setenv("DEEPNET_COMM", "single")
    monkeypatch.setenv("DEEPNET_COMM_TIMEOUT", "soon")
    with pytest.raises(InputError, match="DEEPNET_COMM_TIMEOUT must be a number of seconds"):
        dn.distributed.init()
    assert launch._active is None  # nothing half-made


@pytest.mark.parametrize("text, expected", [("", base.DEFAULT_TIMEOUT), ("none", None),
                                            ("0", None), ("2.5", 2.5)])
def test_timeout_from_the_environment(monkeypatch, text, expected):
    monkeypatch.setenv("DEEPNET_COMM_TIMEOUT", text)
    assert base.timeout_from_env() == expected
    assert base.timeout_from_env(7) == 7.0
    with pytest.raises(InputError):
        base.timeout_from_env(-1)


def test_importing_deepnet_imports_no_transport():
    code = ("import sys, deepnet; bad = [m for m in sys.modules if m.split('.')[0] in "
            "('mpi4py', 'torch', 'cupy')]; print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- the single-process communicator on every backend ------------------------------------------


def test_single_communicator_collectives_on_every_backend(backend, rng):
    comm = dn.distributed.SingleCommunicator()
    host = rng.standard_normal((3, 4))
    x = backend.asarray(host, backend.dtype("float64"))
    assert comm.allreduce_sum(x) is x and comm.broadcast(x) is x
    assert backend.owns(x) and np.array_equal(dn.to_numpy(x), host)
    summed = comm.allreduce_host([1, 2.5])
    assert summed.dtype == np.float64 and summed.tolist() == [1.0, 2.5]
    assert comm.broadcast_object({"a": [1]}) == {"a": [1]}
    assert comm.allgather_object("x") == ["x"]
    comm.agree("parameters", x)
    comm.agree({"X shape": (3, 4), "seed": 0})
    comm.barrier()


def test_single_communicator_refuses_bad_arguments():
    comm = dn.distributed.SingleCommunicator()
    with pytest.raises(InputError, match="allreduce_sum's array must be an array"):
        comm.allreduce_sum([1.0, 2.0])
    with pytest.raises(InputError, match=r"root must be a rank 0\.\.0; got 1"):
        comm.broadcast(np.ones(2), root=1)
    with pytest.raises(InputError, match="agree needs a description"):
        comm.agree(3, 4)
    with pytest.raises(InputError, match="only picklable objects"):
        comm.broadcast_object(lambda: None)
    comm.fail(ValueError("nothing to tell"))  # no other rank: nothing happens
    with pytest.raises(ValueError), comm.guard():
        raise ValueError("re-raised")


# -- the waiting loop on a scripted transport ---------------------------------


class Scripted(base.Communicator):
    """Rank 0 of ``size``: collectives that complete after ``ready_after`` polls (never if
    ``None``), records another rank "sent" in ``inbox``, posts kept in ``posted``."""

    name = "scripted"

    def __init__(self, size=3, ready_after=None, timeout=None, peers=None):
        super().__init__(0, size, timeout)
        self.ready_after, self.inbox, self.posted, self.polls = ready_after, [], [], 0
        self._peers = peers or []

    def _start_allreduce(self, buf):
        self.polls = 0
        return "request"

    def _poll(self, handle, what):
        self.polls += 1
        if self.inbox:
            kind, value = protocol.decode_record(self.inbox.pop(0), self.size)
            if kind == "error":
                raise value
            self._left[value[0]] = value[1]
            self._check_left(what)
        return self.ready_after is not None and self.polls > self.ready_after

    def _post_error(self, payload):
        self.posted.append(payload)


def test_wait_returns_when_the_collective_completes():
    comm = Scripted(ready_after=5)
    x = np.ones(3)
    assert comm.allreduce_sum(x) is x and comm.polls == 6 and comm.posted == []


def test_an_error_record_ends_the_wait_and_stops_the_communicator():
    comm = Scripted()
    comm.inbox.append(protocol.encode_error(DivergenceError("nan in epoch 3"), 2))
    with pytest.raises(DivergenceError, match="on rank 2 of 3: nan in epoch 3") as info:
        with comm.guard():
            comm.allreduce_sum(np.ones(2))
    assert info.value.origin_rank == 2 and comm.posted == []  # not sent back
    with pytest.raises(DistributedError, match="this communicator stopped after an error"):
        comm.allreduce_host([1.0])


def test_a_rank_that_left_stops_only_the_collectives_it_never_started():
    comm = Scripted(ready_after=3)
    comm.inbox.append(protocol.encode_left(1, 2))  # rank 1 made collectives 0 and 1
    comm.allreduce_host([1.0])  # collective 0: it took part, this completes
    comm.allreduce_host([1.0])
    with pytest.raises(DistributedError, match=r"rank 1 of 3 left the run .* after 2 "
                       r"collectives, while rank 0 waited in allreduce_host, its collective "
                       r"number 3"):
        comm.allreduce_host([1.0])
    assert len(comm.posted) == 1  # told the others


def test_errors_every_rank_raises_leave_the_communicator_usable():
    comm = Scripted(ready_after=0)
    diverged = dn.distributed.raised_everywhere(DivergenceError("the all-reduced cost is nan"))
    with pytest.raises(DivergenceError), comm.guard():
        raise diverged
    assert comm.posted == []
    comm.allreduce_host([1.0])  # still usable: nothing was left pending
    single = dn.distributed.SingleCommunicator()
    with pytest.raises(ShapeError), single.guard():
        raise ShapeError("one process: nothing to stop")
    single.broadcast_object("still usable")


def test_a_local_peer_that_is_gone_is_named(monkeypatch):
    monkeypatch.setattr(base, "CHECK_EVERY", 0.01)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    me = protocol.host_identity()
    peers = [me, (*me[:3], os.getpid()), (*me[:3], child.pid)]
    comm = Scripted(peers=peers)
    with pytest.raises(DistributedError, match=f"rank 2 of 3 \\(pid {child.pid} on "
                       ".*\\) is gone: it exited or was killed while rank 0 waited"):
        comm.allreduce_sum(np.ones(2))
    record = protocol.decode_error(comm.posted[0], 3)
    assert "rank 2 of 3" in str(record)


def test_a_timeout_ends_the_wait(monkeypatch):
    monkeypatch.setattr(base, "CHECK_EVERY", 0.01)
    comm = Scripted(timeout=0.2)
    t0 = time.monotonic()
    with pytest.raises(DistributedError, match=r"waited 0 s in allreduce_sum .*"
                       r"DEEPNET_COMM_TIMEOUT"):
        comm.allreduce_sum(np.ones(2))
    assert 0.2 <= time.monotonic() - t0 < 5 and len(comm.posted) == 1


def test_agree_raises_the_same_mismatch_on_every_rank():
    class TwoRanks(Scripted):
        """Rank 0 of 2, where rank 1 gathers ``other`` for each item."""

        def __init__(self, other):
            super().__init__(size=2, ready_after=0)
            self.other = other

        def _start_allgatherv(self, mine, out, counts):  # the digests of all items
            digests = {k: protocol.fingerprint(v) for k, v in self.other.items()}
            total = hashlib.sha256(b"".join(digests.values())).digest()
            out[:32], out[32:] = mine, np.frombuffer(total, np.uint8)
            return "request"

        def allgather_object(self, obj):
            theirs = {k: (protocol.fingerprint(v).hex(), protocol.describe_value(v))
                      for k, v in self.other.items()}
            return [obj, theirs]

    TwoRanks({"seed": 1}).agree("seed", 1)
    with pytest.raises(RankMismatchError, match="seed: 1 on rank 0; 2 on rank 1"):
        TwoRanks({"seed": 2}).agree("seed", 1)


class Doubling(Scripted):
    """As if two ranks held the same arrays: every sum doubles them."""

    def _start_allreduce(self, buf):
        buf *= 2
        return "request"


def test_allreduce_step_sums_the_gradients_and_the_cost_on_every_backend(backend, rng):
    comm, dtype = Doubling(size=2, ready_after=0), backend.dtype("float64")
    host = {k: rng.standard_normal(shape) for k, shape in (("dW1", (3, 2)), ("db1", (3, 1)))}
    grads = {k: backend.asarray(v.copy(), dtype) for k, v in host.items()}
    J = backend.xp.asarray(1.5, dtype=dtype, device=backend.device)
    total = comm.allreduce_step(grads, None, J)  # each gradient array, and J
    assert backend.owns(total) and tuple(total.shape) == () and float(total) == 3.0
    assert float(J) == 1.5  # J itself is left alone
    for k, v in host.items():
        assert backend.owns(grads[k]) and np.array_equal(dn.to_numpy(grads[k]), 2 * v)
    for size in (9, 100_000):  # packed with J; or (NumPy, CPU tensors) summed in place
        flat_host = rng.standard_normal(size)
        flat = backend.asarray(flat_host.copy(), dtype)
        assert float(comm.allreduce_step({}, flat, J)) == 3.0  # the one flat buffer
        assert np.array_equal(dn.to_numpy(flat), 2 * flat_host)


def test_a_fit_with_the_single_process_communicator_is_the_plain_fit(backend, rng):
    X, y = rng.standard_normal((4, 30)), rng.integers(0, 2, (1, 30))
    nets = [dn.DeepNet([4, 5, 1], seed=2, dtype="float64", backend=backend) for _ in range(2)]
    args = dict(epochs=2, batch_size=8, seed=1, progress=False)
    nets[0].fit(X, y, **args)
    nets[1].fit(X, y, comm=dn.distributed.SingleCommunicator(), **args)
    for key, value in nets[0].params.items():
        assert np.array_equal(dn.to_numpy(nets[1].params[key]), dn.to_numpy(value))


# -- a command's start ----------------------------------------------------------------------------


def test_start_command_without_a_launcher_changes_nothing(fresh, capsys):
    comm = dn.distributed.start_command("train")
    print("visible")
    assert comm.size == 1 and capsys.readouterr() == ("visible\n", "")


@pytest.mark.parametrize("rank", [0, 1])
def test_start_command_lets_rank_0_alone_print(fresh, monkeypatch, capsys, rank):
    comm = Scripted(size=2, ready_after=0)
    comm.rank = rank
    monkeypatch.setattr(launch, "init", lambda *a, **k: comm)
    monkeypatch.setattr(sys, "stdout", sys.stdout)  # put back after the test
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    assert dn.distributed.start_command("train") is comm
    print("on stdout")
    print("on stderr", file=sys.stderr)
    out, err = capsys.readouterr()
    if rank == 0:
        assert out == "on stdout\n" and err == "deepnet train: 2 ranks over scripted\non stderr\n"
    else:
        assert out == err == ""


def test_start_command_reports_a_communicator_it_cannot_make(fresh, monkeypatch, capsys):
    monkeypatch.setenv("DEEPNET_COMM", "bogus")
    with pytest.raises(SystemExit) as info:
        dn.distributed.start_command("train")
    assert info.value.code == 2
    assert capsys.readouterr().err.strip().startswith("deepnet train: error: DEEPNET_COMM=")
