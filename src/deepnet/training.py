"""The ``fit`` loop: epochs of mini-batches, a history, callbacks, early stopping, progress.

One epoch is one pass over the training set::

    for each mini-batch (X{t}, Y{t}) of a fresh shuffle (or the whole set, batch_size=None):
        forward, cost, backward, update          (deepnet.step.train_step)

Everything stays on the network's device. The batch costs are summed there, weighted by
the batch sizes; the epoch's numbers (cost, finiteness of the parameters, accuracies,
validation cost) are stacked into one small array and read back to the host **once per
epoch**, never once per step. Shuffling orders come from a host
``numpy.random.Generator`` (``deepnet.backend.host_rng``) and move to the device as one
index array per epoch, so one seed trains the same network on every backend.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

from deepnet import checks
from deepnet import optimizers as _optimizers
from deepnet.backend import Array, host_rng, to_numpy
from deepnet.errors import DivergenceError, InputError
from deepnet.history import (
    MONITORS,
    Callback,
    EarlyStopping,
    History,
    StopTraining,
    _check_callbacks,
    _check_early_stopping,
    _check_monitor,
)
from deepnet.model import Model
from deepnet.step import train_step

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


# -- device helpers -----------------------------------------------------------------------


def _copy(params: Mapping[str, Array], xp: Any, reuse: dict | None = None) -> dict[str, Array]:
    """A device copy of ``params``, written into ``reuse``'s arrays when it has them.

    Taken once per epoch; with ``batch_size=None`` an epoch is one step, so allocating
    it anew each time (multi-MB arrays, page faults) cost up to half a step.
    """
    if reuse is None or reuse.keys() != params.keys():
        return {k: xp.asarray(v, copy=True) for k, v in params.items()}
    for key, value in params.items():
        reuse[key][...] = value
    return reuse


def _restore(net: Model, saved: Mapping[str, Array]) -> None:
    """Write ``saved`` back into the live parameter arrays, in place."""
    for key, value in saved.items():
        net._params[key][...] = value


def _opt_snapshot(opt: _optimizers.Optimizer, xp: Any, reuse: tuple | None = None) -> tuple:
    """The optimizer's step count and moments (device copies; scratch buffers left out),
    written into the arrays of an earlier snapshot ``reuse`` where they match."""
    old = reuse[1] if reuse is not None else {}
    state = {}
    for key, slot in opt.state.items():
        moments = {name: v for name, v in slot.items() if name != "scratch"}
        state[key] = _copy(moments, xp, old.get(key))
    return opt.t, state


def _opt_restore(opt: _optimizers.Optimizer, snapshot: tuple) -> None:
    """Put back what :func:`_opt_snapshot` saved; moments made since are dropped."""
    opt.t, saved = snapshot
    for key in list(opt.state):
        slot = opt.state[key]
        for name in list(slot):
            if name == "scratch":
                continue
            if key in saved and name in saved[key]:
                slot[name][...] = saved[key][name]
            else:
                del slot[name]


def _all_finite(params: Mapping[str, Array], xp: Any) -> Array:
    """A 0-d boolean on the device: probably every parameter is finite (no read back).

    The sum of each parameter is finite when every value is (NaN and inf propagate):
    one read of each, no boolean array as large as it. A sum can also overflow from
    finite values; :func:`_exactly_finite` then settles it, on that rare path only.
    """
    flags = [xp.isfinite(xp.sum(v)) for v in params.values()]
    return xp.all(xp.stack(flags))


def _exactly_finite(params: Mapping[str, Array], xp: Any) -> bool:
    """Whether every parameter value is finite (one read back)."""
    return all(bool(xp.all(xp.isfinite(v))) for v in params.values())


def _accuracy(net: Model, AL: Array, Y: Array) -> Array:
    """Fraction of correct predictions, a 0-d array on the device."""
    xp = net.xp
    if net.output == "softmax":
        hit = xp.argmax(AL, axis=0) == xp.argmax(Y, axis=0)
    else:
        hit = (AL > 0.5) == (Y > 0.5)
    return xp.mean(xp.astype(hit, net.dtype))


def _split(net: Model, X: Array, Y: Array, fraction: float, rng: Any):
    """Hold out ``round(fraction · m)`` random examples as the validation set."""
    m = X.shape[1]
    n_val = round(fraction * m)
    if not 1 <= n_val <= m - 1:
        raise InputError(
            f"validation fraction {fraction} of m = {m} examples leaves "
            f"{n_val} for validation and {m - n_val} for training; each needs at least one"
        )
    order = rng.permutation(m)
    val_idx, train_idx = order[:n_val], order[n_val:]
    val_idx.sort()
    train_idx.sort()
    xp = net.xp
    tv = net.backend.asarray(val_idx, what="validation indices")
    tt = net.backend.asarray(train_idx, what="training indices")
    return (xp.take(X, tt, axis=1), xp.take(Y, tt, axis=1),
            xp.take(X, tv, axis=1), xp.take(Y, tv, axis=1))


def _progress_bar(progress: bool | None, epochs: int):
    """A tqdm bar over the epochs, or ``None`` when silent."""
    if progress is None:
        progress = bool(getattr(sys.stderr, "isatty", lambda: False)())
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=epochs, unit="epoch", file=sys.stderr, dynamic_ncols=True,
                desc="fit", leave=True)


# -- the loop ---------------------------------------------------------------------------


def fit(
    net: Model,
    X: Any,
    Y: Any,
    epochs: int,
    batch_size: int | None = None,
    optimizer: str | _optimizers.Optimizer = "gd",
    learning_rate: float | None = None,
    seed: int | None = None,
    validation: Any = None,
    early_stopping: EarlyStopping | int | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool | None = None,
    *,
    train_accuracy: bool = True,
) -> History:
    """Train ``net`` on ``X (n0, m)`` and ``Y`` for ``epochs`` passes; return the history.

    Parameters
    ----------
    net : the network; its parameters are updated in place.
    X, Y : training examples in columns and their labels, in any layout ``net.cost``
        accepts (e.g. integer class labels ``(m,)`` for a softmax output).
    epochs : number of passes over the training set.
    batch_size : examples per mini-batch; ``None`` (or ``≥ m``) uses the whole set, one
        step per epoch as in the notes. Otherwise a fresh shuffle each epoch; the last,
        smaller batch is kept.
    optimizer : ``"gd"``, ``"momentum"``, ``"rmsprop"``, ``"adam"`` or an
        ``deepnet.optimizers.Optimizer`` (whose state carries over between fits).
    learning_rate : α0; ``None`` keeps the optimizer's own default.
    seed : seed of the host RNG of the shuffles and the validation split; ``None``
        continues the network's own RNG (seeded by ``DeepNet(seed=...)``).
    validation : ``(X_val, Y_val)``, or a fraction in (0, 1) of the training set held
        out (at random, before training) to validate on.
    early_stopping : ``EarlyStopping(patience, min_delta, monitor)`` or a patience.
    callbacks : callables ``cb(net, epoch, logs)`` run at each epoch's end, with
        ``logs`` holding the epoch's ``cost``, ``val_cost``, ``accuracy``,
        ``val_accuracy``, ``time`` and ``learning_rate``; returning ``False`` or raising
        :class:`StopTraining` ends training.
    progress : a tqdm bar over the epochs on stderr; ``None`` shows it when stderr is a
        terminal, ``False`` silences it. Nothing else is printed.
    train_accuracy : compute the training-set accuracy each epoch (one extra forward
        pass over ``X``; sigmoid and softmax outputs only).

    Returns
    -------
    History, also kept as ``net.history``.

    Raises
    ------
    DivergenceError
        When the cost or a parameter is NaN or inf at an epoch's end; the parameters of
        the last finite epoch are put back first.
    KeyboardInterrupt
        Re-raised after putting back the parameters of the last completed epoch;
        ``net.history`` holds the completed epochs.
    """
    if not isinstance(net, Model):
        raise InputError(f"fit needs a deepnet.DeepNet; got {type(net).__name__}")
    epochs = checks.positive_int(epochs, "epochs")
    if batch_size is not None:
        batch_size = checks.positive_int(batch_size, "batch_size")
    if learning_rate is not None:
        checks.real_number(learning_rate, "learning_rate", low=0.0, low_open=True)
    validation = _check_validation(validation)
    stopper = _check_early_stopping(early_stopping)
    callbacks = _check_callbacks(callbacks)
    if progress is not None and not isinstance(progress, bool):
        raise InputError(f"progress must be True, False or None (auto); got {progress!r}")
    classifier = net.output in ("sigmoid", "softmax")
    train_accuracy = bool(train_accuracy) and classifier
    has_val = validation is not None
    monitor = (stopper.monitor if stopper and stopper.monitor else
               ("val_cost" if has_val else "cost"))
    if stopper is not None:
        _check_monitor(monitor, validation=has_val, classifier=classifier,
                       accuracy=train_accuracy)
    rng = net._rng if seed is None else host_rng(seed)
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
    if isinstance(optimizer, _optimizers.Optimizer):
        optimizer.check_state(net._update_targets())

    X = net._check_X(X)
    Y = net._check_Y(Y, X.shape[1])
    if isinstance(validation, tuple):
        X_val = net._check_X(validation[0], "X_val")
        Y_val = net._check_Y(validation[1], X_val.shape[1], "Y_val")
    if isinstance(validation, float):
        X, Y, X_val, Y_val = _split(net, X, Y, validation, rng)
    opt = _optimizers.get(optimizer, learning_rate)  # last: it sets an object's α

    loop = _Loop(net, X, Y, opt, batch_size, rng, train_accuracy)
    if has_val:
        loop.X_val, loop.Y_val = X_val, Y_val
    return loop.run(epochs, stopper, monitor, callbacks, _progress_bar(progress, epochs))


class _Loop:
    """The state of one ``fit`` call (kept out of ``fit`` to keep each piece readable)."""

    def __init__(self, net, X, Y, opt, batch_size, rng, train_accuracy):
        self.net, self.X, self.Y, self.opt, self.rng = net, X, Y, opt, rng
        self.m = X.shape[1]
        self.batch_size = None if batch_size is None or batch_size >= self.m else batch_size
        self.train_accuracy = train_accuracy
        self.X_val = self.Y_val = None
        self.xp = net.xp

    # one epoch on the device; returns the stacked numbers, still on the device
    def _epoch(self) -> Array:
        net, xp, X, Y, m = self.net, self.xp, self.X, self.Y, self.m
        if self.batch_size is None:
            total = train_step(net, X, Y, self.opt)
        else:
            order = net.backend.asarray(self.rng.permutation(m), what="shuffle order")
            total = None
            for start in range(0, m, self.batch_size):
                stop = min(start + self.batch_size, m)  # the last batch may be smaller
                idx = order[start:stop]
                size = stop - start
                J = train_step(net, xp.take(X, idx, axis=1), xp.take(Y, idx, axis=1),
                               self.opt) * (size / m)
                total = J if total is None else total + J
        values = [total, xp.astype(_all_finite(net._params, xp), net.dtype)]
        if self.train_accuracy:
            AL, _ = net._forward(X)
            values.append(_accuracy(net, AL, Y))
        if self.X_val is not None:
            AL, caches = net._forward(self.X_val)
            values.append(net._cost(AL, self.Y_val, caches))
            if net.output in ("sigmoid", "softmax"):
                values.append(_accuracy(net, AL, self.Y_val))
        return xp.stack([xp.reshape(v, ()) for v in values])

    def _logs(self, host: Any, seconds: float) -> dict[str, float | None]:
        values = [float(v) for v in host]
        logs: dict[str, float | None] = dict.fromkeys(MONITORS)
        logs["cost"] = values[0]
        rest = values[2:]
        if self.train_accuracy:
            logs["accuracy"] = rest.pop(0)
        if self.X_val is not None:
            logs["val_cost"] = rest.pop(0)
            if rest:
                logs["val_accuracy"] = rest.pop(0)
        logs["time"] = seconds
        logs["learning_rate"] = self.opt.alpha
        return logs

    def run(self, epochs, stopper, monitor, callbacks, bar) -> History:
        net, xp = self.net, self.xp
        history = History(monitor=monitor)
        net.history = history
        sign = -1.0 if monitor.endswith("accuracy") else 1.0  # minimize sign * value
        best = math.inf
        best_params = None  # None while the best epoch's parameters are the live ones
        # start_params: a device copy of the parameters at the epoch's start, i.e. the
        # last completed epoch's; it is never live, so it can also serve as best_params.
        # start_opt: the optimizer's step count and moments then, put back with them.
        wait = 0
        start_params = start_opt = None
        in_epoch = False
        try:
            for epoch in range(epochs):
                self.opt.set_epoch(epoch)
                t0 = time.perf_counter()
                spare = start_params if start_params is not best_params else None
                start_params = _copy(net._params, xp, reuse=spare)
                start_opt = _opt_snapshot(self.opt, xp, reuse=start_opt)
                in_epoch = True  # from here on an interruption puts start_params back
                if history.best_epoch == epoch - 1 and best_params is None and epoch > 0:
                    best_params = start_params  # the best epoch's end = this epoch's start
                with net.backend.quiet_float_errors():  # divergence is reported below
                    host = to_numpy(self._epoch())  # the one read back of this epoch
                seconds = time.perf_counter() - t0
                finite = float(host[1]) == 1.0 or _exactly_finite(net._params, xp)
                if not (math.isfinite(float(host[0])) and finite):
                    _restore(net, start_params)
                    _opt_restore(self.opt, start_opt)
                    in_epoch = False
                    raise self._divergence(epoch, epochs, float(host[0]))
                in_epoch = False
                logs = self._logs(host, seconds)
                self._record(history, logs)

                value = sign * logs[monitor]
                margin = stopper.min_delta if stopper else 0.0
                if value < best - margin or history.best_epoch is None:
                    best, wait = value, 0
                    history.best_epoch, best_params = epoch, None
                else:
                    wait += 1
                stop = stopper is not None and wait >= stopper.patience
                for cb in callbacks:
                    try:
                        if cb(net, epoch, dict(logs)) is False:
                            stop = True
                    except StopTraining:
                        stop = True
                if bar is not None:
                    self._show(bar, logs)
                if stop:
                    history.stopped_early = epoch < epochs - 1
                    break
        except BaseException:
            if in_epoch and start_params is not None:
                _restore(net, start_params)
                _opt_restore(self.opt, start_opt)
            raise
        finally:
            if bar is not None:
                bar.close()
        if stopper is not None and stopper.restore_best and best_params is not None:
            _restore(net, best_params)
        return history

    @staticmethod
    def _record(history: History, logs: dict) -> None:
        history.cost.append(logs["cost"])
        for key in ("val_cost", "accuracy", "val_accuracy"):
            if logs[key] is not None:
                getattr(history, key).append(logs[key])
        history.time.append(logs["time"])
        history.learning_rate.append(logs["learning_rate"])

    @staticmethod
    def _show(bar: Any, logs: dict) -> None:
        shown = {"cost": f"{logs['cost']:.4g}"}
        if logs["val_cost"] is not None:
            shown["val_cost"] = f"{logs['val_cost']:.4g}"
        if logs["val_accuracy"] is not None:
            shown["val_acc"] = f"{logs['val_accuracy']:.3f}"
        elif logs["accuracy"] is not None:
            shown["acc"] = f"{logs['accuracy']:.3f}"
        bar.set_postfix(shown, refresh=False)
        bar.update(1)

    def _divergence(self, epoch: int, epochs: int, cost: float) -> DivergenceError:
        what = (f"the cost became {cost}" if not math.isfinite(cost)
                else "a parameter became NaN or inf")
        kept = ("the initial parameters" if epoch == 0 else
                f"the parameters after epoch {epoch} (the last finite ones)")
        return DivergenceError(
            f"training diverged in epoch {epoch + 1} of {epochs}: {what}; {kept} were put "
            f"back. Try a smaller learning rate (this epoch used α = {self.opt.alpha:g}) "
            "or scale the inputs (e.g. to [0, 1], or zero mean and unit variance)."
        )
