"""One rank of a distributed test, started K times by tests/test_distributed_*.py under
``mpiexec -n K`` (or with torchrun's variables): ``python distributed_worker.py SCENARIO``.

Each rank writes its result as JSON to ``$WORKER_OUT/rank<r>.json`` (lines of several
ranks on one stdout can interleave mid-line), and rank 0 also ``describe.txt``. The
communicator is whatever ``deepnet.distributed.init()`` makes of the environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time

import numpy as np

import deepnet as dn
from deepnet.errors import DivergenceError, RankMismatchError, ShapeError

VICTIM = int(os.environ.get("WORKER_VICTIM", "1"))  # the rank that fails in the faults


def report(comm, **fields) -> None:
    fields.setdefault("rank", comm.rank)
    write(f"rank{comm.rank}.json", json.dumps(fields))


def read_results(folder) -> tuple[dict[int, dict], str]:
    """What ``report`` and ``write`` left in ``folder``, read by the tests: ``{rank:
    result}`` and rank 0's ``describe()``."""
    from pathlib import Path

    results = {}
    for path in Path(folder).glob("rank*.json"):
        record = json.loads(path.read_text())
        results[record["rank"]] = record
    described = Path(folder) / "describe.txt"
    return results, described.read_text() if described.exists() else ""


def write(name: str, text: str) -> None:
    path = os.path.join(os.environ["WORKER_OUT"], name)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def rank_data(q: int, n: int, dtype: str) -> np.ndarray:
    return np.random.default_rng(100 + q).standard_normal(n).astype(dtype)


def check(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)


