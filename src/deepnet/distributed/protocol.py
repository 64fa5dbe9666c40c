"""What the communicators share and can test without a second process: errors on the
wire, agreement messages, host staging of arrays and the liveness of local peers.

Nothing here imports mpi4py, torch or cupy.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import socket
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from deepnet import errors
from deepnet.backend import Array, array_namespace, to_numpy
from deepnet.errors import DistributedError, InputError, RankMismatchError

#: Longest error message sent to the other ranks (longer ones are cut, the cut said).
MAX_MESSAGE = 3000
#: Bytes of one error record on the wire (JSON, UTF-8); receive buffers have this size.
MAX_PAYLOAD = 4096

# -- errors on the wire -------------------------------------------------------------------

_RECONSTRUCTED = {name: getattr(errors, name) for name in errors.__all__}
_RECONSTRUCTED["KeyboardInterrupt"] = KeyboardInterrupt


def encode_error(exc: BaseException, rank: int) -> bytes:
    """``exc`` raised on ``rank`` as a record the other ranks can raise again."""
    kind = type(exc).__name__
    message = message_of(exc)
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + f" ... [{len(message) - MAX_MESSAGE} characters cut]"
    origin = getattr(exc, "origin_rank", None)
    record: dict[str, Any] = {
        "rank": origin if isinstance(origin, int) else rank,
        "type": kind,
        "module": type(exc).__module__,
        "message": message,
    }
    payload = json.dumps(record).encode()
    while len(payload) > MAX_PAYLOAD:  # multi-byte characters: cut until it fits
        record["message"] = record["message"][: len(record["message"]) // 2] + " ..."
        payload = json.dumps(record).encode()
    return payload


def message_of(exc: BaseException) -> str:
    """``str(exc)``, or its type's name when empty; an exit says so."""
    try:
        text = str(exc)
    except Exception:  # a broken __str__
        text = ""
    if isinstance(exc, SystemExit):
        return f"it exited (SystemExit: {exc.code!r})"
    return text or type(exc).__name__


def encode_left(rank: int, collectives: int) -> bytes:
    """The record a rank sends when it leaves the run after ``collectives`` collectives."""
    return json.dumps({"left": True, "rank": rank, "collectives": collectives}).encode()


def decode_record(payload: bytes, size: int) -> tuple[str, Any]:
    """``("left", (rank, collectives))`` or ``("error", exception to raise)``."""
    try:
        record = json.loads(payload.decode())
        if record.get("left") is True:
            return "left", (int(record["rank"]), int(record["collectives"]))
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        pass
    return "error", decode_error(payload, size)


