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

from deepnet import serialization, training
from deepnet.backend import Backend, get_backend, to_numpy
from deepnet.errors import BackendError, CheckpointError, DeepNetError
from deepnet.history import Callback, EarlyStopping, History
from deepnet.model import Model
from deepnet.optimizers import Optimizer


class DeepNet(Model):
    __doc__ = Model.__doc__

    def fit(
        self,
        X: Any,
        Y: Any,
        epochs: int,
        batch_size: int | None = None,
        optimizer: str | Optimizer = "gd",
        learning_rate: float | None = None,
        seed: int | None = None,
        validation: Any = None,
        early_stopping: EarlyStopping | int | None = None,
        callbacks: Sequence[Callback] = (),
        progress: bool | None = None,
        *,
        train_accuracy: bool = True,
    ) -> History:
        return training.fit(
            self, X, Y, epochs, batch_size, optimizer, learning_rate, seed=seed,
            validation=validation, early_stopping=early_stopping, callbacks=callbacks,
            progress=progress, train_accuracy=train_accuracy,
        )

    fit.__doc__ = training.fit.__doc__

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
