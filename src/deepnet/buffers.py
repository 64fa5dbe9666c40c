"""What a network keeps besides its layers' arithmetic: the live parameter mapping
(``net.params``), the flat parameter and gradient buffers, and the per-batch-size
workspace that training steps write into.

The shapes are the notes': ``W[l]`` is ``(n[l], n[l-1])``, ``b[l]`` is ``(n[l], 1)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from deepnet import checks, layers
from deepnet.backend import Array, device_label, get_backend, on_device, to_numpy
from deepnet.errors import BackendError, InputError, ShapeError


class Parameters(MutableMapping):
    """``net.params``: the live parameters of a network, as the notes' dictionary.

    ``params["W1"]`` is the network's own array ``W[1]`` of shape ``(n1, n0)`` (``b1``:
    ``(n1, 1)``), on its device; ``params["W1"] = value`` checks ``value`` (shape, finite
    values; any library, converted to the network's dtype and moved explicitly) and writes
    it into that array (on backends with a flat parameter buffer, into the buffer), so a
    hand-written update loop trains the network itself. Keys cannot be added or deleted.

    Parameters
    ----------
    net : Model
        The network whose parameters this is a view of.

    Examples
    --------
    >>> import deepnet as dn
    >>> net = dn.DeepNet([2, 3, 1], seed=0)
    >>> params = net.params
    >>> params["b1"] = params["b1"] + 1.0          # written into the network
    >>> float(net.params["b1"][0, 0])
    1.0
    """

    def __init__(self, net: Any) -> None:
        self._net = net

    def __getitem__(self, key: str) -> Array:
        try:
            return self._net._params[key]
        except (KeyError, TypeError):
            raise KeyError(key) from None

    def __setitem__(self, key: str, value: Any) -> None:
        self._net._assign(key, value)

    def __delitem__(self, key: str) -> None:
        raise InputError(
            f"parameters cannot be deleted ({checks._short(key)}): the network needs every "
            "W[l] and b[l]; assign a new value instead"
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self._net._params)

    def __len__(self) -> int:
        return len(self._net._params)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}: {tuple(v.shape)}" for k, v in self._net._params.items())
        return f"Parameters({{{shapes}}}, {self._net.dtype_name} on {self._net.backend.label})"


class Workspace:
    """Buffers for one batch size ``m``, reused by every training step.

    Writing into them (through ``backend.into``) instead of allocating multi-MB
    temporaries each step removes the page faults that dominated the step at small
    widths (benchmarks/NOTES.md).

    Parameters
    ----------
    net : Model
        The network (its backend, dtype, layer sizes and flat gradient buffer).
    m : int
        The batch size.

    Attributes
    ----------
    A : list of arrays (n[l], m)
        ``A[l]`` holds ``Z[l]`` and then ``A[l]`` (index 0 unused).
    dA : list of arrays (n[l], m)
        ``dA[l]`` holds ``dA[l]`` and then ``dZ[l]`` (for ``1 ≤ l < L``).
    dW, db : lists of arrays
        The gradients the optimizer reads: views of the network's flat gradient array.
    tmp, zeros : dict of int to array (n, m)
        Per-width scratch and zeros.
    ones : array (m, 1)
    """

    def __init__(self, net: Any, m: int) -> None:
        xp, dtype, device = net.xp, net.dtype, net.backend.device
        dims, L = net.layer_dims, net.L

        def empty(shape: tuple[int, ...]) -> Array:
            return xp.empty(shape, dtype=dtype, device=device)

        self.m = m
        self.A = [None] + [empty((dims[l], m)) for l in range(1, L + 1)]
        self.dA = [None] + [empty((dims[l], m)) for l in range(1, L)] + [None]
        self.grads_flat, grads = net._grads_flat  # shared by every batch size
        self.dW = [None] + [grads[f"dW{l}"] for l in range(1, L + 1)]
        self.db = [None] + [grads[f"db{l}"] for l in range(1, L + 1)]
        self.ones = xp.ones((m, 1), dtype=dtype, device=device)
        widths = sorted(set(dims[1:L]))
        self.tmp = {n: empty((n, m)) for n in widths}
        self.zeros = {n: xp.zeros((n, m), dtype=dtype, device=device) for n in widths}
        self._layers: list[Any] = [None] + [self._make(l, dims) for l in range(1, L + 1)]

    def _make(self, l: int, dims: tuple[int, ...]) -> layers.Buffers:
        n = dims[l]
        return layers.Buffers(
            A=self.A[l], dA_prev=self.dA[l - 1], dW=self.dW[l], db=self.db[l],
            tmp=self.tmp.get(n), zeros=self.zeros.get(n), ones=self.ones,
        )

    def layer(self, l: int) -> layers.Buffers:
        """Layer ``l``'s buffers, for ``1 ≤ l ≤ L``."""
        return self._layers[l]


def parameter_shapes(layer_dims: Sequence[int]) -> dict[str, tuple[int, int]]:
    """The notes' parameter shapes.

    Parameters
    ----------
    layer_dims : sequence of int
        ``[n0, n1, ..., nL]``.

    Returns
    -------
    dict of str to (int, int)
        ``{"W1": (n1, n0), "b1": (n1, 1), ..., "WL": (nL, nL-1), "bL": (nL, 1)}``.

    Examples
    --------
    >>> from deepnet.buffers import parameter_shapes
    >>> parameter_shapes([3, 4, 1])
    {'W1': (4, 3), 'b1': (4, 1), 'W2': (1, 4), 'b2': (1, 1)}
    """
    shapes = {}
    for l in range(1, len(layer_dims)):
        shapes[f"W{l}"] = (layer_dims[l], layer_dims[l - 1])
        shapes[f"b{l}"] = (layer_dims[l], 1)
    return shapes


def flat_views(net: Any, shapes: dict[str, tuple[int, int]]) -> tuple[Array, dict]:
    """One flat array of zeros and, for each key, a view of it with that shape.

    Parameters
    ----------
    net : Model
        Gives the namespace, dtype and device.
    shapes : dict of str to (int, int)
        The views' shapes, laid out in key order.

    Returns
    -------
    flat : array (Σ rows·cols,)
    views : dict of str to array
        ``views[key]`` of shape ``shapes[key]``, sharing ``flat``'s memory.
    """
    xp = net.xp
    total = sum(rows * cols for rows, cols in shapes.values())
    flat = xp.zeros((total,), dtype=net.dtype, device=net.backend.device)
    views, offset = {}, 0
    for key, (rows, cols) in shapes.items():
        views[key] = xp.reshape(flat[offset : offset + rows * cols], (rows, cols))
        offset += rows * cols
    return flat, views


def workspace(net: Any, m: int) -> Workspace | None:
    """The network's reusable buffers for batches of ``m`` examples.

    At most two sizes are kept: a mini-batch run has the batch size and the last,
    partial batch. The flat gradient array is allocated with the first workspace.

    Parameters
    ----------
    net : Model
    m : int
        The batch size.

    Returns
    -------
    Workspace or None
        ``None`` where the backend cannot write into buffers (array-api-strict) or the
        network's ``reuse_buffers`` is off.
    """
    if not (net.reuse_buffers and net.backend.supports_out):
        return None
    if net._grads_flat is None:
        shapes = {"d" + k: v for k, v in net.param_shapes().items()}
        net._grads_flat = flat_views(net, shapes)
    cache = net.__dict__.setdefault("_workspaces", {})
    if m not in cache:
        if len(cache) >= 2:
            cache.pop(next(iter(cache)))
        cache[m] = Workspace(net, m)
    return cache[m]


class ParameterStore:
    """The parameter side of :class:`~deepnet.model.Model` (a mixin: it uses the model's
    ``backend``, ``dtype``, ``layer_dims`` and ``_params``): the live mapping, replacing
    parameters, the flat buffer, the summary table, pickling.
    """

    # what the model provides (typed here for the checker)
    backend: Any
    layer_dims: tuple[int, ...]
    dtype_name: str
    reuse_buffers: bool
    history: Any
    loss: Any
    l2: float
    keep_prob: float
    config: Callable[[], dict[str, Any]]
    _rng: Any
    _params: dict[str, Array]
    _flat: Array | None
    if TYPE_CHECKING:  # properties of the model

        @property
        def dtype(self) -> Any: ...

        @property
        def xp(self) -> Any: ...

        @property
        def activations(self) -> list[str]: ...

    @property
    def params(self) -> Parameters:
        """The parameters ``W1, b1, ..., WL, bL``, live: a mapping onto the network.

        Reading gives the network's own arrays (on its device); assigning writes into
        them, so the notes' update loop works as written::

            parameters = net.params
            parameters["W1"] = parameters["W1"] - alpha * grads["dW1"]

        Each assignment is checked first (shape, finite values; arrays of any library
        are converted to the network's dtype and moved explicitly, an array on another
        device of the network's library is refused). ``W[l]`` is ``(n[l], n[l-1])``,
        ``b[l]`` is ``(n[l], 1)``.
        """
        return Parameters(self)

    def param_shapes(self) -> dict[str, tuple[int, int]]:
        """The notes' shapes, ``{"W1": (n1, n0), "b1": (n1, 1), ...}``."""
        return parameter_shapes(self.layer_dims)

    @on_device
    def set_params(self, params: Mapping[str, Any]) -> None:
        """Replace every parameter at once, checked before any is changed.

        Parameters
        ----------
        params : mapping of str to array
            Exactly the keys ``W1, b1, ..., WL, bL`` with the notes' shapes, arrays of
            any library (converted to the network's dtype, moved explicitly, copied).

        Raises
        ------
        InputError, ShapeError
            For missing or unexpected keys, wrong shapes, values that are not finite.
        """
        if not isinstance(params, Mapping):
            raise InputError(f"params must be a dict of arrays; got {type(params).__name__}")
        expected = self.param_shapes()
        missing = [k for k in expected if k not in params]
        extra = [k for k in params if k not in expected]
        if missing or extra:
            raise InputError(
                f"params must have exactly the keys {list(expected)}; "
                f"missing {missing}, unexpected {extra}"
            )
        new = {}
        for key, shape in expected.items():
            got = checks.shape_of(params[key], key)
            if got != shape:
                raise ShapeError(f"{key} must have shape {shape}; got {got}")
            value = self.backend.asarray(params[key], self.dtype, what=key)
            checks.all_finite(value, key)
            if self.backend.owns(params[key]):  # never alias the caller's array (or a
                value = self.xp.asarray(value, copy=True)  # detached view of it)
            new[key] = value
        self._adopt(new)

    @on_device
    def _assign(self, key: Any, value: Any) -> None:
        """``params[key] = value``: checked, then written into the live array in place."""
        shapes = self.param_shapes()
        if key not in shapes:
            raise InputError(
                f"the network has no parameter {checks._short(key)}; its parameters are "
                f"{', '.join(shapes)}"
            )
        got = checks.shape_of(value, key)
        if got != shapes[key]:
            raise ShapeError(f"{key} must have shape {shapes[key]}; got {got}")
        converted = self.backend.asarray(value, self.dtype, what=key)
        checks.all_finite(converted, key)
        self._params[key][...] = converted

    def _adopt(self, params: dict[str, Array]) -> None:
        """Make ``params`` the live parameters.

        Where the backend writes into buffers, they become views of one flat array
        (``self._flat``), so an optimizer updates all of them in one pass of a dozen
        elementwise calls instead of a dozen per parameter: on the digits network with
        Adam that was 40% of the step (benchmarks/NOTES.md). Elsewhere (array-api-strict)
        each parameter is its own array and ``_flat`` is ``None``.
        """
        if not self.backend.supports_out:
            self._params, self._flat = params, None
            return
        self._flat, self._params = flat_views(self, self.param_shapes())
        for key, value in params.items():
            self._params[key][...] = value

    def _update_targets(self) -> dict[str, Array]:
        """What the optimizer updates: the flat array where there is one, else the dict."""
        if self._flat is not None and self.reuse_buffers:
            return {"params": self._flat}
        return self._params

    def summary(self) -> str:
        """A table of the layers: units, activation, shapes of ``W[l]`` and ``b[l]``,
        parameter counts; then the totals, loss, regularization, backend, device and
        dtype (print it)."""
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
        type(self).__init__(  # type: ignore[call-arg]  # Model.__init__
            self, config["layer_dims"], hidden=config["hidden"], output=config["output"],
            init=config["init"], l2=config["l2"], keep_prob=config["keep_prob"],
            dtype=config["dtype"], seed=config["seed"], backend=backend,
            reuse_buffers=state["reuse_buffers"],
        )
        self.set_params(state["params"])
        self.history = state["history"]
        self._rng.bit_generator.state = state["rng"]


__all__ = ["ParameterStore", "Parameters", "Workspace", "flat_views",
           "parameter_shapes", "workspace"]
