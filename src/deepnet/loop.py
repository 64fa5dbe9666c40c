"""The epoch loop of ``fit``: steps, the once-per-epoch read back, snapshots and restores.

One epoch is one pass over the training set::

    for each mini-batch (X{t}, Y{t}) of a fresh shuffle (or the whole set, batch_size=None):
        forward, cost, backward, update          (deepnet.step.step)

Everything stays on the network's device. The batch costs (and the metric's sums) are
added up there; the epoch's numbers — cost, finiteness of the parameters, metric,
validation cost and metric — are stacked into one small array and read back to the host
**once per epoch**, never once per step.

What a failure leaves: at each epoch's start the loop keeps a device copy of the
parameters, the optimizer's state and both host RNGs' states. A divergence, an exception
or Ctrl-C in the middle of an epoch puts all of them back, so the network is exactly as
after its last completed epoch, ``net.history`` holds the completed epochs (or, when none
completed, the history it had before the fit).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from deepnet import inference
from deepnet import metrics as _metrics
from deepnet import optimizers as _optimizers
from deepnet.backend import Array, to_numpy
from deepnet.distributed import raised_everywhere
from deepnet.errors import DivergenceError
from deepnet.history import MONITORS, Callback, EarlyStopping, History, StopTraining
from deepnet.loader import Loader, plan
from deepnet.model import Model
from deepnet.step import step

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
    """The optimizer's counters and moments (device copies; scratch buffers left out),
    written into the arrays of an earlier snapshot ``reuse`` where they match."""
    old = reuse[2] if reuse is not None else {}
    state = {}
    for key, slot in opt.state.items():
        moments = {name: v for name, v in slot.items() if name != "scratch"}
        state[key] = _copy(moments, xp, old.get(key))
    return opt.t, opt.epochs, state


def _opt_restore(opt: _optimizers.Optimizer, snapshot: tuple) -> None:
    """Put back what :func:`_opt_snapshot` saved; moments made since are dropped."""
    opt.t, opt.epochs, saved = snapshot
    for key in list(opt.state):
        slot = opt.state[key]
        for name in list(slot):
            if name == "scratch":
                continue
            if key in saved and name in saved[key]:
                slot[name][...] = saved[key][name]
            else:
                del slot[name]


def all_finite(params: Mapping[str, Array], xp: Any) -> Array:
    """Whether probably every parameter is finite, as a 0-d boolean on the device (no
    read back).

    The sum of each parameter is finite when every value is (NaN and inf propagate):
    one read of each, no boolean array as large as it. A sum can also overflow from
    finite values; :func:`exactly_finite` then settles it, on that rare path only.

    Parameters
    ----------
    params : mapping of str to array
        The parameters (or ``{"flat": flat}``, the flat array of them all).
    xp : namespace
        Their Array API namespace.
    """
    flags = [xp.isfinite(xp.sum(v)) for v in params.values()]
    return xp.all(xp.stack(flags))


def exactly_finite(params: Mapping[str, Array], xp: Any) -> bool:
    """Whether every parameter value is finite (one read back per parameter).

    Parameters
    ----------
    params : mapping of str to array
    xp : namespace
    """
    return all(bool(xp.all(xp.isfinite(v))) for v in params.values())


def progress_bar(progress: bool | None, epochs: int) -> Any:
    """A tqdm bar over the epochs on stderr, or ``None`` when silent.

    Parameters
    ----------
    progress : bool or None
        ``None`` shows the bar when stderr is a terminal.
    epochs : int
        The bar's length.
    """
    if progress is None:
        progress = bool(getattr(sys.stderr, "isatty", lambda: False)())
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=epochs, unit="epoch", file=sys.stderr, dynamic_ncols=True,
                desc="fit", leave=True)


def evaluate_sums(net: Model, loader: Loader, chunk: int) -> tuple[Array, Array]:
    """``(Σ loss, Σ metric)`` of the network (no dropout) over this process's share of
    ``loader``'s examples, read in order ``chunk`` at a time (``inference.sums``)."""
    return inference.sums(net, loader.sequential(chunk))


# -- the loop ---------------------------------------------------------------------------


