"""The sweep: every case at every grid point in alternating rounds, within a time budget,
with more rounds where a verdict is still open.

Pass 1 visits every point (cheapest first) for ``repeat`` rounds, skipping, with the
reason, a point whose estimated cost no longer fits the budget. Pass 2 revisits the points
that still have an open comparison, the one expected to settle soonest first (rounds it
needs, from its interval's width and its distance to the band, × the cost of its round),
and adds rounds until its verdicts settle, ``max_rounds`` is reached or its allotment is
spent (:mod:`deepnet.bench.plan` estimates the rounds). Points that should not settle
within ``max_rounds`` (long shots) get their next scheduled looks only with the time none
of the others needs, the likeliest first. No round starts
unless its estimated duration fits before the deadline, so a run ends within about one
round of the budget (minus ``report_reserve`` kept for writing the reports).

One round takes one sample of every case of the point, grouped by library (the order of
the groups and within them rotates each round, and no round starts with the case that
ran last, so no case is timed right after itself); before the first sample of another
library the sweep waits until the thread pools stop spinning (``timing.wait_idle``).
"""

from __future__ import annotations

import datetime
import gc
import math
import os
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from deepnet.bench.cases import (
    Case,
    is_gpu,
    layer_dims,
    library_of,
    parse_target,
    reference_target,
    step_flops,
)
from deepnet.bench.grid import Config, Key, build_cases, skip, width_cap
from deepnet.bench.machine import machine_info
from deepnet.bench.plan import next_look, point_samples, rounds_needed, rounds_to_next_look
from deepnet.bench.results import SCHEMA, write_json
from deepnet.bench.summary import usable_rounds
from deepnet.bench.timing import Clock, SystemClock, calibrate, sample, wait_idle

__all__ = ["Sweep", "run_sweep"]

Job = tuple[str, int, int]  # (dtype, n, m)
IDLE_WAIT_GUESS = 0.12  # seconds one wait for idle pools takes (OpenBLAS spins ~0.11 s)


def _gpu_library(target: str) -> str | None:
    """``"cupy"`` or ``"torch:cuda"`` for a GPU target, else ``None``."""
    if not is_gpu(target):
        return None
    return "cupy" if parse_target(target)[0] == "cupy" else "torch:cuda"


def _free_device_memory(libraries: set[str]) -> None:
    """Return cached device memory, only for GPU libraries this sweep ran (an unusable
    CuPy must not be touched: its pool calls fail without a device)."""
    gc.collect()
    if "cupy" in libraries and "cupy" in sys.modules:
        sys.modules["cupy"].get_default_memory_pool().free_all_blocks()
    if "torch:cuda" in libraries and "torch" in sys.modules:
        sys.modules["torch"].cuda.empty_cache()


