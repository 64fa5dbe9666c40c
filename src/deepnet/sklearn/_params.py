"""The estimators' hyperparameters: checked when ``fit`` runs (never in ``__init__`` or
``set_params``, as scikit-learn requires), each error naming the parameter."""

from __future__ import annotations

import copy
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from deepnet import activations, checks, initializers
from deepnet import optimizers as _optimizers
from deepnet.backend import BACKEND_NAMES, backend_key, resolve_dtype_name
from deepnet.errors import InputError

#: scikit-learn MLP names of hidden activations, and deepnet's
ALIASES = {"logistic": "sigmoid", "identity": "linear"}


@dataclass(frozen=True)
class Settings:
    """The hyperparameters that need translating, checked and in deepnet's terms."""

    hidden: tuple[int, ...]
    activation: list[str]
    batch_size: int | str | None
    epochs: int
    dtype: str | None
    verbose: bool


def _what(est: Any, param: str) -> str:
    return f"{type(est).__name__} parameter {param}"


def settings(est: Any) -> Settings:
    """The hyperparameters checked (an InputError naming the first bad one)."""
    hidden = est.hidden_layer_sizes
    if isinstance(hidden, numbers.Integral) and not isinstance(hidden, bool):
        hidden = (hidden,)
    if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__iter__"):
        raise InputError(
            f"{_what(est, 'hidden_layer_sizes')} must be a tuple of hidden layer sizes "
            f"(n1, ..., n[L-1]), e.g. (100,) or (64, 32); got {checks._short(hidden)}"
        )
    hidden = tuple(
        checks.positive_int(n, f"{_what(est, 'hidden_layer_sizes')}[{i}]")
        for i, n in enumerate(hidden)
    )
    acts = est.activation
    if isinstance(acts, str):
        acts = [acts] * len(hidden)
    elif not isinstance(acts, (list, tuple)) or len(acts) != len(hidden):
        raise InputError(
            f"{_what(est, 'activation')} must be one activation name or a list of one "
            f"per hidden layer ({len(hidden)}); got {checks._short(acts)}"
        )
    names = []
    for a in acts:
        a = ALIASES.get(a, a) if isinstance(a, str) else a
        if not isinstance(a, str) or a not in activations.HIDDEN:
            raise InputError(
                f"{_what(est, 'activation')}: unknown hidden activation "
                f"{checks._short(a)}; expected one of {', '.join(activations.HIDDEN)} "
                f"(or {', '.join(ALIASES)})"
            )
        names.append(a)
    opt = est.optimizer
    if not isinstance(opt, _optimizers.Optimizer) and not (
        isinstance(opt, str) and opt.lower() in _optimizers.OPTIMIZERS
    ):
        raise InputError(
            f"{_what(est, 'optimizer')} must be one of "
            f"{', '.join(_optimizers.OPTIMIZERS)} or a deepnet.optimizers.Optimizer; "
            f"got {checks._short(opt)}"
        )
    if est.learning_rate is not None:
        checks.real_number(est.learning_rate, _what(est, "learning_rate"), low=0.0,
                           low_open=True)
    for p in ("momentum", "beta1", "beta2"):
        checks.real_number(getattr(est, p), _what(est, p), low=0.0, high=1.0,
                           high_open=True)
    batch = est.batch_size
    if batch != "auto" and batch is not None:
        batch = checks.positive_int(batch, _what(est, "batch_size") + " ('auto', None "
                                    "or a positive integer)")
    epochs = checks.positive_int(est.epochs, _what(est, "epochs"))
    checks.real_number(est.l2, _what(est, "l2"), low=0.0)
    checks.real_number(est.keep_prob, _what(est, "keep_prob"), low=0.0, high=1.0,
                       low_open=True)
    if not isinstance(est.init, str) or est.init not in initializers.INITIALIZERS:
        raise InputError(
            f"{_what(est, 'init')} must be one of {', '.join(initializers.INITIALIZERS)}"
            f"; got {checks._short(est.init)}"
        )
    if not isinstance(est.early_stopping, (bool, np.bool_)):
        raise InputError(
            f"{_what(est, 'early_stopping')} must be True or False; "
            f"got {checks._short(est.early_stopping)}"
        )
    checks.real_number(est.validation_fraction, _what(est, "validation_fraction"),
                       low=0.0, high=1.0, low_open=True, high_open=True)
    checks.positive_int(est.n_iter_no_change, _what(est, "n_iter_no_change"))
    checks.real_number(est.tol, _what(est, "tol"), low=0.0)
    if est.backend is not None and (
        not isinstance(est.backend, str) or backend_key(est.backend) not in BACKEND_NAMES
    ):
        raise InputError(
            f"{_what(est, 'backend')} must be None (deepnet's default) or one of "
            f"{', '.join(BACKEND_NAMES)}; got {checks._short(est.backend)}"
        )
    if est.device is not None and not isinstance(est.device, (str, int)):
        raise InputError(
            f"{_what(est, 'device')} must be None or a device name such as 'cuda:0'; "
            f"got {checks._short(est.device)}"
        )
    try:
        dtype = None if est.dtype is None else resolve_dtype_name(est.dtype)
    except InputError as exc:
        raise InputError(f"{_what(est, 'dtype')}: {exc}") from exc
    rs = est.random_state
    if not (rs is None or isinstance(rs, (np.random.RandomState, np.random.Generator)) or (
        isinstance(rs, numbers.Integral) and not isinstance(rs, bool) and int(rs) >= 0
    )):
        raise InputError(
            f"{_what(est, 'random_state')} must be None, an int >= 0, a "
            f"numpy.random.RandomState or Generator; got {checks._short(rs)}"
        )
    if isinstance(est.verbose, bool) or isinstance(est.verbose, numbers.Integral):
        verbose = bool(est.verbose)
    else:
        raise InputError(f"{_what(est, 'verbose')} must be True or False; got "
                         f"{checks._short(est.verbose)}")
    return Settings(hidden, names, batch, epochs, dtype, verbose)


def seed(est: Any) -> int | None:
    """The network's seed from ``random_state`` (checked by :func:`settings`): an int
    is used as it is, so the same seed gives the network ``deepnet.DeepNet(seed=...)``
    would; a RandomState or Generator is drawn from, as scikit-learn does."""
    rs = est.random_state
    if rs is None:
        return None
    if isinstance(rs, np.random.RandomState):
        return int(rs.randint(np.iinfo(np.int32).max))
    if isinstance(rs, np.random.Generator):
        return int(rs.integers(np.iinfo(np.int32).max))
    return int(rs)


def make_optimizer(est: Any) -> _optimizers.Optimizer:
    """A fresh optimizer: a copy of an ``Optimizer`` parameter (state cleared), or one
    made from the name with ``learning_rate``, ``momentum``, ``beta1``, ``beta2``."""
    if isinstance(est.optimizer, _optimizers.Optimizer):
        opt = copy.deepcopy(est.optimizer)
        opt.reset()
        return opt
    name = est.optimizer.lower()
    kwargs: dict[str, Any] = {}
    if est.learning_rate is not None:
        kwargs["learning_rate"] = est.learning_rate
    if name == "momentum":
        kwargs["beta"] = est.momentum
    elif name == "rmsprop":
        kwargs["beta2"] = est.beta2
    elif name == "adam":
        kwargs.update(beta1=est.beta1, beta2=est.beta2)
    return _optimizers.OPTIMIZERS[name](**kwargs)


__all__ = ["ALIASES", "Settings", "make_optimizer", "seed", "settings"]
