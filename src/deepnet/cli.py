"""The ``deepnet`` command: ``deepnet train``, ``deepnet info``, ``deepnet bench``.

``deepnet train`` trains a ``[64, 128, 64, 10]`` relu/softmax network with Adam on
scikit-learn's bundled 8×8 digits (or on one of the generated 2-D sets), shows a progress
bar, prints the final train/test accuracy and the time, saves a checkpoint and, where
matplotlib is installed, a PNG of the cost curves. ``deepnet info`` says which backends
work here, their versions and devices, and the BLAS in use. ``deepnet bench ARGS`` hands
its arguments to ``deepnet.bench``.

Errors deepnet raises on purpose are printed as one line on stderr, exit status 2; every
output path is checked (``deepnet.paths``) before any work starts. Ctrl-C ends the command
with exit status 130 and one line on stderr, at any moment after it started: a checkpoint
being written is finished first (Ctrl-C is held for that moment), a plot being written is
abandoned, so each file is either the previous one or a complete new one.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import inspect
import os
import platform
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

import deepnet
from deepnet import datasets, optimizers, paths
from deepnet.backend import (
    BACKEND_NAMES,
    DTYPE_NAMES,
    available_backends,
    get_backend,
    resolve_dtype_name,
    to_numpy,
)
from deepnet.errors import CheckpointError, DeepNetError, InputError
from deepnet.network import DeepNet
from deepnet.optimizers import OPTIMIZERS

DATASETS = ("digits", "flower", "moons", "circles")
#: (input features, classes) of each dataset, known before it is loaded
SHAPES = {"digits": (64, 10), "flower": (2, 2), "moons": (2, 2), "circles": (2, 2)}
DEFAULT_LAYERS = {"digits": [64, 128, 64, 10]}
DEFAULT_LAYERS_2D = [2, 16, 16, 1]
#: The one directory the command creates: where checkpoints go when --checkpoint is not
#: given. A directory in a path the user gives must exist, as for DeepNet.save.
DEFAULT_DIR = "runs"
#: Plot formats matplotlib writes without LaTeX or other extras.
PLOT_FORMATS = ("png", "pdf", "svg", "svgz", "eps", "ps", "jpg", "jpeg", "tif", "tiff", "webp")

# Measured (numpy, float32, 2 cores): about 0.5 s of training, test accuracy ≈ 0.975.
DEFAULTS = {"epochs": 30, "batch_size": 32, "validation": 0.1}

CHECKPOINT = paths.Role("save", "checkpoint", CheckpointError)
PLOT = paths.Role("write", "plot", InputError)


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


def _own_learning_rates() -> str:
    """``adam 0.001, gd 0.01, ...``: each optimizer's default α."""
    rates = {}
    for name, cls in OPTIMIZERS.items():
        rates[name] = inspect.signature(cls).parameters["learning_rate"].default
    return ", ".join(f"{name} {rate:g}" for name, rate in sorted(rates.items()))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepnet",
        description="Train fully connected deep networks on NumPy, CuPy, PyTorch or "
        "array-api-strict.",
    )
    parser.add_argument("--version", action="version", version=f"deepnet {deepnet.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{train,info,bench}")

    # every help ends with its default, written once (no ArgumentDefaultsHelpFormatter:
    # it would repeat the defaults the texts already give)
    train = sub.add_parser(
        "train", help="train a network (default: digits, [64,128,64,10], Adam)",
        description="Train a network, print its train/test accuracy, save a checkpoint "
        "and a plot of the cost curves. Every output path is checked before training.",
    )
    add = train.add_argument
    add("--dataset", choices=DATASETS, default="digits",
        help="digits: scikit-learn's 8x8 digits; the others: generated 2-D sets "
        "(default: %(default)s)")
    add("--layers", type=_layer_list, default=None,
        help="layer sizes n0,...,nL (default: 64,128,64,10 for digits, 2,16,16,1 for the "
        "2-D sets)")
    add("--hidden", type=_activation_list, default="relu",
        help="hidden activation, or one per hidden layer: relu,tanh (default: %(default)s)")
    add("--init", default="he", help="he, xavier or scaled (default: %(default)s)")
    add("--optimizer", choices=sorted(OPTIMIZERS), default="adam",
        help="update rule (default: %(default)s)")
    add("--learning-rate", type=float, default=None, metavar="ALPHA",
        help=f"initial learning rate α (default: the optimizer's own: {_own_learning_rates()})")
    add("--epochs", type=int, default=DEFAULTS["epochs"],
        help="passes over the training set (default: %(default)s)")
    add("--batch-size", type=_batch_size, default=DEFAULTS["batch_size"],
        help="examples per mini-batch; 'full' for one step per epoch (default: %(default)s)")
    add("--validation", type=float, default=DEFAULTS["validation"],
        help="fraction of the training set held out to validate on, 0 for none "
        "(default: %(default)s)")
    add("--early-stopping", type=int, default=None, metavar="PATIENCE",
        help="stop after PATIENCE epochs without a better validation cost (default: off)")
    add("--l2", type=float, default=0.0, help="L2 regularization λ (default: %(default)s)")
    add("--keep-prob", type=float, default=1.0,
        help="dropout keep probability of the hidden layers (default: %(default)s, no "
        "dropout)")
    add("--backend", choices=BACKEND_NAMES, default=None,
        help="array library (default: DEEPNET_BACKEND, else numpy)")
    add("--device", default=None,
        help="e.g. cuda:0 (torch), 1 (cupy) (default: DEEPNET_DEVICE, else the library's "
        "own)")
    add("--dtype", choices=DTYPE_NAMES, default=None,
        help="parameter dtype (default: DEEPNET_DTYPE, else float32)")
    add("--seed", type=int, default=0,
        help="seed of the initial weights and the shuffles (default: %(default)s)")
    add("--checkpoint", default=None, metavar="FILE",
        help=f"where to save the trained network; its directory must exist (default: "
        f"{DEFAULT_DIR}/DATASET.npz, creating {DEFAULT_DIR}/)")
    add("--plot", default=None, metavar="FILE",
        help=f"plot of the cost curves, as {', '.join(PLOT_FORMATS[:3])}, ... by its "
        "suffix (default: the checkpoint's name with .png)")
    add("--no-plot", action="store_true", help="write no plot (default: write one)")
    add("--no-progress", action="store_true",
        help="hide the progress bar (default: shown on a terminal)")
    train.set_defaults(func=_train)

    info = sub.add_parser("info", help="backends, versions, devices and BLAS here",
                          description="Say which backends work here, and whether the "
                          "default one (DEEPNET_BACKEND, DEEPNET_DEVICE, DEEPNET_DTYPE) "
                          "can run: exit status 2 when it cannot.")
    info.set_defaults(func=_info)

    sub.add_parser("bench", help="benchmarks (arguments go to deepnet.bench)", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``deepnet`` command with ``argv`` (default: ``sys.argv[1:]``); the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        return _bench(argv[1:])
    command = argv[0] if argv and argv[0] in ("train", "info") else None
    try:
        parser = _parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        return args.func(args)
    except DeepNetError as exc:
        print(f"deepnet {command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before anything was written (later phases say more)
        print(f"deepnet{' ' + command if command else ''}: interrupted; nothing was written",
              file=sys.stderr)
        return 130


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


def _load_data(name: str, seed: int) -> tuple:
    """``(X_train, Y_train, X_test, Y_test, n_classes)`` on the host."""
    if name == "digits":
        d = datasets.load_digits()
        return d.X_train, d.y_train, d.X_test, d.y_test, 10
    make = {"flower": datasets.make_flower, "moons": datasets.make_moons,
            "circles": datasets.make_circles}[name]
    X, Y = make(1000, seed=seed)
    return X[:, :750], Y[:, :750], X[:, 750:], Y[:, 750:], 2


def _network(args: argparse.Namespace) -> DeepNet:
    n0, n_classes = SHAPES[args.dataset]
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


def _outputs(args: argparse.Namespace) -> tuple[str, str | None, str | None]:
    """The checkpoint and plot names, checked (and the default directory made) before any
    work; the third item is why there is no plot, where there is none."""
    plot_text = None if args.no_plot else args.plot
    if args.checkpoint is None:
        checkpoint_text = os.path.join(DEFAULT_DIR, f"{args.dataset}.npz")
    else:
        checkpoint_text = paths.file_name(args.checkpoint, CHECKPOINT)
    if not args.no_plot and plot_text is None:
        stem, ext = os.path.splitext(checkpoint_text)
        plot_text = (stem if ext and os.path.basename(stem) else checkpoint_text) + ".png"
    skipped = None
    if plot_text is not None:
        plot_text = paths.file_name(plot_text, PLOT)
        suffix = os.path.splitext(plot_text)[1].lower().lstrip(".")
        if suffix not in PLOT_FORMATS:
            raise InputError(
                f"--plot {plot_text!r}: the suffix names the format; expected one of "
                f"{', '.join('.' + f for f in PLOT_FORMATS)}"
            )
        if importlib.util.find_spec("matplotlib") is None:
            plot_text, skipped = None, "matplotlib is not installed; pip install matplotlib"
    if args.checkpoint is None:
        _make_default_directory()
    checkpoint = paths.output_file(checkpoint_text, CHECKPOINT, probe=True)
    if plot_text is not None:
        plot = paths.output_file(plot_text, PLOT, probe=True)
        paths.distinct({"--checkpoint": checkpoint, "--plot": plot}, InputError)
    return checkpoint_text, plot_text, skipped


def _make_default_directory() -> None:
    try:
        os.makedirs(DEFAULT_DIR, exist_ok=True)
    except OSError as exc:  # a file called runs, a read-only working directory
        raise CheckpointError(
            f"cannot make the default checkpoint directory {DEFAULT_DIR!r} here ({exc}); "
            "pass --checkpoint with a writable path"
        ) from None


@contextlib.contextmanager
def _ctrl_c_held() -> Iterator[list[int]]:
    """Hold Ctrl-C until the block ends, then raise it: a checkpoint being written is
    finished. The list holds the signals that came meanwhile (main thread only: only it
    may set a handler; elsewhere the block runs as it is)."""
    came: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield came
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: came.append(signum))
    try:
        yield came
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None
                      else signal.default_int_handler)
    if came:
        raise KeyboardInterrupt


