"""``DeepNet``: the network researchers use — a :class:`~deepnet.model.Model` with training,
checkpoints and pickling on top.

The layers of the code form a chain: ``model`` (parameters, forward, backward, cost) knows
nothing of training; ``training`` (the ``fit`` loop) and ``serialization`` (checkpoint
files) work on any ``Model``; this module, above them all, gives ``DeepNet`` its ``fit``
and ``save`` methods and defines ``load``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from deepnet import checks, data, serialization, training
from deepnet.backend import Array, Backend, device_label, get_backend, like, to_numpy
from deepnet.errors import BackendError, CheckpointError, DeepNetError
from deepnet.history import Callback, EarlyStopping, History
from deepnet.loader import Loader
from deepnet.loop import evaluate_sums
from deepnet.metrics import mean, metric_for
from deepnet.model import Model, on_device
from deepnet.optimizers import Optimizer


class DeepNet(Model):
    __doc__ = Model.__doc__

    @on_device
    def fit(
        self,
        X: Any,
        Y: Any,
        epochs: int = 200,
        batch_size: int | str | None = "auto",
        optimizer: str | Optimizer = "adam",
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
        """Train the network in place on ``X (n0, m)`` and ``Y``; return the history.

        The defaults learn: Adam with its own α = 1e-3, mini-batches of ``min(200, m)``
        examples, 200 epochs — scikit-learn's MLP defaults, which reach 0.98 test
        accuracy on the bundled digits and 0.92-1.00 on the 2-D sets (measured by
        ``benchmarks/default_fit.py``). The notes' full-batch gradient descent is
        ``fit(X, Y, epochs=..., batch_size=None, optimizer="gd", learning_rate=α)``.

        Parameters
        ----------
        X : examples in columns, ``(n0, m)``: an array of any supported library, in any
            memory order (``X.T`` of row-major ``(m, n0)`` data is used without a copy),
            or a NumPy memory map (``np.load(path, mmap_mode="r")``), which is streamed
            batch by batch and never held in memory whole.
        Y : labels in any layout :meth:`cost` accepts — ``(nL, m)``; for a softmax
            output also integer class labels ``(m,)``; for one output unit also
            ``(m,)`` — or a memory map of them.
        epochs : passes over the training set.
        batch_size : examples per mini-batch; ``"auto"`` is ``min(200, m)`` (scikit-
            learn's rule); ``None`` (or ``≥ m``) is the whole set, one step per epoch —
            the notes' iterations. Each epoch draws a fresh shuffle; a batch's examples
            are taken in increasing order; the last, smaller batch is kept.
        optimizer : ``"gd"``, ``"momentum"``, ``"rmsprop"``, ``"adam"``, or a
            :class:`deepnet.optimizers.Optimizer` object, whose moments, step count and
            schedule carry over from one ``fit`` to the next.
        learning_rate : α0; ``None`` takes the optimizer's own default (gd and momentum
            0.1, rmsprop and adam 0.001).
        seed : seed of the host RNG of the shuffles and the validation split; ``None``
            continues the network's own RNG (seeded by ``DeepNet(seed=...)``).
        validation : ``(X_val, Y_val)`` (arrays or memory maps), or a fraction in (0, 1)
            of the training set held out at random, before training, to validate on.
        early_stopping : ``EarlyStopping(patience, min_delta, monitor)`` or a patience.
        callbacks : callables ``cb(net, epoch, logs)`` run at each epoch's end; ``logs``
            holds the epoch's ``cost``, ``val_cost``, ``accuracy``, ``val_accuracy``,
            ``mse``, ``val_mse``, ``time`` and ``learning_rate`` (``None`` where not
            measured). Returning ``False`` or raising :class:`deepnet.StopTraining` ends
            training.
        progress : a tqdm bar over the epochs on stderr; ``None`` shows it when stderr
            is a terminal, ``False`` silences it. Nothing else is printed.
        train_metrics : record the training set's accuracy (classifiers) or mean
            squared error (linear output) during each epoch, from the batches' own
            forward passes (no extra pass over the data).
        comm : a communicator from :func:`deepnet.distributed.init`: every process
            passes the same data and arguments; each computes its share of every batch
            and one all-reduce per step sums the gradients (data parallel).
        prefetch : read a memory map's next batch in a background thread while the
            current step runs.

        Returns
        -------
        History
            Per-epoch numbers, also kept as ``net.history``.

        Raises
        ------
        InputError, ShapeError
            For any bad argument or data — before any work starts.
        DivergenceError
            When the cost or a parameter becomes NaN or inf; the network is put back as
            it was after its last completed epoch.
        KeyboardInterrupt
            Re-raised after putting the network back as it was after its last completed
            epoch; ``net.history`` holds the completed epochs.

        Examples
        --------
        >>> import numpy as np, deepnet as dn
        >>> X = np.random.default_rng(0).standard_normal((2, 400))
        >>> Y = (X[0] * X[1] > 0).astype(int)          # (m,) labels: XOR of the signs
        >>> net = dn.DeepNet([2, 16, 16, 1], seed=0)
        >>> history = net.fit(X, Y, epochs=60, progress=False)
        >>> history.accuracy[-1] > 0.9
        True
        """
        return training.fit(
            self, X, Y, epochs, batch_size, optimizer, learning_rate, seed=seed,
            validation=validation, early_stopping=early_stopping, callbacks=callbacks,
            progress=progress, train_metrics=train_metrics, comm=comm, prefetch=prefetch,
        )

    @on_device
    def to(self, backend: str | Backend, device: str | None = None) -> DeepNet:
        """This network (parameters, configuration, history) on another backend or device.

        The parameters travel through the host (``to_numpy``): an explicit move.
        """
        target = get_backend(backend, device)
        twin = type(self)(
            self.layer_dims, hidden=self.hidden, output=self.output, init=self.init,
            l2=self.l2, keep_prob=self.keep_prob, dtype=self.dtype_name, seed=self.seed,
            backend=target, reuse_buffers=self.reuse_buffers,
        )
        twin.set_params({k: to_numpy(v) for k, v in self._params.items()})
        twin.history = self.history
        return twin

    # -- outputs that follow the inputs --------------------------------------------------
    @property
    def device(self) -> Any:
        """The device the parameters live on, as the backend's library names it
        (``"cpu"`` for NumPy, a ``torch.device``, a CuPy ``Device``, ...)."""
        return self.backend.device

    @on_device
    def predict_proba(self, X: Any, *, batch_size: int | None = None) -> Array:
        """``A[L]`` for ``X (n0, m)``, no dropout, as an array of ``X``'s library.

        ``X`` is read ``batch_size`` examples at a time (default 4096), so no activation
        larger than ``(n[l], batch_size)`` is ever made; a memory map is streamed.
        A NumPy array (or a memory map, or a list) in gives a NumPy array out; a torch
        tensor in, a torch tensor on its device out (moved through the host where the
        network lives elsewhere).
        """
        return like(self._outputs(X, batch_size), X)

    @on_device
    def predict(self, X: Any, *, batch_size: int | None = None) -> Array:
        """Predictions for ``X (n0, m)``, as an array of ``X``'s library.

        The layouts are those of the labels ``fit`` takes, so predictions and labels
        compare directly: sigmoid → 0/1 labels ``(nL, m)`` (threshold 0.5); softmax →
        class indices ``(m,)``; both int64. linear → ``A[L]``, ``(nL, m)``.
        """
        AL = self._outputs(X, batch_size)
        xp = self.xp
        if self.output == "sigmoid":
            AL = xp.astype(AL > 0.5, xp.int64)
        elif self.output == "softmax":
            AL = xp.argmax(AL, axis=0)
        return like(AL, X)

    @on_device
    def evaluate(self, X: Any, Y: Any, *, batch_size: int | None = None) -> dict[str, float]:
        """The cost (L2 term included) and the metric of the output on ``(X, Y)``.

        Returns ``{"cost": ..., "accuracy": ...}`` for sigmoid and softmax outputs and
        ``{"cost": ..., "mse": ...}`` for a linear one — the numbers ``fit`` records as
        ``val_cost`` and ``val_accuracy``/``val_mse`` — as Python floats. ``X`` and ``Y``
        are read ``batch_size`` examples at a time (default 4096).
        """
        chunk = _chunk(batch_size)
        X, Y, m = self._inputs(X, Y)
        xp = self.xp
        with self.backend.quiet_float_errors():
            if isinstance(X, Loader):
                loss, total = evaluate_sums(self, X, chunk)
            else:
                loss = total = None
                metric = metric_for(self.output).total
                for at in range(0, m, chunk):
                    cols = slice(at, min(at + chunk, m))
                    AL, caches = self._forward(X[:, cols])
                    part = self._cost(AL, Y[:, cols], caches, m=1, l2=False)  # Σ loss
                    value = metric(AL, Y[:, cols])
                    loss = part if loss is None else loss + part
                    total = value if total is None else total + value
            cost = loss / m
            if self.l2 > 0.0:
                cost = cost + self._l2_cost(m)
            host = to_numpy(xp.stack([xp.reshape(cost, ()), xp.reshape(total, ())]))
        metric = metric_for(self.output)
        return {"cost": float(host[0]),
                metric.name: mean(metric, float(host[1]), m, self.layer_dims[-1])}

    def _inputs(self, X: Any, Y: Any = None) -> tuple[Any, Any, int]:
        """``(X, Y, m)`` checked: arrays on the device (column layout, sliced by columns
        later), or, where either is a memory map, a streaming :class:`Loader` as ``X``."""
        n0, nL = self.layer_dims[0], self.layer_dims[-1]
        if data.memmap_file(X) is None and data.memmap_file(Y) is None:
            X = self._check_X(X)
            m = X.shape[1]
            return X, (None if Y is None else self._check_Y(Y, m)), m
        Xt = data.features(self.backend, X, n0, self.dtype, "X")
        Yt = None if Y is None else data.labels(self.backend, Y, output=self.output, nL=nL,
                                                m=Xt.m, dtype=self.dtype, what="Y")
        return Loader(self.backend, Xt, Yt, self.dtype), None, Xt.m

    def _outputs(self, X: Any, batch_size: int | None) -> Array:
        """``A[L]`` on the network's backend, computed ``batch_size`` columns at a time."""
        chunk = _chunk(batch_size)
        X, _, m = self._inputs(X)
        xp, nL = self.xp, self.layer_dims[-1]
        with self.backend.quiet_float_errors():
            if not isinstance(X, Loader) and m <= chunk:
                return self._forward(X)[0]
            out = xp.empty((nL, m), dtype=self.dtype, device=self.backend.device)
            parts = X.sequential(chunk) if isinstance(X, Loader) else (
                (X[:, at:min(at + chunk, m)], None, at) for at in range(0, m, chunk))
            for A0, _, at in parts:
                out[:, at:at + A0.shape[1]] = self._forward(A0)[0]
            return out

    def summary(self) -> str:
        """A table of the layers: units, activation, shapes of ``W[l]`` and ``b[l]``,
        parameter counts; then the totals, backend, device and dtype."""
        rows = [("layer", "units", "activation", "W shape", "b shape", "parameters")]
        rows.append(("0 (input)", str(self.layer_dims[0]), "", "", "", ""))
        shapes = self.param_shapes()
        for l, g in enumerate(self.activations, start=1):
            W, b = shapes[f"W{l}"], shapes[f"b{l}"]
            rows.append((str(l), str(self.layer_dims[l]), g, str(W), str(b),
                         f"{W[0] * W[1] + b[0]:,}"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        count = sum(r * c for r, c in shapes.values())
        size = count * (4 if self.dtype_name == "float32" else 8)
        lines.append(
            f"{count:,} parameters ({size / 1024:,.1f} KiB as {self.dtype_name}); loss "
            f"{self.loss.name}; l2 {self.l2:g}, keep_prob {self.keep_prob:g}; backend "
            f"{self.backend.name} on {device_label(self.backend.device)}"
        )
        return "\n".join(lines)

    def save(self, path: str | os.PathLike) -> None:
        """Write an atomic ``.npz`` checkpoint of this network to ``path``.

        See :func:`deepnet.serialization.save` for the format and the guarantees.
        """
        serialization.save(self, path)

    # -- pickling: the configuration, host copies of the parameters, the history --------
    def __getstate__(self) -> dict[str, Any]:
        return {
            "config": self.config(),
            "params": {k: to_numpy(v) for k, v in self._params.items()},
            "history": self.history,
            "backend": self.backend.name,
            "device": None if self.backend.label == self.backend.name
            else self.backend.label.split(":", 1)[1],
            "reuse_buffers": self.reuse_buffers,
            "rng": self._rng.bit_generator.state,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        config = state["config"]
        try:
            backend = get_backend(state["backend"], state["device"])
        except BackendError as exc:
            raise BackendError(
                f"this pickled DeepNet was made on {state['backend']!r}, which cannot run "
                f"here ({exc}); save it with net.save() and dn.load(path, backend=...) "
                "onto another backend"
            ) from exc
        Model.__init__(
            self, config["layer_dims"], hidden=config["hidden"], output=config["output"],
            init=config["init"], l2=config["l2"], keep_prob=config["keep_prob"],
            dtype=config["dtype"], seed=config["seed"], backend=backend,
            reuse_buffers=state["reuse_buffers"],
        )
        self.set_params(state["params"])
        self.history = state["history"]
        self._rng.bit_generator.state = state["rng"]


def _chunk(batch_size: int | None) -> int:
    """Examples per forward pass when evaluating (default ``training.EVAL_CHUNK``)."""
    if batch_size is None:
        return training.EVAL_CHUNK
    return checks.positive_int(batch_size, "batch_size")


def load(
    path: str | os.PathLike,
    backend: str | Backend | None = None,
    device: str | None = None,
    *,
    dtype: str | None = None,
) -> DeepNet:
    """The network saved at ``path``, rebuilt on ``backend`` (default: the default backend).

    ``dtype`` (``"float32"``/``"float64"``) converts the parameters; ``None`` keeps the
    saved dtype. Everything in the file is checked before the network is built
    (:func:`deepnet.serialization.read`).

    Raises
    ------
    CheckpointError
        For a missing, unreadable, truncated, foreign, newer or mismatched file, or
        parameters that do not fit the dtype asked for.
    """
    from deepnet.backend import resolve_dtype_name

    if dtype is not None:
        dtype = resolve_dtype_name(dtype)  # the caller's argument: an InputError if wrong
    ckpt = serialization.read(path)
    config = ckpt.config
    try:
        net = DeepNet(
            config["layer_dims"], hidden=config["hidden"], output=config["output"],
            init=config["init"], l2=config["l2"], keep_prob=config["keep_prob"],
            dtype=dtype if dtype is not None else config["dtype"], seed=config["seed"],
            backend=backend, device=device,
        )
    except DeepNetError as exc:
        if isinstance(exc, BackendError):
            raise
        raise CheckpointError(
            f"{os.fspath(path)!r} (format version {ckpt.version}) holds an invalid "
            f"configuration: {exc}"
        ) from exc
    try:
        net.set_params(ckpt.params)
    except DeepNetError as exc:  # float64 values beyond float32's range, say: the file's
        raise CheckpointError(    # values, not the caller's arguments
            f"{os.fspath(path)!r}: its parameters cannot be loaded as {net.dtype_name}: "
            f"{exc}"
        ) from exc
    net.history = ckpt.history
    return net


__all__ = ["DeepNet", "load"]
