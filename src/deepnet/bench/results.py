"""Results files: the schema, writing atomically, reading older schemas, checking an output
folder before any measurement, and finding saved results for ``--advise``.

A results file is JSON: ``schema``, ``created``, ``command``, ``config`` (the grid, the
options and the verdict ``criteria``), ``targets``, ``machine``, ``samples`` (every raw
sample: target, case, n, m, dtype, round, seconds and CPU seconds per call, the CPU
seconds other processes took, when it ended), ``skipped``, ``unavailable`` (backends that
are installed but cannot run), ``calibration``, ``budget`` and ``elapsed_s``.
Schema 1 files (no interference accounting, no criteria) are read and upgraded in memory.

Files go through :mod:`deepnet.paths`, as checkpoints do: every file a run will write is
checked before the first measurement (a regular file or a new name, not a directory, FIFO
or device; links followed, two names for one file refused), written atomically, and read
only when it is a regular file. A results file is trusted no more than a checkpoint: its
size and nesting are bounded and the fields the reports use are checked, so a damaged or
hostile file is a ``ValueError`` naming what is wrong, never a traceback.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from deepnet import paths
from deepnet.errors import InputError

__all__ = [
    "DEFAULT_OUT",
    "OUTPUTS",
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
#: The files a run writes into ``--out``; ``--render`` writes all but the first.
OUTPUTS = ("results.json", "results.md", "crossover.png", "throughput.png")
#: The largest results file read (a sweep of thousands of points writes a few MiB).
MAX_BYTES = 256 * 2**20
_MAX_DEPTH = 8
_WRITE = paths.Role("write", "benchmark results", InputError)
_READ = paths.Role("read", "benchmark results", InputError)


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
    """Write ``path`` atomically (``deepnet.paths.write_atomically``): a reader, or an
    interrupted run, never sees half a file; what is not a regular file is refused and
    left as it is; a link's target is replaced. The file gets the usual permissions
    (``0o666`` less the umask), or keeps those of the file it replaces."""
    data = text.encode() if isinstance(text, str) else text

    def write(f: BinaryIO) -> None:
        f.write(data)

    paths.write_atomically(path, write, _WRITE)
    return path


def write_json(results: dict, out: Path) -> Path:
    """``out/results.json``, atomically."""
    out.mkdir(parents=True, exist_ok=True)
    return write_text(out / "results.json", json.dumps(_jsonable(results), indent=1) + "\n")


def check_out_dir(out: Path, option: str = "--out",
                  files: Sequence[str] = OUTPUTS) -> Path:
    """Make sure ``out`` is a folder this process can write ``files`` into, before any
    measurement (the folder is created, as the command's own output folder).

    Each file must be a regular file this user may replace, or a new name
    (``deepnet.paths``), and no two of them may be one file (a link or a hard link).

    Raises :class:`~deepnet.errors.InputError` saying what is wrong.
    """
    if out.exists() and not out.is_dir():
        raise InputError(f"{option} {out} exists and is not a folder; pass a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot write into {option} {out}: {exc.strerror or exc}; pass a "
                         "folder you can write to") from exc
    targets = {f"{option} {out / name}": paths.output_file(out / name, _WRITE, probe=True)
               for name in files}
    paths.distinct(targets, InputError)
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

    Raises ``FileNotFoundError`` (saying what to run) or ``ValueError`` (not a results
    file, or a damaged one: :class:`~deepnet.errors.InputError` for a file that cannot be
    read, such as a FIFO or one this user may not read).
    """
    file = path / "results.json" if path.is_dir() else path
    if not file.exists() and not file.is_symlink():
        raise FileNotFoundError(f"no saved results at {file} (the results.json that "
                                "`deepnet bench --out DIR` writes into DIR)")
    with paths.open_input(file, _READ) as f:
        raw = f.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise ValueError(f"{file} is not a deepnet bench results file: it is larger than "
                         f"{MAX_BYTES // 2**20} MiB")
    try:
        results = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        reason = ("it nests too deeply" if isinstance(exc, RecursionError)
                  else f"{type(exc).__name__}: {exc}")
        raise ValueError(f"{file} is not a deepnet bench results file: {reason}") from None
    schema = results.get("schema") if isinstance(results, dict) else None
    if schema not in _READABLE:
        raise ValueError(f"{file} is not a deepnet bench results file (schema {schema!r}, "
                         f"expected one of {', '.join(_READABLE)})")
    problem = _malformed(results)
    if problem is not None:
        raise ValueError(f"{file} is a damaged deepnet bench results file: {problem}")
    results = _upgrade(results)
    results["source"] = str(file)
    return results


def _depth(x: Any, limit: int) -> bool:
    """Whether ``x`` nests no deeper than ``limit`` containers."""
    if isinstance(x, (dict, list)):
        if limit == 0:
            return False
        values = x.values() if isinstance(x, dict) else x
        return all(_depth(v, limit - 1) for v in values)
    return True


def _number(x: Any, positive: bool = False) -> bool:
    ok = isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
    return ok and (x > 0 if positive else x >= 0)


def _size(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and 1 <= x < 2**40


def _text(v: Any) -> bool:
    return isinstance(v, str)


def _maybe(check: Any) -> Any:
    return lambda v: v is None or check(v)


def _numbers(v: Any) -> bool:
    return isinstance(v, list) and all(_number(x) for x in v)


#: What each field the reports read must be: the samples' and points' (required, then
#: optional), the targets', the machine's, the budget's and the top level's.
_SAMPLE = {"target": _text, "case": _text, "dtype": _text, "n": _size, "m": _size,
           "round": lambda v: isinstance(v, int) and not isinstance(v, bool),
           "seconds": lambda v: _number(v, positive=True)}
_SAMPLE_OPTIONAL = {"inner": _maybe(_size), "cpu_s": _maybe(_number),
                    "others_s": _maybe(_number), "t": _maybe(_number)}
_POINT = {"dtype": _text, "n": _size, "m": _size}
_POINT_OPTIONAL = {"loadavg_end": _maybe(_numbers), "rounds": _maybe(_number),
                   "spent_s": _maybe(_number)}
_TARGET = {"role": _text, "gpu": lambda v: isinstance(v, bool)}
_TARGET_OPTIONAL = {"reference": _maybe(_text)}
_SKIPPED = {"target": _text, "n": _size, "m": _size, "dtype": _text, "reason": _text}
_SKIPPED_OPTIONAL = {"case": _maybe(_text)}
_UNAVAILABLE = {"target": _text, "reason": _text}
_CONFIG_OPTIONAL = {"repeat": _maybe(_number), "max_rounds": _maybe(_number),
                    "pause_s": _maybe(_number), "criteria": _maybe(
                        lambda v: isinstance(v, dict) and all(map(_number, v.values())))}
_MACHINE_OPTIONAL = {"cores_usable": _maybe(_size), "gpu": _maybe(lambda v: isinstance(v, dict)),
                     "versions": _maybe(lambda v: isinstance(v, dict)),
                     "env": _maybe(lambda v: isinstance(v, dict)),
                     "loadavg": _maybe(_numbers), "loadavg_end": _maybe(_numbers)}
_BUDGET_OPTIONAL = {"deadline_s": _maybe(_number), "budget_s": _maybe(_number)}
_TOP_OPTIONAL = {
    **{key: _maybe(lambda v: isinstance(v, dict)) for key in ("config", "targets", "machine",
                                                            "budget")},
    **{key: _maybe(lambda v: isinstance(v, list)) for key in ("samples", "points", "skipped",
                                                            "unavailable", "calibration")},
    "command": _maybe(lambda v: isinstance(v, list) and all(map(_text, v))),
    "created": _text, "elapsed_s": _maybe(_number), "schema_read": _maybe(_text)}


def _fields(item: Any, where: str, required: dict, optional: dict) -> str | None:
    if not isinstance(item, dict):
        return f"{where} is {_short(item)}, expected an object"
    for name, ok in required.items():
        if name not in item:
            return f"{where} has no {name!r}"
        if not ok(item[name]):
            return f"{where}[{name!r}] is {_short(item[name])}"
    for name, ok in optional.items():
        if name in item and not ok(item[name]):
            field = f"{where}[{name!r}]" if where else repr(name)
            return f"{field} is {_short(item[name])}"
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _malformed(results: dict) -> str | None:
    """What is wrong with the fields the reports use, or ``None``."""
    if not _depth(results, _MAX_DEPTH):
        return f"it nests deeper than {_MAX_DEPTH} levels"
    problem = _fields(results, "", {}, _TOP_OPTIONAL)  # first: the lists below
    if problem is not None:
        return problem
    checks = [(s, f"samples[{i}]", _SAMPLE, _SAMPLE_OPTIONAL)
               for i, s in enumerate(results.get("samples") or [])]
    checks += [(p, f"points[{i}]", _POINT, _POINT_OPTIONAL)
               for i, p in enumerate(results.get("points") or [])]
    checks += [(t, f"targets[{name!r}]", _TARGET, _TARGET_OPTIONAL)
               for name, t in (results.get("targets") or {}).items()]
    checks += [(x, f"skipped[{i}]", _SKIPPED, _SKIPPED_OPTIONAL)
               for i, x in enumerate(results.get("skipped") or [])]
    checks += [(x, f"unavailable[{i}]", _UNAVAILABLE, {})
               for i, x in enumerate(results.get("unavailable") or [])]
    checks.append((results.get("config") or {}, "config", {}, _CONFIG_OPTIONAL))
    checks += [(results.get("machine") or {}, "machine", {}, _MACHINE_OPTIONAL),
               (results.get("budget") or {}, "budget", {}, _BUDGET_OPTIONAL)]
    for item, where, required, optional in checks:
        problem = _fields(item, where, required, optional)
        if problem is not None:
            return problem
    return None


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
