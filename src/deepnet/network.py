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

from deepnet import checks, inference, serialization, training
from deepnet.backend import Array, Backend, get_backend, like, on_device, to_numpy
from deepnet.errors import BackendError, CheckpointError, DeepNetError
from deepnet.history import Callback, EarlyStopping, History
from deepnet.metrics import mean, metric_for
from deepnet.model import Model
from deepnet.optimizers import Optimizer


class DeepNet(Model):
    """A fully connected network ``[n0, n1, ..., nL]`` in the notes' notation.

    ``X = A[0]`` is ``(n0, m)``, one example per column; ``W[l]`` is ``(n[l], n[l-1])``
    and ``b[l]`` is ``(n[l], 1)`` (:attr:`params`, a live mapping). The network captures
    its backend, device and dtype when it is made; every input is checked and moved onto
    that device before any work starts. ``predict``, ``predict_proba`` and ``evaluate``
    answer in the caller's array library; ``forward``, ``backward`` and ``params`` stay
    on the network's.

    Parameters
    ----------
    layer_dims : sequence of int
        ``[n0, n1, ..., nL]``; ``L = len(layer_dims) - 1`` layers, the input not counted.
    hidden : str or sequence of str
        Activation of the hidden layers (``"relu"``, ``"leaky_relu"``, ``"tanh"``,
        ``"sigmoid"``, ``"linear"``), or a list of ``L - 1`` of them.
    output : str
        ``"sigmoid"`` (binary cross-entropy), ``"softmax"`` (categorical cross-entropy) or
        ``"linear"`` (mean squared error).
    init : str
        ``"he"``, ``"xavier"`` or ``"scaled"`` (the notes' ``1/sqrt(n[l-1])``).
    l2 : float
        λ ≥ 0; adds ``(λ/(2m)) Σ ||W[l]||²`` to the cost.
    keep_prob : float
        Inverted-dropout keep probability of the hidden layers, in (0, 1].
    dtype : str, optional
        ``"float32"`` or ``"float64"``; ``None`` reads ``DEEPNET_DTYPE`` (default float32).
    seed : int, optional
        Seed of the host RNG that the weights, the dropout masks and ``fit``'s shuffles
        come from (``None``: fresh entropy).
    backend : str or Backend, optional
        The array library; ``None`` takes the default (``deepnet.use_backend`` /
        ``set_backend``, else ``DEEPNET_BACKEND``, else numpy).
    device : str, optional
        The device, e.g. ``"cuda:1"`` (torch), ``"1"`` (CuPy); ``None`` takes
        ``DEEPNET_DEVICE`` or the library's default.
    reuse_buffers : bool
        Let training steps write into a per-network workspace where the backend offers
        ``out=`` (NumPy, CuPy, torch); ``False`` forces the portable, allocating path
        that array-api-strict always takes. Results are the same.

    Raises
    ------
    InputError, ShapeError, BackendError
        For any bad argument; a backend or device that cannot be used here.

    Examples
    --------
    >>> import numpy as np, deepnet as dn
    >>> net = dn.DeepNet([2, 4, 1], seed=0, backend="numpy")
    >>> [tuple(net.params[k].shape) for k in ("W1", "b1", "W2", "b2")]
    [(4, 2), (4, 1), (1, 4), (1, 1)]
    >>> X = np.zeros((2, 5))                       # (n0, m): five examples
    >>> AL, caches = net.forward(X)
    >>> AL.shape, net.predict(X).shape
    ((1, 5), (1, 5))
    """

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
        accuracy on the bundled digits and 0.91-1.00 on the 2-D sets (means over three
        seeds, ``benchmarks/default_fit.py``, in ``benchmarks/RESULTS.md``). The notes'
        full-batch gradient descent is
        ``fit(X, Y, epochs=..., batch_size=None, optimizer="gd", learning_rate=α)``.

        Parameters
        ----------
        X : array (n0, m) or memory map
            Examples in columns, of any supported library and memory order (``X.T`` of
            row-major ``(m, n0)`` data is used without a copy), or a NumPy memory map
            (``np.load(path, mmap_mode="r")``), streamed batch by batch and never held
            in memory whole.
        Y : array (nL, m) or (m,), or memory map
            Labels in any layout :meth:`cost` accepts: ``(nL, m)``; for a softmax output
            also integer class labels ``(m,)``; for one output unit also ``(m,)``.
        epochs : int
            Passes over the training set.
        batch_size : int, "auto" or None
            Examples per mini-batch; ``"auto"`` is ``min(200, m)`` (scikit-learn's rule);
            ``None`` (or ``≥ m``) is the whole set, one step per epoch — the notes'
            iterations. Each epoch draws a fresh shuffle; a batch's examples are taken in
            increasing order; the last, smaller batch is kept.
        optimizer : str or Optimizer
            ``"gd"``, ``"momentum"``, ``"rmsprop"``, ``"adam"``, or a
            :class:`deepnet.optimizers.Optimizer`, whose moments, step count and schedule
            carry over from one ``fit`` to the next.
        learning_rate : float, optional
            α0; ``None`` takes the optimizer's own default (gd and momentum 0.1, rmsprop
            and adam 0.001).
        seed : int, optional
            Seed of the host RNG of the shuffles and the validation split; ``None``
            continues the network's own RNG (seeded by ``DeepNet(seed=...)``).
        validation : (X_val, Y_val) or float, optional
            Arrays or memory maps to validate on after each epoch, or a fraction in
            (0, 1) of the training set: ``round(fraction · m)`` examples held out at
            random, before training (the scikit-learn estimators' ``early_stopping``
            holds out ``ceil``, as scikit-learn does).
        early_stopping : EarlyStopping or int, optional
            ``EarlyStopping(patience, min_delta, monitor)``, or a patience.
        callbacks : sequence of callables
            ``cb(net, epoch, logs)`` run at each epoch's end; ``logs`` holds the epoch's
            ``cost``, ``val_cost``, ``accuracy``, ``val_accuracy``, ``mse``, ``val_mse``,
            ``time`` and ``learning_rate`` (``None`` where not measured). Returning
            ``False`` or raising :class:`deepnet.StopTraining` ends training.
        progress : bool, optional
            A tqdm bar over the epochs on stderr; ``None`` shows it when stderr is a
            terminal, ``False`` silences it. Nothing else is printed.
        train_metrics : bool
            Record the training set's accuracy (classifiers) or mean squared error
            (linear output) during each epoch, from the batches' own forward passes (no
            extra pass over the data).
        comm : communicator, optional
            From ``deepnet.distributed.init()``: every process passes the same data and
            arguments; each computes its share of every batch and one all-reduce per
            step sums the gradients (data parallel).
        prefetch : bool
            Read a memory map's next batch in a background thread while the current step
            runs.

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
        >>> history = net.fit(X, Y, progress=False)   # the defaults
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
        """A copy of this network (parameters, configuration, history) on another
        backend or device; the parameters travel through the host, explicitly.

        Parameters
        ----------
        backend : str or Backend
            ``"numpy"``, ``"torch"``, ``"cupy"``, ``"array_api_strict"`` or a Backend.
        device : str, optional
            The device there; ``None`` takes ``DEEPNET_DEVICE`` or the library's default.
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
        """The output activations ``A[L]``, no dropout, as an array of ``X``'s library.

        Parameters
        ----------
        X : array (n0, m) or memory map
            Read ``batch_size`` examples at a time, so no activation larger than
            ``(n[l], batch_size)`` is ever made; a memory map is streamed.
        batch_size : int, optional
            Examples per forward pass (default 4096).

        Returns
        -------
        array (nL, m)
            A NumPy array for a NumPy array, a memory map or a list; a torch tensor on
            its device for a torch tensor (moved through the host where the network
            lives elsewhere); and so on.
        """
        return like(inference.outputs(self, X, _chunk(batch_size)), X)

    @on_device
    def predict(self, X: Any, *, batch_size: int | None = None) -> Array:
        """Predictions for ``X``, as an array of ``X``'s library and device.

        The layouts are those of the labels ``fit`` takes, so predictions and labels
        compare directly.

        Parameters
        ----------
        X : array (n0, m) or memory map
            As in :meth:`predict_proba`.
        batch_size : int, optional
            Examples per forward pass (default 4096).

        Returns
        -------
        array
            sigmoid: 0/1 labels ``(nL, m)`` (threshold 0.5); softmax: class indices
            ``(m,)``; both int64. linear: ``A[L]``, ``(nL, m)``.
        """
        AL = inference.outputs(self, X, _chunk(batch_size))
        xp = self.xp
        if self.output == "sigmoid":
            AL = xp.astype(AL > 0.5, xp.int64)
        elif self.output == "softmax":
            AL = xp.argmax(AL, axis=0)
        return like(AL, X)

    @on_device
    def evaluate(self, X: Any, Y: Any, *, batch_size: int | None = None) -> dict[str, float]:
        """The cost (L2 term included) and the metric of the output on ``(X, Y)``.

        Parameters
        ----------
        X : array (n0, m) or memory map
        Y : array (nL, m) or (m,), or memory map
            Labels in any layout :meth:`cost` accepts.
        batch_size : int, optional
            Examples per forward pass (default 4096).

        Returns
        -------
        dict of str to float
            ``{"cost": ..., "accuracy": ...}`` for sigmoid and softmax outputs,
            ``{"cost": ..., "mse": ...}`` for a linear one: the numbers ``fit`` records
            as ``val_cost`` and ``val_accuracy`` / ``val_mse``.
        """
        cost, total, m = inference.evaluate(self, X, Y, _chunk(batch_size))
        host = to_numpy(self.xp.stack([self.xp.reshape(cost, ()),
                                       self.xp.reshape(total, ())]))
        metric = metric_for(self.output)
        return {"cost": float(host[0]),
                metric.name: mean(metric, float(host[1]), m, self.layer_dims[-1])}

    def save(self, path: str | os.PathLike) -> None:
        """Write an atomic ``.npz`` checkpoint of this network to ``path`` (a str or
        ``os.PathLike``; exactly that name, ``.npz`` by convention).

        See :func:`deepnet.serialization.save` for the format and the guarantees;
        :func:`deepnet.load` reads it back on any backend.

        Raises
        ------
        CheckpointError
            When the directory does not exist or the file cannot be written; a previous
            file at ``path`` is then left as it was.
        """
        serialization.save(self, path)


def _chunk(batch_size: int | None) -> int:
    """Examples per forward pass when evaluating (default ``inference.EVAL_CHUNK``)."""
    if batch_size is None:
        return inference.EVAL_CHUNK
    return checks.positive_int(batch_size, "batch_size")


def load(
    path: str | os.PathLike,
    backend: str | Backend | None = None,
    device: str | None = None,
    *,
    dtype: str | None = None,
) -> DeepNet:
    """The network saved at ``path`` (by ``net.save``), rebuilt on any backend.

    Everything in the file is checked before the network is built
    (:func:`deepnet.serialization.read`).

    Parameters
    ----------
    path : str or os.PathLike
    backend : str or Backend, optional
        Where to rebuild it; ``None`` takes the default backend.
    device : str, optional
        The device there.
    dtype : str, optional
        ``"float32"`` or ``"float64"`` converts the parameters; ``None`` keeps the saved
        dtype.

    Returns
    -------
    DeepNet
        With the saved parameters and history.

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