def decode_error(payload: bytes, size: int) -> BaseException:
    """The exception to raise on a rank that received ``payload`` from another one.

    deepnet's own errors and ``KeyboardInterrupt`` come back as the same class, with the
    original message after ``"on rank r of K: "``; anything else becomes a
    :class:`DistributedError` that names the original type. Every such exception has an
    ``origin_rank`` attribute.
    """
    try:
        record = json.loads(payload.decode())
        rank, kind = int(record["rank"]), str(record["type"])
        module, message = str(record["module"]), str(record["message"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        exc: BaseException = DistributedError(
            f"another rank stopped and sent an unreadable error record ({payload[:80]!r})"
        )
        exc.origin_rank = -1  # type: ignore[attr-defined]  # another rank's: not sent back
        return exc
    where = f"on rank {rank} of {size}"
    cls = _RECONSTRUCTED.get(kind)
    if cls is not None and module in ("deepnet.errors", "builtins"):
        exc = cls(f"{where}: {message}")
    else:
        exc = DistributedError(f"{where}: {kind}: {message}")
    exc.origin_rank = rank  # type: ignore[attr-defined]
    return exc


# -- agreement ------------------------------------------------------------------------------


def fingerprint(value: Any) -> bytes:
    """A 32-byte digest of ``value``: of the bytes, shape and dtype of an array (any
    backend; through the host), else of ``repr(value)``."""
    h = hashlib.sha256()
    if is_array(value):
        host = np.ascontiguousarray(to_numpy(value))
        h.update(repr(("array", host.shape, host.dtype.str)).encode())
        h.update(host.tobytes())
    elif isinstance(value, (list, tuple)) and any(map(_holds_array, value)):
        # each element by its own digest: repr() shortens arrays and rounds floats
        h.update(repr((type(value).__name__, len(value))).encode())
        for item in value:
            h.update(fingerprint(item))
    elif isinstance(value, dict) and any(map(_holds_array, value.values())):
        h.update(repr(("dict", len(value))).encode())
        for key, item in value.items():
            h.update(fingerprint(key))
            h.update(fingerprint(item))
    else:
        h.update(repr(value).encode())
    return h.digest()


def _holds_array(value: Any) -> bool:
    """Whether ``value`` is an array or a list, tuple or dict holding one."""
    if is_array(value):
        return True
    if isinstance(value, (list, tuple)):
        return any(map(_holds_array, value))
    if isinstance(value, dict):
        return any(map(_holds_array, value.values()))
    return False


def is_array(value: Any) -> bool:
    """Whether ``value`` is an array (of any library), not a scalar or a dtype."""
    return (hasattr(value, "shape") and hasattr(value, "dtype")
            and not isinstance(value, (np.generic, type)))


def describe_value(value: Any, limit: int = 120) -> str:
    """A short, printable description of ``value`` for a mismatch message."""
    if is_array(value):
        shape = tuple(int(n) for n in value.shape)
        digest = fingerprint(value).hex()[:12]
        return f"an array of shape {shape} and dtype {value.dtype}, digest {digest}"
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def rank_ranges(ranks: Sequence[int]) -> str:
    """``[0, 1, 2, 5]`` as ``"ranks 0-2, 5"`` (``"rank 3"`` for one)."""
    ranks = sorted(ranks)
    parts, start = [], None
    for i, r in enumerate(ranks):
        if start is None:
            start = r
        if i + 1 == len(ranks) or ranks[i + 1] != r + 1:
            parts.append(str(start) if start == r else f"{start}-{r}")
            start = None
    return ("rank " if len(ranks) == 1 else "ranks ") + ", ".join(parts)


def mismatch_error(
    gathered: Sequence[dict[str, tuple[str, str]]], size: int, max_groups: int = 4
) -> RankMismatchError:
    """The error every rank raises when ``agree`` finds values that differ.

    ``gathered[r]`` maps each item to ``(digest hex, description)`` on rank ``r``; the
    message is built from it alone, so it is the same on every rank.
    """
    lines = []
    absent = ("", "absent")  # an item some ranks did not pass (validation on one only)
    names = list(dict.fromkeys(what for items in gathered for what in items))
    for what in names:
        groups: dict[str, list[int]] = {}
        for r, items in enumerate(gathered):
            groups.setdefault(items.get(what, absent)[0], []).append(r)
        if len(groups) == 1:
            continue
        ordered = sorted(groups.values(), key=lambda rs: rs[0])
        shown = [f"{gathered[rs[0]].get(what, absent)[1]} on {rank_ranges(rs)}"
                 for rs in ordered[:max_groups]]
        if len(ordered) > max_groups:
            shown.append(f"and {len(ordered) - max_groups} other values")
        lines.append(f"{what}: " + "; ".join(shown))
    return RankMismatchError(
        f"the {size} ranks were given different inputs, which must be the same on every "
        "rank: " + " | ".join(lines) + ". Check the command line, the files each rank "
        "reads and its environment"
    )


def dumps(obj: Any) -> bytes:
    """``obj`` pickled, or an :class:`InputError` saying it cannot be sent."""
    try:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise InputError(
            f"only picklable objects can be sent to the other ranks; got "
            f"{type(obj).__name__} ({type(exc).__name__}: {exc})"
        ) from exc


# -- arrays through the host ------------------------------------------------------------------


def library_of(x: Any) -> str:
    """``numpy``, ``torch``, ``cupy``, ``array_api_strict`` or the module of ``x``."""
    return type(x).__module__.split(".")[0]


def host_buffer(x: Array, what: str) -> tuple[np.ndarray, Callable[[], None] | None]:
    """A contiguous host NumPy array holding ``x``, and how to write it back into ``x``.

    NumPy arrays and contiguous CPU torch tensors are used in place (no copy, nothing to
    write back). Anything else (CuPy, CUDA tensors, array-api-strict) goes through the
    host explicitly: :func:`deepnet.backend.to_numpy`, then a write into ``x``.
    """
    lib = library_of(x)
    if lib == "numpy" and isinstance(x, np.ndarray):
        _check_numeric(x.dtype, what)
        if x.flags.c_contiguous and x.flags.writeable:
            return x, None
        if not x.flags.writeable:
            raise InputError(f"{what} must be a writable array (it is reduced in place)")
        buf = np.ascontiguousarray(x)
        return buf, lambda: np.copyto(x, buf)
    if lib == "torch" and x.device.type == "cpu" and x.is_contiguous() and not x.requires_grad:
        buf = x.numpy()
        _check_numeric(buf.dtype, what)
        return buf, None
    if not is_array(x):
        raise InputError(f"{what} must be an array of a deepnet backend; got {type(x).__name__}")
    buf = np.ascontiguousarray(to_numpy(x))
    _check_numeric(buf.dtype, what)
    xp = array_namespace(x)

    def write_back() -> None:
        x[...] = xp.asarray(buf, device=x.device)

    return buf, write_back


def _check_numeric(dtype: np.dtype, what: str) -> None:
    if dtype.kind not in "fiu":
        raise InputError(f"{what} must hold real numbers (float or int); got dtype {dtype}")


# -- who runs where: liveness of the ranks on this machine --------------------------------------


def host_identity() -> tuple[str, str, str, int]:
    """``(hostname, boot id, pid namespace, pid)`` of this process.

    Two ranks are on the same machine, with comparable process ids, only when the first
    three agree (a hostname alone is not enough: containers on different machines can
    share one). Where ``/proc`` is missing the boot id is ``""`` and no check is made.
    """
    host = socket.gethostname()
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        pidns = os.readlink("/proc/self/ns/pid")
    except OSError:
        boot = pidns = ""
    return host, boot, pidns, os.getpid()


def process_gone(pid: int) -> bool:
    """Whether process ``pid`` of this machine has exited (or is a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state in ("Z", "X")


def lost_local_peers(peers: Sequence[tuple[str, str, str, int]], rank: int) -> list[int]:
    """The ranks on this machine whose process is gone (ranks elsewhere are not checked)."""
    me = peers[rank]
    if not me[1]:
        return []
    return [r for r, p in enumerate(peers)
            if r != rank and p[:3] == me[:3] and process_gone(p[3])]


def describe_peers(peers: Sequence[tuple[str, str, str, int]], limit: int = 64) -> str:
    """``"rank 0: pid 812 on vm; rank 1: pid 813 on vm"`` (cut after ``limit`` ranks)."""
    parts = [f"rank {r}: pid {p[3]} on {p[0]}" for r, p in enumerate(peers[:limit])]
    if len(peers) > limit:
        parts.append(f"... ({len(peers) - limit} more)")
    return "; ".join(parts)


__all__ = [
    "MAX_MESSAGE",
    "MAX_PAYLOAD",
    "decode_error",
    "decode_record",
    "describe_peers",
    "describe_value",
    "dumps",
    "encode_error",
    "encode_left",
    "fingerprint",
    "host_buffer",
    "host_identity",
    "is_array",
    "library_of",
    "lost_local_peers",
    "message_of",
    "mismatch_error",
    "process_gone",
    "rank_ranges",
]
