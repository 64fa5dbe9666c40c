"""The ``deepnet`` command: ``deepnet train``, ``deepnet info``, ``deepnet bench``.

``deepnet train`` trains a ``[64, 128, 64, 10]`` relu/softmax network with Adam on
scikit-learn's bundled 8×8 digits (or on one of the generated 2-D sets), shows a progress
bar, prints the final train/test accuracy and the time, saves a checkpoint and, where
matplotlib is installed, a PNG of the cost curves. ``deepnet info`` says which backends
work here, their versions and devices, and the BLAS in use. ``deepnet bench ARGS`` hands
its arguments to ``deepnet.bench``.

Errors deepnet raises on purpose are printed as one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import deepnet
from deepnet import datasets, distributed
from deepnet.backend import BACKEND_NAMES, DTYPE_NAMES, available_backends, to_numpy
from deepnet.errors import CheckpointError, DeepNetError, InputError
from deepnet.network import DeepNet
from deepnet.optimizers import OPTIMIZERS

DATASETS = ("digits", "flower", "moons", "circles")
DEFAULT_LAYERS = {"digits": [64, 128, 64, 10]}
DEFAULT_LAYERS_2D = [2, 16, 16, 1]

# Measured (numpy, float32, 2 cores): about 0.5 s of training, test accuracy ≈ 0.975.
DEFAULTS = {"epochs": 30, "batch_size": 32, "learning_rate": 1e-3, "validation": 0.1}


# -- argument types -----------------------------------------------------------------------


def _layer_list(text: str) -> list[int]:
    try:
        dims = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer sizes such as 64,128,64,10; got {text!r}"
        ) from None
    if len(dims) < 2 or any(n < 1 for n in dims):
        raise argparse.ArgumentTypeError(
            f"expected at least two positive layer sizes (input and output); got {text!r}"
        )
    return dims


def _activation_list(text: str) -> str | list[str]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    return parts[0] if len(parts) == 1 else parts


def _batch_size(text: str) -> int | None:
    if text.lower() in ("none", "full", "0"):
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, or 'full' for the whole set; got {text!r}"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"batch size must be positive; got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepnet",
        description="Train fully connected deep networks on NumPy, CuPy, PyTorch or "
        "array-api-strict.",
    )
    parser.add_argument("--version", action="version", version=f"deepnet {deepnet.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{train,info,bench}")

    train = sub.add_parser(
        "train", help="train a network (default: digits, [64,128,64,10], Adam)",
        description="Train a network, print its train/test accuracy, save a checkpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    train.add_argument("--dataset", choices=DATASETS, default="digits",
                       help="digits: scikit-learn's 8x8 digits; the others: generated 2-D sets")
    train.add_argument("--layers", type=_layer_list, default=None,
                       help="layer sizes n0,...,nL (default: 64,128,64,10 for digits, "
                       "2,16,16,1 for the 2-D sets)")
    train.add_argument("--hidden", type=_activation_list, default="relu",
                       help="hidden activation, or one per hidden layer: relu,tanh")
    train.add_argument("--init", default="he", help="he, xavier or scaled")
    train.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adam")
    train.add_argument("--learning-rate", type=float, default=DEFAULTS["learning_rate"])
    train.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    train.add_argument("--batch-size", type=_batch_size, default=DEFAULTS["batch_size"],
                       help="examples per mini-batch; 'full' for one step per epoch")
    train.add_argument("--validation", type=float, default=DEFAULTS["validation"],
                       help="fraction of the training set held out to validate on (0: none)")
    train.add_argument("--early-stopping", type=int, default=None, metavar="PATIENCE",
                       help="stop after PATIENCE epochs without a better validation cost")
    train.add_argument("--l2", type=float, default=0.0)
    train.add_argument("--keep-prob", type=float, default=1.0)
    train.add_argument("--backend", choices=BACKEND_NAMES, default=None,
                       help="array library (default: DEEPNET_BACKEND, else numpy)")
    train.add_argument("--device", default=None, help="e.g. cuda:0 (torch), 1 (cupy)")
    train.add_argument("--dtype", choices=DTYPE_NAMES, default=None,
                       help="default: DEEPNET_DTYPE, else float32")
    train.add_argument("--seed", type=int, default=0,
                       help="seed of the initial weights and the shuffles")
    train.add_argument("--checkpoint", type=Path, default=None,
                       help="where to save the trained network (default: runs/DATASET.npz)")
    train.add_argument("--plot", type=Path, default=None,
                       help="PNG of the cost curves (default: the checkpoint with .png)")
    train.add_argument("--no-plot", action="store_true", help="do not write the PNG")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    train.set_defaults(func=_train)

    info = sub.add_parser("info", help="backends, versions, devices and BLAS here")
    info.set_defaults(func=_info)

    sub.add_parser("bench", help="benchmarks (arguments go to deepnet.bench)", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``deepnet`` command with ``argv`` (default: ``sys.argv[1:]``); the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        return _bench(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    # under mpiexec/srun/torchrun: one run across the ranks, printed by rank 0 alone
    with distributed.command_session(args.command) as comm:
        try:
            return args.func(args)
        except DeepNetError as exc:
            comm.fail(exc)  # the other ranks stop with it instead of waiting for this one
            print(f"deepnet {args.command}: error: {exc}", file=sys.stderr)
            return 2


# -- deepnet bench --------------------------------------------------------------------------


def _bench(argv: list[str]) -> int:
    try:
        bench = importlib.import_module("deepnet.bench")
    except ModuleNotFoundError as exc:
        if exc.name != "deepnet.bench":
            raise
        print("deepnet bench: error: this install has no deepnet.bench module",
              file=sys.stderr)
        return 2
    try:
        return int(bench.main(argv) or 0)
    except DeepNetError as exc:
        print(f"deepnet bench: error: {exc}", file=sys.stderr)
        return 2


# -- deepnet train --------------------------------------------------------------------------


def _load_data(name: str, seed: int):
    """``(X_train, Y_train, X_test, Y_test, n_classes)`` on the host."""
    if name == "digits":
        d = datasets.load_digits()
        return d.X_train, d.y_train, d.X_test, d.y_test, 10
    make = {"flower": datasets.make_flower, "moons": datasets.make_moons,
            "circles": datasets.make_circles}[name]
    X, Y = make(1000, seed=seed)
    return X[:, :750], Y[:, :750], X[:, 750:], Y[:, 750:], 2


def _network(args: argparse.Namespace, n0: int, n_classes: int) -> DeepNet:
    dims = args.layers or DEFAULT_LAYERS.get(args.dataset, DEFAULT_LAYERS_2D)
    if dims[0] != n0:
        raise InputError(
            f"--layers must start with the {n0} input features of {args.dataset}; "
            f"got {','.join(map(str, dims))}"
        )
    if n_classes == 2:
        if dims[-1] != 1:
            raise InputError(
                f"{args.dataset} has two classes: --layers must end with 1 (a sigmoid "
                f"unit); got {','.join(map(str, dims))}"
            )
        output = "sigmoid"
    else:
        if dims[-1] != n_classes:
            raise InputError(
                f"{args.dataset} has {n_classes} classes: --layers must end with "
                f"{n_classes} (softmax units); got {','.join(map(str, dims))}"
            )
        output = "softmax"
    return DeepNet(dims, hidden=args.hidden, output=output, init=args.init, l2=args.l2,
                   keep_prob=args.keep_prob, dtype=args.dtype, seed=args.seed,
                   backend=args.backend, device=args.device)


def accuracy(net: DeepNet, X: Any, labels: np.ndarray) -> float:
    """Fraction of ``labels`` (class indices ``(m,)`` or 0/1 ``(1, m)``) predicted right."""
    return float(np.mean(to_numpy(net.predict(X)) == labels))


def _train(args: argparse.Namespace) -> int:
    if args.epochs < 1:
        raise InputError(f"--epochs must be a positive integer; got {args.epochs}")
    if not 0.0 <= args.validation < 1.0:
        raise InputError(f"--validation must be a fraction in [0, 1); got {args.validation}")
    checkpoint = args.checkpoint or Path("runs") / f"{args.dataset}.npz"
    plot = None if args.no_plot else (args.plot or checkpoint.with_suffix(".png"))

    comm = distributed.init()  # the run's ranks (one, without a launcher)
    X_train, Y_train, X_test, Y_test, n_classes = _load_data(args.dataset, args.seed)
    net = _network(args, X_train.shape[0], n_classes)
    batch = "full batch" if args.batch_size is None else f"batches of {args.batch_size}"
    print(f"deepnet train: {args.dataset} ({X_train.shape[1]} train / {X_test.shape[1]} test), "
          f"{list(net.layer_dims)} {'/'.join(dict.fromkeys(net.activations))}, "
          f"{args.optimizer} α={args.learning_rate:g}, {args.epochs} epochs in {batch}, "
          f"{net.backend.label} {net.dtype_name}", flush=True)

    try:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file where the directory should be, a read-only disk
        raise CheckpointError(
            f"cannot make the checkpoint's directory {str(checkpoint.parent)!r} ({exc}); "
            "pass --checkpoint with a writable path"
        ) from exc
    start = time.perf_counter()
    try:
        history = net.fit(
            X_train, Y_train, epochs=args.epochs, batch_size=args.batch_size,
            optimizer=args.optimizer, learning_rate=args.learning_rate, seed=args.seed,
            validation=args.validation or None, early_stopping=args.early_stopping,
            progress=False if args.no_progress else None, comm=comm,
        )
    except KeyboardInterrupt:
        done = net.history.epochs if net.history is not None else 0
        if not comm.is_root:
            return 130
        if done:
            net.save(checkpoint)
            print(f"interrupted after {done} completed epochs; saved them to {checkpoint}",
                  file=sys.stderr)
        else:
            print("interrupted before the first epoch ended; nothing saved", file=sys.stderr)
        return 130
    if not comm.is_root:
        return 0  # one network across the ranks: rank 0 evaluates, saves and plots it
    seconds = time.perf_counter() - start

    train_acc = accuracy(net, X_train, Y_train)
    test_acc = accuracy(net, X_test, Y_test)
    rate = history.epochs / seconds if seconds > 0 else float("inf")
    stopped = (f" (early stop; best epoch {history.best_epoch + 1})"
               if history.stopped_early else "")
    print(f"{history.epochs} epochs in {seconds:.2f} s ({rate:.1f} epochs/s){stopped}; "
          f"final cost {history.cost[-1]:.4f}"
          + (f", validation cost {history.val_cost[-1]:.4f}" if history.val_cost else ""))
    print(f"train accuracy {train_acc:.4f}   test accuracy {test_acc:.4f}")
    net.save(checkpoint)
    print(f"checkpoint: {checkpoint}")
    if plot is not None:
        print(_plot(history, plot, f"{args.dataset} {list(net.layer_dims)}"))
    return 0


def _plot(history: Any, path: Path, title: str) -> str:
    """Write the cost (and accuracy) curves to ``path``; the line to print."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return "plot: skipped (matplotlib is not installed; pip install 'deepnet[plot]')"
    epochs = np.arange(1, history.epochs + 1)
    panels = 2 if history.accuracy or history.val_accuracy else 1
    fig = Figure(figsize=(5.0 * panels, 3.6), layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False)[0]
    ax = axes[0]
    ax.plot(epochs, history.cost, label="train")
    if history.val_cost:
        ax.plot(epochs, history.val_cost, label="validation")
    if min(history.cost + history.val_cost) > 0:
        ax.set_yscale("log")
    ax.set(xlabel="epoch", ylabel="cost", title=title)
    ax.legend()
    if panels == 2:
        ax = axes[1]
        if history.accuracy:
            ax.plot(epochs, history.accuracy, label="train")
        if history.val_accuracy:
            ax.plot(epochs, history.val_accuracy, label="validation")
        ax.set(xlabel="epoch", ylabel="accuracy")
        ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return f"plot: {path}"


