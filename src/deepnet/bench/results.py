"""Results files: the schema, writing atomically, reading older schemas, checking an output
folder before any measurement, and finding saved results for ``--advise``.

A results file is JSON: ``schema``, ``created``, ``command``, ``config`` (the grid, the
options and the verdict ``criteria``), ``targets``, ``machine``, ``samples`` (every raw
sample: target, case, n, m, dtype, round, seconds and CPU seconds per call, the CPU
seconds other processes took, when it ended), ``skipped``, ``unavailable`` (backends that
are installed but cannot run), ``calibration``, ``budget`` and ``elapsed_s``.
Schema 1 files (no interference accounting, no criteria) are read and upgraded in memory.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from deepnet.errors import InputError

__all__ = [
    "DEFAULT_OUT",
    "SCHEMA",
    "SHIPPED",
    "check_out_dir",
    "find_results",
    "load_results",
    "shipped_results",
    "write_json",
    "write_text",
]

SCHEMA = "deepnet-bench/2"
_READABLE = ("deepnet-bench/1", SCHEMA)
DEFAULT_OUT = Path("bench-results")
SHIPPED = Path("benchmarks") / "results"


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    if isinstance(x, np.generic):
        return x.item()
    return str(x)


def write_text(path: Path, text: str | bytes) -> Path:
    """Write ``path`` through a temporary file in the same folder, then rename: a reader
    (or an interrupted run) never sees half a file. The file gets the usual permissions
    (``0o666`` less the umask), not ``mkstemp``'s private ``0o600``."""
    data = text.encode() if isinstance(text, str) else text
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 100 collisions of 32 random bits
        raise FileExistsError(f"no free temporary name next to {path}")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_json(results: dict, out: Path) -> Path:
    """``out/results.json``, atomically."""
    out.mkdir(parents=True, exist_ok=True)
    return write_text(out / "results.json", json.dumps(_jsonable(results), indent=1) + "\n")


def check_out_dir(out: Path, option: str = "--out") -> Path:
    """Make sure ``out`` is a folder this process can write into, before any measurement.

    Raises :class:`~deepnet.errors.InputError` saying what is wrong.
    """
    if out.exists() and not out.is_dir():
        raise InputError(f"{option} {out} exists and is not a folder; pass a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".deepnet-bench-probe-"):
            pass
    except OSError as exc:
        raise InputError(f"cannot write into {option} {out}: {exc.strerror or exc}; pass a "
                         "folder you can write to") from exc
    return out


def _upgrade(results: dict) -> dict:
    """Schema 1 → 2 in memory: no interference accounting, no criteria, no budget."""
    results = dict(results)
    results["schema_read"] = results.get("schema")
    results.setdefault("unavailable", [])
    results.setdefault("budget", None)
    results["config"] = dict(results.get("config") or {})
    results["config"].setdefault("criteria", None)
    results["schema"] = SCHEMA
    return results


def load_results(path: Path) -> dict:
    """The results in ``path`` (a ``results.json`` or the folder holding one).

    Raises ``FileNotFoundError`` (saying what to run) or ``ValueError`` (not a results file).
    """
    file = path / "results.json" if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"no saved results at {file} (the results.json that "
                                "`deepnet bench --out DIR` writes into DIR)")
    try:
        results = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{file} is not a deepnet bench results file: {exc}") from exc
    schema = results.get("schema") if isinstance(results, dict) else None
    if schema not in _READABLE:
        raise ValueError(f"{file} is not a deepnet bench results file (schema {schema!r}, "
                         f"expected one of {', '.join(_READABLE)})")
    results = _upgrade(results)
    results["source"] = str(file)
    return results


def _roots() -> Iterable[Path]:
    """Where a ``benchmarks/results`` folder may be: here, and the source tree of this
    deepnet (an editable install or a checkout on ``PYTHONPATH``)."""
    yield Path.cwd()
    yield Path(__file__).resolve().parents[3]


def shipped_results() -> list[Path]:
    """The results that ship with the repository (``benchmarks/results/*/results.json``),
    ``cpu`` first; runs named ``*-before`` or ``*-after`` are history and left out."""
    found: list[Path] = []
    for root in _roots():
        folder = root / SHIPPED
        if not folder.is_dir():
            continue
        for file in sorted(folder.glob("*/results.json"),
                           key=lambda f: (f.parent.name != "cpu", f.parent.name)):
            if not file.parent.name.endswith(("-before", "-after")) \
                    and file.resolve() not in found:
                found.append(file.resolve())
        if found:
            break
    return found


def find_results(out: Path | None) -> Path:
    """The results to answer from: ``out`` when given; else the last run without ``--out``
    (``./bench-results``); else the shipped CPU results."""
    if out is not None:
        file = out / "results.json" if out.is_dir() else out
        if not file.is_file():
            raise FileNotFoundError(f"no saved results at {file} (the results.json that "
                                    "`deepnet bench --out DIR` writes into DIR)")
        return file
    last = DEFAULT_OUT / "results.json"
    if last.is_file():
        return last
    shipped = shipped_results()
    if shipped:
        return shipped[0]
    raise FileNotFoundError(
        f"no saved results: neither {last} (the last `deepnet bench` without --out) nor "
        f"{SHIPPED}/cpu/results.json exists here; run `deepnet bench` first")
