"""``DeepNetClassifier``: binary (one sigmoid unit), multiclass (softmax) and multilabel
(one sigmoid unit per label) classification with any labels scikit-learn accepts."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import column_or_1d

from deepnet.backend import to_numpy
from deepnet.errors import InputError
from deepnet.sklearn._base import _DeepNetEstimator, _host


class DeepNetClassifier(ClassifierMixin, _DeepNetEstimator):
    """A deepnet network as a scikit-learn classifier, on any deepnet backend.

    ``X`` is ``(n_samples, n_features) = (m, n0)``, one example per row as scikit-learn
    has it; the network sees ``X.T``, the notes' ``(n0, m)``, without a copy here. Two
    classes train one sigmoid unit (binary cross-entropy), more train a softmax
    (cross-entropy); an indicator matrix ``y (m, k)`` trains ``k`` sigmoid units
    (multilabel). Every hyperparameter is stored as given and checked when ``fit`` runs.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (100,)
        ``(n1, ..., n[L-1])``, the hidden units of each hidden layer; its length is the
        number of hidden layers (``()``: logistic regression).
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
        Passes over the training set (``max_iter`` of scikit-learn's MLP, without its
        stopping on a flat training loss: ``epochs`` means what it says).
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
        deepnet backend (``numpy``, ``torch``, ``cupy``, ``array_api_strict``) and device
        of the network; ``None``: deepnet's default. Under
        ``sklearn.set_config(array_api_dispatch=True)`` a non-NumPy ``X`` decides instead.
        Set on a fitted estimator (or after unpickling), they move its network.
    dtype : str or None, default None
        ``float32`` or ``float64``; ``None`` follows ``X`` (float32 stays float32,
        anything else trains in float64), as scikit-learn's MLP does.
    random_state : int, RandomState, Generator or None, default None
        Seed of the initial weights, shuffles and dropout; an int ``s`` gives the network
        ``deepnet.DeepNet(..., seed=s)`` would.
    verbose : bool, default False
        A progress bar over the epochs on stderr.

    Attributes
    ----------
    net_ : deepnet.DeepNet
        The fitted network ``[n0, *hidden_layer_sizes, nL]``.
    optimizer_ : deepnet.optimizers.Optimizer
        The optimizer with its state; ``partial_fit`` continues it.
    classes_ : ndarray of shape (n_classes,)
        The class labels (``0..k-1`` for multilabel targets).
    n_outputs_ : int
        ``nL``: 1 for two classes, the number of classes or labels otherwise.
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
    >>> from sklearn.datasets import load_iris
    >>> from deepnet.sklearn import DeepNetClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = DeepNetClassifier((16,), learning_rate=0.01, epochs=100, random_state=0)
    >>> clf.fit(X, y).score(X, y) > 0.9
    True
    """

    def _encode(self, y: Any, *, first: bool, classes: Any) -> tuple[Any, str, int, dict]:
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        kind = type_of_target(y)
        if kind == "multiclass-multioutput":
            raise InputError(
                f"{type(self).__name__}: y of shape {y.shape} holds several outputs with "
                "more than two classes each (multiclass-multioutput), which one network "
                "does not train; wrap it in sklearn.multioutput.MultiOutputClassifier, or "
                "pass a 0/1 indicator matrix for multilabel classification"
            )
        multilabel = kind == "multilabel-indicator"
        if first:
            if multilabel:
                classes_ = np.arange(y.shape[1])
                if classes is not None and len(unique_labels(classes)) != y.shape[1]:
                    raise InputError(
                        f"classes has {len(unique_labels(classes))} labels, but the "
                        f"multilabel y has {y.shape[1]} columns"
                    )
            else:
                classes_ = unique_labels(y) if classes is None else unique_labels(classes)
                if len(classes_) < 2:
                    raise InputError(
                        f"{type(self).__name__} needs at least 2 classes; y holds 1 class "
                        f"({classes_[:1].tolist()[0]!r}) in all {len(y)} samples"
                    )
            mode = "multilabel" if multilabel else (
                "binary" if len(classes_) == 2 else "multiclass")
        else:
            classes_, mode = self.classes_, self._mode
            if classes is not None and not np.array_equal(
                unique_labels(classes), classes_
            ) and mode != "multilabel":
                raise InputError(
                    f"classes={unique_labels(classes).tolist()!r} differs from the classes of "
                    f"the first partial_fit call, {classes_.tolist()!r}"
                )
            if (mode == "multilabel") != multilabel or (
                multilabel and y.shape[1] != len(classes_)
            ):
                raise InputError(
                    f"y of shape {y.shape} ({kind}) does not match the targets this "
                    f"estimator was fitted on ({mode}, {len(classes_)} classes)"
                )
        if multilabel:
            return y.T, "sigmoid", y.shape[1], {
                "classes_": classes_, "_mode": mode, "_y_dtype": y.dtype,
                "n_outputs_": y.shape[1],
            }
        unseen = np.setdiff1d(unique_labels(y), classes_)
        if unseen.size:
            raise InputError(
                f"y holds labels {unseen.tolist()!r} that are not among classes "
                f"{classes_.tolist()!r}; pass every class in classes= on the first partial_fit"
            )
        idx = np.searchsorted(classes_, y)
        nL = 1 if mode == "binary" else len(classes_)
        output = "sigmoid" if mode == "binary" else "softmax"
        return idx, output, nL, {"classes_": classes_, "_mode": mode, "n_outputs_": nL}

    def fit(self, X: Any, y: Any) -> DeepNetClassifier:
        """Train a new network on ``X (m, n0)`` and labels ``y (m,)`` (or an indicator
        matrix ``(m, k)``) for ``epochs`` epochs.

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=False)

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> DeepNetClassifier:
        """One epoch over ``X (m, n0)``, ``y``, continuing the network and optimizer.

        Parameters
        ----------
        X : array of shape (m, n0)
        y : labels of shape (m,), or an indicator matrix (m, k)
        classes : every class label; required on the first call unless ``y`` is an
            indicator matrix, since a batch need not show every class.

        Returns
        -------
        self
        """
        if not hasattr(self, "net_") and classes is None and not (
            np.ndim(_host(y)) == 2 and type_of_target(_host(y)) == "multilabel-indicator"
        ):
            raise InputError(
                "classes must be passed on the first call to partial_fit (every label "
                "any batch may hold, e.g. np.unique(y_all))"
            )
        return self._fit(X, y, incremental=True, classes=classes)

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities ``(m, n_classes)``, columns in the order of ``classes_``.

        Two classes: ``[1 - p, p]`` with ``p = A[L]`` of the sigmoid unit; multilabel:
        each label's own probability. NumPy, or ``X``'s library under dispatch.
        """
        AL, xp, _ = self._forward(X, "predict_proba")
        return self._proba(AL, xp)

    def _proba(self, AL: Any, xp: Any) -> Any:
        if self._mode == "binary":
            return xp.stack([1.0 - AL[0, :], AL[0, :]], axis=1)
        return AL.T

    def predict_log_proba(self, X: Any) -> Any:
        """``log(predict_proba(X))``; ``-inf`` where a probability underflowed to 0."""
        AL, xp, net = self._forward(X, "predict_log_proba")
        with net.backend.quiet_float_errors(), np.errstate(divide="ignore"):
            return xp.log(self._proba(AL, xp))

    def predict(self, X: Any) -> Any:
        """Labels ``(m,)`` from ``classes_`` (an indicator matrix ``(m, k)`` for
        multilabel targets); probabilities above 0.5 count as positive. NumPy, or ``X``'s
        library under dispatch where the labels are numbers."""
        AL, xp, net = self._forward(X, "predict")
        if self._mode == "multilabel":
            return xp.astype(AL.T > 0.5, getattr(xp, self._y_dtype.name))
        if self._mode == "binary":
            idx = xp.astype(AL[0, :] > 0.5, xp.int64)
        else:
            idx = xp.argmax(AL, axis=0)
        if isinstance(idx, np.ndarray) or self.classes_.dtype.kind not in "biuf":
            return self.classes_[to_numpy(idx)]
        return xp.take(net.backend.asarray(self.classes_, None, what="classes_"), idx)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy of ``predict(X)`` against ``y`` (subset accuracy for multilabel),
        computed on the host."""
        pred = self.predict(X)
        return float(accuracy_score(_host(y), _host(pred), sample_weight=_host(sample_weight)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


__all__ = ["DeepNetClassifier"]