# -- deepnet info ---------------------------------------------------------------------------


def _devices(name: str) -> str:
    """The devices of a loaded backend, as text."""
    if name == "numpy":
        return "cpu"
    if name == "torch":
        torch = sys.modules["torch"]
        cuda = ([f"cuda:{i} ({torch.cuda.get_device_name(i)})"
                 for i in range(torch.cuda.device_count())]
                if torch.cuda.is_available() else [])
        note = "" if cuda else f" (no CUDA device; CUDA build: {torch.version.cuda})"
        return ", ".join(["cpu", *cuda]) + note
    if name == "cupy":
        cupy = sys.modules["cupy"]
        count = cupy.cuda.runtime.getDeviceCount()
        names = []
        for i in range(count):
            props = cupy.cuda.runtime.getDeviceProperties(i)
            label = props["name"]
            names.append(f"{i} ({label.decode() if isinstance(label, bytes) else label})")
        return ", ".join(names)
    xp = sys.modules["array_api_strict"]
    return ", ".join(str(d).removeprefix("array_api_strict.Device(").rstrip(")").strip("'")
                     for d in xp.__array_namespace_info__().devices())


def _info(args: argparse.Namespace) -> int:
    print(f"deepnet {deepnet.__version__} (python {platform.python_version()}, "
          f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores)")
    env = {k: os.environ[k] for k in ("DEEPNET_BACKEND", "DEEPNET_DEVICE", "DEEPNET_DTYPE")
           if os.environ.get(k)}
    print("environment: " + (", ".join(f"{k}={v}" for k, v in env.items()) or
                             "no DEEPNET_* variables set (numpy, float32)"))
    print("backends:")
    for name, status in available_backends().items():
        if status == "ok":
            module = sys.modules[name]
            version = getattr(module, "__version__", "?")
            print(f"  {name:<17} ok   {name} {version}; devices: {_devices(name)}")
        else:
            print(f"  {name:<17} --   {status}")
    print("BLAS and thread pools:")
    try:
        import threadpoolctl
    except ImportError:
        print("  unknown (install threadpoolctl to see them: pip install threadpoolctl)")
        return 0
    pools = threadpoolctl.threadpool_info()
    if not pools:
        print("  none found")
    for pool in pools:
        print(f"  {pool.get('user_api')}: {pool.get('internal_api')} "
              f"{pool.get('version') or ''} ({pool.get('num_threads')} threads) "
              f"{pool.get('filepath')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
