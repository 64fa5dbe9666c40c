"""benchmarks/gpu.sh ends its tests at a deadline from inside pytest (tests/conftest.py):
the run stays a normal one, with its summary and JUnit XML."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, deadline: float) -> tuple[int, dict[str, int], str]:
    junit = tmp_path / f"junit-{deadline:.0f}.xml"
    env = {**os.environ, "DEEPNET_TEST_DEADLINE": str(deadline),
           "DEEPNET_TEST_BACKENDS": "numpy"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "tests/test_activations.py", f"--junitxml={junit}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    root = ET.parse(junit).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    counts = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "skipped")}
    reasons = " ".join(s.get("message") or "" for s in root.iter("skipped"))
    return proc.returncode, counts, reasons


def test_tests_after_the_deadline_skip_and_the_run_ends_normally(tmp_path):
    rc, counts, reasons = _run(tmp_path, deadline=1.0)  # long past
    assert rc == 0 and counts["tests"] > 0 and counts["skipped"] == counts["tests"]
    assert "DEEPNET_TEST_DEADLINE" in reasons
    rc, counts, reasons = _run(tmp_path, deadline=time.time() + 3600)
    assert rc == 0 and counts["tests"] > 0 and "DEEPNET_TEST_DEADLINE" not in reasons
