"""deepnet.distributed.protocol: errors on the wire, agreement messages, arrays through
the host, and the liveness of the ranks on this machine — what every communicator
shares, tested without a second process."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

import deepnet as dn
from deepnet.distributed import protocol
from deepnet.errors import (
    DistributedError,
    DivergenceError,
    InputError,
    RankMismatchError,
    ShapeError,
)

# -- errors on the wire ------------------------------------------------------------------------


@pytest.mark.parametrize("exc", [
    ShapeError("X must have shape (64, m); got (63, 10)"),
    DivergenceError("training diverged in epoch 2 of 5"),
    InputError("seed must be >= 0; got -1"),
    KeyboardInterrupt(),
])
def test_deepnet_errors_and_interrupts_come_back_as_themselves(exc):
    got = protocol.decode_error(protocol.encode_error(exc, 2), 4)
    assert type(got) is type(exc) and got.origin_rank == 2
    assert str(got) == f"on rank 2 of 4: {str(exc) or 'KeyboardInterrupt'}"


def test_other_errors_become_distributed_errors_naming_the_type():
    got = protocol.decode_error(protocol.encode_error(ValueError("a user callback"), 1), 2)
    assert type(got) is DistributedError
    assert str(got) == "on rank 1 of 2: ValueError: a user callback"
    got = protocol.decode_error(protocol.encode_error(SystemExit(3), 1), 2)
    assert "it exited (SystemExit: 3)" in str(got)

    class ShapeError(Exception):  # a user's class of the same name is not deepnet's
        pass

    got = protocol.decode_error(protocol.encode_error(ShapeError("mine"), 0), 2)
    assert type(got) is DistributedError and "ShapeError: mine" in str(got)


def test_long_and_broken_records_stay_bounded():
    payload = protocol.encode_error(InputError("é" * 10_000), 0)
    assert len(payload) <= protocol.MAX_PAYLOAD
    got = protocol.decode_error(payload, 2)
    assert isinstance(got, InputError) and str(got).startswith("on rank 0 of 2: ééé")
    assert len(str(got)) < protocol.MAX_PAYLOAD
    got = protocol.decode_error(b"\xff not json", 2)
    assert isinstance(got, DistributedError) and "unreadable error record" in str(got)
    assert protocol.decode_record(protocol.encode_left(3, 17), 4) == ("left", (3, 17))
    kind, exc = protocol.decode_record(protocol.encode_error(ShapeError("s"), 1), 4)
    assert kind == "error" and isinstance(exc, ShapeError)


# -- agreement ---------------------------------------------------------------------------------


def test_fingerprints_compare_arrays_by_value_across_backends(backend, rng):
    host = rng.standard_normal((2, 3))
    x = backend.asarray(host, backend.dtype("float64"))
    assert protocol.fingerprint(x) == protocol.fingerprint(host)
    assert protocol.fingerprint(x) != protocol.fingerprint(host.astype(np.float32))
    assert protocol.fingerprint(x) != protocol.fingerprint(host.reshape(3, 2))
    assert protocol.fingerprint((64, 100)) != protocol.fingerprint((64, 101))


def test_mismatch_message_names_what_the_ranks_and_their_values():
    def item(value):
        return (protocol.fingerprint(value).hex(), protocol.describe_value(value))

    gathered = [{"X shape": item((64, 100)), "seed": item(0)} for _ in range(6)]
    gathered[2]["X shape"] = gathered[5]["X shape"] = item((64, 99))
    err = protocol.mismatch_error(gathered, 6)
    assert isinstance(err, RankMismatchError) and isinstance(err, InputError)
    assert str(err).startswith(
        "the 6 ranks were given different inputs, which must be the same on every rank: "
        "X shape: (64, 100) on ranks 0-1, 3-4; (64, 99) on ranks 2, 5."
    )
    assert "seed" not in str(err)
    assert protocol.rank_ranges([7]) == "rank 7"
    many = [{"v": item(r)} for r in range(10)]
    assert "and 6 other values" in str(protocol.mismatch_error(many, 10))


def test_lists_of_arrays_are_compared_by_every_value(backend, rng):
    # agree_fit compares array-api-strict's parameters as a list of arrays: repr() would
    # show 3 values of each end of a large array, and 8 digits of each
    host = rng.standard_normal(2000)
    far, near = host.copy(), host.copy()
    far[1000] += 1.0
    near[0] *= 1 + 1e-12
    same = protocol.fingerprint([backend.asarray(host, backend.dtype("float64"))])
    assert same == protocol.fingerprint([host])
    assert same != protocol.fingerprint([far])
    assert same != protocol.fingerprint([near])
    assert protocol.fingerprint({"v": [host]}) != protocol.fingerprint({"v": [far]})
    assert protocol.fingerprint([host, host]) != protocol.fingerprint([host])


def test_an_item_passed_on_some_ranks_only_is_named_absent_on_the_others():
    def item(value):
        return (protocol.fingerprint(value).hex(), protocol.describe_value(value))

    gathered = [{"X size": item((82, 10)), "X_val size": item((21, 10))},
                {"X size": item((82, 10))}, {"X size": item((82, 10))}]
    err = protocol.mismatch_error(gathered, 3)
    assert "X_val size: (21, 10) on rank 0; absent on ranks 1-2" in str(err)
    err = protocol.mismatch_error(gathered[::-1], 3)
    assert "X_val size: absent on ranks 0-1; (21, 10) on rank 2" in str(err)


# -- arrays through the host -------------------------------------------------------------------


def test_host_buffer_is_the_array_itself_where_it_can_be(backend, rng):
    host = rng.standard_normal(5)
    want = 2 * host
    x = backend.asarray(host, backend.dtype("float64"))  # NumPy: host itself
    buf, write_back = protocol.host_buffer(x, "x")
    in_place = backend.name == "numpy" or (backend.name == "torch" and backend.label == "torch")
    assert (write_back is None) == in_place
    buf *= 2  # what a reduction does
    if write_back is not None:
        write_back()
    assert np.allclose(dn.to_numpy(x), want) and backend.owns(x)


def test_host_buffer_writes_strided_arrays_back_and_refuses_the_unusable():
    x = np.zeros(6)
    buf, write_back = protocol.host_buffer(x[::2], "x")
    buf += 1
    write_back()
    assert x.tolist() == [1, 0, 1, 0, 1, 0]
    frozen = np.ones(3)
    frozen.flags.writeable = False
    with pytest.raises(InputError, match="writable"):
        protocol.host_buffer(frozen, "x")
    with pytest.raises(InputError, match="real numbers"):
        protocol.host_buffer(np.ones(2, dtype=bool), "x")


# -- liveness ----------------------------------------------------------------------------------


def test_process_gone_sees_exited_and_zombie_processes():
    assert not protocol.process_gone(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while not protocol.process_gone(child.pid):  # a zombie until waited for
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child.wait()
    assert protocol.process_gone(child.pid)
