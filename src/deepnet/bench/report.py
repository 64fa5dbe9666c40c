"""The markdown report: the machine, the method, how much of the grid has clear verdicts,
the table with every ratio's interval, the crossover map as tables, what was skipped."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from deepnet.bench.cases import BASELINE, pretty
from deepnet.bench.crossover import crossover_map
from deepnet.bench.grid import skip_key
from deepnet.bench.machine import blas_summary
from deepnet.bench.summary import criteria_of, grid_share, summarize
from deepnet.bench.verdicts import Criteria, look_levels, look_schedule

__all__ = [
    "MARKS",
    "crossover_tables",
    "format_ratio",
    "format_seconds",
    "markdown_table",
    "render_markdown",
    "share_sentence",
]

MARKS = {"faster": "▲", "slower": "▼", "same": "=", "undecided": "?", "unreliable": "!"}
_WORDS = {"faster": "faster", "slower": "slower", "same": "same (within the band)",
          "undecided": "no clear difference", "unreliable": "unreliable"}


def format_seconds(s: float) -> str:
    """``2.15 s``, ``73.3 ms``, ``266 µs``."""
    if s >= 1.0:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} µs"


def format_ratio(r: Mapping[str, Any] | None, suffix: str = "") -> str:
    """``1.07× [1.02, 1.10]``; ``1.07× [—]`` when no interval reached the confidence."""
    if r is None:
        return "—"
    text = f"{r['estimate']:.2f}{suffix}"
    if r.get("lo") is None:
        return text + " [—]"
    return f"{text} [{r['lo']:.2f}, {r['hi']:.2f}]"


def _opt(x: float | None, spec: str) -> str:
    return "—" if x is None else f"{x:{spec}}"


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> tuple[str, list[str]]:
    """The table of one dtype, and its notes (why a verdict is missing, numbered)."""
    head = ("| backend | n | m | time/step (median) | IQR/median | rounds | GFLOP/s "
            "| ÷ floor | ÷ PyTorch | speedup vs NumPy | verdict vs NumPy | CPU/wall |\n"
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- "
            "| ---: |\n")
    body, notes = [], []
    for r in rows:
        v = r.get("vs_numpy")
        verdict = "—" if v is None else f"{MARKS[v['verdict']]} {_WORDS[v['verdict']]}"
        why = [] if v is None else [v["why"]] if v["why"] else []
        if v is None and r["flags"]:
            why = ["; ".join(r["flags"])]
        if why:
            notes.append(why[0])
            verdict += f" [{len(notes)}]"
        rounds = str(r["rounds"])
        if r.get("rounds_set_aside"):
            rounds += f" (+{r['rounds_set_aside']} set aside)"
        body.append(
            f"| {pretty(r['target'])} | {r['n']} | {r['m']} | {format_seconds(r['median_s'])} "
            f"| {r['iqr_rel'] * 100:.1f}% | {rounds} | {r['gflops']:.3g} "
            f"| {format_ratio(r.get('vs_floor'))} | {format_ratio(r.get('vs_reference'))} "
            f"| {format_ratio(v, '×')} | {verdict} | {_opt(r.get('cpu_per_wall'), '.2f')} |")
    return head + "\n".join(body) + "\n", notes


def crossover_tables(rows: Sequence[Mapping[str, Any]], key: str = "vs_numpy") -> list[str]:
    """Per backend: a width × batch table of its ratio ``key`` with interval and verdict
    mark, then (for deepnet's backends) the GEMM-floor efficiency (floor ÷ step)."""
    out = []
    targets = list(dict.fromkeys(r["target"] for r in rows if r.get(key) is not None))
    widths = sorted({r["n"] for r in rows})
    batches = sorted({r["m"] for r in rows})
    for t in targets:
        cells = {(r["n"], r["m"]): r for r in rows if r["target"] == t}
        title = {"vs_numpy": "speedup vs NumPy", "vs_cpu": "speedup vs the fastest CPU "
                 "backend"}.get(key, key)
        out += [f"**{pretty(t)}: {title}** (▲ faster, ▼ slower, = same within the band, "
                "? no clear difference, ! unreliable; median of per-round ratios "
                "[interval]; — not measured)", "",
                "| n \\ m | " + " | ".join(str(m) for m in batches) + " |",
                "| ---: |" + " ---: |" * len(batches)]
        for n in widths:
            line = []
            for m in batches:
                r = cells.get((n, m))
                v = None if r is None else r.get(key)
                line.append("—" if v is None else f"{MARKS[v['verdict']]} {format_ratio(v, '×')}")
            out.append(f"| {n} | " + " | ".join(line) + " |")
        out.append("")
    for t in dict.fromkeys(r["target"] for r in rows if r.get("vs_floor") is not None):
        if key != "vs_numpy":
            break
        cells = {(r["n"], r["m"]): r for r in rows if r["target"] == t}
        out += [f"**{pretty(t)}: GEMM-floor efficiency** (floor time ÷ step time; 100% = "
                "the step costs only its 14 matmuls; ! below-floor or unreliable)", "",
                "| n \\ m | " + " | ".join(str(m) for m in batches) + " |",
                "| ---: |" + " ---: |" * len(batches)]
        for n in widths:
            line = []
            for m in batches:
                r = cells.get((n, m))
                f = None if r is None else r.get("vs_floor")
                if r is None or f is None:
                    line.append("—")
                    continue
                mark = "! " if r["flags"] else ""
                text = f"{mark}{100 / f['estimate']:.0f}%"
                if f.get("lo") is not None:
                    text += f" [{100 / f['hi']:.0f}, {100 / f['lo']:.0f}]"
                line.append(text)
            out.append(f"| {n} | " + " | ".join(line) + " |")
        out.append("")
    return out


def share_sentence(rows: Sequence[Mapping[str, Any]], key: str = "vs_numpy") -> str | None:
    """``"21 of 24 comparisons with NumPy have a clear verdict (88%): ..."``."""
    c = grid_share(rows, key)
    if not c["total"]:
        return None
    what = {"vs_numpy": "comparisons with NumPy", "vs_reference": "comparisons with native "
            "PyTorch", "vs_cpu": "GPU-vs-CPU comparisons"}[key]
    return (f"{c['clear']} of {c['total']} {what} have a clear verdict "
            f"({c['clear'] / c['total']:.0%}): {c['faster']} faster, {c['slower']} slower, "
            f"{c['same']} the same within the band; {c['undecided']} no clear difference, "
            f"{c['unreliable']} unreliable.")


def _fmt_load(load: Sequence[float] | None) -> str:
    return "unknown" if not load else " ".join(f"{x:.2f}" for x in load)


def _looks(cfg: Mapping[str, Any], crit: Criteria) -> str:
    """``6 rounds at 95 %, 12 at 99.25 %, …``: the sweep's looks and their levels."""
    repeat, most = cfg.get("repeat"), cfg.get("max_rounds")
    if repeat is None:
        return f"one look, at {crit.confidence:.0%}"
    counts = look_schedule(int(repeat), None if most is None else int(most))
    levels = look_levels(crit, int(repeat), None if most is None else int(most))
    return ", ".join(f"{c}{' rounds' if i == 0 else ''} at {100 * lv:.5g} %"
                     for i, (c, lv) in enumerate(zip(counts, levels, strict=True)))


def _header(results: Mapping[str, Any], crit: Criteria) -> list[str]:
    machine = results.get("machine") or {}
    cfg = results.get("config") or {}
    gpu = machine.get("gpu") or {}
    budget = results.get("budget") or {}
    env_text = ", ".join(f"{k}={v}" for k, v in (machine.get("env") or {}).items())
    lines = [
        "# deepnet bench", "",
        f"- date: {results.get('created')}; host `{machine.get('hostname')}`; "
        f"{machine.get('cpu')}, {machine.get('cores_usable')} usable cores"
        + (f"; GPU {gpu.get('name')}" if gpu.get("name") else ""),
        f"- Python {machine.get('python')}; "
        + ", ".join(f"{k} {v}" for k, v in (machine.get("versions") or {}).items() if v),
        f"- BLAS: {blas_summary(machine)}",
        f"- load average (1, 5, 15 min) at the start: {_fmt_load(machine.get('loadavg'))}, "
        f"at the end: {_fmt_load(machine.get('loadavg_end'))}",
        f"- environment: {env_text or '(none of the speed-relevant variables set)'}",
        f"- command: `{' '.join(results.get('command') or []) or 'deepnet bench'}`",
    ]
    if budget.get("budget_s") is not None:
        lines.append(f"- time budget {budget['budget_s']:g} s; the sweep took "
                     f"{budget.get('sweep_s', float('nan')):.1f} s"
                     + (f", the whole command {results['elapsed_s']:.1f} s"
                        if results.get("elapsed_s") else ""))
    if results.get("schema_read") and results["schema_read"] != results.get("schema"):
        lines.append(f"- read from a {results['schema_read']} file: no interference "
                     "accounting; judged by today's criteria")
    lines += [
        "- network [n, n, n, n, n, 1] (ReLU, sigmoid output), full batch m, plain GD; "
        + (f"at least {cfg.get('repeat')} alternating rounds per point, up to "
           f"{cfg['max_rounds']} where a verdict was still open; " if cfg.get("max_rounds")
           else f"{cfg.get('repeat')} alternating rounds per point; ")
        + "flops/step = 6·Σ n[l]·n[l-1]·m",
        "- every ratio is the median of per-round ratios (both cases timed in the same "
        f"round) with its exact order-statistic interval at ≥ {crit.confidence:.0%} "
        "(distribution-free, binomial; `[—]`: too few rounds for one). A point given "
        "more rounds because a verdict was open is judged at a stricter confidence: the "
        "sweep decides only at usable-round counts fixed in advance, and the "
        f"{1 - crit.confidence:.0%} error is split among those looks in advance ("
        + _looks(cfg, crit) + "; rounds set aside are not counted; a point cut between "
        "two looks is judged at the next one's level), so that stopping when a verdict "
        "appears does not inflate it. A verdict "
        f"(faster, slower, same) is stated only when the interval clears the ±{crit.band:.0%}"
        " band around 1 or lies inside it; otherwise \"no clear difference\". Unreliable, "
        f"and never a verdict: IQR/median over {crit.max_spread:.0%}, a step below its GEMM"
        f" floor, rounds drifting (Mann-Kendall p < {crit.drift_alpha:g}) by enough to "
        "change the verdict (the interval widened by half the trend on each side gives "
        "another), too few rounds "
        f"left after setting aside those where other processes competed for the cores "
        f"(took over {crit.max_interference:g} of one and more than this process left free; "
        "from /proc/stat) or a sample was under half of --min-time, samples past the budget.",
        "- ÷ floor: step ÷ its 14 matmuls (same shapes and library); ÷ PyTorch: step ÷ "
        "native PyTorch (nn.Sequential + BCEWithLogitsLoss + SGD) on the same device; "
        "CPU/wall: the process's CPU seconds per second of the step (≈ the cores it kept "
        "busy). Thread pools: "
        + (f"before a sample of another library the sweep waited until this process was "
           f"idle (at most {cfg.get('pause_s', 0.2):g} s)." if cfg.get("pause_policy")
           else f"{cfg.get('pause_s', 0.2):g} s of sleep before every sample."),
        "",
    ]
    return lines


def render_markdown(results: Mapping[str, Any], rows: Sequence[Mapping[str, Any]] | None = None,
                    criteria: Criteria | None = None) -> str:
    """The whole ``results.md``."""
    crit = criteria_of(results, criteria)
    rows = summarize(results, crit) if rows is None else rows
    lines = _header(results, crit)
    sentences = crossover_map(rows)
    for dtype in sorted({r["dtype"] for r in rows}):
        mine = [r for r in rows if r["dtype"] == dtype]
        lines += [f"## {dtype}", ""]
        for key in ("vs_numpy", "vs_reference", "vs_cpu"):
            text = share_sentence(mine, key)
            if text:
                lines.append(f"- {text}")
        table, notes = markdown_table(mine)
        lines += ["", table]
        lines += [f"{i}. {note}" for i, note in enumerate(notes, 1)]
        lines += ["", "### Crossover map", ""]
        lines += [f"- {s}" for s in sentences.get(dtype, [])] or ["- (no backend to compare)"]
        lines.append("")
        lines += crossover_tables([r for r in mine if r["target"] != BASELINE or
                                   r.get("vs_floor")])
        if any(r.get("vs_cpu") for r in mine):
            lines += crossover_tables(mine, "vs_cpu")
    if results.get("unavailable"):
        lines += ["## Backends that could not run", ""]
        lines += [f"- {pretty(u['target'])}: {u['reason']}" for u in results["unavailable"]]
        lines.append("")
    if results.get("skipped"):
        lines += ["## Skipped", ""]
        first: dict[tuple, dict] = {}  # once each: files written before 2026-12-02 repeat
        for s in results["skipped"]:
            first.setdefault(skip_key(s), s)
        lines += [f"- {pretty(s['target'])}{' ' + s['case'] if s.get('case') else ''} at "
                  f"n = {s['n']}, m = {s['m']} ({s['dtype']}): {s['reason']}"
                  for s in first.values()]
        lines.append("")
    return "\n".join(lines)
