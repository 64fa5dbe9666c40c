"""Portable checkpoints: one ``.npz`` holding the parameters, the architecture and a format.

A checkpoint is a NumPy ``.npz`` (a zip of ``.npy`` arrays, no pickles) with the entries

``__format__``  the string ``"deepnet-checkpoint"`` (foreign ``.npz`` files are refused)
``__version__`` the format version, an integer (:data:`FORMAT_VERSION`)
``config``      JSON of ``DeepNet.config()``: layer_dims, hidden, output, init, l2,
                keep_prob, dtype, seed
``history``     JSON of the training ``History`` (``"null"`` when the network was not fit)
``W1, b1, ...`` every parameter as a host array of the network's dtype

Parameters leave the device through ``deepnet.backend.to_numpy`` and enter the target
backend through ``DeepNet.set_params``, so a network saved from one backend loads on any
other. Saving is atomic: the bytes go to a temporary file in the same directory, are
flushed and fsynced, and only then ``os.replace`` puts the file in place. A save that fails
or is killed midway leaves the previous file untouched, and two processes saving to one
path never interleave their bytes (each writes its own temporary file).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepnet.backend import DTYPE_NAMES, to_numpy
from deepnet.errors import CheckpointError
from deepnet.history import History
from deepnet.model import Model, parameter_shapes

FORMAT_NAME = "deepnet-checkpoint"
FORMAT_VERSION = 1
CONFIG_KEYS = ("layer_dims", "hidden", "output", "init", "l2", "keep_prob", "dtype", "seed")
_META_KEYS = ("__format__", "__version__", "config", "history")


def _json_safe(value: Any) -> Any:
    """JSON for the history: NaN and inf become ``None`` (strict JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _contents(net: Model) -> dict[str, np.ndarray]:
    config = net.config()
    if not (config["seed"] is None or isinstance(config["seed"], int)):
        config["seed"] = None  # a Generator seed cannot be written; the weights are saved
    history = None if net.history is None else _json_safe(net.history.to_dict())
    arrays = {
        "__format__": np.array(FORMAT_NAME),
        "__version__": np.array(FORMAT_VERSION, dtype=np.int64),
        "config": np.array(json.dumps(config, allow_nan=False)),
        "history": np.array(json.dumps(history, allow_nan=False)),
    }
    for key, value in net.params.items():
        arrays[key] = np.ascontiguousarray(to_numpy(value))
    return arrays


def _path(path: Any, action: str) -> Path:
    """``path`` as a ``Path``; anything that is not a file name is refused."""
    try:
        text = os.fspath(path)
    except TypeError:
        raise CheckpointError(
            f"cannot {action} a checkpoint: the path must be a str or os.PathLike; got "
            f"{type(path).__name__}"
        ) from None
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if not text or "\x00" in text:
        raise CheckpointError(
            f"cannot {action} a checkpoint: {text!r} is not a valid file name"
        )
    return Path(text)


def _kind(path: Path, action: str) -> str:
    """``"file"``, ``"dir"`` or ``"missing"``; an unusable name is a CheckpointError."""
    try:
        if path.is_dir():
            return "dir"
        return "file" if path.exists() else "missing"
    except OSError as exc:  # a name too long, a permission denied on the way
        raise CheckpointError(f"cannot {action} a checkpoint at {str(path)!r}: {exc}") from exc


def save(net: Model, path: str | os.PathLike) -> None:
    """Write ``net`` to ``path`` (exactly that name; ``.npz`` is the convention), atomically.

    Raises
    ------
    CheckpointError
        When the directory does not exist or the file cannot be written; any previous file
        at ``path`` is then left as it was.
    """
    if not isinstance(net, Model):
        raise CheckpointError(f"save needs a deepnet.DeepNet; got {type(net).__name__}")
    path = _path(path, "save")
    directory = path.parent
    if _kind(directory, "save") != "dir":
        raise CheckpointError(
            f"cannot save a checkpoint to {str(path)!r}: the directory {str(directory)!r} "
            "does not exist (create it first)"
        )
    if _kind(path, "save") == "dir":
        raise CheckpointError(f"cannot save a checkpoint to {str(path)!r}: it is a directory")
    arrays = _contents(net)  # everything read from the device before the file is touched
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:  # a read-only directory, a name too long, no space for inodes
        raise CheckpointError(
            f"could not write the checkpoint {str(path)!r} ({exc}); any previous file "
            "there is unchanged"
        ) from exc
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, Exception):  # OSError, or a failure inside the writer
            raise CheckpointError(
                f"could not write the checkpoint {str(path)!r} ({type(exc).__name__}: {exc});"
                " any previous file there is unchanged"
            ) from exc
        raise  # KeyboardInterrupt, SystemExit: the temporary file is gone, the old kept
    _fsync_directory(directory)


def _file_mode(path: Path) -> int:
    """The mode an ordinary new file would get (mkstemp makes 0600), or the old file's."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable where the platform allows it (POSIX)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


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

    Everything is checked before anything is built: the file is a complete zip, carries
    deepnet's format marker and a version this deepnet reads, its configuration is valid
    and every parameter is present, of the right shape and finite.

    Raises
    ------
    CheckpointError
        For a missing, truncated, foreign, newer or mismatched file.
    """
    path = _path(path, "load")
    where = str(path)
    kind = _kind(path, "load")
    if kind == "missing":
        raise CheckpointError(f"no checkpoint at {where!r}: the file does not exist")
    if kind == "dir":
        raise CheckpointError(f"{where!r} is a directory, not a checkpoint file")
    entries = _read(path)
    fmt = entries.get("__format__")
    if fmt is None or fmt.shape != () or str(fmt) != FORMAT_NAME:
        keys = sorted(entries)[:8]
        raise CheckpointError(
            f"{where!r} is not a deepnet checkpoint: it has no '__format__' = "
            f"{FORMAT_NAME!r} marker (its entries: {keys}); it was not written by "
            "DeepNet.save"
        )
    version = _version(entries, where)
    config = _config(entries, where)
    history = _history(entries, where)
    params = _params(entries, config, where)
    return Checkpoint(config, params, history, version)


