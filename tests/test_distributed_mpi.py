"""deepnet.distributed over MPI: ``mpiexec -n 2`` and ``-n 3`` launched from pytest.

Each test starts tests/distributed_worker.py (or the ``deepnet`` command) under mpiexec
with a time limit, so a hang fails the test instead of blocking CI; skipped with the
reason where mpiexec or mpi4py are missing (``pip install 'deepnet[mpi]'``).
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from distributed_worker import read_results

import deepnet as dn

# the launcher next to this Python (the MPICH wheel's) before any other on the PATH
_BESIDE = Path(sys.executable).with_name("mpiexec")
MPIEXEC = str(_BESIDE) if _BESIDE.exists() else (shutil.which("mpiexec") or str(_BESIDE))
WORKER = Path(__file__).with_name("distributed_worker.py")
SRC = str(Path(dn.__file__).resolve().parents[1])
LIMIT = 60  # seconds any launch may take before it counts as a hang

pytestmark = [
    pytest.mark.distributed,
    pytest.mark.skipif(
        importlib.util.find_spec("mpi4py") is None or not Path(MPIEXEC).exists(),
        reason="needs mpi4py and mpiexec: pip install 'deepnet[mpi]' (mpi4py and the MPICH "
        "wheel)",
    ),
]

_LAUNCHER_VARS = ("PMI_RANK", "PMI_SIZE", "PMI_FD", "OMPI_COMM_WORLD_RANK", "PMIX_RANK",
                  "RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "SLURM_PROCID",
                  "DEEPNET_COMM")


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _LAUNCHER_VARS}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def _descendants(pid: int) -> list[int]:
    """Processes started, directly or not, by ``pid`` (hydra puts each rank in its own
    session, so a process group cannot reach them)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def run(command: list[str], *, limit: float = LIMIT, cwd=None, **extra: str):
    """``(returncode, stdout, stderr, seconds)``; fails the test after ``limit`` seconds."""
    t0 = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=environment(**extra), cwd=cwd)
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        for pid in [*_descendants(proc.pid), proc.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(command)} hung: no exit within {limit} s\n{out}\n{err}")
    return proc.returncode, out, err, time.monotonic() - t0


@pytest.fixture
def launch(tmp_path):
    """Run the worker on ``k`` ranks: ``(returncode, {rank: result}, describe, output, s)``."""

    def go(k: int, *args: str, limit: float = LIMIT, **extra: str):
        folder = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        code, out, err, seconds = run(
            [MPIEXEC, "-n", str(k), sys.executable, str(WORKER), *args], limit=limit,
            WORKER_OUT=str(folder), **extra)
        results, described = read_results(folder)
        return code, results, described, out + err, seconds

    return go


# -- the collectives --------------------------------------------------------------------------


@pytest.mark.parametrize("k", [2, 3])
def test_collectives_on_numpy_and_array_api_strict(launch, k):
    code, results, described, output, _ = launch(
        k, "primitives", "numpy", "array_api_strict", "array_api_strict:device1")
    assert code == 0, output
    assert sorted(results) == list(range(k)), output
    for r in results.values():
        assert r["ok"] and r["name"] == "mpi" and r["size"] == k
    assert described.startswith(f"{k} ranks over mpi (rank 0: pid ")


def test_collectives_on_torch_tensors(launch):
    pytest.importorskip("torch")
    code, results, _, output, _ = launch(2, "primitives", "torch")
    assert code == 0 and sorted(results) == [0, 1], output
    assert all(r["checked"] == ["torch"] for r in results.values())


def test_different_inputs_are_refused_with_the_same_message_on_every_rank(launch):
    code, results, _, output, _ = launch(3, "mismatch")
    assert code == 0 and sorted(results) == [0, 1, 2], output
    messages = [results[r]["messages"] for r in range(3)]
    assert messages[0] == messages[1] == messages[2] and len(messages[0]) == 3
    shape, layers, params = messages[0]
    assert "X shape: (64, 1000) on ranks 0, 2; (64, 1001) on rank 1" in shape
    assert "layers: [64, 32, 1] on ranks 0, 2; [64, 16, 1] on rank 1" in layers
    assert "seed" not in layers  # only what differs is named
    assert "initial parameters: an array of shape (4,)" in params
    assert all(results[r]["usable"] for r in range(3))


# -- fit(..., comm=comm): the communicator's part of it (the K-process equality tests of
#    the training loop itself are in the tests of fit)


@pytest.mark.parametrize("k, library", [(2, "numpy"), (3, "numpy"), (4, "numpy"),
                                        (3, "array_api_strict"), (2, "torch"), (4, "torch")])
