#!/usr/bin/env bash
# One prepared run for a lent GPU machine (kind nvidia-h200), within a budget it prints as
# it goes (GPU_SH_BUDGET seconds, default 330, so that a 15-minute lease leaves time to fix
# something and run it again):
#   1. a smoke step on each GPU backend (seconds: the one thing worth having if all else fails)
#   2. the CuPy and torch-CUDA tests, most important first (step, network, training,
#      dropout, optimizers, ...), in parallel (pytest-xdist), without CuPy's CUB
#      accelerator (its kernels compile in ~2 s each, plain reductions in ~0.1 s), ended
#      at their share of the budget from inside pytest (the tests that would start later
#      skip: DEEPNET_TEST_DEADLINE) so that pytest still prints its summary, the failures
#      and the JUnit XML; SIGINT, then SIGKILL, only for a test that never returns;
#      (a test module that cannot be imported is an error in the summary, never the end
#      of the run: --continue-on-collection-errors, as pytest without xdist would stop);
#   3. the sweep (python -m deepnet.bench) on cupy, torch:cuda and numpy in what is left;
#   4. a check of what landed under $OUT against the device tool's limits (at most 8 files,
#      no deeper than $OUT/a/b/file, plain names, 16 MiB each).
# Artifacts: $OUT/gpu.log (everything printed here), env.txt, tests.log (with the
# failures), junit.xml, sweep/results.json, sweep/results.md, sweep/throughput.png (and a
# crossover heatmap where the sweep writes one).
#
#   bash benchmarks/gpu.sh              # on the GPU machine
#   bash benchmarks/gpu.sh --dry-run    # anywhere: the whole script on the CPU, numpy and
#                                       # torch standing in for cupy and torch:cuda, a
#                                       # small grid, the tests cut at 30 s on purpose
#                                       # (the SIGINT path), ~2 minutes (CI runs it)
#
# Prepare once, on the development machine, in the repository root. The device image has
# no array-api-compat (nor array-api-strict, which some test modules import), and nothing
# can be fetched there; both are pure-Python wheels:
#   echo /.whl/ >> .git/info/exclude
#   python -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     -d .whl array-api-compat==1.16.0 array-api-strict==2.6.1
# Then, through the device tool (one call; the machine's start is not counted in timeout_s):
#   run(command="bash benchmarks/gpu.sh", carry=[".whl"], timeout_s=420)
# and, to fix and rerun within one lease, give_back() only after the last run. deepnet is
# not installed there: it runs from src/ on PYTHONPATH (the console-script test skips).
#
# Knobs (defaults for the GPU run; --dry-run sets CPU-sized ones):
#   OUT [./gpu-out]  PYTHON [python3]  GPU_SH_SITE [/tmp/site]  GPU_SH_BUDGET [330]
#   GPU_SH_TEST_SHARE [150] seconds at most for the tests  GPU_SH_WORKERS [8]
#   GPU_SH_TEST_BACKENDS [cupy,torch:cuda]  GPU_SH_TESTS [the ordered list below]
#   GPU_SH_BACKENDS [cupy,torch:cuda,numpy]  GPU_SH_WIDTHS [64,256,1024,4096]
#   GPU_SH_BATCHES [64,512,4096]  GPU_SH_POINTS [8192x8192]  GPU_SH_REPEAT [6]
set -uo pipefail
cd "$(dirname "$0")/.."

dry=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry=1 ;;
    -h|--help) sed -n '2,42p' "$0"; exit 0 ;;
    *) echo "gpu.sh: unknown argument '$arg' (expected --dry-run or --help)" >&2; exit 2 ;;
  esac
done

