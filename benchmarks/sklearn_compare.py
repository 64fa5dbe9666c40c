"""deepnet's scikit-learn estimators against scikit-learn's MLPClassifier / MLPRegressor.

On scikit-learn's bundled data sets (iris, wine, breast cancer, digits: classification,
accuracy; diabetes: regression, R²), each pair gets the same split (stratified 75/25,
``random_state=0``), the same standardized inputs (and, for diabetes, targets), the same
architecture (one hidden layer of 100 ReLU units), optimizer (Adam, α = 1e-3, β1 = 0.9,
β2 = 0.999, ε = 1e-8), mini-batches (``min(200, m)``, shuffled each epoch), number of
epochs (200, all of them run: the MLP's stopping on a flat loss is switched off), no L2,
and the same dtype. Only the initial weights differ (deepnet: Glorot normal, the
estimators' default ``init="xavier"``; scikit-learn: Glorot uniform), so each pair is
trained from ``--repeats`` seeds.

Within each repeat the two libraries alternate (deepnet first on even repeats, the MLP on
odd ones), in one process, so both see the same machine; the fit time is the wall time of
``fit`` alone, after an untimed warm-up fit of each. The table gives the mean test score
(± standard deviation over the seeds), the median fit time of each, and the median of the
per-repeat ratios deepnet / MLP with their minimum and maximum.

    python benchmarks/sklearn_compare.py [--repeats 20] [--epochs 200] [--backend numpy]
        [--dtype float64] [--datasets iris,wine,...] [--blas-threads N] [--out table.md]

``--blas-threads`` limits the BLAS threads of both (threadpoolctl); by default they use
what the machine gives them. On a shared, busy machine one thread each is steadier.

Targets (issue 12): deepnet's score ≥ the MLP's − 0.01, at ≤ its fit time.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import warnings

import numpy as np

DATASETS = ("iris", "wine", "breast_cancer", "digits", "diabetes")


def load(name: str):
    """``(X_train, X_test, y_train, y_test, kind)``, standardized with the training split's
    statistics (diabetes' targets too: R² is the same on either scale)."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    kind = "regression" if name == "diabetes" else "classification"
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0,
        stratify=y if kind == "classification" else None,
    )
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    std[std == 0] = 1.0
    X_train, X_test = (X_train - mean) / std, (X_test - mean) / std
    if kind == "regression":
        mu, sigma = y_train.mean(), y_train.std()
        y_train, y_test = (y_train - mu) / sigma, (y_test - mu) / sigma
    return X_train, X_test, y_train, y_test, kind


def estimators(kind: str, seed: int, args: argparse.Namespace):
    """The deepnet estimator and the scikit-learn MLP, with the same settings."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    from deepnet.sklearn import DeepNetClassifier, DeepNetRegressor

    ours = (DeepNetClassifier if kind == "classification" else DeepNetRegressor)(
        hidden_layer_sizes=(100,), activation="relu", optimizer="adam",
        learning_rate=1e-3, beta1=0.9, beta2=0.999, batch_size="auto", epochs=args.epochs,
        l2=0.0, backend=args.backend, dtype=args.dtype, random_state=seed,
    )
    theirs = (MLPClassifier if kind == "classification" else MLPRegressor)(
        hidden_layer_sizes=(100,), activation="relu", solver="adam", alpha=0.0,
        batch_size="auto", learning_rate_init=1e-3, beta_1=0.9, beta_2=0.999,
        epsilon=1e-8, max_iter=args.epochs, shuffle=True, tol=0.0,
        n_iter_no_change=args.epochs + 1, early_stopping=False, random_state=seed,
    )
    return {"deepnet": ours, "sklearn": theirs}


def timed_fit(est, X, y) -> float:
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter reached: on purpose
        t0 = time.perf_counter()
        est.fit(X, y)
        return time.perf_counter() - t0


def run(args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    """``results[dataset][f"{lib}_{score|time}"]``: one value per repeat."""
    data = {name: load(name) for name in args.datasets}
    cast = np.float32 if args.dtype == "float32" else np.float64
    data = {k: (v[0].astype(cast), v[1].astype(cast), *v[2:]) for k, v in data.items()}
    results = {name: {f"{lib}_{what}": [] for lib in ("deepnet", "sklearn")
                      for what in ("score", "time")} for name in args.datasets}
    for X_train, _, y_train, _, kind in data.values():  # warm-up, untimed
        for est in estimators(kind, 0, argparse.Namespace(**{**vars(args), "epochs": 1})
                              ).values():
            timed_fit(est, X_train, y_train)
    for rep in range(args.repeats):
        for name, (X_train, X_test, y_train, y_test, kind) in data.items():
            pair = estimators(kind, rep, args)
            order = ["deepnet", "sklearn"] if rep % 2 == 0 else ["sklearn", "deepnet"]
            for lib in order:
                seconds = timed_fit(pair[lib], X_train, y_train)
                results[name][f"{lib}_time"].append(seconds)
                results[name][f"{lib}_score"].append(float(pair[lib].score(X_test, y_test)))
        print(f"repeat {rep + 1}/{args.repeats} done", file=sys.stderr)
    return results


def table(results: dict, args: argparse.Namespace) -> str:
    """The markdown table, with the command and the machine."""
    lines = [
        f"`python benchmarks/sklearn_compare.py --repeats {args.repeats} --epochs "
        f"{args.epochs} --backend {args.backend} --dtype {args.dtype}"
        + (f" --blas-threads {args.blas_threads}" if args.blas_threads else "")
        + "`: one hidden layer of "
        f"100 ReLU units, Adam α = 1e-3, batch min(200, m), {args.epochs} epochs, "
        f"{args.dtype}, {args.repeats} seeds; {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, numpy {np.__version__}, "
        f"scikit-learn {_sklearn_version()}.",
        "",
        "| data set | metric | deepnet score | MLP score | Δ score | deepnet fit s | MLP fit s "
        "| time deepnet / MLP: median [min, max] | targets |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        ours, theirs = np.array(r["deepnet_score"]), np.array(r["sklearn_score"])
        ratio = np.array(r["deepnet_time"]) / np.array(r["sklearn_time"])
        delta = ours.mean() - theirs.mean()
        met = delta >= -0.01 and np.median(ratio) <= 1.0
        lines.append(
            f"| {name} | {'R²' if name == 'diabetes' else 'accuracy'} "
            f"| {ours.mean():.4f} ± {ours.std():.4f} | {theirs.mean():.4f} ± {theirs.std():.4f} "
            f"| {delta:+.4f} | {np.median(r['deepnet_time']):.3f} "
            f"| {np.median(r['sklearn_time']):.3f} "
            f"| {np.median(ratio):.2f} [{ratio.min():.2f}, {ratio.max():.2f}] "
            f"| {'met' if met else 'NOT met'} |"
        )
    return "\n".join(lines) + "\n"


def _sklearn_version() -> str:
    import sklearn

    return sklearn.__version__


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="limit BLAS threads (both libraries) to this many")
    parser.add_argument("--out", default=None, help="also write the table to this file")
    args = parser.parse_args(argv)
    args.datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = sorted(set(args.datasets) - set(DATASETS))
    if unknown or args.repeats < 1 or args.epochs < 1:
        parser.error(f"--datasets from {', '.join(DATASETS)}; --repeats and --epochs >= 1"
                     + (f" (unknown: {', '.join(unknown)})" if unknown else ""))
    if args.blas_threads is not None:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=args.blas_threads, user_api="blas"):
            results = run(args)
    else:
        results = run(args)
    text = table(results, args)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
