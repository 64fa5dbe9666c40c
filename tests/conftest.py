"""Backends for the tests: one fixture, restricted by ``DEEPNET_TEST_BACKENDS``.

``DEEPNET_TEST_BACKENDS=numpy,torch pytest`` runs only those; the default is every
backend below. A backend that cannot run here (no library, no GPU) is skipped with its
reason, never silently passed. Inputs and references are built on the host with
``numpy.random.default_rng`` and moved in; results come back through ``dn.to_numpy``.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import deepnet as dn
from deepnet.backend import device_label

# backend id -> (name, device)
ALL_BACKENDS = {
    "numpy": ("numpy", None),
    "array_api_strict": ("array_api_strict", None),
    "array_api_strict:device1": ("array_api_strict", "device1"),
    "torch": ("torch", None),
    "torch:cuda": ("torch", "cuda"),
    "cupy": ("cupy", None),
}

settings.register_profile(
    "default", deadline=None, max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "thorough", deadline=None, max_examples=300,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


GPU_BACKENDS = ("torch:cuda", "cupy")
#: GPU backend id -> why it is not collected here (filled when no GPU is present)
NOT_COLLECTED: dict[str, str] = {}


def _gpu_reason(backend_id: str) -> str | None:
    """Why the GPU backend ``backend_id`` cannot run here, or ``None`` where it can."""
    name, device = ALL_BACKENDS[backend_id]
    try:
        dn.get_backend(name, device)
    except dn.BackendError as exc:
        return str(exc)
    return None


def selected_backends() -> list[str]:
    """The backend ids ``DEEPNET_TEST_BACKENDS`` asks for (default: all of them).

    By default the GPU backends are collected only where they can run: on a CPU machine
    they would add one SKIPPED line per test. The terminal summary says which were left
    out and why. A GPU backend named in ``DEEPNET_TEST_BACKENDS`` is always collected
    (and skipped with its reason where it cannot run).
    """
    wanted = os.environ.get("DEEPNET_TEST_BACKENDS", "").strip()
    if not wanted:
        ids = list(ALL_BACKENDS)
        for gpu in GPU_BACKENDS:
            reason = _gpu_reason(gpu)
            if reason is not None:
                NOT_COLLECTED[gpu] = reason
                ids.remove(gpu)
        return ids
    ids = [w.strip() for w in wanted.split(",") if w.strip()]
    unknown = [i for i in ids if i not in ALL_BACKENDS]
    if unknown:
        raise pytest.UsageError(
            f"DEEPNET_TEST_BACKENDS names unknown backends {unknown}; "
            f"valid: {', '.join(ALL_BACKENDS)}"
        )
    return ids


def load_backend(backend_id: str) -> dn.backend.Backend:
    """The backend for ``backend_id``, or a pytest skip saying why it cannot run here."""
    name, device = ALL_BACKENDS[backend_id]
    try:
        return dn.get_backend(name, device)
    except dn.BackendError as exc:
        pytest.skip(f"{backend_id} unavailable here: {exc}")


@pytest.fixture(params=selected_backends())
def backend(request) -> dn.backend.Backend:
    """Each selected backend in turn (skipped with a reason where it cannot run)."""
    return load_backend(request.param)


@pytest.fixture(params=["float32", "float64"])
def dtype_name(request) -> str:
    return request.param


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def tolerance(dtype_name: str) -> float:
    """About ``4 * sqrt(eps)`` of the dtype, for values of order one."""
    return 4 * float(np.sqrt(np.finfo(dtype_name).eps))


def assert_on_backend(x, backend, shape=None, dtype_name=None) -> np.ndarray:
    """Check namespace, device, shape and dtype of ``x``; return it on the host."""
    assert backend.owns(x), f"expected an array of {backend.name}, got {type(x)}"
    assert device_label(x.device) == device_label(backend.device), (x.device, backend.device)
    if shape is not None:
        assert tuple(x.shape) == tuple(shape), (tuple(x.shape), tuple(shape))
    if dtype_name is not None:
        assert x.dtype == backend.dtype(dtype_name), (x.dtype, dtype_name)
    return dn.to_numpy(x)


# -- the summary: what ran on each backend, and which GPU backends were not collected ----

_OUTCOMES: dict[str, dict[str, int]] = {}
_BACKEND_OF: dict[str, str] = {}


def pytest_runtest_setup(item) -> None:
    """``DEEPNET_TEST_DEADLINE`` (seconds since the epoch; benchmarks/gpu.sh sets it):
    tests that would start after it are skipped, so a run cut by its time budget still
    ends normally, with its summary and JUnit XML (a signal at the deadline could land
    where it is not handled, and a killed pytest writes neither)."""
    deadline = os.environ.get("DEEPNET_TEST_DEADLINE")
    if deadline and time.time() > float(deadline):
        pytest.skip("the test time budget is spent (DEEPNET_TEST_DEADLINE)")


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "backend" in callspec.params:
            _BACKEND_OF[item.nodeid] = callspec.params["backend"]


def _backend_in_id(nodeid: str) -> str | None:
    """The backend id among a test id's parameters (under xdist the controller does not
    collect, so it reads the id)."""
    if nodeid in _BACKEND_OF:
        return _BACKEND_OF[nodeid]
    if not nodeid.endswith("]") or "[" not in nodeid:
        return None
    parts = nodeid[nodeid.index("[") + 1 : -1].split("-")
    return next((p for p in parts if p in ALL_BACKENDS), None)


def pytest_runtest_logreport(report) -> None:
    backend_id = _backend_in_id(report.nodeid)
    if backend_id is None:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        counts = _OUTCOMES.setdefault(backend_id, {})
        counts[report.outcome] = counts.get(report.outcome, 0) + 1


def pytest_terminal_summary(terminalreporter) -> None:
    if _OUTCOMES:
        parts = []
        for backend_id, counts in sorted(_OUTCOMES.items()):
            shown = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
            parts.append(f"{backend_id}: {shown}")
        terminalreporter.write_line("backend-parametrized tests — " + "; ".join(parts))
    for backend_id, reason in NOT_COLLECTED.items():
        terminalreporter.write_line(f"{backend_id} not collected: {reason}")