start=$SECONDS
PY="${PYTHON:-python3}"
if [ "$dry" = 1 ]; then
  OUT="${OUT:-$(mktemp -d)/gpu-dry}"
  budget="${GPU_SH_BUDGET:-150}"; test_share="${GPU_SH_TEST_SHARE:-30}"; sweep_min=40
  workers="${GPU_SH_WORKERS:-2}"
  test_backends="${GPU_SH_TEST_BACKENDS:-numpy,torch}"
  sweep_backends="${GPU_SH_BACKENDS:-numpy,torch}"
  widths="${GPU_SH_WIDTHS:-32,64}"; batches="${GPU_SH_BATCHES:-16,64}"
  points="${GPU_SH_POINTS:-128x128}"; repeat="${GPU_SH_REPEAT:-2}"; max_width=""
  smoke_backends="numpy torch"
else
  OUT="${OUT:-$PWD/gpu-out}"
  budget="${GPU_SH_BUDGET:-330}"; test_share="${GPU_SH_TEST_SHARE:-150}"; sweep_min=90
  workers="${GPU_SH_WORKERS:-8}"
  test_backends="${GPU_SH_TEST_BACKENDS:-cupy,torch:cuda}"
  sweep_backends="${GPU_SH_BACKENDS:-cupy,torch:cuda,numpy}"
  widths="${GPU_SH_WIDTHS:-64,256,1024,4096}"; batches="${GPU_SH_BATCHES:-64,512,4096}"
  points="${GPU_SH_POINTS:-8192x8192}"; repeat="${GPU_SH_REPEAT:-6}"
  max_width="--max-width numpy=4096"
  smoke_backends="cupy torch:cuda"
fi
# the tests, most important first: xdist hands them out in this order
ordered="step network training dropout optimizers device_traffic kernel_forms losses
  activations layers cupy_devices backend data serialization gradcheck oracle_torch
  initializers hardening properties fuzz cli datasets bench"
if [ -z "${GPU_SH_TESTS:-}" ]; then
  tests=""
  for name in $ordered; do [ -f "tests/test_$name.py" ] && tests="$tests tests/test_$name.py"; done
  for f in tests/test_*.py; do case " $tests " in *" $f "*) ;; *) tests="$tests $f" ;; esac; done
else
  tests="$GPU_SH_TESTS"
fi

mkdir -p "$OUT/sweep" || exit 1
exec > >(tee -a "$OUT/gpu.log") 2>&1
export PYTHONUNBUFFERED=1
left() { echo $((budget - (SECONDS - start))); }
log() { echo "[gpu.sh +$((SECONDS - start))s, $(left)s of ${budget}s left] $*"; }
status=0
log "$([ "$dry" = 1 ] && echo 'DRY RUN on the CPU' || echo 'GPU run'): out=$OUT"

