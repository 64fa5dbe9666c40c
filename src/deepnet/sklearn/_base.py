"""What ``DeepNetClassifier`` and ``DeepNetRegressor`` share: the constructor, the door
between scikit-learn's row layout and the notes' column layout, backends and Array API
dispatch, ``fit``/``partial_fit``, pickling.

scikit-learn's ``X`` is ``(n_samples, n_features) = (m, n0)``; deepnet's is ``(n0, m)``.
The estimators hand deepnet ``X.T``, a view: no copy is made here, and ``fit`` uses
row-major data as it is. Outputs come back as ``A[L].T``, ``(m, nL)``.

Where the network runs: with ``sklearn.set_config(array_api_dispatch=True)`` and ``X`` of
a non-NumPy library (torch, CuPy, array-api-strict), on that library and ``X``'s device,
with results in that library; otherwise on the ``backend``/``device`` parameters (``None``:
deepnet's default backend) with NumPy results.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
from sklearn import get_config
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, validate_data

from deepnet.backend import (
    Array,
    Backend,
    _library_of,
    array_namespace,
    backend_key,
    device_label,
    get_backend,
    to_numpy,
)
from deepnet.errors import DeepNetError, InputError
from deepnet.history import EarlyStopping
from deepnet.network import DeepNet
from deepnet.optimizers import Optimizer
from deepnet.sklearn import _params, _state

_NO_Y = object()  # "validate X only"


def _host(a: Any) -> Any:
    """``a`` as a NumPy array where it is another library's array (an explicit copy
    through ``to_numpy``); lists, NumPy arrays and ``None`` unchanged."""
    lib = _library_of(a)
    return to_numpy(a) if lib not in (None, "numpy") else a


def _dtype_name(x: Array) -> str:
    return str(getattr(x.dtype, "name", x.dtype)).rsplit(".", 1)[-1]


class _DeepNetEstimator(BaseEstimator):
    """Base of the deepnet estimators (see ``DeepNetClassifier`` for the parameters)."""

    _y_numeric = False  # validate y as numbers (regression)
    # fitted state (set by fit; declared for type checkers only)
    net_: DeepNet | _state.Unloaded
    optimizer_: Optimizer | None
    _input_lib: str  # the library fit's X came in: "numpy" unless dispatch chose

    def __init__(
        self,
        hidden_layer_sizes: Any = (100,),
        activation: Any = "relu",
        *,
        optimizer: Any = "adam",
        learning_rate: float | None = 0.001,
        momentum: float = 0.9,
        beta1: float = 0.9,
        beta2: float = 0.999,
        batch_size: int | str | None = "auto",
        epochs: int = 200,
        l2: float = 0.0,
        keep_prob: float = 1.0,
        init: str = "xavier",
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        tol: float = 1e-4,
        backend: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        random_state: Any = None,
        verbose: bool | int = False,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.beta1 = beta1
        self.beta2 = beta2
        self.batch_size = batch_size
        self.epochs = epochs
        self.l2 = l2
        self.keep_prob = keep_prob
        self.init = init
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.backend = backend
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    # -- the data door ------------------------------------------------------------------
    def _validate(self, X: Any, y: Any = _NO_Y, *, reset: bool, method: str) -> Any:
        """scikit-learn's checks of ``X`` (and ``y``), their errors as deepnet's."""
        try:
            if y is _NO_Y:
                return validate_data(self, X, reset=reset, dtype="numeric",
                                     accept_sparse=False)
            return validate_data(self, X, y, reset=reset, dtype="numeric",
                                 accept_sparse=False, multi_output=True,
                                 y_numeric=self._y_numeric)
        except (ValueError, TypeError, RuntimeError) as exc:
            if isinstance(exc, DeepNetError):
                raise
            lib = _library_of(X)
            hint = ""
            if "sparse" in str(exc).lower():
                hint = (" deepnet's kernels take dense arrays; densify with X.toarray() "
                        "where it fits in memory.")
            elif lib not in (None, "numpy") and not get_config()["array_api_dispatch"]:
                hint = (f" X is a {lib} array on {device_label(X.device)!r}: turn on "
                        "sklearn.set_config(array_api_dispatch=True) to train and predict "
                        f"on {lib} there, or pass NumPy arrays.")
            elif isinstance(exc, RuntimeError):
                raise
            raise InputError(f"{type(self).__name__}.{method}: {exc}{hint}") from exc

    def _fit_backend(self, X: Array) -> tuple[Backend, str]:
        """Where a new network for ``X`` runs, and the library ``X`` came in."""
        lib = _library_of(X) or "numpy"
        if get_config()["array_api_dispatch"] and lib != "numpy":
            here = get_backend(lib, device_label(X.device))
            if self.backend is not None and backend_key(self.backend) != lib:
                raise InputError(
                    f"{type(self).__name__}: X is a {lib} array and array_api_dispatch is "
                    f"on, so the network trains on {lib}, but backend={self.backend!r}; set "
                    f"backend=None (or {lib!r}), or pass NumPy arrays"
                )
            if self.device is not None and get_backend(lib, str(self.device)).label != here.label:
                raise InputError(
                    f"{type(self).__name__}: X is on device {device_label(X.device)!r} and "
                    f"array_api_dispatch is on, so the network trains there, but "
                    f"device={self.device!r}; set device=None or move X"
                )
            return here, lib
        return self._named_backend(), "numpy"

    def _named_backend(self) -> Backend:
        """The backend the ``backend``/``device`` parameters name; an error of
        ``get_backend`` (a device that does not exist, a library not installed) keeps its
        type and names the parameters."""
        try:
            return get_backend(self.backend, None if self.device is None else str(self.device))
        except DeepNetError as exc:
            raise type(exc)(
                f"{type(self).__name__} parameters backend={self.backend!r}, "
                f"device={self.device!r}: {exc}"
            ) from exc

    def _live_net(self) -> DeepNet:
        """The fitted network, moved first where ``backend``/``device`` (set since the fit,
        or after unpickling where its backend cannot run) ask for another place."""
        net = self.net_
        by_params = self._input_lib == "numpy"  # placed by the parameters, not by X
        asked = self.backend is not None or self.device is not None
        if isinstance(net, DeepNet) and not (by_params and asked):
            return net
        try:
            target = self._named_backend()
        except DeepNetError as exc:
            if isinstance(net, _state.Unloaded):
                raise type(exc)(
                    f"{net.reason}; its backend={self.backend!r}, device={self.device!r} "
                    f"cannot run here either ({exc})"
                ) from exc
            raise
        if isinstance(net, DeepNet) and _state.same_place(net, target):
            return net
        moved, self.optimizer_ = _state.move(net, self.optimizer_, target)
        self.net_, self._input_lib = moved, "numpy"
        return moved

    def _check_namespace(self, X: Array, method: str, net: DeepNet) -> str:
        """The library of ``X``; under dispatch, refuse one the network cannot take."""
        lib = _library_of(X) or "numpy"
        if not get_config()["array_api_dispatch"]:
            return "numpy"
        if lib == "numpy":
            ok = self._input_lib == "numpy"
        else:
            ok = net.backend.name == lib and device_label(X.device) == device_label(
                net.backend.device)
        if not ok:
            where = (f"{lib} on {device_label(X.device)!r}" if lib != "numpy" else "NumPy")
            raise InputError(
                f"Inputs passed to {type(self).__name__}.{method}() must use the same "
                f"namespace and the same device as those passed to fit(). The network was "
                f"fitted on {net.backend.label!r} from {self._input_lib} inputs; X is "
                f"{where}. Pass X in that library and device, or move the estimator with "
                "sklearn.utils._array_api.move_estimator_to(est, xp, device)."
            )
        return lib

    def _forward(self, X: Any, method: str) -> tuple[Array, Any, DeepNet]:
        """``A[L]`` ``(nL, m)`` for scikit-learn's ``X (m, n0)``, in ``X``'s library and on
        its device (``DeepNet.predict_proba``'s rule: NumPy unless dispatch let another
        library through), that library's namespace, and the network."""
        check_is_fitted(self)
        X = self._validate(X, reset=False, method=method)
        net = self._live_net()
        self._check_namespace(X, method, net)
        AL = net.predict_proba(X.T)
        return AL, array_namespace(AL), net

    # -- fit and partial_fit --------------------------------------------------------------
    def _encode(self, y: Any, *, first: bool, classes: Any) -> tuple[Any, str, int, dict]:
        """``(Y for deepnet, output activation, nL, attributes to set once fitted)``."""
        raise NotImplementedError

    def _fit(self, X: Any, y: Any, *, incremental: bool, classes: Any = None):
        method = "partial_fit" if incremental else "fit"
        s = _params.settings(self)
        first = not (incremental and hasattr(self, "net_"))
        kept: dict[str, Any] = {k: self.__dict__[k] for k in ("n_features_in_",
                                "feature_names_in_") if k in self.__dict__}
        try:
            X, y = self._validate(X, y, reset=first, method=method)
            if hasattr(y, "toarray") and hasattr(y, "nnz"):  # a SciPy sparse indicator
                # matrix (multilabel), which scikit-learn's MLP takes too
                y = y.toarray()
            if first:
                backend, lib = self._fit_backend(X)
            else:
                net = self._live_net()
                lib = self._input_lib
                self._check_namespace(X, method, net)
            try:
                Y, output, nL, fitted = self._encode(_host(y), first=first, classes=classes)
            except ValueError as exc:  # scikit-learn's label checks
                if isinstance(exc, DeepNetError):
                    raise
                raise InputError(f"{type(self).__name__}.{method}: {exc}") from exc
            if first:
                dtype = s.dtype or ("float32" if _dtype_name(X) == "float32" else "float64")
                net = DeepNet(
                    [X.shape[1], *s.hidden, nL], hidden=s.activation, output=output,
                    init=self.init, l2=self.l2, keep_prob=self.keep_prob, dtype=dtype,
                    seed=_params.seed(self), backend=backend,
                )
                opt = _params.make_optimizer(self)
            else:  # a live network has its optimizer (None only while unloaded)
                opt = self.optimizer_ or _params.make_optimizer(self)
            validation = stopper = None
            if self.early_stopping and not incremental:
                validation = self._validation_share(X.shape[0])
                stopper = EarlyStopping(patience=int(self.n_iter_no_change),
                                        min_delta=float(self.tol), monitor="val_cost")
            history = net.fit(
                X.T, Y, epochs=1 if incremental else s.epochs, batch_size=s.batch_size,
                optimizer=opt, learning_rate=None, seed=None, validation=validation,
                early_stopping=stopper, progress=s.verbose, train_metrics=False,
            )
        except BaseException:
            for k in ("n_features_in_", "feature_names_in_"):  # a failure changes nothing
                self.__dict__.pop(k, None)
            self.__dict__.update(kept)
            raise
        self.__dict__.update(fitted)
        self.net_, self.optimizer_, self.history_ = net, opt, history
        if first:
            self._input_lib = lib
            self.loss_curve_ = list(history.cost)
        else:
            self.loss_curve_ = [*self.loss_curve_, *history.cost]
        self.n_iter_ = len(self.loss_curve_)
        return self

    def _validation_share(self, m: int) -> float:
        """The fraction ``fit`` holds out so that ``ceil(validation_fraction · m)``
        examples validate, as scikit-learn's ``train_test_split`` (and its MLP) does, so
        a small fold still has one; an InputError where none is left to train on."""
        n_val = math.ceil(float(self.validation_fraction) * m)
        if n_val >= m:
            raise InputError(
                f"{type(self).__name__}: early_stopping holds out validation_fraction="
                f"{self.validation_fraction} of n_samples={m}, leaving {m - n_val} to train "
                "on; pass more samples or set early_stopping=False"
            )
        return n_val / m

    # -- scikit-learn protocol ---------------------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        tags.input_tags.sparse = False
        return tags

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        if "net_" in state:  # host copies: loads anywhere, onto any backend
            state["net_"] = _state.save(state["net_"], state.pop("optimizer_", None))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        saved = state.get("net_")
        if isinstance(saved, _state.Saved):
            state["net_"], state["optimizer_"] = _state.restore(saved)
        super().__setstate__(state)

    def __sklearn_array_api_convert__(self, converter: Any) -> _DeepNetEstimator:
        """A copy whose network runs where ``converter`` puts arrays (scikit-learn's
        ``move_estimator_to``); ``classes_`` stays NumPy."""
        new = copy.copy(self)
        if "net_" not in self.__dict__:
            return new
        probe = converter(np.zeros((1,), dtype=np.float32))
        lib = _library_of(probe) or "numpy"
        if lib == "numpy":
            target = self._named_backend()
        else:
            target = get_backend(lib, device_label(probe.device))
        new.net_, new.optimizer_ = _state.move(self.net_, self.optimizer_, target)
        new._input_lib = lib
        return new


__all__: list[str] = []
