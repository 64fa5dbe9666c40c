"""Mini-batch training of the digits network: deepnet vs scikit-learn's MLPClassifier.

Same architecture ([64, 128, 64, 10], relu, softmax/cross-entropy), optimizer (Adam,
α = 1e-3, β1 = 0.9, β2 = 0.999, ε = 1e-8), batch size (32), no L2, float32 inputs (the
MLP keeps float32), on the bundled 8x8 digits training split. One epoch is one pass in
shuffled mini-batches. Epochs alternate between the two libraries, with a pause between
samples so neither runs while the other's BLAS threads spin down.

    python benchmarks/digits_vs_sklearn.py [--epochs 15] [--backend numpy]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--pause", type=float, default=0.2)
    args = parser.parse_args()

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    import deepnet as dn

    data = dn.datasets.load_digits()
    X = data.X_train.astype(np.float32)  # (64, m): deepnet's column layout
    y = data.y_train
    net = dn.DeepNet([64, 128, 64, 10], hidden="relu", output="softmax", dtype="float32",
                     backend=args.backend, seed=0)
    opt = dn.optimizers.Adam(learning_rate=1e-3)
    clf = MLPClassifier(hidden_layer_sizes=(128, 64), activation="relu", solver="adam",
                        alpha=0.0, batch_size=32, learning_rate_init=1e-3, shuffle=True,
                        random_state=0)
    Xs = np.ascontiguousarray(X.T)  # scikit-learn's row layout, converted once, untimed
    classes = np.arange(10)
    net.fit(X, y, epochs=1, batch_size=32, optimizer=opt, progress=False,
            train_accuracy=False)  # warm-up: workspaces, first-call costs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.partial_fit(Xs, y, classes=classes)

    ours, theirs = [], []
    for _ in range(args.epochs):
        time.sleep(args.pause)
        t0 = time.perf_counter()
        net.fit(X, y, epochs=1, batch_size=32, optimizer=opt, progress=False,
                train_accuracy=False)
        ours.append(time.perf_counter() - t0)
        time.sleep(args.pause)
        t0 = time.perf_counter()
        clf.partial_fit(Xs, y)
        theirs.append(time.perf_counter() - t0)
    ratios = np.array(ours) / np.array(theirs)
    acc_ours = float(np.mean(dn.to_numpy(net.predict(data.X_test)) == data.y_test))
    acc_theirs = float(np.mean(clf.predict(data.X_test.T.astype(np.float32)) == data.y_test))
    print(f"digits train split: m = {X.shape[1]}, batch 32, Adam 1e-3, float32, "
          f"{args.epochs + 1} epochs each")
    print(f"deepnet ({args.backend}) per epoch: median {np.median(ours) * 1e3:.1f} ms, "
          f"test accuracy {acc_ours:.4f}")
    print(f"sklearn MLPClassifier per epoch: median {np.median(theirs) * 1e3:.1f} ms, "
          f"test accuracy {acc_theirs:.4f}")
    print(f"deepnet / sklearn per-epoch time: median of per-epoch ratios {np.median(ratios):.2f}"
          f" (min {ratios.min():.2f}, max {ratios.max():.2f})")


if __name__ == "__main__":
    main()
