"""deepnet's whole ``fit`` against PyTorch, JAX and scikit-learn on the same work.

The task (issue 9): an MLP 784-256-256-10, relu/softmax, Adam (α = 1e-3), on 60,000
synthetic MNIST-shaped examples held in memory (pixels in [0, 1), float32), one epoch;
and a small one: 64-32-10 on scikit-learn's 1,797 digits, batch 32, 20 epochs. Each
framework runs in its own process (a fresh interpreter: no thread pool or allocator
state carries over), in rounds; within a round the frameworks run in a shuffled order.
A run builds the model and data, warms up on a few hundred examples, then times what a
user runs: the whole epoch loop, input handling included —

* deepnet: ``net.fit(X, y, epochs=E, batch_size=B, optimizer="adam")``, ``X`` in the
  notes' ``(n0, m)`` layout (passed as ``X.T`` of the row-major data);
* PyTorch eager: the usual loop — ``randperm``, ``X[idx]``, ``zero_grad``, ``backward``,
  ``optim.Adam.step`` (torch's default implementation, no ``fused=True``);
* torch.compile: the same loop with the model compiled (where it works here);
* JAX: a ``jax.jit`` step with ``optax.adam``, each batch gathered on the host by NumPy
  (the Flax examples' idiom) and passed to it;
* scikit-learn: ``MLPClassifier(solver="adam", batch_size=B, max_iter=E)``.

Reported: throughput relative to deepnet on NumPy — the median over rounds of the
per-round ratio, with the lowest and highest — and each framework's median seconds.

    python benchmarks/peers.py                        # the task, batches 32, 128, 1024
    python benchmarks/peers.py --rounds 5 --batches 32,128,1024 --small
    python benchmarks/peers.py --quick                 # a 2-minute smoke run
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

FRAMEWORKS = ("deepnet-numpy", "deepnet-torch", "pytorch", "torch.compile", "jax",
              "sklearn")


def _data(m: int, n0: int, classes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.random((m, n0), dtype=np.float32)  # row-major, as data usually is
    y = rng.integers(0, classes, m)
    return X, y


def _small_data():
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.data / 16.0).astype(np.float32), digits.target


# -- one framework, in its own process ---------------------------------------------------


def run_deepnet(backend, X, y, dims, batch, epochs, warm):
    import deepnet as dn

    net = dn.DeepNet(dims, hidden="relu", output="softmax", seed=0, backend=backend)
    net.fit(X[:warm].T, y[:warm], epochs=1, batch_size=batch, optimizer="adam",
            learning_rate=1e-3, progress=False)
    net = dn.DeepNet(dims, hidden="relu", output="softmax", seed=0, backend=backend)
    t0 = time.perf_counter()
    net.fit(X.T, y, epochs=epochs, batch_size=batch, optimizer="adam", learning_rate=1e-3,
            progress=False)
    return time.perf_counter() - t0


def run_torch(X, y, dims, batch, epochs, warm, compiled=False):
    import torch
    from torch import nn

    torch.manual_seed(0)
    layers = []
    for n_in, n_out in itertools.pairwise(dims):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    if compiled:
        model = torch.compile(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def epoch(Xt, yt):
        perm = torch.randperm(Xt.shape[0])
        for start in range(0, Xt.shape[0], batch):
            idx = perm[start:start + batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()

    epoch(torch.from_numpy(X[:warm]), torch.from_numpy(y[:warm]))
    t0 = time.perf_counter()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(epochs):
        epoch(Xt, yt)
    return time.perf_counter() - t0


def run_jax(X, y, dims, batch, epochs, warm):
    import jax
    import jax.numpy as jnp
    import optax

    key = jax.random.PRNGKey(0)
    params = []
    for n_in, n_out in itertools.pairwise(dims):
        key, sub = jax.random.split(key)
        params.append((jax.random.normal(sub, (n_in, n_out)) * jnp.sqrt(2.0 / n_in),
                       jnp.zeros(n_out)))
    opt = optax.adam(1e-3)
    state = opt.init(params)

    def loss(params, xb, yb):
        a = xb
        for W, b in params[:-1]:
            a = jax.nn.relu(a @ W + b)
        W, b = params[-1]
        logits = a @ W + b
        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    @jax.jit
    def step(params, state, xb, yb):
        grads = jax.grad(loss)(params, xb, yb)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    def epoch(params, state, Xh, yh, rng):
        # the Flax/optax examples' idiom: a host permutation, each batch gathered by
        # NumPy and handed to the jitted step
        perm = rng.permutation(Xh.shape[0])
        for start in range(0, Xh.shape[0], batch):
            idx = perm[start:start + batch]
            params, state = step(params, state, Xh[idx], yh[idx])
        return params, state

    rng = np.random.default_rng(0)
    params, state = epoch(params, state, X[:warm], y[:warm], rng)
    jax.block_until_ready(params)
    t0 = time.perf_counter()
    for _ in range(epochs):
        params, state = epoch(params, state, X, y, rng)
    jax.block_until_ready(params)
    return time.perf_counter() - t0


def run_sklearn(X, y, dims, batch, epochs, warm):
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    def make():
        return MLPClassifier(hidden_layer_sizes=tuple(dims[1:-1]), solver="adam",
                             learning_rate_init=1e-3, batch_size=batch, max_iter=epochs,
                             shuffle=True, tol=0.0, random_state=0)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        make().fit(X[:warm], y[:warm])
        t0 = time.perf_counter()
        make().fit(X, y)
        return time.perf_counter() - t0


def worker(framework: str, task: str, batch: int, epochs: int) -> float:
    if task == "small":
        X, y = _small_data()
        dims = [64, 32, 10]
    else:
        X, y = _data(60_000, 784, 10)
        dims = [784, 256, 256, 10]
    warm = min(len(X), max(256, 4 * batch))
    if framework.startswith("deepnet-"):
        return run_deepnet(framework.split("-", 1)[1], X, y, dims, batch, epochs, warm)
    if framework in ("pytorch", "torch.compile"):
        return run_torch(X, y, dims, batch, epochs, warm, compiled=framework != "pytorch")
    if framework == "jax":
        return run_jax(X, y, dims, batch, epochs, warm)
    return run_sklearn(X, y, dims, batch, epochs, warm)


# -- the controller -----------------------------------------------------------------------


def available(framework: str) -> str | None:
    """Why ``framework`` cannot run here, or ``None``."""
    import importlib.util

    needs = {"deepnet-torch": "torch", "pytorch": "torch", "torch.compile": "torch",
             "jax": "optax", "sklearn": "sklearn"}.get(framework)
    if needs and importlib.util.find_spec(needs) is None:
        return f"{needs} is not installed (pip install 'deepnet[peers]')"
    return None


def measure(framework: str, task: str, batch: int, epochs: int, timeout: float) -> float:
    cmd = [sys.executable, __file__, "--worker", framework, "--task", task,
           "--batches", str(batch), "--epochs", str(epochs)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr else "failed")
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--batches", default="32,128,1024")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--small", action="store_true", help="also the 64-32-10 digits task")
    parser.add_argument("--quick", action="store_true", help="2 rounds of batch 1024 only")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--task", default="mnist", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        seconds = worker(args.worker, args.task, int(args.batches), args.epochs)
        print(json.dumps({"seconds": seconds}))
        return
    if args.quick:
        args.batches, args.rounds = "1024", 2
    frameworks = []
    for fw in args.frameworks.split(","):
        reason = available(fw)
        if reason:
            print(f"skipped {fw}: {reason}")
        else:
            frameworks.append(fw)
    tasks = [("mnist", int(b), args.epochs) for b in args.batches.split(",")]
    if args.small:
        tasks.append(("small", 32, 20))
    rng = np.random.default_rng(0)
    print(f"{args.rounds} rounds; throughput relative to deepnet-numpy: median (min-max) of "
          "the per-round ratios; seconds: median\n")
    print("| task | batch | " + " | ".join(frameworks) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in frameworks) + " |")
    for task, batch, epochs in tasks:
        times: dict[str, list[float]] = {fw: [] for fw in frameworks}
        failed: dict[str, str] = {}
        for _ in range(args.rounds):
            for fw in rng.permutation(frameworks):
                if fw in failed:
                    continue
                try:
                    times[fw].append(measure(fw, task, batch, epochs, args.timeout))
                except Exception as exc:  # a framework that cannot run this task here
                    failed[fw] = f"{type(exc).__name__}: {exc}"[:80]
        base = times["deepnet-numpy"]
        cells = []
        for fw in frameworks:
            if fw in failed or not times[fw]:
                cells.append(f"failed ({failed.get(fw, '?')})")
                continue
            ratios = [b / t for b, t in zip(base, times[fw])]
            cells.append(f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-"
                         f"{max(ratios):.2f}); {statistics.median(times[fw]):.2f} s")
        label = "64-32-10 digits, 20 epochs" if task == "small" else "784-256-256-10, 60k"
        print(f"| {label} | {batch} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