def _train(args: argparse.Namespace) -> int:
    # every flag, the network and every output path, before any work
    if args.epochs < 1:
        raise InputError(f"--epochs must be a positive integer; got {args.epochs}")
    if not 0.0 <= args.validation < 1.0:
        raise InputError(f"--validation must be a fraction in [0, 1); got {args.validation}")
    if args.early_stopping is not None and args.early_stopping < 1:
        raise InputError(f"--early-stopping must be a positive patience; got "
                         f"{args.early_stopping}")
    optimizer = optimizers.get(args.optimizer, args.learning_rate)
    net = _network(args)
    checkpoint, plot, skipped = _outputs(args)

    X_train, Y_train, X_test, Y_test, _ = _load_data(args.dataset, args.seed)
    batch = "full batch" if args.batch_size is None else f"batches of {args.batch_size}"
    print(f"deepnet train: {args.dataset} ({X_train.shape[1]} train / {X_test.shape[1]} test), "
          f"{list(net.layer_dims)} {'/'.join(dict.fromkeys(net.activations))}, "
          f"{args.optimizer} α={optimizer.learning_rate:g}, {args.epochs} epochs in {batch}, "
          f"{net.backend.label} {net.dtype_name}", flush=True)

    start = time.perf_counter()
    try:
        history = net.fit(
            X_train, Y_train, epochs=args.epochs, batch_size=args.batch_size,
            optimizer=optimizer, seed=args.seed, validation=args.validation or None,
            early_stopping=args.early_stopping, progress=False if args.no_progress else None,
        )
        seconds = time.perf_counter() - start
        with _ctrl_c_held():
            net.save(checkpoint)
    except KeyboardInterrupt:  # in fit, or just after it: keep what was learned
        done = net.history.epochs if net.history is not None else 0
        if not done:
            print("deepnet train: interrupted before the first epoch ended; nothing saved",
                  file=sys.stderr)
            return 130
        with contextlib.suppress(KeyboardInterrupt), _ctrl_c_held():
            net.save(checkpoint)
        print(f"deepnet train: interrupted after {done} completed epochs; saved them to "
              f"{checkpoint}", file=sys.stderr)
        return 130
    try:
        rate = history.epochs / seconds if seconds > 0 else float("inf")
        stopped = (f" (early stop; best epoch {history.best_epoch + 1})"
                   if history.stopped_early else "")
        print(f"{history.epochs} epochs in {seconds:.2f} s ({rate:.1f} epochs/s){stopped}; "
              f"final cost {history.cost[-1]:.4f}"
              + (f", validation cost {history.val_cost[-1]:.4f}" if history.val_cost else ""))
        print(f"train accuracy {accuracy(net, X_train, Y_train):.4f}   "
              f"test accuracy {accuracy(net, X_test, Y_test):.4f}")
        print(f"checkpoint: {checkpoint}")
        if skipped is not None:
            print(f"plot: skipped ({skipped})")
        elif plot is not None:
            print(_plot(history, plot, f"{args.dataset} {list(net.layer_dims)}"))
    except KeyboardInterrupt:
        unwritten = "" if plot is None else (
            f"; the plot {plot} was not written (any previous file there is unchanged)")
        print(f"deepnet train: interrupted; the checkpoint {checkpoint} is saved{unwritten}",
              file=sys.stderr)
        return 130
    return 0


