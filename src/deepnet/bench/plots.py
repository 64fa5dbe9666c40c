"""Pictures of a run: ``crossover.png``, the crossover map as heatmaps (per backend, the
speedup versus NumPy over width × batch, undecided and unreliable points hatched, with the
GEMM-floor efficiency beside it), and ``throughput.png`` (GFLOP/s against width).

Both need matplotlib; without it the functions return ``False`` and
:data:`NO_MATPLOTLIB` says how to get it.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from deepnet.bench.cases import BASELINE, is_reference, pretty
from deepnet.bench.report import MARKS
from deepnet.bench.results import write_text
from deepnet.bench.summary import criteria_of
from deepnet.bench.verdicts import Criteria

__all__ = ["NO_MATPLOTLIB", "have_matplotlib", "plot_crossover", "plot_throughput"]

NO_MATPLOTLIB = ("no plots: matplotlib is not installed; install it with "
                 "`pip install 'deepnet[bench]'` (or `pip install matplotlib`), then "
                 "`deepnet bench --render --out DIR` draws them from the saved results")
_CAP = 3.0  # the colour scale ends at 2^±3 = 8× faster / slower


def have_matplotlib() -> bool:
    """Whether matplotlib can be imported here."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _save(fig: Any, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    write_text(path, buf.getvalue())


def _title(results: Mapping[str, Any], what: str) -> str:
    machine = results.get("machine") or {}
    gpu = (machine.get("gpu") or {}).get("name")
    return (f"deepnet {what} — {machine.get('cpu')}" + (f", {gpu}" if gpu else "")
            + f" ({results.get('created', '')[:10]})")


def _panel(ax: Any, cells: dict[tuple[int, int], dict], widths: list[int], batches: list[int],
           value: Any, label: Any, cmap: Any, norm: Any) -> Any:
    """One heatmap: ``value(cell)`` coloured, ``label(cell)`` written, hatching from the
    cell's ``"hatch"``; ``None`` cells blank."""
    import numpy as np
    from matplotlib.patches import Rectangle

    data = np.full((len(widths), len(batches)), np.nan)
    for (n, m), c in cells.items():
        data[widths.index(n), batches.index(m)] = value(c)
    image = ax.imshow(data, cmap=cmap, norm=norm, origin="lower", aspect="auto")
    for (n, m), c in cells.items():
        i, j = widths.index(n), batches.index(m)
        r, g, b, _ = image.cmap(image.norm(data[i, j]))
        dark = 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.45
        if c.get("hatch"):
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=True, facecolor="white",
                                   alpha=0.6, edgecolor="0.3", hatch=c["hatch"], lw=0))
            dark = False
        ax.text(j, i, label(c), ha="center", va="center", fontsize=8,
                color="white" if dark else "black", linespacing=1.15)
    for i, n in enumerate(widths):
        for j, m in enumerate(batches):
            if (n, m) not in cells:
                ax.text(j, i, "not measured", ha="center", va="center", fontsize=7,
                        color="0.55")
    ax.set_xticks(range(len(batches)), labels=[str(m) for m in batches])
    ax.set_yticks(range(len(widths)), labels=[str(n) for n in widths])
    ax.set_xlabel("batch m")
    ax.set_ylabel("width n")
    return image


def plot_crossover(results: Mapping[str, Any], path: Path,
                   rows: Sequence[Mapping[str, Any]], criteria: Criteria | None = None) -> bool:
    """``crossover.png``: a row per (dtype, backend); left the speedup vs NumPy (blue
    faster, red slower; hatched ``///`` no clear difference, ``xx`` unreliable), right the
    GEMM-floor efficiency (floor time ÷ step time). ``False`` without matplotlib or rows."""
    if not have_matplotlib() or not rows:
        return False
    from matplotlib import colors
    from matplotlib.figure import Figure

    keys = list(dict.fromkeys((r["dtype"], r["target"]) for r in rows))
    keys = [k for k in keys if k[1] == BASELINE] + [k for k in keys if k[1] != BASELINE]
    widths = sorted({r["n"] for r in rows})
    batches = sorted({r["m"] for r in rows})
    fig = Figure(figsize=(2 * (1.15 * len(batches) + 1.0), (0.55 * len(widths) + 0.85)
                          * len(keys) + 2.0), layout="constrained")
    axes = fig.subplots(len(keys), 2, squeeze=False)
    speed_norm = colors.TwoSlopeNorm(vcenter=0.0, vmin=-_CAP, vmax=_CAP)
    eff_norm = colors.Normalize(vmin=0.0, vmax=1.0)
    speed_img = eff_img = None
    several = len({r["dtype"] for r in rows}) > 1

    def suffix(dtype: str) -> str:
        return f" ({dtype})" if several else ""

    for (dtype, target), (left, right) in zip(keys, axes):
        mine = [r for r in rows if (r["dtype"], r["target"]) == (dtype, target)]
        speed = {(r["n"], r["m"]): dict(r["vs_numpy"], hatch=_hatch(r["vs_numpy"]["verdict"]))
                 for r in mine if r.get("vs_numpy")}
        if speed:
            speed_img = _panel(
                left, speed, widths, batches,
                lambda c: max(-_CAP, min(_CAP, math.log2(c["estimate"]))),
                _speed_label, "RdBu", speed_norm)
            left.set_title(f"{pretty(target)}{suffix(dtype)}: speedup vs NumPy", fontsize=9)
        else:
            left.axis("off")
            left.text(0.5, 0.5, f"{pretty(target)}{suffix(dtype)}:\nthe baseline",
                      ha="center", va="center", transform=left.transAxes)
        eff = {(r["n"], r["m"]): dict(r["vs_floor"], hatch="xx" if r["flags"] else None)
               for r in mine if r.get("vs_floor")}
        if eff:
            eff_img = _panel(right, eff, widths, batches, lambda c: 1.0 / c["estimate"],
                             _eff_label, "viridis", eff_norm)
            right.set_title(f"{pretty(target)}{suffix(dtype)}: GEMM-floor efficiency",
                            fontsize=9)
        else:
            right.axis("off")
            if is_reference(target):
                right.text(0.5, 0.5, "no GEMM floor\n(native PyTorch)", ha="center",
                           va="center", transform=right.transAxes, color="0.4")
    if speed_img is not None:
        bar = fig.colorbar(speed_img, ax=axes[:, 0], location="bottom", shrink=0.8,
                           aspect=30, label="speedup vs NumPy (×)")
        ticks = [-3, -2, -1, 0, 1, 2, 3]
        bar.set_ticks(ticks, labels=[f"1/{2 ** -t}" if t < 0 else f"{2 ** t}" for t in ticks])
    if eff_img is not None:
        fig.colorbar(eff_img, ax=axes[:, 1], location="bottom", shrink=0.8, aspect=30,
                     label="GEMM floor ÷ step time", format=lambda v, _: f"{v:.0%}")
    dts = "" if several else f", {rows[0]['dtype']}"
    crit = criteria_of(results, criteria)
    fig.suptitle(_title(results, "crossover map" + dts) + "\n▲ faster  ▼ slower  = same  "
                 "(hatched: /// no clear difference, xx unreliable); "
                 f"[≥ {crit.confidence:.0%} interval], verdicts beyond ±{crit.band:.0%}",
                 fontsize="medium")
    _save(fig, path)
    return True


