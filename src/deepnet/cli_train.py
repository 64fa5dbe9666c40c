"""``deepnet train``: train a network on a bundled dataset, save a checkpoint and a plot.

Every flag, the network and every output path are checked before any work (the paths by
``deepnet.paths``: regular files or new names in existing directories; only the default
directory ``runs/`` is created). Ctrl-C at any moment ends the command with status 130 and
one line on stderr: during training the completed epochs are saved, a checkpoint being
written is finished first (Ctrl-C is held for that moment), a plot being written is
abandoned; each file is either the previous one or a complete new one.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from deepnet import datasets, distributed, optimizers, paths
from deepnet.backend import BACKEND_NAMES, DTYPE_NAMES, backend_key, to_numpy
from deepnet.errors import CheckpointError, InputError
from deepnet.interrupts import Interrupts, ctrl_c_held
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
        parts = text.replace(" ", "").split(",")
        if parts and parts[-1] == "":  # one trailing comma is harmless: 64,10,
            parts.pop()
        dims = [int(part) for part in parts]  # an empty field (64,,10) is a typo: refused
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer sizes such as 64,128,64,10; got {text!r}"
        ) from None
    if len(dims) < 2 or any(n < 1 for n in dims):
        raise argparse.ArgumentTypeError(
            f"expected at least two positive layer sizes (input and output); got {text!r}"
        )
    return dims


def _spelled(text: str) -> str:
    """A dtype name as ``DEEPNET_DTYPE`` takes it: case and spaces do not matter."""
    return text.strip().lower()


def _activation_list(text: str) -> str | list[str]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    return parts[0] if len(parts) == 1 else parts


def _batch_size(text: str) -> int | None:
    if text.strip().lower() in ("none", "full"):
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, or 'full' for the whole set; got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"batch size must be a positive integer, or 'full' for the whole set; got {text!r}"
        )
    return value


def _own_learning_rates() -> str:
    """``adam 0.001, gd 0.1, ...``: each optimizer's default α."""
    rates = {name: cls.default_learning_rate for name, cls in OPTIMIZERS.items()}
    return ", ".join(f"{name} {rate:g}" for name, rate in sorted(rates.items()))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``deepnet train``; every help ends with its default, written once (no
    ArgumentDefaultsHelpFormatter: it would repeat the defaults the texts already give)."""
    add = parser.add_argument
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
        help="stop after PATIENCE epochs without a better validation cost (the training "
        "cost with --validation 0) and keep the best epoch (default: off)")
    add("--l2", type=float, default=0.0, help="L2 regularization λ (default: %(default)s)")
    add("--keep-prob", type=float, default=1.0,
        help="dropout keep probability of the hidden layers (default: %(default)s, no "
        "dropout)")
    add("--backend", type=backend_key, choices=BACKEND_NAMES, default=None,
        help="array library (default: DEEPNET_BACKEND, else numpy)")
    add("--device", default=None,
        help="e.g. cuda:0 (torch), 1 (cupy) (default: DEEPNET_DEVICE, else the library's "
        "own)")
    add("--dtype", type=_spelled, choices=DTYPE_NAMES, default=None,
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


# -- the command --------------------------------------------------------------------------


def _load_data(name: str, seed: int) -> tuple:
    """``(X_train, Y_train, X_test, Y_test, n_classes)`` on the host."""
    if name == "digits":
        d = datasets.load_digits()
        return d.X_train, d.y_train, d.X_test, d.y_test, 10
    makers: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
        "flower": datasets.make_flower, "moons": datasets.make_moons,
        "circles": datasets.make_circles}
    X, Y = makers[name](1000, seed=seed)
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
    if args.checkpoint is None:
        _make_default_directory()
    checkpoint = paths.output_file(checkpoint_text, CHECKPOINT, probe=True)  # first: the
    if not args.no_plot and plot_text is None:               # default plot derives from it
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


def train(args: argparse.Namespace) -> int:
    """Run ``deepnet train`` with parsed ``args``; the exit status."""
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

    with Interrupts() as interrupts:
        return _run(args, net, optimizer, checkpoint, plot, skipped, interrupts)


def _run(args: argparse.Namespace, net: DeepNet, optimizer: optimizers.Optimizer,
         checkpoint: str, plot: str | None, skipped: str | None,
         interrupts: Interrupts) -> int:
    """Load the data, train, save, report and plot; Ctrl-C handled phase by phase."""
    X_train, Y_train, X_test, Y_test, _ = _load_data(args.dataset, args.seed)
    batch = "full batch" if args.batch_size is None else f"batches of {args.batch_size}"
    m = X_train.shape[1]
    held = round(args.validation * m) if args.validation else 0
    split = f"{m - held} train + {held} validation" if held else f"{m} train"
    print(f"deepnet train: {args.dataset} ({split} / {X_test.shape[1]} test), "
          f"{list(net.layer_dims)} {'/'.join(dict.fromkeys(net.activations))}, "
          f"{args.optimizer} α={optimizer.learning_rate:g}, {args.epochs} epochs in {batch}, "
          f"{net.backend.label} {net.dtype_name}", flush=True)
    interrupts.check()

    comm = distributed.init()  # under mpiexec/torchrun, one fit across the ranks
    start = time.perf_counter()
    try:
        history = net.fit(
            X_train, Y_train, epochs=args.epochs, batch_size=args.batch_size,
            optimizer=optimizer, seed=args.seed, validation=args.validation or None,
            early_stopping=args.early_stopping, callbacks=[interrupts.check],
            progress=False if args.no_progress else None, comm=comm,
        )
        if not comm.is_root:
            return 0  # one network across the ranks: rank 0 saves, reports and plots it
        seconds = time.perf_counter() - start
        interrupts.check()
        with ctrl_c_held():
            net.save(checkpoint)
    except KeyboardInterrupt:  # in fit, or just after it: keep what was learned
        done = net.history.epochs if net.history is not None else 0
        if not comm.is_root:
            return 130
        if not done:
            print("deepnet train: interrupted before the first epoch ended; nothing saved",
                  file=sys.stderr)
            return 130
        with contextlib.suppress(KeyboardInterrupt), ctrl_c_held():
            net.save(checkpoint)
        print(f"deepnet train: interrupted after {done} completed epochs; saved them to "
              f"{checkpoint}", file=sys.stderr)
        return 130
    plotted = False
    try:
        rate = history.epochs / seconds if seconds > 0 else float("inf")
        stopped = (f" (early stop; best epoch {(history.best_epoch or 0) + 1})"
                   if history.stopped_early else "")
        print(f"{history.epochs} epochs in {seconds:.2f} s ({rate:.1f} epochs/s){stopped}; "
              f"final cost {history.cost[-1]:.4f}"
              + (f", validation cost {history.val_cost[-1]:.4f}" if history.val_cost else ""))
        print(f"train accuracy {accuracy(net, X_train, Y_train):.4f}   "
              f"test accuracy {accuracy(net, X_test, Y_test):.4f}")
        print(f"checkpoint: {checkpoint}")
        interrupts.check()
        if skipped is not None:
            print(f"plot: skipped ({skipped})")
        elif plot is not None:
            with ctrl_c_held():  # matplotlib's callbacks would swallow it, or worse
                line = _plot(history, plot, f"{args.dataset} {list(net.layer_dims)}")
                plotted = True
            print(line)
        interrupts.check()
    except KeyboardInterrupt:
        if plot is None:
            tail = ""
        elif plotted:
            tail = f" and so is the plot {plot}"
        else:
            tail = f"; the plot {plot} was not written (any previous file there is unchanged)"
        print(f"deepnet train: interrupted; the checkpoint {checkpoint} is saved{tail}",
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


__all__ = ["DATASETS", "DEFAULT_DIR", "PLOT_FORMATS", "accuracy", "add_arguments", "train"]