def test_a_fit_across_ranks_equals_the_fit_in_one_process(launch, k, library):
    if "comm" not in inspect.signature(dn.DeepNet.fit).parameters:
        pytest.skip("fit(..., comm=comm) is not wired in yet (the lead's integration)")
    code, results, _, output, _ = launch(k, "fit", library)
    assert code == 0 and sorted(results) == list(range(k)), output  # same parameters
    assert results[0]["epochs"] == 9
    assert results[0]["max_rel_diff"] < 1e-10 and results[0]["cost_rel_diff"] < 1e-10, results


def test_a_fit_refuses_ranks_given_different_inputs(launch):
    if "comm" not in inspect.signature(dn.DeepNet.fit).parameters:
        pytest.skip("fit(..., comm=comm) is not wired in yet (the lead's integration)")
    code, results, _, output, _ = launch(3, "fit_mismatch")
    assert code == 0 and sorted(results) == [0, 1, 2], output
    messages = [results[r]["messages"] for r in range(3)]
    assert messages[0] == messages[1] == messages[2] and len(messages[0]) == 2, messages
    data, batch = messages[0]
    assert "X sample: an array of shape (16, 10)" in data and "on ranks 0, 2" in data
    assert "Y sample" in data and "X size" not in data
    assert "batch size: 20 on ranks 0, 2; 21 on rank 1" in batch


def test_a_fit_refuses_ranks_given_different_settings_and_stops_them_together(launch):
    # each difference would train different networks silently (learning rate, optimizer)
    # or leave one rank in a step while another has stopped (epochs, early stopping)
    code, results, _, output, _ = launch(3, "fit_settings")
    assert code == 0 and sorted(results) == [0, 1, 2], output
    messages = [results[r]["messages"] for r in range(3)]
    assert messages[0] == messages[1] == messages[2] and len(messages[0]) == 6, messages
    lr, epochs, rule, obj, stopper, val = messages[0]
    assert "learning rate: 0.01 on ranks 0, 2; 0.02 on rank 1" in lr
    assert "epochs: 9 on ranks 0, 2; 10 on rank 1" in epochs
    assert "optimizer: 'adam' on ranks 0, 2; 'rmsprop' on rank 1" in rule
    assert "optimizer: 'Adam(learning_rate=0.01" in obj and "learning_rate=0.02" in obj
    assert "early stopping: EarlyStopping(patience=2" in stopper and "patience=3" in stopper
    assert "X_val size: (21, 10) on ranks 0, 2; absent on rank 1" in val
    for r in range(3):  # rank 1's callback stopped every rank after epoch 2
        assert results[r]["stopped"] == [2, True] and results[r]["carried"] == 108, results


# -- faults: one rank stops, every rank stops with the same error ---------------------------------


@pytest.mark.parametrize("kind, error, text", [
    ("shape", "ShapeError", "X must have shape (n0, m) = (64, m); got (63, 1000)"),
    ("divergence", "DivergenceError", "training diverged in epoch 2 of 5"),
    ("interrupt", "KeyboardInterrupt", "KeyboardInterrupt"),
    ("value", "DistributedError", "ValueError: a callback of the user failed"),
])
def test_an_error_on_one_rank_stops_every_rank_with_it(launch, kind, error, text):
    code, results, _, output, _ = launch(3, "fault", kind)
    assert code == 0 and sorted(results) == [0, 1, 2], output  # each rank caught it
    victim = results.pop(1)
    assert victim["origin"] == 1 and victim["seconds"] < 5
    for r in results.values():
        assert r["type"] == error, r
        assert r["message"].startswith("on rank 1 of 3: ") and text in r["message"], r
        assert r["origin"] == 1
        assert r["seconds"] < 5, r  # time since its last completed collective (0.3 s sleep)


def test_an_uncaught_exception_reaches_the_others_through_the_excepthook(launch):
    code, results, _, output, _ = launch(3, "fault", "uncaught")
    assert code == 1 and "Traceback" in output and sorted(results) == [0, 2], output
    for r in results.values():
        assert r["type"] == "ShapeError" and r["message"].startswith("on rank 1 of 3: X must")


def test_a_rank_that_leaves_early_is_named_by_the_others(launch):
    code, results, _, output, _ = launch(3, "fault", "exit")
    assert code == 0 and sorted(results) == [0, 2], output
    for r in results.values():
        assert r["type"] == "DistributedError" and r["seconds"] < 5
        assert re.search(r"rank 1 of 3 left the run .* after 5 collectives, while rank [02] "
                         r"waited in allreduce_sum, its collective number 6", r["message"]), r


def test_a_hung_rank_times_out_everywhere(launch):
    code, results, _, output, _ = launch(3, "fault", "hang", WORKER_COMM_TIMEOUT="1")
    assert code == 0 and sorted(results) == [0, 1, 2], output
    for r in results.values():
        assert r["type"] == "DistributedError" and "DEEPNET_COMM_TIMEOUT" in r["message"]