def _hatch(verdict: str) -> str | None:
    return {"undecided": "///", "unreliable": "xx"}.get(verdict)


def _speed_label(c: Mapping[str, Any]) -> str:
    text = f"{MARKS[c['verdict']]} {c['estimate']:.2f}×"
    if c.get("lo") is not None:
        text += f"\n[{c['lo']:.2f}, {c['hi']:.2f}]"
    return text


def _eff_label(c: Mapping[str, Any]) -> str:
    text = f"{100 / c['estimate']:.0f}%"
    if c.get("lo") is not None:
        text += f"\n[{100 / c['hi']:.0f}, {100 / c['lo']:.0f}]"
    return ("! " if c.get("hatch") else "") + text


def plot_throughput(results: Mapping[str, Any], path: Path,
                    rows: Sequence[Mapping[str, Any]]) -> bool:
    """``throughput.png``: GFLOP/s against width, a panel per batch size (a row per dtype);
    the GEMM floor dashed, native PyTorch dotted, unreliable measurements ringed. ``False``
    without matplotlib or rows."""
    if not have_matplotlib() or not rows:
        return False
    from matplotlib import ticker
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    dtypes = sorted({r["dtype"] for r in rows})
    batches = sorted({r["m"] for r in rows})
    targets = list(dict.fromkeys(r["target"] for r in rows))
    colours = {t: f"C{i % 10}" for i, t in enumerate(targets)}
    fig = Figure(figsize=(4.6 * len(batches), 3.8 * len(dtypes)), layout="constrained")
    axes = fig.subplots(len(dtypes), len(batches), squeeze=False)
    for i, dtype in enumerate(dtypes):
        for j, m in enumerate(batches):
            ax = axes[i][j]
            for t in targets:
                pts = sorted((r["n"], r) for r in rows
                             if r["target"] == t and r["m"] == m and r["dtype"] == dtype)
                if not pts:
                    continue
                style = ":" if is_reference(t) else "-"
                ax.plot([p[0] for p in pts], [p[1]["gflops"] for p in pts], style, marker="o",
                        ms=4, color=colours[t])
                bad = [(n, r["gflops"]) for n, r in pts if r["flags"]]
                if bad:  # unreliable measurements: a hollow ring over the point
                    ax.plot(*zip(*bad), "o", ms=9, mfc="none", mec=colours[t], mew=1.2)
                floor = [(n, r["floor_gflops"]) for n, r in pts if r["floor_gflops"]]
                if floor:
                    ax.plot(*zip(*floor), "--", color=colours[t], alpha=0.6, lw=1)
            widths = sorted({r["n"] for r in rows if r["m"] == m and r["dtype"] == dtype})
            ax.set_xscale("log", base=2)
            ax.set_xticks(widths, labels=[str(w) for w in widths])
            ax.xaxis.set_minor_locator(ticker.NullLocator())
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(ticker.NullFormatter())
            ax.set_xlabel("width n")
            ax.set_ylabel("GFLOP/s")
            ax.set_title(f"m = {m}, {dtype}")
            ax.grid(True, which="both", alpha=0.3)
    handles = [Line2D([], [], color=colours[t], ls=":" if is_reference(t) else "-",
                      marker="o", ms=4, label=pretty(t)) for t in targets]
    handles.append(Line2D([], [], color="gray", ls="--", label="GEMM floor (same colour)"))
    handles.append(Line2D([], [], color="gray", marker="o", ms=9, mfc="none", ls="none",
                          label="unreliable measurement"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4),
               fontsize="small")
    fig.suptitle(_title(results, "training-step throughput"), fontsize="medium")
    _save(fig, path)
    return True
