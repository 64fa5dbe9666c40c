"""scikit-learn's own estimator checks over DeepNetClassifier and DeepNetRegressor.

``parametrize_with_checks`` runs every API and legacy check on NumPy inputs with the
estimators' defaults (on the NumPy backend), and, since the estimators declare Array API
support, the Array API checks on array-api-strict (both devices) and torch. Checks for
devices deepnet has no backend for (torch ``mps``/``xpu``, dpnp) are not collected, and
those for CUDA (torch ``cuda``, CuPy) only where they can run, as tests/conftest.py does
for deepnet's own GPU backends.
"""

from __future__ import annotations

import os

import pytest

pytest.importorskip("sklearn")
os.environ.setdefault("SCIPY_ARRAY_API", "1")  # read when array_api_dispatch is turned on

from sklearn.utils.estimator_checks import parametrize_with_checks

import deepnet as dn
from deepnet.sklearn import DeepNetClassifier, DeepNetRegressor

#: check name -> why it cannot pass, per estimator (scikit-learn marks them xfail, strict)
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {
    "DeepNetClassifier": {},
    "DeepNetRegressor": {},
}


def _runs_here(library: str | None, device: str | None) -> bool:
    """Whether an Array API check on ``library``/``device`` belongs on this machine."""
    if library == "cupy" or (library == "torch" and device == "cuda"):
        try:  # a GPU: collected only where it runs
            dn.get_backend(library, device)
        except dn.BackendError:
            return False
        return True
    # torch on the CPU stays (scikit-learn skips it, saying why, where torch is missing);
    # mps, xpu and dpnp are devices deepnet has no backend for
    return library in (None, "numpy", "array_api_strict") or (
        library == "torch" and device == "cpu")


def _collected(param) -> bool:
    _, check = param.values if hasattr(param, "values") else param
    kw = getattr(check, "keywords", {})
    places = [(kw.get("array_namespace"), kw.get("device_name"))]
    for key in ("X_ns_and_device", "other_ns_and_device"):
        if key in kw:
            places.append((kw[key].xp, kw[key].device))
    return all(_runs_here(lib, dev) for lib, dev in places)


_CHECKS = parametrize_with_checks(
    [DeepNetClassifier(), DeepNetRegressor()],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS[type(est).__name__],
    xfail_strict=True,
)


@pytest.mark.parametrize(
    _CHECKS.args[0], [p for p in _CHECKS.args[1] if _collected(p)], **_CHECKS.kwargs
)
def test_scikit_learn_estimator_checks(estimator, check):
    with dn.use_backend("numpy"):  # "on NumPy", whatever DEEPNET_BACKEND says
        check(estimator)