def test_a_rank_killed_with_sigkill_ends_the_job_in_bounded_time(launch):
    """MPICH's mpiexec kills every rank at once when one dies of a signal, so no rank
    lives to print: the job must end (it does in well under a second here), non-zero, and
    mpiexec's report names a process id that the root's ``describe()`` maps to a rank."""
    code, results, described, output, seconds = launch(3, "fault", "sigkill")
    assert code != 0 and seconds < 30 and results == {}, output
    pids = dict(re.findall(r"rank (\d): pid (\d+)", described))
    reported = re.search(r"PID (\d+) RUNNING AT", output)
    assert sorted(pids) == ["0", "1", "2"] and reported, output
    assert reported.group(1) in pids.values(), output


# -- the deepnet command under mpiexec ------------------------------------------------------------

TINY = ["--epochs", "2", "--layers", "64,16,10", "--batch-size", "64", "--no-progress",
        "--no-plot"]


def test_train_under_mpiexec_prints_and_writes_from_rank_0_only(tmp_path):
    pytest.importorskip("sklearn")
    ckpt = tmp_path / "model.npz"
    code, out, err, _ = run([MPIEXEC, "-n", "2", sys.executable, "-m", "deepnet.cli", "train",
                             *TINY, "--checkpoint", str(ckpt)], cwd=tmp_path)
    assert code == 0 and "Traceback" not in err, out + err
    assert len(re.findall(r"train accuracy \S+\s+test accuracy", out)) == 1, out
    assert out.count("deepnet train: digits") == 1 and out.count("checkpoint:") == 1, out
    assert re.fullmatch(r"deepnet train: 2 ranks over mpi \(rank 0: pid \d+ on .*; rank 1: "
                        r"pid \d+ on .*\)\n", err), err
    assert dn.load(ckpt, backend="numpy").history.epochs == 2


def test_ctrl_c_stops_train_under_mpiexec_and_rank_0_keeps_the_epochs(tmp_path):
    ckpt = tmp_path / "model.npz"
    proc = subprocess.Popen(
        [MPIEXEC, "-n", "2", sys.executable, "-m", "deepnet.cli", "train", "--epochs", "100000",
         "--layers", "64,16,10", "--batch-size", "32", "--no-progress", "--no-plot",
         "--checkpoint", str(ckpt)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=environment(), cwd=tmp_path)
    time.sleep(6)  # start-up, then some epochs
    proc.send_signal(signal.SIGINT)  # mpiexec forwards it to every rank, as Ctrl-C does
    try:
        out, err = proc.communicate(timeout=LIMIT)
    except subprocess.TimeoutExpired:
        for pid in [*_descendants(proc.pid), proc.pid]:
            os.kill(pid, signal.SIGKILL)
        pytest.fail("deepnet train under mpiexec did not stop after Ctrl-C")
    assert proc.returncode == 130 and "Traceback" not in err, out + err
    said = [line for line in err.splitlines() if "interrupted" in line]
    assert len(said) == 1, err  # rank 0 alone
    if "saved them to" in said[0]:
        assert dn.load(ckpt, backend="numpy").history.epochs >= 1


def test_train_under_mpiexec_reports_a_user_error_once(tmp_path):
    code, out, err, _ = run([MPIEXEC, "-n", "2", sys.executable, "-m", "deepnet.cli", "train",
                             "--layers", "3,4,10", "--epochs", "1"], cwd=tmp_path)
    assert code == 2 and "Traceback" not in err, out + err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert errors == ["deepnet train: error: --layers must start with the 64 input features "
                      "of digits; got 3,4,10"], err


def test_train_under_mpiexec_equals_the_single_process_run(tmp_path):
    """One network across two ranks: the same checkpoint as one process (batch 64)."""
    pytest.importorskip("sklearn")
    if "comm" not in inspect.signature(dn.DeepNet.fit).parameters:
        pytest.skip("fit(..., comm=comm) is not wired in yet (the lead's integration)")
    one, two = tmp_path / "one.npz", tmp_path / "two.npz"
    args = [sys.executable, "-m", "deepnet.cli", "train", *TINY, "--dtype", "float64"]
    code, out, err, _ = run([*args, "--checkpoint", str(one)], cwd=tmp_path)
    assert code == 0, out + err
    code, out, err, _ = run([MPIEXEC, "-n", "2", *args, "--checkpoint", str(two)], cwd=tmp_path)
    assert code == 0, out + err
    a, b = dn.load(one, backend="numpy"), dn.load(two, backend="numpy")
    for key, value in a.params.items():
        np.testing.assert_allclose(b.params[key], value, rtol=1e-10, atol=1e-12)
