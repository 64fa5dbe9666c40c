"""``fit``: every argument checked before any work, the data path set up, then the loop.

``fit`` checks its arguments (all of them, before anything is computed or copied), turns
the training and validation data into example-major tables (``deepnet.data``), builds
the loaders that cut them into mini-batches (``deepnet.loader``) and runs the epoch loop
(``deepnet.loop``). Shuffling orders come from a host ``numpy.random.Generator``
(``deepnet.backend.host_rng``) and move to the device once per epoch, so one seed trains
the same network on every backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real
from typing import Any

from deepnet import checks, data, inputs, memory
from deepnet import optimizers as _optimizers
from deepnet.backend import host_rng
from deepnet.distributed import Communicator
from deepnet.errors import InputError
from deepnet.history import (
    Callback,
    EarlyStopping,
    History,
    _check_callbacks,
    _check_early_stopping,
    _check_monitor,
)
from deepnet.inference import EVAL_CHUNK
from deepnet.loader import Loader
from deepnet.loop import Loop, progress_bar
from deepnet.metrics import metric_for
from deepnet.model import Model

#: ``batch_size="auto"``: scikit-learn's rule, ``min(AUTO_BATCH, m)`` examples per batch.
AUTO_BATCH = 200

# -- argument checks (all before any work) ------------------------------------------------


def _check_validation(validation: Any) -> tuple | float | None:
    if validation is None:
        return None
    if isinstance(validation, Real) and not isinstance(validation, bool):
        return checks.real_number(
            validation, "validation fraction", low=0.0, high=1.0, low_open=True,
            high_open=True,
        )
    if isinstance(validation, (tuple, list)) and len(validation) == 2:
        return tuple(validation)
    raise InputError(
        "validation must be a pair (X_val, Y_val) or a fraction in (0, 1) of the training "
        f"set to hold out; got {type(validation).__name__}"
    )


def _check_batch_size(batch_size: Any, m: int) -> int | None:
    """``None`` (full batch), or the examples per mini-batch (``"auto"``: min(200, m))."""
    if batch_size is None:
        return None
    if isinstance(batch_size, str):
        if batch_size != "auto":
            raise InputError(
                "batch_size must be a positive integer, 'auto' (min(200, m)) or None (the "
                f"whole set per step); got {checks._short(batch_size)}"
            )
        return min(AUTO_BATCH, m)
    return checks.positive_int(batch_size, "batch_size")


def _check_optimizer(optimizer: Any) -> None:
    if isinstance(optimizer, str) and optimizer.lower() not in _optimizers.OPTIMIZERS:
        raise InputError(
            f"unknown optimizer {checks._short(optimizer)}; expected one of "
            f"{', '.join(_optimizers.OPTIMIZERS)} or a deepnet.optimizers.Optimizer"
        )
    if not isinstance(optimizer, (str, _optimizers.Optimizer)):
        raise InputError(
            f"optimizer must be a name ({', '.join(_optimizers.OPTIMIZERS)}) or a "
            f"deepnet.optimizers.Optimizer; got {checks._short(optimizer)}"
        )


def _split(m: int, fraction: float, rng: Any) -> tuple[Any, Any]:
    """Hold out ``round(fraction · m)`` random examples: ``(train, validation)`` positions,
    each sorted."""
    import numpy as np

    n_val = round(fraction * m)
    if not 1 <= n_val <= m - 1:
        raise InputError(
            f"validation fraction {fraction} of m = {m} examples leaves "
            f"{n_val} for validation and {m - n_val} for training; each needs at least one"
        )
    order = rng.permutation(m)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _check_memory(net: Model, X: Any, validation: Any, batch_size: Any,
                  optimizer: Any) -> None:
    """Refuse (``InputError``) a fit whose copies and buffers do not fit in the memory
    available now, before any of them is made: the example-major copies of ``X`` and
    ``Y`` (none for a memory map), the workspaces of a batch and of the last one, the
    gather buffers, the optimizer's moments and the per-epoch snapshots."""
    dims, s = net.layer_dims, memory.itemsize(net.dtype_name)
    _, m = inputs.feature_shape(X, dims[0], "X")
    size = None if batch_size is None else _check_batch_size(batch_size, m)
    b = m if size is None else min(m, size)
    P = sum(dims[l] * (dims[l - 1] + 1) for l in range(1, len(dims)))
    name = optimizer if isinstance(optimizer, str) else getattr(optimizer, "name", "gd")
    moments = len(_optimizers.OPTIMIZERS.get(str(name).lower(), _optimizers.GD).moments)
    copies = 0 if data.memmap_file(X) else m * (dims[0] + dims[-1]) * s
    if isinstance(validation, tuple) and not data.memmap_file(validation[0]):
        m_val = inputs.feature_shape(validation[0], dims[0], "X_val")[1]
        copies += m_val * (dims[0] + dims[-1]) * s
    evaluation = sum(dims) * min(m, EVAL_CHUNK) * s
    buffers = (2 * memory.workspace_bytes(dims, b, net.dtype_name)
               + 2 * b * (dims[0] + dims[-1]) * s + evaluation)
    state = P * s * (2 * moments + 2)  # moments, scratch, snapshots of both
    memory.require(memory.Need(0, copies + buffers + state), net.backend,
                   f"fit on {m:,} examples of {dims[0]} features in batches of {b:,}",
                   "use smaller batches, or pass X as a memory map (np.load(path, "
                   "mmap_mode='r')) to stream it")


