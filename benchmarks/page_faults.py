"""Minor page faults per training step (NumPy backend), read with getrusage.

    python benchmarks/page_faults.py
    # against another tree, e.g. the first commit's kernels:
    PYTHONPATH=/tmp/before/src python benchmarks/page_faults.py
"""

from __future__ import annotations

import resource

import numpy as np

import deepnet as dn
from deepnet.optimizers import GD
from deepnet.step import train_step


def main() -> None:
    for n, m in [(64, 4096), (256, 4096), (1024, 512)]:
        net = dn.DeepNet([n] * 5 + [1], backend="numpy")
        rng = np.random.default_rng(0)
        X = net._check_X(rng.standard_normal((n, m)))
        Y = net._check_Y((rng.random((1, m)) > 0.5).astype(float), m)
        opt = GD(0.01)
        for _ in range(5):  # warm-up: the workspace is allocated on the first step
            train_step(net, X, Y, opt)
        steps = 20
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(steps):
            train_step(net, X, Y, opt)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        print(f"n={n} m={m}: {(after - before) / steps:.0f} minor page faults per step "
              f"({dn.__file__})")


if __name__ == "__main__":
    main()
