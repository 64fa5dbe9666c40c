"""Timing one case: calibration, one sample, the CPU accounting that shows interference,
and the wait for thread pools to go idle.

Every sample reads three clocks at its ends: wall time, this process's CPU time (all its
threads), and, on Linux, the CPU time every process spent on the cores this one may run on
(``/proc/stat``, per core, restricted to the affinity set) with this process's share in
the same tick accounting (``/proc/self/stat``). Their difference is the CPU time *other*
processes took during the sample: the direct measure of interference (a load average lags
by a minute and counts our own threads).

Thread pools skew back-to-back timings of different libraries: OpenBLAS workers spin
~0.1 s after each call, libgomp's a little less, and on 2 cores a spinning pool of one
library steals a core from the next library's sample. :func:`wait_idle` waits, before a
sample of another library than the previous one, until this process's CPU use drops to
nothing (the pools went to sleep), at most ``max_wait`` seconds; samples of the same
library follow each other without a wait, as the calls of a training loop do
(``benchmarks/pause_policy.py`` measures the alternatives).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from deepnet.bench.cases import Case

__all__ = [
    "Clock",
    "Reading",
    "SystemClock",
    "Timing",
    "busy_ticks",
    "calibrate",
    "others_seconds",
    "process_age",
    "sample",
    "wait_idle",
]


@dataclass(frozen=True)
class Reading:
    """The clocks at one instant.

    ``busy``: CPU seconds all processes have spent on all cores since boot; ``own``: this
    process's CPU seconds in the same (tick) accounting; both ``None`` where unknown.
    """

    wall: float
    cpu: float
    busy: float | None = None
    own: float | None = None


class Clock(Protocol):
    """What the sweep needs of time: now, sleep, and a full reading."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    def cpu(self) -> float: ...

    def read(self) -> Reading: ...


def busy_ticks(stat: str, cpus: set[int] | None) -> int | None:
    """Busy clock ticks since boot in a ``/proc/stat`` text, summed over the cores in
    ``cpus`` (all of them when ``None``); ``None`` when the text lists no such core.

    Busy: user, nice, system, irq, softirq and steal (the hypervisor gave the core to
    someone else); not idle or iowait.
    """
    busy, found = 0, False
    for line in stat.splitlines():
        fields = line.split()
        if len(fields) < 9 or not fields[0].startswith("cpu") or not fields[0][3:].isdigit():
            continue
        if cpus is not None and int(fields[0][3:]) not in cpus:
            continue
        ticks = [int(x) for x in fields[1:9]]
        busy += sum(ticks) - ticks[3] - ticks[4]
        found = True
    return busy if found else None


class SystemClock:
    """The real clocks: ``perf_counter``, ``process_time`` and ``/proc`` where it exists."""

    def __init__(self) -> None:
        try:
            self._tick = float(os.sysconf("SC_CLK_TCK"))
        except (ValueError, OSError, AttributeError):
            self._tick = 100.0
        # only the cores this process may run on: in a container /proc/stat lists the
        # host's, and other tenants' work there does not compete with ours
        self._cpus = (os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity")
                      else None)
        self.proc = self._read_proc() is not None

    def now(self) -> float:
        return time.perf_counter()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def cpu(self) -> float:
        return time.process_time()

    def _read_proc(self) -> tuple[float, float] | None:
        try:
            stat = Path("/proc/stat").read_text()
            own = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        busy = busy_ticks(stat, self._cpus)
        if busy is None:
            return None
        mine = int(own[11]) + int(own[12])  # utime, stime (fields 14 and 15 of the line)
        return busy / self._tick, mine / self._tick

    def read(self) -> Reading:
        proc = self._read_proc() if self.proc else None
        busy, own = proc if proc else (None, None)
        return Reading(time.perf_counter(), time.process_time(), busy, own)


@dataclass(frozen=True)
class Timing:
    """One sample, per call of the case: wall seconds, this process's CPU seconds, and the
    CPU seconds other processes took meanwhile (``None`` where unknown)."""

    seconds: float
    cpu_s: float
    others_s: float | None


def others_seconds(start: Reading, end: Reading) -> float | None:
    """CPU seconds that other processes spent between two readings (never below 0)."""
    if start.busy is None or end.busy is None or start.own is None or end.own is None:
        return None
    return max(0.0, (end.busy - start.busy) - (end.own - start.own))


def process_age() -> float:
    """Seconds since this process started (``/proc/self/stat`` against ``/proc/uptime``),
    so that a time budget can count the interpreter's start and imports; 0 where unknown."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - int(fields[19]) / float(os.sysconf("SC_CLK_TCK")))
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0


def calibrate(case: Case, min_time: float, clock: Clock) -> tuple[int, float]:
    """Warm ``case`` up; return ``(inner, first)``: calls per sample and the first call's time.

    ``inner`` makes one sample last at least ``min_time`` seconds.
    """
    case.sync()
    t0 = clock.now()
    case()
    first = clock.now() - t0
    estimate = first
    if first < 3.0:  # one-time costs (JIT, handles, first-touch pages) can dominate it
        t0 = clock.now()
        case()
        estimate = clock.now() - t0
    if estimate >= min_time:
        return 1, first
    calls, total = 0, 0.0
    while total < min_time and calls < 100_000:
        batch = max(1, calls)
        t0 = clock.now()
        for _ in range(batch):
            case.fn()
        case.sync()
        total += clock.now() - t0
        calls += batch
    per_call = total / calls
    return max(1, math.ceil(min_time / max(per_call, 1e-9))), first


def sample(case: Case, inner: int, clock: Clock) -> Timing:
    """``inner`` calls of ``case``, synchronized at the end; the :class:`Timing` per call.

    ``cpu_s / seconds`` is about the number of threads the case kept busy; ``others_s /
    seconds`` the cores other processes took from it.
    """
    case.sync()
    start = clock.read()
    for _ in range(inner):
        case.fn()
    case.sync()
    end = clock.read()
    others = others_seconds(start, end)
    return Timing((end.wall - start.wall) / inner, (end.cpu - start.cpu) / inner,
                  None if others is None else others / inner)


def wait_idle(clock: Clock, max_wait: float, window: float = 0.005,
              busy_fraction: float = 0.25) -> float:
    """Wait until this process uses under ``busy_fraction`` of a core over ``window``
    seconds (its thread pools stopped spinning), at most about ``max_wait``; the seconds
    waited."""
    if max_wait <= 0:
        return 0.0
    start = clock.now()
    while clock.now() - start < max_wait:
        c0 = clock.cpu()
        clock.sleep(window)
        if clock.cpu() - c0 < busy_fraction * window:
            break
    return clock.now() - start