def _plot(history: Any, path: str, title: str) -> str:
    """Write the cost (and accuracy) curves to ``path`` atomically; the line to print."""
    from matplotlib.figure import Figure

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
    fmt = os.path.splitext(path)[1].lower().lstrip(".")
    paths.write_atomically(path, lambda f: fig.savefig(f, format=fmt, dpi=100), PLOT)
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
    try:
        default = get_backend()
        problem = None
        print(f"default: {default.label} {resolve_dtype_name()}")
    except DeepNetError as exc:
        problem = str(exc)
        print("default: cannot run here (see below)")
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
    else:
        pools = threadpoolctl.threadpool_info()
        if not pools:
            print("  none found")
        for pool in pools:
            print(f"  {pool.get('user_api')}: {pool.get('internal_api')} "
                  f"{pool.get('version') or ''} ({pool.get('num_threads')} threads) "
                  f"{pool.get('filepath')}")
    if problem is not None:
        sys.stdout.flush()
        print(f"deepnet info: error: the default backend cannot run here: {problem}",
              file=sys.stderr)
        return 2
    return 0


def entry() -> int:
    """The console script (and ``python -m deepnet``): :func:`main`, then Ctrl-C ignored
    while the interpreter shuts down, so that a finished command keeps its exit status and
    prints no traceback."""
    code = 130
    try:
        code = main()
    except KeyboardInterrupt:  # came between main's last line and here
        print("deepnet: interrupted", file=sys.stderr)
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    return code


if __name__ == "__main__":
    sys.exit(entry())