def _read(path: Path) -> dict[str, np.ndarray]:
    """Every entry of the ``.npz``, read fully (so truncation shows up here)."""
    where = str(path)
    if not zipfile.is_zipfile(path):
        size = path.stat().st_size
        raise CheckpointError(
            f"{where!r} is not a checkpoint: not a .npz (zip) file, or truncated "
            f"({size} bytes)"
        )
    try:
        # open the file here: np.load(path) leaks its own handle when the zip directory is
        # damaged (NpzFile raises after np.load has let go of the file)
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise CheckpointError(
            f"{where!r} is damaged or truncated and cannot be read ({type(exc).__name__}: "
            f"{exc}); save the network again"
        ) from exc
    except Exception as exc:  # zlib.error and other decoder failures of a torn file
        raise CheckpointError(
            f"{where!r} is damaged and cannot be read ({type(exc).__name__}: {exc})"
        ) from exc


def _version(entries: dict[str, np.ndarray], where: str) -> int:
    raw = entries.get("__version__")
    if raw is None or raw.shape != () or raw.dtype.kind not in "iu":
        raise CheckpointError(f"{where!r}: the format version is missing or not an integer")
    version = int(raw)
    if not 1 <= version <= FORMAT_VERSION:
        raise CheckpointError(
            f"{where!r} has checkpoint format version {version}; this deepnet reads "
            f"versions 1 to {FORMAT_VERSION} (upgrade deepnet to load it)"
        )
    return version


def _json_entry(entries: dict[str, np.ndarray], key: str, where: str) -> Any:
    raw = entries.get(key)
    if raw is None or raw.shape != () or raw.dtype.kind != "U":
        raise CheckpointError(f"{where!r}: the entry {key!r} is missing or not a string")
    try:
        return json.loads(str(raw))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{where!r}: the entry {key!r} is not valid JSON ({exc})") from exc


def _config(entries: dict[str, np.ndarray], where: str) -> dict[str, Any]:
    config = _json_entry(entries, "config", where)
    if not isinstance(config, dict):
        raise CheckpointError(f"{where!r}: 'config' must be a JSON object; got {config!r}")
    missing = [k for k in CONFIG_KEYS if k not in config]
    if missing:
        raise CheckpointError(f"{where!r}: the configuration lacks {missing}")
    dims = config["layer_dims"]
    if (not isinstance(dims, list) or len(dims) < 2
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1
                       for n in dims)):
        raise CheckpointError(
            f"{where!r}: layer_dims must be a list of at least two positive integers; "
            f"got {dims!r}"
        )
    if config["dtype"] not in DTYPE_NAMES:
        raise CheckpointError(
            f"{where!r}: the saved dtype must be one of {', '.join(DTYPE_NAMES)}; got "
            f"{config['dtype']!r}"
        )
    return config


_HISTORY_LISTS = ("cost", "val_cost", "accuracy", "val_accuracy", "time", "learning_rate")


def _history_ok(data: dict) -> bool:
    for key in _HISTORY_LISTS:
        values = data.get(key, [])
        if not isinstance(values, list) or not all(
                v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
                for v in values):
            return False
    best = data.get("best_epoch")
    return ((best is None or (isinstance(best, int) and not isinstance(best, bool)))
            and isinstance(data.get("monitor", "cost"), str)
            and isinstance(data.get("stopped_early", False), bool))


def _history(entries: dict[str, np.ndarray], where: str) -> Any:
    if "history" not in entries:
        return None
    data = _json_entry(entries, "history", where)
    if data is None:
        return None
    if not isinstance(data, dict) or not _history_ok(data):
        raise CheckpointError(
            f"{where!r}: 'history' must be a JSON object of per-epoch number lists "
            "(cost, val_cost, ...), or null"
        )
    try:
        return History.from_dict(data)
    except TypeError as exc:
        raise CheckpointError(f"{where!r}: 'history' is malformed ({exc})") from exc


def _params(entries: dict[str, np.ndarray], config: dict[str, Any],
            where: str) -> dict[str, np.ndarray]:
    dims = config["layer_dims"]
    expected = parameter_shapes(dims)
    missing = [k for k in expected if k not in entries]
    extra = [k for k in entries if k not in expected and k not in _META_KEYS]
    if missing or extra:
        raise CheckpointError(
            f"{where!r} does not match its architecture {dims}: missing parameters "
            f"{missing}, unexpected entries {extra}"
        )
    params = {}
    for key, shape in expected.items():
        value = entries[key]
        if value.dtype.kind != "f":
            raise CheckpointError(f"{where!r}: {key} has dtype {value.dtype}; expected floats")
        if tuple(value.shape) != shape:
            raise CheckpointError(
                f"{where!r}: {key} has shape {tuple(value.shape)} but layer_dims {dims} "
                f"needs {shape}"
            )
        if not np.all(np.isfinite(value)):
            raise CheckpointError(f"{where!r}: {key} holds NaN or inf values")
        params[key] = value
    return params


__all__ = ["CONFIG_KEYS", "FORMAT_NAME", "FORMAT_VERSION", "Checkpoint", "read", "save"]