def primitives(comm, backend_ids: list[str]) -> None:
    K, r = comm.size, comm.rank
    checked = []
    for backend_id in backend_ids:
        name, _, device = backend_id.partition(":")
        b = dn.get_backend(name, device or None)
        for dtype in ("float32", "float64"):
            for n in (1, 7, 1000):
                x = b.asarray(rank_data(r, n, dtype), b.dtype(dtype))
                out = comm.allreduce_sum(x)
                check(out is x, "allreduce_sum returns its argument")
                check(b.owns(x) and x.dtype == b.dtype(dtype), "same library and dtype")
                got = dn.to_numpy(x)
                want = sum(rank_data(q, n, "float64") for q in range(K))
                tol = 1e-5 if dtype == "float32" else 1e-12
                check(np.allclose(got, want, rtol=tol, atol=tol), f"sum {backend_id} {dtype}")
                comm.agree(f"allreduce result {backend_id} {dtype} {n}", got)  # bit for bit
                y = b.asarray(rank_data(r, n, dtype), b.dtype(dtype))
                root = K - 1
                check(comm.broadcast(y, root=root) is y, "broadcast returns its argument")
                check(np.array_equal(dn.to_numpy(y), rank_data(root, n, dtype)), "broadcast")
        checked.append(backend_id)
    strided = np.zeros(20)
    strided[::2] = r + 1.0
    comm.allreduce_sum(strided[::2])
    check(np.all(strided[::2] == K * (K + 1) / 2) and np.all(strided[1::2] == 0), "strided")
    ints = np.full(3, r, dtype=np.int64)
    check(np.all(comm.allreduce_sum(ints) == K * (K - 1) // 2), "int64 sum")
    host = comm.allreduce_host([r, 1.0])
    check(host.dtype == np.float64 and list(host) == [K * (K - 1) / 2, K], "allreduce_host")
    check(comm.broadcast_object({"from": r}, root=K - 1) == {"from": K - 1}, "broadcast_object")
    check(comm.allgather_object("x" * r) == ["x" * q for q in range(K)], "allgather_object")
    comm.agree("seed", 1234)
    comm.agree({"X shape": (64, 1000), "layers": [64, 32, 1], "W1": np.ones((3, 2))})
    comm.barrier()
    report(comm, ok=True, name=comm.name, size=K, checked=checked)


def mismatch(comm) -> None:
    messages = []
    for what, value in (
        ("X shape", (64, 1000 + (comm.rank == VICTIM))),
        ({"seed": 0, "layers": [64, 32 if comm.rank != VICTIM else 16, 1]}, None),
        ("initial parameters", np.full(4, 1.0 if comm.rank != VICTIM else 2.0)),
    ):
        try:
            comm.agree(what, value)
        except RankMismatchError as exc:
            messages.append(str(exc))
    x = comm.allreduce_sum(np.ones(2))  # the communicator still works afterwards
    report(comm, messages=messages, usable=bool(np.all(x == comm.size)))


def fit_task(backend: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((10, 103))  # 103 = 5 batches of 20 and one of 3: uneven shares
    y = rng.integers(0, 3, 103)
    net = dn.DeepNet([10, 16, 8, 3], output="softmax", l2=0.01, keep_prob=0.8,
                     dtype="float64", seed=1, backend=backend)
    return net, X, y


# 9 epochs of 6 steps: 54 steps of Adam with L2 and dropout; the last batch of 3 leaves
# one of 4 ranks an empty share
FIT = dict(epochs=9, batch_size=20, optimizer="adam", learning_rate=1e-2, seed=3,
           progress=False)


def fit(comm, backend: str) -> None:
    """A fit across the ranks: the same parameters on every rank, and (rank 0 checks)
    those of the same fit in one process."""
    net, X, y = fit_task(backend)
    history = net.fit(X, y, comm=comm, **FIT)
    params = np.concatenate([dn.to_numpy(v).ravel() for v in net.params.values()])
    comm.agree("parameters after the fit", params)
    fields = {"epochs": history.epochs}
    if comm.is_root:
        twin, X, y = fit_task(backend)
        alone = twin.fit(X, y, **FIT)
        ref = np.concatenate([dn.to_numpy(v).ravel() for v in twin.params.values()])
        fields["max_rel_diff"] = float(np.max(np.abs(params - ref) / np.abs(ref)))
        fields["cost_rel_diff"] = float(np.max(np.abs(np.subtract(history.cost, alone.cost))
                                               / np.abs(alone.cost)))
    report(comm, **fields)


def fit_mismatch(comm) -> None:
    """Ranks given different data, then a different batch size: refused before a step."""
    messages = []
    for data_seed, batch in ((comm.rank == VICTIM, 20), (0, 20 + (comm.rank == VICTIM))):
        net, X, y = fit_task("numpy", seed=int(data_seed))
        try:
            net.fit(X, y, comm=comm, **{**FIT, "batch_size": batch})
        except RankMismatchError as exc:
            messages.append(str(exc))
        if net.history is not None:
            messages.append("trained anyway")
    report(comm, messages=messages)


def fit_settings(comm) -> None:
    """Ranks given different fit settings (each would update differently or stop at
    another epoch): refused before a step; a callback that stops one rank stops all;
    an optimizer object carried into a second fit agrees."""
    victim = comm.rank == VICTIM
    adam = dn.optimizers.Adam(learning_rate=0.01 * (1 + victim))
    differ = [
        {"learning_rate": 1e-2 * (1 + victim)},
        {"epochs": 9 + victim},
        {"optimizer": "rmsprop" if victim else "adam"},
        {"optimizer": adam, "learning_rate": None},
        {"validation": 0.2, "early_stopping": dn.EarlyStopping(patience=2 + victim)},
        {"validation": None if victim else 0.2},
    ]
    messages = []
    for change in differ:
        net, X, y = fit_task("numpy")
        try:
            net.fit(X, y, comm=comm, **{**FIT, **change})
        except RankMismatchError as exc:
            messages.append(str(exc))
        if net.history is not None:
            messages.append("trained anyway")

    def stop_on_victim(net, epoch, logs):
        return False if victim and epoch == 1 else None

    net, X, y = fit_task("numpy")
    history = net.fit(X, y, comm=comm, callbacks=[stop_on_victim], **FIT)
    params = np.concatenate([dn.to_numpy(v).ravel() for v in net.params.values()])
    comm.agree("parameters after a callback stopped one rank", params)
    adam = dn.optimizers.Adam(learning_rate=0.01)
    net, X, y = fit_task("numpy")
    for _ in range(2):  # its moments and counts, equal on every rank, carried over
        net.fit(X, y, comm=comm, **{**FIT, "optimizer": adam, "learning_rate": None})
    report(comm, messages=messages, stopped=[history.epochs, history.stopped_early],
           carried=adam.t)


def fault(comm, kind: str) -> None:
    """Every rank reduces in a loop; the victim stops after a few steps with ``kind``.

    ``uncaught`` and ``exit`` leave the victim's loop outside ``comm.guard()``, as a
    script without it would: the excepthook, or the liveness check, must tell the others.
    """
    unguarded = kind in ("uncaught", "exit") and comm.rank == VICTIM
    t_ok = time.monotonic()
    try:
        with contextlib.nullcontext() if unguarded else comm.guard():
            for step in range(1000):
                if comm.rank == VICTIM and step == 3:
                    time.sleep(0.3)
                    fail_as(kind)
                comm.allreduce_sum(np.ones(1000))
                t_ok = time.monotonic()
    except BaseException as exc:  # report it like a program's last words
        if unguarded:
            raise
        report(comm, type=type(exc).__name__, message=str(exc),
               origin=getattr(exc, "origin_rank", None),
               seconds=round(time.monotonic() - t_ok, 3),
               is_deepnet=isinstance(exc, dn.DeepNetError))
        return
    report(comm, type=None)


def fail_as(kind: str) -> None:
    if kind in ("shape", "uncaught"):
        raise ShapeError("X must have shape (n0, m) = (64, m); got (63, 1000)")
    if kind == "divergence":
        raise DivergenceError("training diverged in epoch 2 of 5: the cost became nan")
    if kind == "interrupt":  # a real Ctrl-C (a launcher may have left SIGINT ignored)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    if kind == "value":
        raise ValueError("a callback of the user failed")
    if kind == "exit":  # returns early, as a script with a bug would: a clean exit
        raise SystemExit(0)
    if kind == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "hang":  # longer than the timeout the test sets
        time.sleep(4)
        return
    raise SystemExit(f"unknown fault {kind}")


def main() -> None:
    scenario, args = sys.argv[1], sys.argv[2:]
    timeout = float(os.environ.get("WORKER_COMM_TIMEOUT", "0")) or None
    comm = dn.distributed.init(timeout=timeout)
    if comm.is_root:
        write("describe.txt", comm.describe())
    if scenario == "primitives":
        primitives(comm, args or ["numpy"])
    elif scenario == "mismatch":
        mismatch(comm)
    elif scenario == "fault":
        fault(comm, args[0])
    elif scenario == "fit":
        fit(comm, args[0] if args else "numpy")
    elif scenario == "fit_mismatch":
        fit_mismatch(comm)
    elif scenario == "fit_settings":
        fit_settings(comm)
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")


if __name__ == "__main__":
    main()
