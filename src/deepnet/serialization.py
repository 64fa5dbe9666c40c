"""Portable checkpoints: one ``.npz`` holding the parameters, the architecture and a format.

A checkpoint is a NumPy ``.npz`` (a zip of ``.npy`` arrays, no pickles) with the entries

``__format__``  the string ``"deepnet-checkpoint"`` (foreign ``.npz`` files are refused)
``__version__`` the format version, an integer (:data:`FORMAT_VERSION`)
``config``      JSON of ``DeepNet.config()``: layer_dims, hidden, output, init, l2,
                keep_prob, dtype, seed
``history``     JSON of the training ``History`` (``"null"`` when the network was not fit);
                a NaN or infinite number is written as the string ``"nan"``, ``"inf"`` or
                ``"-inf"`` (strict JSON has none), and read back as that float
``W1, b1, ...`` every parameter as a host array of the network's dtype

Parameters leave the device through ``deepnet.backend.to_numpy`` and enter the target
backend through ``DeepNet.set_params``, so a network saved from one backend loads on any
other. Saving is atomic and refuses what is not a regular file (``deepnet.paths``: links
are followed, missing directories are not created): the bytes go to a temporary file in
the target's directory, are flushed and fsynced, and only then ``os.replace`` puts the file
in place. A save that fails or is interrupted midway leaves the previous file untouched,
and two processes saving to one path never interleave their bytes.

Loading trusts nothing: only a regular file is opened, every entry's name, ``.npy``
header (dtype, shape) and declared size is checked against the recorded architecture
before any data is decompressed (``deepnet.archive``), the JSON entries are bounded in
size (:data:`CONFIG_MAX_CHARS`, :data:`HISTORY_MAX_CHARS`) and nesting, and every value
is checked before anything is built.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np

from deepnet import memory, paths
from deepnet.archive import Archive
from deepnet.backend import DTYPE_NAMES, to_numpy
from deepnet.buffers import parameter_shapes
from deepnet.errors import CheckpointError
from deepnet.history import MONITORS, History
from deepnet.model import Model

FORMAT_NAME = "deepnet-checkpoint"
FORMAT_VERSION = 1
CONFIG_KEYS = ("layer_dims", "hidden", "output", "init", "l2", "keep_prob", "dtype", "seed")
#: The longest ``config`` entry read, in characters (a network of ~100,000 layers).
CONFIG_MAX_CHARS = 2**20
#: The longest ``history`` entry, in characters: ~250,000 epochs of every metric. Saving
#: a longer one is refused (before the file is touched) rather than written unreadable.
HISTORY_MAX_CHARS = 2**25
_JSON_MAX_DEPTH = 4
_META_KEYS = ("__format__", "__version__", "config", "history")
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
SAVE = paths.Role("save", "checkpoint", CheckpointError)
LOAD = paths.Role("load", "checkpoint", CheckpointError)


def _json_safe(value: Any) -> Any:
    """The history as strict JSON: numbers as floats, NaN and inf as strings."""
    if isinstance(value, Real) and not isinstance(value, (bool, int)):
        value = float(value)
        if not math.isfinite(value):
            return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return value
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _contents(net: Model) -> dict[str, Any]:
    config = net.config()
    if not (config["seed"] is None or isinstance(config["seed"], int)):
        config["seed"] = None  # a Generator seed cannot be written; the weights are saved
    epochs = 0 if net.history is None else net.history.epochs
    history = None if net.history is None else _json_safe(net.history.to_dict())
    text = json.dumps(history, allow_nan=False)
    if len(text) > HISTORY_MAX_CHARS:
        raise CheckpointError(
            f"cannot save the checkpoint: the history of {epochs:,} epochs takes "
            f"{len(text):,} characters, more than a checkpoint holds ({HISTORY_MAX_CHARS:,});"
            " set net.history = None (or keep fewer epochs) and save again"
        )
    arrays: dict[str, Any] = {
        "__format__": np.array(FORMAT_NAME),
        "__version__": np.array(FORMAT_VERSION, dtype=np.int64),
        "config": np.array(json.dumps(config, allow_nan=False)),
        "history": np.array(text),
    }
    for key, value in net.params.items():
        arrays[key] = np.ascontiguousarray(to_numpy(value))
    return arrays


def save(net: Model, path: str | os.PathLike) -> None:
    """Write ``net`` to ``path`` (exactly that name; ``.npz`` is the convention), atomically.

    ``path`` must be a regular file or a new name in an existing directory; a symbolic
    link is followed and its target replaced (see ``deepnet.paths``).

    Raises
    ------
    CheckpointError
        When ``path`` is a directory, a device, FIFO or socket, a read-only file, in a
        missing directory, or the file cannot be written; any previous file at ``path`` is
        then left as it was.
    """
    if not isinstance(net, Model):
        raise CheckpointError(f"save needs a deepnet.DeepNet; got {type(net).__name__}")
    paths.output_file(path, SAVE)  # a bad name is refused before the device is read
    arrays = _contents(net)  # everything read from the device before the file is touched
    paths.write_atomically(path, lambda f: np.savez(f, **arrays), SAVE)


# -- loading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """What a checkpoint file holds, checked: see :func:`read`."""

    config: dict[str, Any]
    params: dict[str, np.ndarray]
    history: History | None
    version: int


def read(path: str | os.PathLike) -> Checkpoint:
    """The checked contents of the checkpoint at ``path`` (``deepnet.load`` builds the network).

    Everything is checked before anything is built, and every entry's header before any
    data is decompressed: the file is a regular file and a complete zip, carries deepnet's
    format marker and a version this deepnet reads, its configuration is valid, and every
    parameter is present, of the right dtype and shape, within the memory available, and
    finite.

    Raises
    ------
    CheckpointError
        For a missing, unreadable, truncated, foreign, newer or mismatched file.
    """
    with paths.open_input(path, LOAD) as f:
        where = paths.file_name(path, LOAD)
        archive = Archive(f, where, os.fstat(f.fileno()).st_size)
        try:
            _format(archive, where)
            version = _version(archive, where)
            config = _config(archive, where)
            expected = _param_entries(archive, config, where)
            history = _history(archive, where)
            params = {key: _finite(archive.read(key), key, where) for key in expected}
        finally:
            archive.close()
    return Checkpoint(config, params, history, version)


def _format(archive: Archive, where: str) -> None:
    ok = "__format__" in archive
    if ok:
        entry = archive.entry("__format__")
        ok = (entry.dtype.kind == "U" and entry.shape == () and entry.dtype.itemsize <= 256
              and str(archive.read("__format__")) == FORMAT_NAME)
    if not ok:
        keys = sorted(archive.keys)[:8]
        raise CheckpointError(
            f"{where!r} is not a deepnet checkpoint: it has no '__format__' = "
            f"{FORMAT_NAME!r} marker (its entries: {keys}); it was not written by "
            "DeepNet.save"
        )


def _version(archive: Archive, where: str) -> int:
    entry = archive.entry("__version__") if "__version__" in archive else None
    if entry is None or entry.shape != () or entry.dtype.kind not in "iu":
        raise CheckpointError(f"{where!r}: the format version is missing or not an integer")
    version = int(archive.read("__version__"))
    if not 1 <= version <= FORMAT_VERSION:
        raise CheckpointError(
            f"{where!r} has checkpoint format version {version}; this deepnet reads "
            f"versions 1 to {FORMAT_VERSION} (upgrade deepnet to load it)"
        )
    return version


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not strict JSON")


def _json_entry(archive: Archive, key: str, where: str, max_chars: int) -> Any:
    entry = archive.entry(key) if key in archive else None
    if entry is None or entry.shape != () or entry.dtype.kind != "U":
        raise CheckpointError(f"{where!r}: the entry {key!r} is missing or not a string")
    chars = entry.dtype.itemsize // 4
    if chars > max_chars:
        raise CheckpointError(
            f"{where!r}: the entry {key!r} declares {chars:,} characters, more than a "
            f"checkpoint holds ({max_chars:,}); it was not written by DeepNet.save"
        )
    try:
        value = json.loads(str(archive.read(key)), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise CheckpointError(
            f"{where!r}: the entry {key!r} is not valid JSON ({type(exc).__name__}: "
            f"{str(exc)[:200]})"
        ) from None
    if _too_deep(value):
        raise CheckpointError(
            f"{where!r}: the entry {key!r} is not valid JSON for a checkpoint (lists or "
            f"objects nested more than {_JSON_MAX_DEPTH} deep)"
        )
    return value


def _too_deep(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            if depth > _JSON_MAX_DEPTH:
                return True
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict)
                                                   else item))
    return False


def _config(archive: Archive, where: str) -> dict[str, Any]:
    config = _json_entry(archive, "config", where, CONFIG_MAX_CHARS)
    if not isinstance(config, dict):
        raise CheckpointError(
            f"{where!r}: 'config' must be a JSON object; got {str(config)[:80]!r}")
    missing = [k for k in CONFIG_KEYS if k not in config]
    if missing:
        raise CheckpointError(f"{where!r}: the configuration lacks {missing}")
    dims = config["layer_dims"]
    if (not isinstance(dims, list) or len(dims) < 2
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1
                       for n in dims)):
        raise CheckpointError(
            f"{where!r}: layer_dims must be a list of at least two positive integers; "
            f"got {str(dims)[:200]}"
        )
    if config["dtype"] not in DTYPE_NAMES:
        raise CheckpointError(
            f"{where!r}: the saved dtype must be one of {', '.join(DTYPE_NAMES)}; got "
            f"{str(config['dtype'])[:80]!r}"
        )
    return config


def _history(archive: Archive, where: str) -> History | None:
    if "history" not in archive:
        return None
    data = _json_entry(archive, "history", where, HISTORY_MAX_CHARS)
    if data is None:
        return None
    problem = "it is not an object" if not isinstance(data, dict) else None
    values: dict[str, Any] = {}
    template = History()
    for key, value in (data.items() if problem is None else ()):
        if key not in History.__dataclass_fields__:
            continue  # written by a newer deepnet: ignored, as History.from_dict does
        default = getattr(template, key)
        if isinstance(default, list):
            numbers = _numbers(value)
            if numbers is None:
                problem = f"{key!r} is not a list of numbers"
                break
            values[key] = numbers
        elif key == "best_epoch":
            epochs = len(data.get("cost", [])) if isinstance(data.get("cost"), list) else 0
            if value is not None and not (type(value) is int and 0 <= value < epochs):
                problem = (f"best_epoch is {str(value)[:40]}, not the index of one of its "
                           f"{epochs} epochs, or null")
                break
            values[key] = value
        elif key == "monitor":
            if value not in MONITORS:
                problem = f"monitor is {str(value)[:40]!r}, not one of {', '.join(MONITORS)}"
                break
            values[key] = value
        elif type(value) is not type(default):
            problem = f"{key!r} is {str(value)[:40]}, not a {type(default).__name__}"
            break
        else:
            values[key] = value
    if problem is not None:
        raise CheckpointError(
            f"{where!r}: 'history' must be a JSON object of per-epoch number lists "
            f"(cost, val_cost, ...), or null; {problem}"
        )
    return History(**values)


def _numbers(values: Any) -> list[float] | None:
    """``values`` as floats (``"nan"``/``"inf"``/``"-inf"`` included), or None."""
    if not isinstance(values, list):
        return None
    out = []
    for v in values:
        if isinstance(v, str) and v in _NONFINITE:
            out.append(_NONFINITE[v])
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            try:
                out.append(float(v))
            except OverflowError:
                return None
        else:
            return None
    return out


def _param_entries(archive: Archive, config: dict[str, Any],
                   where: str) -> dict[str, tuple[int, int]]:
    """The parameters' headers checked against ``layer_dims``; nothing decompressed."""
    dims = config["layer_dims"]
    expected = parameter_shapes(dims)
    missing = [k for k in expected if k not in archive]
    extra = [k for k in archive.keys if k not in expected and k not in _META_KEYS]
    if missing or extra:
        raise CheckpointError(
            f"{where!r} does not match its architecture {str(dims)[:200]}: missing "
            f"parameters {missing[:8]}, unexpected entries {extra[:8]}"
        )
    total = 0
    for key, shape in expected.items():
        entry = archive.entry(key)
        if entry.dtype.kind != "f" or entry.dtype.itemsize not in (4, 8):
            raise CheckpointError(
                f"{where!r}: {key} has dtype {entry.dtype}; expected floats (float32 or "
                "float64)")
        if entry.shape != shape:
            raise CheckpointError(
                f"{where!r}: {key} has shape {entry.shape} but layer_dims {dims} needs "
                f"{shape}"
            )
        total += entry.nbytes
    available = memory.available_host_memory()
    if available is not None and total > available:
        raise CheckpointError(
            f"{where!r}: its parameters take {total / 2**30:,.2f} GiB, more than the "
            f"{available / 2**30:,.2f} GiB of memory available here"
        )
    return expected


def _finite(value: np.ndarray, key: str, where: str) -> np.ndarray:
    if not np.all(np.isfinite(value)):
        raise CheckpointError(f"{where!r}: {key} holds NaN or inf values")
    return value


__all__ = [
    "CONFIG_KEYS",
    "CONFIG_MAX_CHARS",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "HISTORY_MAX_CHARS",
    "LOAD",
    "SAVE",
    "Checkpoint",
    "read",
    "save",
]