# -- 0. the carried wheels, then deepnet from src/ -------------------------------------------
site="${GPU_SH_SITE:-/tmp/site}"
if ls .whl/*.whl >/dev/null 2>&1; then
  if "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$site" .whl/*.whl; then
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
    log "installed $(ls .whl | tr '\n' ' ')into $site"
  else
    log "installing the carried wheels failed"; status=1
  fi
elif [ "$dry" = 0 ]; then
  log "no .whl/ here: array-api-compat must already be importable (see the header)"
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PY" -c "import deepnet, array_api_compat" 2>/dev/null; then
  "$PY" -c "import deepnet, array_api_compat"
  log "deepnet or array-api-compat does not import: nothing else can run"; exit 1
fi
if ! "$PY" -c "import array_api_strict" 2>/dev/null; then  # test modules import it
  log "array-api-strict does not import (carry its wheel in .whl/, see the header): the" \
      "test modules that import it are reported as errors, the others still run"; status=1
fi

# -- 1. what machine this is -------------------------------------------------------------------
{
  date -u; uname -a; nproc; grep -m1 'model name' /proc/cpuinfo
  nvidia-smi || echo "no nvidia-smi"
  "$PY" - <<'EOF'
import importlib, json, os, platform
print("python", platform.python_version())
for name in ("deepnet", "numpy", "torch", "cupy", "array_api_compat", "array_api_strict",
             "pytest", "xdist", "pytest_timeout", "hypothesis", "threadpoolctl",
             "matplotlib", "tqdm"):
    try:
        mod = importlib.import_module(name)
        print(name, getattr(mod, "__version__", "?"), "from", getattr(mod, "__file__", "?"))
    except Exception as exc:
        print(name, "MISSING", type(exc).__name__, exc)
try:
    import torch
    print("torch cuda", torch.version.cuda, "available", torch.cuda.is_available(),
          "devices", torch.cuda.device_count())
    if torch.cuda.is_available():
        print("torch device", torch.cuda.get_device_name(0),
              "tf32 matmul", torch.backends.cuda.matmul.allow_tf32)
except Exception as exc:
    print("torch cuda: ", type(exc).__name__, exc)
try:
    import cupy
    print("cupy devices", cupy.cuda.runtime.getDeviceCount(), "runtime",
          cupy.cuda.runtime.runtimeGetVersion(), "driver", cupy.cuda.runtime.driverGetVersion())
except Exception as exc:
    print("cupy: ", type(exc).__name__, exc)
try:
    from threadpoolctl import threadpool_info
    print(json.dumps(threadpool_info(), indent=1))
except Exception as exc:
    print("threadpoolctl: ", exc)
print({k: v for k, v in os.environ.items()
       if k.startswith(("OPENBLAS", "OMP", "MKL", "CUPY", "CUDA", "NVIDIA_TF32", "DEEPNET"))})
EOF
} >"$OUT/env.txt" 2>&1
log "machine: $(grep -m1 -E 'NVIDIA H|Tesla|NVIDIA A' "$OUT/env.txt" | tr -s ' ' | cut -c1-100 || echo 'no GPU listed')"

# -- 2. a smoke step on each GPU backend: the first answer, in seconds ---------------------------
for b in $smoke_backends; do
  timeout -s INT -k 10 60 "$PY" - "$b" <<'EOF' || { log "smoke step on $b failed"; status=1; }
import sys, time
import numpy as np
import deepnet as dn
from deepnet.step import train_step
name, _, device = sys.argv[1].partition(":")
net = dn.DeepNet([256, 256, 256, 1], keep_prob=0.9, l2=0.01, seed=0, backend=name,
                 device=device or None)
rng = np.random.default_rng(0)
X, Y = net._check_X(rng.standard_normal((256, 512))), net._check_Y(rng.random((1, 512)) > .5, 512)
opt = dn.optimizers.get("adam", 1e-3)
t0 = time.perf_counter(); J = train_step(net, X, Y, opt); net.backend.synchronize()
first = time.perf_counter() - t0
t0 = time.perf_counter()
for _ in range(20):
    J = train_step(net, X, Y, opt)
net.backend.synchronize()
print(f"smoke {sys.argv[1]}: first step {first:.2f} s (compiles), then "
      f"{(time.perf_counter() - t0) / 20 * 1e3:.3f} ms/step, cost {float(J):.4f}")
EOF
done

# -- 3. the tests ---------------------------------------------------------------------------
t_budget=$(( $(left) - sweep_min ))  # what the sweep and the checks need at least
[ "$t_budget" -gt "$test_share" ] && t_budget=$test_share
xdist=""; "$PY" -c "import xdist" 2>/dev/null && xdist="-n $workers"
per_test=""; "$PY" -c "import pytest_timeout" 2>/dev/null && per_test="--timeout 120"
if [ "$t_budget" -lt 20 ]; then
  log "only ${t_budget}s for the tests: skipped"; status=1
else
  log "tests on $test_backends, ${t_budget}s at most, ${xdist:-serial} ${per_test}"
  # the budget ends the tests from inside pytest: later tests skip (DEEPNET_TEST_DEADLINE,
  # tests/conftest.py), so the summary and junit.xml are written; SIGINT 30 s later, then
  # SIGKILL, only for a test that never returns
  DEEPNET_TEST_DEADLINE=$(( $(date +%s) + t_budget - 10 )) \
  DEEPNET_TEST_BACKENDS="$test_backends" CUPY_ACCELERATORS="" \
    timeout -s INT -k 15 "$(( t_budget + 30 ))" "$PY" -m pytest $tests -q -p no:cacheprovider $xdist \
    $per_test --continue-on-collection-errors -rfE --tb=short --durations=10 --junitxml="$OUT/junit.xml" \
    -o junit_family=xunit1 >"$OUT/tests.log" 2>&1
  rc=$?
  tail -n 30 "$OUT/tests.log"
  "$PY" - "$OUT/junit.xml" "$rc" <<'EOF' || status=1
import sys
import xml.etree.ElementTree as ET
path, rc = sys.argv[1], int(sys.argv[2])
try:
    root = ET.parse(path).getroot()
except (OSError, ET.ParseError) as exc:
    print(f"gpu.sh: no JUnit XML ({exc}); pytest exit status {rc}")
    raise SystemExit(1)
suites = [root] if root.tag == "testsuite" else list(root)
count = {k: sum(int(s.get(k, 0)) for s in suites)
         for k in ("tests", "failures", "errors", "skipped")}
cut = sum("DEEPNET_TEST_DEADLINE" in (skip.get("message") or "")
          for skip in root.iter("skipped"))
print(f"gpu.sh: tests {count['tests'] - cut} run, {count['failures']} failed, "
      f"{count['errors']} errors, {count['skipped'] - cut} skipped; pytest exit status {rc}"
      + (f"; STOPPED BY THE BUDGET: {cut} did not run" if cut else "")
      + ("; STOPPED BY A SIGNAL after the budget" if rc in (124, 130) else ""))
raise SystemExit(1 if count["failures"] or count["errors"] or rc not in (0, 124, 2, 130) else 0)
EOF
fi

# -- 4. the sweep, in what is left ------------------------------------------------------------
s_budget=$(( $(left) - 15 ))
if [ "$s_budget" -lt 30 ]; then
  log "only ${s_budget}s left: no sweep"; status=1
else
  log "sweep on $sweep_backends, ${s_budget}s"
  timeout -s INT -k 15 "$s_budget" "$PY" -m deepnet.bench --backends "$sweep_backends" \
    --widths "$widths" --batches "$batches" --points "$points" $max_width --repeat "$repeat" \
    --max-sample-seconds 30 --time-budget $((s_budget - 20)) --no-progress \
    --out "$OUT/sweep"
  rc=$?
  if [ $rc -ne 0 ]; then
    log "sweep exited $rc (124: stopped by the budget); rendering what it saved"
    "$PY" -m deepnet.bench --render --out "$OUT/sweep" >/dev/null 2>&1 || true
    status=1
  fi
  [ -f "$OUT/sweep/results.json" ] || { log "the sweep saved no results.json"; status=1; }
fi

# -- 5. what comes back: the device tool's limits ------------------------------------------------
sleep 1  # let tee catch up before the listing
"$PY" - "$OUT" <<'EOF' || status=1
import os, re, sys
out = sys.argv[1]
files, bad = [], []
for root, dirs, names in os.walk(out):
    for name in dirs + names:
        rel = os.path.relpath(os.path.join(root, name), out)
        if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
            bad.append(f"{rel}: a name the tool will not bring back")
    for name in names:
        rel = os.path.relpath(os.path.join(root, name), out)
        size = os.path.getsize(os.path.join(root, name))
        files.append((rel, size))
        if rel.count(os.sep) > 2:
            bad.append(f"{rel}: deeper than $OUT/a/b/file")
        if size > 16 << 20:
            bad.append(f"{rel}: {size} bytes, over 16 MiB")
if len(files) > 8:
    bad.append(f"{len(files)} files, over 8")
for rel, size in sorted(files):
    print(f"  {size:>10}  {rel}")
for line in bad:
    print("gpu.sh: ARTIFACT PROBLEM:", line)
raise SystemExit(1 if bad else 0)
EOF
log "done, status $status"
# last, so that the device tool's output tail carries it
cat "$OUT/sweep/results.md" 2>/dev/null | head -n 60 || echo "no results.md"
exit $status
