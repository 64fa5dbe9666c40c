"""What ``fit`` adds to the bare training step, full batch (one step per epoch).

``fit`` takes one device snapshot of the parameters (and optimizer moments) per epoch,
so that divergence, Ctrl-C and early stopping can put them back, adds up the epoch's
cost and metric on the device and reads them back once. The target (issue 9): a
full-batch epoch costs at most 1.05x the bare ``train_step``. Measured in rounds, fit
and the bare step alternating; printed: the median per-round ratio with its range.

    python benchmarks/fit_overhead.py [--rounds 7] [--epochs 20] [--backend numpy]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import deepnet as dn
from deepnet.step import train_step

# (n, m, hidden layers, optimizer): the two points, and Adam at one of them
CASES = [(1024, 1024, 4, "gd"), (64, 4096, 4, "gd"), (1024, 1024, 4, "adam")]


def one_round(net, X, Y, Xd, Yd, opt_name, epochs):
    kwargs = {"batch_size": None, "optimizer": opt_name, "learning_rate": 1e-4,
              "progress": False}
    t0 = time.perf_counter()
    net.fit(X, Y, epochs=epochs, **kwargs)
    fit_epoch = (time.perf_counter() - t0) / epochs
    optimizer = dn.optimizers.get(opt_name, 1e-4)
    t0 = time.perf_counter()
    for _ in range(epochs):
        train_step(net, Xd, Yd, optimizer)
    net.backend.synchronize()
    step = (time.perf_counter() - t0) / epochs
    return fit_epoch, step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--backend", default="numpy")
    args = parser.parse_args()
    print(f"backend {args.backend}, float32, {args.rounds} rounds of {args.epochs} epochs")
    for n, m, hidden, opt_name in CASES:
        rng = np.random.default_rng(0)
        X = rng.standard_normal((n, m)).astype(np.float32)
        Y = (rng.random((1, m)) > 0.5).astype(np.float32)
        net = dn.DeepNet([n] * (hidden + 1) + [1], backend=args.backend)
        Xd, Yd = net._check_X(X), net._check_Y(Y, m)
        one_round(net, X, Y, Xd, Yd, opt_name, 2)  # warm-up: workspaces, caches
        fits, steps = [], []
        for _ in range(args.rounds):
            f, s = one_round(net, X, Y, Xd, Yd, opt_name, args.epochs)
            fits.append(f)
            steps.append(s)
        ratios = [f / s for f, s in zip(fits, steps)]
        print(f"n={n} m={m} {hidden} hidden, {opt_name}: fit epoch "
              f"{statistics.median(fits) * 1e3:.2f} ms, bare step "
              f"{statistics.median(steps) * 1e3:.2f} ms, fit / step "
              f"{statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})")


if __name__ == "__main__":
    main()
