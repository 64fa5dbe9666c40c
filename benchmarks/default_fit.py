"""What ``net.fit(X, Y)`` with every default reaches on the bundled data sets.

Each data set is split 75/25; the network is the one ``deepnet train`` builds
(``[64, 128, 64, 10]`` relu/softmax for digits, ``[2, 16, 16, 1]`` relu/sigmoid for the
2-D sets); ``fit`` gets only ``X``, ``Y`` and ``progress=False``. Printed: test accuracy
per data set and seed, its mean, and the same for the notes' full-batch gradient descent
at its default α, as a markdown table.

    python benchmarks/default_fit.py [--seeds 0,1,2] [--backend numpy]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import deepnet as dn


def noisy_xor(m: int = 600, seed: int = 0, flip: float = 0.05):
    """XOR of the signs of two standard normal features, 5% of the labels flipped."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((2, m))
    Y = ((X[0] * X[1] > 0) ^ (rng.random(m) < flip)).astype(np.float64)[None, :]
    return X, Y


def data_sets(seed: int):
    digits = dn.datasets.load_digits(seed=seed)
    yield "digits", digits.X_train, digits.y_train, digits.X_test, digits.y_test, \
        [64, 128, 64, 10], "softmax"
    makers = {"flower": dn.datasets.make_flower, "moons": dn.datasets.make_moons,
              "circles": dn.datasets.make_circles, "noisy XOR": noisy_xor}
    for name, make in makers.items():
        X, Y = make(1000, seed=seed) if name != "noisy XOR" else make(1000, seed)
        yield name, X[:, :750], Y[:, :750], X[:, 750:], Y[:, 750:], [2, 16, 16, 1], "sigmoid"


def accuracy(net, X, labels) -> float:
    return float(np.mean(dn.to_numpy(net.predict(X)) == labels))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--backend", default="numpy")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows: dict[str, dict[str, list[float]]] = {}
    for seed in seeds:
        for name, X, Y, Xt, Yt, dims, output in data_sets(seed):
            for how, kwargs in (("defaults", {}),
                                ("gd, full batch", {"optimizer": "gd", "batch_size": None})):
                net = dn.DeepNet(dims, output=output, seed=seed, backend=args.backend)
                t0 = time.perf_counter()
                net.fit(X, Y, progress=False, **kwargs)
                seconds = time.perf_counter() - t0
                cell = rows.setdefault(name, {}).setdefault(how, [])
                cell.append(accuracy(net, Xt, Yt))
                rows[name].setdefault(how + " s", []).append(seconds)
    print(f"backend {args.backend}, seeds {seeds}: test accuracy (mean, min-max) and fit "
          "seconds\n")
    print("| data set | fit(X, Y) | seconds | fit(X, Y, optimizer='gd', batch_size=None) "
          "| seconds |")
    print("| --- | --- | --- | --- | --- |")
    for name, cells in rows.items():
        parts = []
        for how in ("defaults", "gd, full batch"):
            acc = cells[how]
            parts.append(f"{np.mean(acc):.3f} ({min(acc):.3f}-{max(acc):.3f})")
            parts.append(f"{np.mean(cells[how + ' s']):.2f}")
        print(f"| {name} | " + " | ".join(parts) + " |")


if __name__ == "__main__":
    main()
