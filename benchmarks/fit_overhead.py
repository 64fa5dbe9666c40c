"""What fit() adds to the bare training step, full batch (one step per epoch).

fit takes one device snapshot of the parameters (and optimizer moments) per epoch, so
that divergence, Ctrl-C and early stopping can put them back, and reads the epoch's
numbers back once. This prints a fit epoch's time against a bare ``train_step``.

    python benchmarks/fit_overhead.py
"""

from __future__ import annotations

import time

import numpy as np

import deepnet as dn
from deepnet.step import train_step


def main(epochs: int = 30) -> None:
    for n, m, opt in [(1024, 64, "gd"), (1024, 64, "adam"), (256, 512, "gd")]:
        rng = np.random.default_rng(0)
        X = rng.standard_normal((n, m))
        Y = (rng.random((1, m)) > 0.5).astype(float)
        net = dn.DeepNet([n] * 5 + [1], backend="numpy")
        kwargs = dict(optimizer=opt, learning_rate=0.001, progress=False, train_accuracy=False)
        net.fit(X, Y, epochs=2, **kwargs)  # warm-up
        t0 = time.perf_counter()
        net.fit(X, Y, epochs=epochs, **kwargs)
        per_epoch = (time.perf_counter() - t0) / epochs
        optimizer = dn.optimizers.get(opt, 0.001)
        Xd, Yd = net._check_X(X), net._check_Y(Y, m)
        for _ in range(2):
            train_step(net, Xd, Yd, optimizer)
        t0 = time.perf_counter()
        for _ in range(epochs):
            train_step(net, Xd, Yd, optimizer)
        per_step = (time.perf_counter() - t0) / epochs
        print(f"n={n} m={m} {opt}: fit epoch {per_epoch * 1e3:.2f} ms, bare step "
              f"{per_step * 1e3:.2f} ms, fit / step {per_epoch / per_step:.2f}")


if __name__ == "__main__":
    main()