def fit(
    net: Model,
    X: Any,
    Y: Any,
    epochs: int = 200,
    batch_size: int | str | None = "auto",
    optimizer: str | _optimizers.Optimizer = "adam",
    learning_rate: float | None = None,
    seed: int | None = None,
    validation: Any = None,
    early_stopping: EarlyStopping | int | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool | None = None,
    *,
    train_metrics: bool = True,
    comm: Any = None,
    prefetch: bool = True,
) -> History:
    """Train ``net`` on ``X (n0, m)`` and ``Y``: what :meth:`deepnet.DeepNet.fit` runs.

    Parameters
    ----------
    net : Model
        The network, trained in place.
    X, Y, epochs, batch_size, optimizer, learning_rate, seed, validation
        As in :meth:`deepnet.DeepNet.fit`, which documents them.
    early_stopping, callbacks, progress, train_metrics, comm, prefetch
        As in :meth:`deepnet.DeepNet.fit`.

    Returns
    -------
    History
        Also kept as ``net.history``.
    """
    if not isinstance(net, Model):
        raise InputError(f"fit needs a deepnet.DeepNet; got {type(net).__name__}")
    epochs = checks.positive_int(epochs, "epochs")
    if learning_rate is not None:
        checks.real_number(learning_rate, "learning_rate", low=0.0, low_open=True)
    validation = _check_validation(validation)
    stopper = _check_early_stopping(early_stopping)
    callbacks = _check_callbacks(callbacks)
    if progress is not None and not isinstance(progress, bool):
        raise InputError(f"progress must be True, False or None (auto); got {progress!r}")
    train_metrics = checks.boolean(train_metrics, "train_metrics")
    prefetch = checks.boolean(prefetch, "prefetch")
    if comm is not None and not isinstance(comm, Communicator):
        raise InputError(
            "comm must be None or a communicator from deepnet.distributed.init(); got "
            f"{checks._short(comm)}"
        )
    metric = metric_for(net.output).name
    has_val = validation is not None
    monitor = (stopper.monitor if stopper and stopper.monitor else
               ("val_cost" if has_val else "cost"))
    if stopper is not None:
        _check_monitor(monitor, validation=has_val, metric=metric,
                       metrics=bool(train_metrics))
    _check_optimizer(optimizer)
    if isinstance(optimizer, _optimizers.Optimizer):
        optimizer.check_state(net._update_targets(), net.param_shapes())
    rng = net._rng if seed is None else host_rng(seed)
    rank, size = (0, 1) if comm is None else (comm.rank, comm.size)
    if not checks.parameters_finite(net):
        raise InputError(
            "the network's parameters hold NaN or inf before training (written into "
            "net.params in place?); set finite ones with net.set_params(...) first"
        )
    _check_memory(net, X, validation, batch_size, optimizer)

    Xt = data.features(net.backend, X, net.layer_dims[0], net.dtype, "X")
    Yt = data.labels(net.backend, Y, output=net.output, nL=net.layer_dims[-1], m=Xt.m,
                     dtype=net.dtype, what="Y")
    batch_size = _check_batch_size(batch_size, Xt.m)
    val = None
    if isinstance(validation, tuple):
        Xv = data.features(net.backend, validation[0], net.layer_dims[0], net.dtype,
                           "X_val")
        Yv = data.labels(net.backend, validation[1], output=net.output,
                         nL=net.layer_dims[-1], m=Xv.m, dtype=net.dtype, what="Y_val")
        val = (Xv, Yv)
    elif isinstance(validation, float):
        train_at, val_at = _split(Xt.m, validation, rng)
        val = (Xt.subset(val_at), Yt.subset(val_at))
        Xt, Yt = Xt.subset(train_at), Yt.subset(train_at)
    if batch_size is not None and batch_size >= Xt.m:
        batch_size = None
    if comm is not None:
        comm.agree_fit(net, Xt, Yt, val, batch_size, seed, rng, epochs=epochs,
                       optimizer=optimizer, learning_rate=learning_rate, stopper=stopper,
                       monitor=monitor)
    opt = _optimizers.get(optimizer, learning_rate)  # last: it sets an object's α
    opt.bind(net.param_shapes())

    loaders = dict(dtype=net.dtype, rank=rank, size=size, prefetch=prefetch)
    train = Loader(net.backend, Xt, Yt, **loaders)
    val_loader = None if val is None else Loader(net.backend, *val, **loaders)
    loop = Loop(net, opt, train, val_loader, batch_size, rng, metrics=bool(train_metrics),
                comm=comm, eval_chunk=EVAL_CHUNK)
    bar = progress_bar(progress if rank == 0 else False, epochs)
    return loop.run(epochs, stopper, monitor, callbacks, bar)


__all__ = ["AUTO_BATCH", "fit"]