class Sweep:
    """One run of the sweep; :meth:`run` returns the results dict.

    ``clock`` and ``build`` (``build(config, results, n, m, dtype) -> {key: Case}``) are
    the real ones unless a test passes its own; ``start`` is when the budget began
    (default: now); ``unavailable`` lists the backends left out, with their reasons.
    """

    def __init__(self, config: Config, *, clock: Clock | None = None,
                 build: Callable[..., dict[Key, Case]] = build_cases, progress: bool = False,
                 out: Path | None = None, command: Sequence[str] = (),
                 start: float | None = None, unavailable: Sequence[dict] = (),
                 machine: dict[str, Any] | None = None) -> None:
        self.config, self.build, self.progress, self.out = config, build, progress, out
        self.clock = clock or SystemClock()
        self.start = self.clock.now() if start is None else start
        budget = config.time_budget
        self.deadline = (None if budget is None
                         else self.start + budget - config.report_reserve)
        self.inner: dict[tuple[Job, Key], int] = {}
        self.round_cost: dict[Job, float] = {}
        self.rounds: dict[Job, int] = {}
        # {job: rounds its likeliest long shot needs (inf: none)}: see _rounds_needed
        self.long_shots: dict[Job, float] = {}
        self.dropped: set[tuple[Job, Key]] = set()  # cases skipped at a visit, for good
        self.seen: dict[Key, dict[int, float]] = {}  # {key: {flops: median seconds}}
        self.loaded: set[str] = set()
        self.last_library: str | None = None
        targets: dict[str, dict[str, Any]] = {}
        for t in config.backends:
            targets[t] = {"role": "deepnet", "gpu": is_gpu(t),
                          "reference": reference_target(t) if config.reference else None}
        if config.reference:
            for t in config.backends:
                ref = reference_target(t)
                targets.setdefault(ref, {"role": "reference", "gpu": is_gpu(ref),
                                         "reference": None})
        self.results: dict[str, Any] = {
            "schema": SCHEMA,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"),
            "command": list(command), "config": config.as_dict(), "targets": targets,
            "machine": machine if machine is not None else machine_info(config.backends),
            "samples": [], "skipped": [], "unavailable": list(unavailable),
            "calibration": [], "points": [], "waits_s": 0.0,
            "budget": {"budget_s": budget, "report_reserve_s": config.report_reserve,
                       "deadline_s": None if self.deadline is None
                       else self.deadline - self.start},
        }

    # -- time ---------------------------------------------------------------------------

    def _left(self, until: float | None) -> float:
        return float("inf") if until is None else until - self.clock.now()

    def _estimate(self, job: Job, keys: Sequence[Key] | None = None) -> float:
        """Seconds one round of ``job`` should take: from its own past rounds, else each
        case's time extrapolated from the points measured before (:meth:`_call_time`)."""
        if job in self.round_cost:
            return self.round_cost[job]
        _, n, m = job
        flops = step_flops(layer_dims(n), m)
        if keys is None:
            keys = [k for k in self.seen if not self._capped(k[0], n)]
        per_call = [self._call_time(k, flops) for k in keys if k in self.seen]
        libraries = {library_of(k[0]) for k in keys}
        return (sum(max(self.config.min_time, c) for c in per_call)
                + IDLE_WAIT_GUESS * len(libraries))

    def _call_time(self, key: Key, flops: int) -> float:
        """One call of ``key`` at ``flops``: the line ``a + b·flops`` (``a, b >= 0``)
        through the two largest points measured, so that a fixed cost per call is not
        scaled with the flops; from one point, proportional to the flops."""
        pts = sorted(self.seen[key].items())[-2:]
        f2, t2 = pts[-1]
        if len(pts) == 1:
            return t2 * flops / f2
        if flops <= f2:
            return t2
        f1, t1 = pts[0]
        b = max(0.0, (t2 - t1) / (f2 - f1))
        a = max(0.0, t2 - b * f2)
        return max(t2, a + b * flops)

    def _capped(self, target: str, n: int) -> bool:
        cap = width_cap(self.config, target)
        return cap is not None and n > cap

    # -- one visit of one point ---------------------------------------------------------

    def _rounds_needed(self, job: Job) -> float | None:
        """:func:`~deepnet.bench.plan.rounds_needed` (its long shot kept in ``long_shots``)."""
        need, self.long_shots[job] = rounds_needed(self.results, self.config, job,
                                                   self.rounds.get(job, 0))
        return need

    def _usable(self, job: Job) -> int:
        """``job``'s usable rounds so far (none set aside): what its looks count."""
        return usable_rounds(self.results, point_samples(self.results, job),
                             self.config.criteria)

    def _next_look(self, job: Job) -> int | None:
        """The usable-round count of ``job``'s next scheduled look, ``None`` at one now."""
        return next_look(self._usable(job), self.config)

    @staticmethod
    def _order(cases: dict[Key, Case], r: int, after: Key | None = None) -> list[Key]:
        """Round ``r``'s order: the cases grouped by library, the groups and the cases
        within them rotated by ``r``, never starting with ``after`` (the case that ran
        last): a case timed right after itself finds its data in the caches (7-16 % faster
        at n = 1024, m = 64; ``benchmarks/README.md``, "Order within a round")."""
        groups: dict[str, list[Key]] = {}
        for key in cases:
            groups.setdefault(library_of(key[0]), []).append(key)
        libs = list(groups)
        libs = libs[r % len(libs):] + libs[:r % len(libs)]
        for lib in libs:
            shift = r % len(groups[lib])
            groups[lib] = groups[lib][shift:] + groups[lib][:shift]
        first = groups[libs[0]]
        if after is not None and first[0] == after and len(cases) > 1:
            if len(first) > 1:  # another case of the same library starts the round
                groups[libs[0]] = first[1:] + first[:1]
            else:  # the library's only case: another library starts it
                libs = libs[1:] + libs[:1]
        return [key for lib in libs for key in groups[lib]]

    def visit(self, job: Job, until: float | None, rounds: int | None,
              to_look: bool = False) -> None:
        """Measure ``job`` until ``rounds`` more rounds are done (``None``: until its
        verdicts settle or ``max_rounds``; ``to_look``: or its usable rounds reach a
        scheduled look), or the next round would end after ``until``.
        """
        dtype, n, m = job
        cfg, results = self.config, self.results
        cost = self.round_cost.get(job)
        if cost is not None and 2 * cost > min(self._left(until), self._left(self.deadline)):
            return  # a revisit: its warm-up calls and one round would not fit
        cases = self.build(cfg, results, n, m, dtype)
        for key in [k for k in cases if (job, k) in self.dropped]:
            del cases[key]  # skipped at an earlier visit: not measured again
        self.loaded |= {lib for t, _ in cases if (lib := _gpu_library(t)) is not None}
        for key, case in list(cases.items()):
            try:
                if (job, key) in self.inner:  # pass 2: calibrated before; one call warms up
                    case()
                    continue
                self.inner[(job, key)], first = calibrate(case, cfg.min_time, self.clock)
            except (MemoryError, RuntimeError) as exc:  # e.g. out of device memory
                skip(results, key[0], n, m, dtype, f"{type(exc).__name__}: {exc}",
                     case=key[1])
                self.dropped.add((job, key))
                del cases[key]
                continue
            results["calibration"].append({"target": key[0], "case": key[1], "n": n, "m": m,
                                           "dtype": dtype, "first_call_s": first,
                                           "inner": self.inner[(job, key)]})
            limit = cfg.max_sample_seconds
            if limit is not None and first > limit:
                skip(results, key[0], n, m, dtype,
                     f"one {key[1]} call took {first:.1f} s > --max-sample-seconds {limit:g}",
                     case=key[1])
                self.dropped.add((job, key))
                del cases[key]
        previous: Key | None = next(reversed(cases)) if cases else None  # ran last
        self.last_library = library_of(previous[0]) if previous else None
        done = self.rounds.get(job, 0)
        target = None if rounds is None else done + rounds
        visit_no = sum(1 for p in results["points"] if (p["dtype"], p["n"], p["m"]) == job)
        began = self.clock.now()
        measured: dict[Key, list[float]] = {}
        while cases and (target is None or done < target) and done < cfg.max_rounds:
            estimate = self.round_cost.get(job, self._estimate(job, list(cases)))
            if estimate > self._left(until) or estimate > self._left(self.deadline):
                break
            # decisions on the data only at the scheduled looks; between them, measure on
            if target is None and self._next_look(job) is None:
                need = self._rounds_needed(job)
                if need is None or need > cfg.max_rounds:
                    break
            t0 = self.clock.now()
            order = self._order(cases, done, previous)
            for key in order:
                if self._left(self.deadline) <= 0:  # a round far slower than the last one:
                    break  # stop at the deadline; the pairs measured so far still count
                library = library_of(key[0])
                if library != self.last_library:
                    results["waits_s"] += wait_idle(self.clock, cfg.pause)
                self.last_library = library
                previous = key
                inner = self.inner[(job, key)]
                try:
                    timing = sample(cases[key], inner, self.clock)
                except (MemoryError, RuntimeError) as exc:  # e.g. out of device memory
                    skip(results, key[0], n, m, dtype, f"{type(exc).__name__}: {exc}",
                         case=key[1])
                    self.dropped.add((job, key))
                    del cases[key]
                    continue
                short = timing.seconds * inner < cfg.min_time / 2
                results["samples"].append({
                    "target": key[0], "case": key[1], "n": n, "m": m, "dtype": dtype,
                    "round": done, "visit": visit_no, "seconds": timing.seconds,
                    "cpu_s": timing.cpu_s, "others_s": timing.others_s, "inner": inner,
                    "short": short, "t": self.clock.now() - self.start})
                measured.setdefault(key, []).append(timing.seconds)
                if short:  # calibrated while the machine was slower: longer samples from now
                    self.inner[(job, key)] = math.ceil(cfg.min_time / max(timing.seconds, 1e-9))
            spent = self.clock.now() - t0
            self.round_cost[job] = max(spent, 0.8 * self.round_cost.get(job, spent))
            done += 1
            if to_look:
                self.rounds[job] = done
                if self._next_look(job) is None:  # on a scheduled look: judged there
                    break
        self.rounds[job] = done
        for key, times in measured.items():  # the median: one disturbed sample must not decide
            self.seen.setdefault(key, {})[step_flops(layer_dims(n), m)] = \
                statistics.median(times)
        results["points"].append({
            "dtype": dtype, "n": n, "m": m, "visit": visit_no, "rounds": done,
            "spent_s": self.clock.now() - began,
            "loadavg_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None})
        del cases
        _free_device_memory(self.loaded)
        if self.out is not None:
            write_json(results, self.out)

    # -- the two passes -----------------------------------------------------------------

    def _refine(self, jobs: Sequence[Job]) -> None:
        """Pass 2: while time is left, the open point that should settle soonest (its
        estimated rounds needed × its round's cost) gets a visit of about 1.5 times that.
        When none is left that should settle within ``max_rounds``, the long shots (open
        points whose estimate says they need more) get their next scheduled look, the
        likeliest first: time the budget allows is not left unused while a verdict is
        open, and the looks are the ones fixed in advance, so the error stays within its
        share whatever the order."""
        cfg = self.config
        visits: dict[Job, int] = {}
        stalled: set[Job] = set()
        while self._left(self.deadline) > 0:
            options, shots = [], []
            for job in jobs:
                if job not in self.rounds or job in stalled \
                        or self.rounds[job] >= cfg.max_rounds:
                    continue
                ahead = self._next_look(job)
                if ahead is None:  # at a scheduled look: the data decide
                    need = self._rounds_needed(job)
                    if need is None or need > cfg.max_rounds or visits.get(job, 0) >= 3:
                        shot = self.long_shots.get(job, math.inf)
                        if need is not None or shot < math.inf:
                            rounds = self._to_next_look(job)
                            shots.append((shot * max(self._estimate(job), 1e-9), job,
                                          rounds))
                        continue
                else:  # cut between looks: on to the next one, whatever the data say
                    if visits.get(job, 0) >= 3:  # ranked by its rounds in all × their cost
                        rounds = self._to_next_look(job)
                        shots.append(((self.rounds[job] + rounds)
                                      * max(self._estimate(job), 1e-9), job, rounds))
                        continue
                    usable, k = self._usable(job), self.rounds[job]
                    rate = max(usable / max(k, 1), 0.25)
                    need = min(float(cfg.max_rounds), k + (ahead - usable) / rate)
                extra = max(1.0, need - self.rounds[job])
                options.append(((extra + 1) * self._estimate(job), job))
            left = self._left(self.deadline)
            options = [o for o in options if 2 * self._estimate(o[1]) <= left]
            shots = [o for o in shots if (o[2] + 1) * self._estimate(o[1]) <= left]
            if options:
                cost, job = min(options)
                visits[job] = visits.get(job, 0) + 1
                done = self.rounds[job]
                self.visit(job, self.clock.now() + min(left, 1.5 * cost + self._estimate(job)),
                           None)
            elif shots:
                _, job, rounds = min(shots)
                visits[job] = visits.get(job, 0) + 1
                done = self.rounds[job]
                self.visit(job, self.deadline, rounds, to_look=True)
            else:
                return
            if self.rounds[job] == done:  # no round fitted: do not ask again
                stalled.add(job)

    def _to_next_look(self, job: Job) -> int:
        return rounds_to_next_look(self._usable(job), self.rounds[job], self.config)

    def run(self) -> dict[str, Any]:
        from tqdm.auto import tqdm

        cfg, results = self.config, self.results
        jobs = [(dtype, n, m) for dtype in cfg.dtypes for n, m in cfg.points()]
        bar = tqdm(jobs, desc="deepnet bench", unit="point", disable=not self.progress,
                   file=sys.stderr, dynamic_ncols=True)
        for job in bar:
            dtype, n, m = job
            bar.set_postfix_str(f"{dtype} n={n} m={m}")
            need = self._estimate(job) * (cfg.repeat + 2)  # + calibration: ~2 calls a case
            if need > self._left(self.deadline):
                for t in (t for t in results["targets"] if not self._capped(t, n)):
                    skip(results, t, n, m, dtype,
                          f"time budget of {cfg.time_budget:g} s: this point needs about "
                          f"{need:.0f} s, {max(0.0, self._left(self.deadline)):.0f} s left")
                continue
            self.visit(job, self.deadline, cfg.repeat)
        bar.close()
        self._refine(jobs)
        try:  # libraries loaded during the sweep (e.g. cuBLAS's pools) show up now
            from threadpoolctl import threadpool_info

            results["machine"]["threadpools"] = threadpool_info()
        except ImportError:
            pass
        if hasattr(os, "getloadavg"):
            results["machine"]["loadavg_end"] = list(os.getloadavg())
        results["budget"]["sweep_s"] = self.clock.now() - self.start
        results["elapsed_s"] = results["budget"]["sweep_s"]
        return results


def run_sweep(config: Config, *, progress: bool = True, out: Path | None = None,
              command: Sequence[str] = (), **kwargs: Any) -> dict[str, Any]:
    """:class:`Sweep` ``(config, ...).run()``: the results dict (written to ``out`` after
    each point, so an interrupted sweep keeps what it measured)."""
    return Sweep(config, progress=progress, out=out, command=command, **kwargs).run()
