#!/usr/bin/env bash
# One prepared run for a lent GPU machine (kind nvidia-h200): the CuPy and torch-CUDA tests,
# then the sweep on cupy, torch:cuda and numpy up to (4096, 4096) and, time allowing,
# (8192, 8192); everything lands under $OUT (7 files: env.txt, install.log, tests.log,
# sweep.log, sweep/results.json, sweep/results.md, sweep/throughput.png).
#
# Prepare once, on the development machine, in the repository root (the device image has
# no array-api-compat, and nothing can be fetched there; hatchling and its tomlkit and
# trove-classifiers let pip build deepnet from the tree; array-api-strict lets any test
# module that imports it load):
#   echo /.whl/ >> .git/info/exclude
#   python -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
#     --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     --platform manylinux1_x86_64 -d .whl array-api-compat==1.16.0 array-api-strict==2.6.1 \
#     hatchling==1.33.0 tomlkit trove-classifiers
# Then, through the device tool:  run(command="bash benchmarks/gpu.sh", carry=[".whl"],
# timeout_s=580). The script keeps to GPU_SH_BUDGET seconds (default 420) by itself.
#
# Knobs (defaults in brackets), so that the steps can be tried on a CPU box, e.g.
#   OUT=/tmp/g GPU_SH_BACKENDS=numpy GPU_SH_TEST_BACKENDS=numpy GPU_SH_WIDTHS=8,16 \
#   GPU_SH_BATCHES=4 GPU_SH_POINTS=32x8 GPU_SH_SITE=/tmp/site-try GPU_SH_TESTS=tests/test_bench.py \
#   bash benchmarks/gpu.sh
# PYTHON [python3]  GPU_SH_SITE [/tmp/site]  GPU_SH_BUDGET [420]  GPU_SH_TEST_TIMEOUT [150]
# GPU_SH_TEST_BACKENDS [cupy,torch:cuda]  GPU_SH_BACKENDS [cupy,torch:cuda,numpy]
# GPU_SH_WIDTHS [64,256,1024,4096]  GPU_SH_BATCHES [64,512,4096]  GPU_SH_POINTS [8192x8192]
# GPU_SH_REPEAT [5]  GPU_SH_TESTS [tests] (the pytest paths)
set -uo pipefail
cd "$(dirname "$0")/.."

start=$SECONDS
OUT="${OUT:-$PWD/gpu-out}"
PY="${PYTHON:-python3}"
site="${GPU_SH_SITE:-/tmp/site}"
budget="${GPU_SH_BUDGET:-420}"
export PYTHONUNBUFFERED=1
mkdir -p "$OUT/sweep"
log() { echo "[gpu.sh +$((SECONDS - start))s] $*"; }
status=0

# -- 1. the carried wheels, then deepnet from this tree, into one target folder ----------
if ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$site" .whl/*.whl || { log "installing the carried wheels failed"; exit 1; }
else
  log "no .whl/ here: array-api-compat must already be importable"
fi
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
if "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile \
    --no-cache-dir --upgrade --target "$site" . >"$OUT/install.log" 2>&1; then
  log "deepnet installed from the tree into $site"
else
  tail -n 3 "$OUT/install.log"
  log "pip could not build deepnet here (see install.log); using the source tree on PYTHONPATH"
  export PYTHONPATH="$PWD/src:$PYTHONPATH"
fi
"$PY" -c "import deepnet, array_api_compat; print('deepnet', deepnet.__version__, 'from',
deepnet.__file__, '| array_api_compat', array_api_compat.__version__)" || exit 1

# -- 2. what machine this is ---------------------------------------------------------------
{
  date -u
  nvidia-smi || true
  nproc
  grep -m1 'model name' /proc/cpuinfo || true
  "$PY" - <<'EOF'
import importlib, json, os
for name in ("numpy", "torch", "cupy", "array_api_compat", "array_api_strict", "pytest",
             "pytest_benchmark", "hypothesis", "threadpoolctl", "matplotlib", "tqdm"):
    try:
        print(name, importlib.import_module(name).__version__)
    except Exception as exc:
        print(name, "MISSING", type(exc).__name__, exc)
import torch
print("torch cuda", torch.version.cuda, "available", torch.cuda.is_available(),
      "tf32 matmul", torch.backends.cuda.matmul.allow_tf32)
from threadpoolctl import threadpool_info
print(json.dumps(threadpool_info(), indent=1))
print({k: v for k, v in os.environ.items()
       if k.startswith(("OPENBLAS", "OMP", "MKL", "CUPY", "CUDA", "NVIDIA_TF32", "DEEPNET"))})
EOF
} >"$OUT/env.txt" 2>&1
log "machine: $(grep -m1 -E 'H200|H100|NVIDIA' "$OUT/env.txt" || echo 'no nvidia-smi')"

# -- 3. the CuPy and torch-CUDA tests ------------------------------------------------------
test_backends="${GPU_SH_TEST_BACKENDS:-cupy,torch:cuda}"
log "tests on $test_backends"
DEEPNET_TEST_BACKENDS="$test_backends" timeout "${GPU_SH_TEST_TIMEOUT:-150}" \
  "$PY" -m pytest ${GPU_SH_TESTS:-tests} -q -p no:cacheprovider >"$OUT/tests.log" 2>&1
rc=$?
tail -n 25 "$OUT/tests.log"
if [ $rc -ne 0 ]; then
  log "tests exited $rc (124: stopped by the time limit); the sweep runs anyway"
  status=1
fi

# -- 4. the sweep, within what is left of the budget ----------------------------------------
left=$((budget - (SECONDS - start)))
if [ $left -lt 60 ]; then
  log "only ${left}s left of ${budget}s: no sweep"
  exit 1
fi
log "sweep, ${left}s left"
timeout $((left - 10)) "$PY" -m deepnet.bench \
  --backends "${GPU_SH_BACKENDS:-cupy,torch:cuda,numpy}" \
  --widths "${GPU_SH_WIDTHS:-64,256,1024,4096}" --batches "${GPU_SH_BATCHES:-64,512,4096}" \
  --points "${GPU_SH_POINTS:-8192x8192}" --max-width numpy=4096 \
  --repeat "${GPU_SH_REPEAT:-5}" --max-sample-seconds 30 --time-budget $((left - 60)) \
  --no-progress --out "$OUT/sweep" >"$OUT/sweep.log" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
  log "sweep exited $rc (124: stopped by the time limit); rendering what it saved"
  tail -n 20 "$OUT/sweep.log"
  "$PY" -m deepnet.bench --render --out "$OUT/sweep" || true
  status=1
fi
log "done, status $status"
# last, so that the reply's output tail carries it
cat "$OUT/sweep/results.md" 2>/dev/null || echo "no results.md"
exit $status
