"""A fitted network and its optimizer as host data, and their move onto any backend.

Pickling an estimator stores a :class:`Saved` record (NumPy arrays only), so it loads
anywhere; the network is rebuilt on the backend it was fitted on when that backend runs
there, and otherwise waits, as an :class:`Unloaded` network, until the estimator's
``backend``/``device`` parameters name one that does. The optimizer's moments travel with
it, so ``partial_fit`` after a reload continues the same trajectory.

Where the backend writes into buffers, deepnet's optimizers keep their moments for one
flat array of all parameters (key ``"params"``, ``W1, b1, ..., WL, bL`` in the order of
``param_shapes``, each flattened row by row); elsewhere (array-api-strict) per parameter.
The record keeps them per parameter, the layout every backend can be converted to.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deepnet.backend import Backend, get_backend, to_numpy
from deepnet.errors import BackendError
from deepnet.network import DeepNet
from deepnet.optimizers import Optimizer


@dataclass
class Saved:
    """A fitted network and optimizer on the host.

    Attributes
    ----------
    config : the network's constructor arguments (``DeepNet.config()``).
    params : ``{"W1": (n1, n0), "b1": (n1, 1), ...}`` as NumPy arrays.
    history : the network's last ``History``.
    rng_state : the state of the network's host RNG (dropout masks, shuffles).
    backend, device : where the network was, as ``get_backend`` names them.
    reuse_buffers : the network's workspace setting.
    optimizer : the optimizer with its moments on the host, per parameter
        (``{"W1": {"v": ..., "s": ...}, ...}``), or ``None``.
    """

    config: dict[str, Any]
    params: dict[str, np.ndarray]
    history: Any
    rng_state: dict[str, Any]
    backend: str
    device: str | None
    reuse_buffers: bool = True
    optimizer: Optimizer | None = field(default=None)

    @property
    def label(self) -> str:
        """``backend`` or ``backend:device``."""
        return self.backend if self.device is None else f"{self.backend}:{self.device}"


class Unloaded:
    """Stands for a fitted network whose backend cannot run here.

    Any use of it raises a :class:`~deepnet.BackendError` that says how to reload it;
    the estimator rebuilds it from ``saved`` when its ``backend``/``device`` name a
    backend that runs.
    """

    def __init__(self, saved: Saved, reason: str) -> None:
        self.saved = saved
        self.reason = reason

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("saved", "reason"):
            raise AttributeError(name)
        raise BackendError(self.reason)

    def __repr__(self) -> str:
        return f"<deepnet network fitted on {self.saved.label!r}, not loaded here>"


def _device_name(backend: Backend) -> str | None:
    """The ``device`` argument that makes ``get_backend`` return ``backend`` again."""
    if backend.label == backend.name:
        return None
    return backend.label.split(":", 1)[1]


def save(net: DeepNet | Unloaded, optimizer: Optimizer | None) -> Saved:
    """``net`` and ``optimizer`` as host data (explicit copies through ``to_numpy``)."""
    if isinstance(net, Unloaded):
        return net.saved
    opt = None
    if optimizer is not None:
        state = _per_parameter(optimizer.state, optimizer.moments, net.param_shapes())
        opt = copy.copy(optimizer)
        opt.state = {}
        opt = copy.deepcopy(opt)
        opt.state = state
    return Saved(
        config=net.config(),
        params={k: to_numpy(v) for k, v in net.params.items()},
        history=copy.deepcopy(net.history),
        rng_state=dict(copy.deepcopy(net._rng.bit_generator.state)),
        backend=net.backend.name,
        device=_device_name(net.backend),
        reuse_buffers=net.reuse_buffers,
        optimizer=opt,
    )


def load(saved: Saved, backend: Backend) -> tuple[DeepNet, Optimizer | None]:
    """The network and optimizer of ``saved`` rebuilt on ``backend``."""
    c = saved.config
    net = DeepNet(
        c["layer_dims"], hidden=c["hidden"], output=c["output"], init=c["init"], l2=c["l2"],
        keep_prob=c["keep_prob"], dtype=c["dtype"], seed=c["seed"], backend=backend,
        reuse_buffers=saved.reuse_buffers,
    )
    net.set_params(saved.params)
    net.history = copy.deepcopy(saved.history)
    net._rng.bit_generator.state = copy.deepcopy(saved.rng_state)
    opt = None
    if saved.optimizer is not None:
        opt = copy.deepcopy(saved.optimizer)
        opt.state = _for_network(saved.optimizer.state, net)
    return net, opt


def restore(saved: Saved) -> tuple[DeepNet | Unloaded, Optimizer | None]:
    """The network and optimizer of ``saved`` on the backend they were fitted on, or an
    :class:`Unloaded` network (and ``None``) that says why that backend cannot run here."""
    try:
        backend = get_backend(saved.backend, saved.device)
    except BackendError as exc:
        return Unloaded(saved, (
            f"this estimator's network was fitted on {saved.label!r}, which cannot run "
            f"here ({exc}); reload it onto another backend with "
            "est.set_params(backend=..., device=...), e.g. backend='numpy'"
        )), None
    return load(saved, backend)


def move(
    net: DeepNet | Unloaded, optimizer: Optimizer | None, backend: Backend
) -> tuple[DeepNet, Optimizer | None]:
    """``net`` and ``optimizer`` on ``backend`` (through the host: an explicit move)."""
    return load(save(net, optimizer), backend)


def same_place(net: DeepNet, backend: Backend) -> bool:
    """Whether ``net`` already lives on ``backend`` (library and device)."""
    return net.backend is backend or net.backend.label == backend.label


# -- optimizer moments: one flat array or one array per parameter -----------------------


def _per_parameter(
    state: dict[str, dict[str, Any]], moments: tuple[str, ...],
    shapes: dict[str, tuple[int, int]],
) -> dict[str, dict[str, np.ndarray]]:
    """Host copies of the moments, per parameter; scratch buffers are left out."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for key, slot in state.items():
        for name, value in slot.items():
            if name not in moments:
                continue
            host = to_numpy(value)
            if key == "params":  # the flat array: split it back into W1, b1, ...
                offset = 0
                for pkey, (rows, cols) in shapes.items():
                    part = host[offset : offset + rows * cols].reshape(rows, cols)
                    out.setdefault(pkey, {})[name] = part.copy()
                    offset += rows * cols
            else:
                out.setdefault(key, {})[name] = host.copy()
    return out


def _for_network(
    state: dict[str, dict[str, np.ndarray]], net: DeepNet
) -> dict[str, dict[str, Any]]:
    """The per-parameter host moments ``state`` in the layout ``net``'s update uses, on
    its device."""
    targets = net._update_targets()
    dtype = net.dtype
    if list(targets) == ["params"]:
        names = sorted({name for slot in state.values() for name in slot})
        flat = {}
        for name in names:
            parts = [np.ravel(state[k][name]) for k in net.param_shapes()]
            flat[name] = net.backend.asarray(np.concatenate(parts), dtype, what=name)
        return {"params": flat} if flat else {}
    return {
        key: {name: net.backend.asarray(v, dtype, what=name) for name, v in slot.items()}
        for key, slot in state.items()
    }


__all__ = ["Saved", "Unloaded", "load", "move", "restore", "same_place", "save"]
