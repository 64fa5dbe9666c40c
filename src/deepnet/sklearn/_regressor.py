"""``DeepNetRegressor``: single- and multi-output regression (linear output, mean squared
error)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score

from deepnet.errors import InputError
from deepnet.sklearn._base import _DeepNetEstimator, _host


class DeepNetRegressor(RegressorMixin, _DeepNetEstimator):
    """A deepnet network as a scikit-learn regressor, on any deepnet backend.

    ``X`` is ``(n_samples, n_features) = (m, n0)`` and ``y`` is ``(m,)`` or, for ``k``
    outputs, ``(m, k)``; the network ``[n0, *hidden_layer_sizes, k]`` has a linear output
    and the notes' cost ``(1/(2m)) ΣΣ (a - y)²``. Predictions have ``y``'s shape. Every
    hyperparameter is stored as given and checked when ``fit`` runs.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (100,)
        ``(n1, ..., n[L-1])``, the hidden units of each hidden layer; its length is the
        number of hidden layers (``()``: linear regression).
    activation : str or list of str, default "relu"
        ``g[l]`` of the hidden layers: ``relu``, ``leaky_relu``, ``tanh``, ``sigmoid``,
        ``linear`` (scikit-learn's ``logistic`` and ``identity`` too), or one per layer.
    optimizer : str or deepnet.optimizers.Optimizer, default "adam"
        ``gd``, ``momentum``, ``rmsprop``, ``adam``; an ``Optimizer`` object (e.g. with a
        learning-rate schedule) is copied and used as it is, ignoring the four below.
    learning_rate : float or None, default 0.001
        ``α``; ``None`` takes the optimizer's own default.
    momentum : float, default 0.9
        ``β`` of ``momentum``.
    beta1, beta2 : float, default 0.9, 0.999
        ``β1``, ``β2`` of ``adam`` (``β2`` also of ``rmsprop``).
    batch_size : int, "auto" or None, default "auto"
        Examples per mini-batch; ``"auto"`` is ``min(200, m)`` as in scikit-learn's MLP,
        ``None`` the whole set (one step per epoch, the notes' iterations).
    epochs : int, default 200
        Passes over the training set.
    l2 : float, default 0.0
        ``λ``: adds ``(λ/(2m)) Σ ||W[l]||²`` to the cost (``alpha`` of scikit-learn's MLP).
    keep_prob : float, default 1.0
        Inverted-dropout keep probability of the hidden layers.
    init : str, default "xavier"
        ``xavier`` (Glorot: the variance of scikit-learn's MLP initialization), ``he``
        or ``scaled``.
    early_stopping : bool, default False
        Hold out ``ceil(validation_fraction · m)`` examples (at random, as
        ``train_test_split`` does: at least one) and stop when their
        cost has not fallen by more than ``tol`` for ``n_iter_no_change`` epochs, keeping
        the best epoch's parameters.
    validation_fraction, n_iter_no_change, tol : default 0.1, 10, 1e-4
        The settings of ``early_stopping``.
    backend, device : str or None, default None
        deepnet backend and device of the network; ``None``: deepnet's default. Under
        ``sklearn.set_config(array_api_dispatch=True)`` a non-NumPy ``X`` decides instead.
        Set on a fitted estimator (or after unpickling), they move its network.
    dtype : str or None, default None
        ``float32`` or ``float64``; ``None`` follows ``X`` (float32 stays float32,
        anything else trains in float64).
    random_state : int, RandomState, Generator or None, default None
        Seed of the initial weights, shuffles and dropout.
    verbose : bool, default False
        A progress bar over the epochs on stderr.

    Attributes
    ----------
    net_ : deepnet.DeepNet
        The fitted network.
    optimizer_ : deepnet.optimizers.Optimizer
        The optimizer with its state; ``partial_fit`` continues it.
    n_outputs_ : int
        ``k``, the number of targets.
    n_features_in_ : int
        ``n0``.
    feature_names_in_ : ndarray of str
        Column names of a DataFrame ``X``.
    history_ : deepnet.History
        The per-epoch record of the last ``fit`` or ``partial_fit`` call.
    loss_curve_ : list of float
        Training cost of each epoch since the last ``fit``.
    n_iter_ : int
        Epochs run since the last ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from deepnet.sklearn import DeepNetRegressor
    >>> X = np.linspace(-1, 1, 200).reshape(-1, 1)
    >>> reg = DeepNetRegressor((32,), activation="tanh", learning_rate=0.01, epochs=300,
    ...                        random_state=0)
    >>> reg.fit(X, X[:, 0] ** 2).score(X, X[:, 0] ** 2) > 0.9
    True
    """

    _y_numeric = True

    def _encode(self, y: Any, *, first: bool, classes: Any) -> tuple[Any, str, int, dict]:
        y = np.asarray(y)
        k = 1 if y.ndim == 1 else y.shape[1]
        if not first and k != self.n_outputs_:
            raise InputError(
                f"y has {k} output(s), but this {type(self).__name__} was fitted on "
                f"{self.n_outputs_}"
            )
        one_d = y.ndim == 1 if first else self._y_1d
        return (y if y.ndim == 1 else y.T), "linear", k, {"n_outputs_": k, "_y_1d": one_d}

    def fit(self, X: Any, y: Any) -> DeepNetRegressor:
        """Train a new network on ``X (m, n0)`` and targets ``y (m,)`` or ``(m, k)`` for
        ``epochs`` epochs.

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=False)

    def partial_fit(self, X: Any, y: Any) -> DeepNetRegressor:
        """One epoch over ``X (m, n0)``, ``y``, continuing the network and optimizer.

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=True)

    def predict(self, X: Any) -> Any:
        """``A[L]`` as ``(m,)`` (fitted on 1-D ``y``) or ``(m, k)``; NumPy, or ``X``'s
        library under dispatch."""
        AL, _, _ = self._forward(X, "predict")
        return AL[0, :] if self._y_1d else AL.T

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """``R²`` of ``predict(X)`` against ``y`` (averaged over outputs), on the host."""
        pred = self.predict(X)
        return float(r2_score(_host(y), _host(pred), sample_weight=_host(sample_weight)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


__all__ = ["DeepNetRegressor"]