class Loop:
    """The state of one ``fit`` call: its network, optimizer, data and RNG.

    Parameters
    ----------
    net : Model
    opt : Optimizer
    train : Loader
        The training set.
    val : Loader or None
        The validation set.
    batch_size : int or None
        Examples per mini-batch; ``None`` for one full batch per epoch.
    rng : numpy.random.Generator
        The host generator of the epochs' shuffles.
    metrics : bool
        Record the training metric (accuracy or mse) during each epoch.
    comm : communicator or None
        Data-parallel training across processes.
    eval_chunk : int
        Examples per forward pass of the validation.
    """

    def __init__(self, net: Model, opt: _optimizers.Optimizer, train: Loader,
                 val: Loader | None, batch_size: int | None, rng: np.random.Generator, *,
                 metrics: bool, comm: Any, eval_chunk: int) -> None:
        self.net, self.opt, self.train, self.val, self.rng = net, opt, train, val, rng
        self.m = train.m
        self.batch_size = batch_size
        self.metric = _metrics.metric_for(net.output)
        self.metrics = metrics
        self.comm = comm
        self.eval_chunk = eval_chunk
        self.xp = net.xp

    # one epoch on the device; returns the stacked numbers, still on the device
    def _epoch(self) -> Array:
        net, xp, m = self.net, self.xp, self.m
        metric = self.metric.total if self.metrics else None
        total = metric_sum = None
        for parts, b in self.train.epoch(plan(self.rng, m, self.batch_size)):
            J, value = step(net, parts, self.opt, b, metric=metric, comm=self.comm)
            J = J if b == m else J * (b / m)
            total = J if total is None else total + J
            if value is not None:
                metric_sum = value if metric_sum is None else metric_sum + value
        zero = xp.zeros((), dtype=net.dtype, device=net.backend.device)
        params = {"flat": net._flat} if net._flat is not None else net._params
        values = [total, xp.astype(all_finite(params, xp), net.dtype),
                  zero if metric_sum is None else metric_sum]
        if self.val is not None:
            loss, val_metric = evaluate_sums(net, self.val, self.eval_chunk)
            l2 = net._l2_cost(self.val.m) if net.l2 > 0.0 else zero
            values += [loss, l2, val_metric]
        return xp.stack([xp.reshape(v, ()) for v in values])

    def _logs(self, host: np.ndarray, seconds: float) -> dict[str, Any]:
        values = [float(v) for v in host]
        if self.comm is not None and self.comm.size > 1:  # this process's sums, added up
            summed = [2] + ([3, 5] if self.val is not None else [])
            totals = self.comm.allreduce_host(np.array([values[i] for i in summed]))
            for i, v in zip(summed, totals):
                values[i] = float(v)
        logs: dict[str, float | None] = dict.fromkeys(MONITORS)
        logs["cost"] = values[0]
        nL, name = self.net.layer_dims[-1], self.metric.name
        if self.metrics:
            logs[name] = _metrics.mean(self.metric, values[2], self.m, nL)
        if self.val is not None:
            logs["val_cost"] = values[3] / self.val.m + values[4]
            logs["val_" + name] = _metrics.mean(self.metric, values[5], self.val.m, nL)
        logs["time"] = seconds
        logs["learning_rate"] = self.opt.alpha
        return logs

    def run(self, epochs: int, stopper: EarlyStopping | None, monitor: str,
            callbacks: Sequence[Callback], bar: Any) -> History:
        """Train for up to ``epochs`` epochs and return the history (also ``net.history``).

        Parameters
        ----------
        epochs : int
        stopper : EarlyStopping or None
        monitor : str
            What ``History.best_epoch`` (and early stopping) follows: ``"cost"``,
            ``"val_cost"``, ``"accuracy"``, ...
        callbacks : sequence of callables
            ``cb(net, epoch, logs)`` after each epoch.
        bar : tqdm bar or None

        Raises
        ------
        DivergenceError
            When the cost or a parameter becomes NaN or inf.
        """
        net, xp = self.net, self.xp
        history = History(monitor=monitor)
        before = net.history
        net.history = history
        sign = -1.0 if monitor.endswith("accuracy") else 1.0  # minimize sign * value
        best = math.inf
        best_params = None  # None while the best epoch's parameters are the live ones
        # start_*: the parameters, optimizer and RNGs at the epoch's start, i.e. after the
        # last completed epoch; start_params is never live, so it can serve as best_params
        wait = 0
        start_params: dict | None = None
        start_opt: Any = None  # the optimizer's snapshot (_opt_snapshot)
        rngs = (self.rng, net._rng)
        in_epoch = False
        try:
            for epoch in range(epochs):
                self.opt.set_epoch(self.opt.epochs)
                t0 = time.perf_counter()
                spare: dict | None = start_params if start_params is not best_params else None
                start_params = _copy(net._params, xp, reuse=spare)
                start_opt = _opt_snapshot(self.opt, xp, reuse=start_opt)
                start_rngs = [r.bit_generator.state for r in rngs]
                in_epoch = True  # from here on a failure puts the epoch's start back
                if history.best_epoch == epoch - 1 and best_params is None and epoch > 0:
                    best_params = start_params  # the best epoch's end = this epoch's start
                with net.backend.quiet_float_errors():  # divergence is reported below
                    host = to_numpy(self._epoch())  # the one read back of this epoch
                seconds = time.perf_counter() - t0
                finite = float(host[1]) == 1.0 or exactly_finite(net._params, xp)
                if not (math.isfinite(float(host[0])) and finite):
                    # every process decides this from the same all-reduced numbers
                    raise raised_everywhere(self._divergence(epoch, epochs, float(host[0])))
                logs = self._logs(host, seconds)
                if logs["val_cost"] is not None and not math.isfinite(logs["val_cost"]):
                    raise raised_everywhere(self._bad_validation(epoch, epochs,
                                                                 logs["val_cost"]))
                in_epoch = False
                self.opt.epochs += 1
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
                if self.comm is not None and self.comm.size > 1:
                    # a callback may stop one process only (its own clock, files): every
                    # process stops with it, or the others would wait in the next step
                    stop = bool(self.comm.allreduce_host([float(stop)])[0] > 0.0)
                if bar is not None:
                    self._show(bar, logs)
                if stop:
                    history.stopped_early = epoch < epochs - 1
                    break
        except BaseException as exc:
            if self.comm is not None:  # the other processes stop with it, never hang
                self.comm.fail(exc)
            if in_epoch and start_params is not None:
                _restore(net, start_params)
                _opt_restore(self.opt, start_opt)
                for r, state in zip(rngs, start_rngs):
                    r.bit_generator.state = state
            if history.epochs == 0:
                net.history = before  # nothing completed: the fit left no trace
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
        for key in ("val_cost", "accuracy", "val_accuracy", "mse", "val_mse"):
            if logs[key] is not None:
                getattr(history, key).append(logs[key])
        history.time.append(logs["time"])
        history.learning_rate.append(logs["learning_rate"])

    @staticmethod
    def _show(bar: Any, logs: dict) -> None:
        shown = {"cost": f"{logs['cost']:.4g}"}
        if logs["val_cost"] is not None:
            shown["val_cost"] = f"{logs['val_cost']:.4g}"
        for key in ("val_accuracy", "accuracy", "val_mse", "mse"):
            if logs[key] is not None:
                shown[key.replace("accuracy", "acc")] = f"{logs[key]:.3g}"
                break
        bar.set_postfix(shown, refresh=False)
        bar.update(1)

    def _divergence(self, epoch: int, epochs: int, cost: float) -> DivergenceError:
        net = self.net
        what = (f"the cost became {cost}" if not math.isfinite(cost)
                else "a parameter became NaN or inf")
        kept = ("the initial parameters" if epoch == 0 else
                f"the parameters after epoch {epoch} (the last finite ones)")
        batch = min(self.batch_size or self.m, self.m)
        if net.l2 > 1e30 or self.opt.alpha * net.l2 / batch > 2.0:
            # each step scales W by about (1 - α λ / m): beyond 2 the decay itself diverges
            advice = (f"l2 = {net.l2:g} is too large: the weight decay alone overflows or "
                      f"overshoots (α λ / m = {self.opt.alpha * net.l2 / batch:.3g} per step "
                      "should stay well below 1); use a far smaller l2")
        else:
            advice = (f"Try a smaller learning rate (this epoch used α = {self.opt.alpha:g}) "
                      "or scale the inputs (e.g. to [0, 1], or zero mean and unit variance)")
        return DivergenceError(
            f"training diverged in epoch {epoch + 1} of {epochs}: {what}; {kept} were put "
            f"back. {advice}."
        )

    def _bad_validation(self, epoch: int, epochs: int, val_cost: float) -> DivergenceError:
        return DivergenceError(
            f"the validation cost became {val_cost} in epoch {epoch + 1} of {epochs} while "
            "the training cost stayed finite: the validation examples drive the network's "
            f"{self.net.dtype_name} activations to overflow (X_val far larger than X?). "
            "Scale X_val as X was scaled, or use dtype='float64'; the parameters of the "
            "last completed epoch were put back."
        )


__all__ = ["Loop", "all_finite", "evaluate_sums", "exactly_finite", "progress_bar"]
