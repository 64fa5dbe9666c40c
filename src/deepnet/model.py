"""``Model``: an L-layer perceptron in the notation of the notes — parameters, forward,
backward and cost. ``deepnet.network.DeepNet`` builds training, checkpoints and evaluation
on top of it.

Column layout: ``X = A[0]`` is ``(n0, m)``, one example per column. ``W[l]`` is
``(n[l], n[l-1])`` and ``b[l]`` is ``(n[l], 1)``. The network captures its backend,
device and dtype when it is made; every input is checked and moved onto that device
before any work starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from deepnet import activations, checks, dropout, initializers, inputs, layers, losses
from deepnet.backend import (
    Array,
    Backend,
    get_backend,
    host_rng,
    on_device,
    resolve_dtype_name,
)
from deepnet.backend.kernels import squared_norm
from deepnet.buffers import (
    ParameterStore,
    Workspace,
    workspace,
)
from deepnet.errors import InputError

Caches = list  # one (dense_cache, D) per layer; D is the dropout mask or None


class Model(ParameterStore):
    """The model layer of a :class:`~deepnet.network.DeepNet`: parameters, forward,
    backward and cost of a fully connected network ``[n0, n1, ..., nL]``, in the notes'
    notation, with no training or files (those build on it).

    The constructor's arguments are ``DeepNet``'s: ``layer_dims``, ``hidden``,
    ``output``, ``init``, ``l2``, ``keep_prob``, ``dtype``, ``seed``, ``backend``,
    ``device``, ``reuse_buffers``.
    """

    def __init__(
        self,
        layer_dims: Sequence[int],
        hidden: str | Sequence[str] = "relu",
        output: str = "sigmoid",
        init: str = "he",
        l2: float = 0.0,
        keep_prob: float = 1.0,
        dtype: str | None = None,
        seed: int | None = 0,
        *,
        backend: str | Backend | None = None,
        device: str | None = None,
        reuse_buffers: bool = True,
    ) -> None:
        dims = checks.layer_dims(layer_dims)
        L = len(dims) - 1
        if isinstance(hidden, str) or isinstance(hidden, activations.Activation):
            hidden = [hidden] * (L - 1)  # type: ignore[list-item]  # or an Activation
        elif isinstance(hidden, Sequence):
            hidden = list(hidden)
            if len(hidden) != L - 1:
                raise InputError(
                    f"hidden must be one activation or a list of L - 1 = {L - 1} "
                    f"(one per hidden layer); got {len(hidden)}: {hidden!r}"
                )
        else:
            raise InputError(f"hidden must be an activation name or a list; got {hidden!r}")
        self.hidden = [activations.get(h, allowed=activations.HIDDEN).name for h in hidden]
        self.output = activations.get(output, allowed=activations.OUTPUT).name
        checks.output_units(self.output, dims[-1])
        initializers.get(init)
        self.init = init
        self.l2 = checks.real_number(l2, "l2", low=0.0)
        self.keep_prob = checks.real_number(
            keep_prob, "keep_prob", low=0.0, high=1.0, low_open=True
        )
        self.dtype_name = resolve_dtype_name(dtype)
        self.seed = seed
        rng = host_rng(seed)
        self.backend = get_backend(backend, device)
        self.layer_dims = dims
        self.loss = losses.for_output(self.output)
        self.history: Any = None  # the History of the last fit
        self.reuse_buffers = checks.boolean(reuse_buffers, "reuse_buffers")
        self._rng = rng
        self._grads_flat = None  # the workspace gradients, allocated with the first one
        # the device current inside only: CuPy's creation functions make theirs current,
        # and the caller's current device must be theirs again afterwards
        with self.backend.activate():
            checks.network_memory(dims, self.dtype_name, self.backend)
            with checks.allocation(dims, self.dtype_name):
                self._adopt(initializers.initialize_parameters(
                    dims, init, rng, self.backend, self.dtype
                ))

    # -- description ----------------------------------------------------------------
    @property
    def L(self) -> int:
        """The number of layers, the input not counted."""
        return len(self.layer_dims) - 1

    @property
    def dtype(self) -> Any:
        """The backend's dtype object of the parameters (``dtype_name`` is its name)."""
        return self.backend.dtype(self.dtype_name)

    @property
    def xp(self) -> Any:
        """The Array API namespace of the network's backend."""
        return self.backend.xp

    @property
    def activations(self) -> list[str]:
        """``g[1], ..., g[L]``."""
        return [*self.hidden, self.output]

    def config(self) -> dict[str, Any]:
        """The constructor's arguments, backend aside: ``layer_dims``, ``hidden``,
        ``output``, ``init``, ``l2``, ``keep_prob``, ``dtype``, ``seed`` (what a
        checkpoint records)."""
        return {
            "layer_dims": list(self.layer_dims),
            "hidden": list(self.hidden),
            "output": self.output,
            "init": self.init,
            "l2": self.l2,
            "keep_prob": self.keep_prob,
            "dtype": self.dtype_name,
            "seed": self.seed,
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({list(self.layer_dims)}, hidden={self.hidden}, "
            f"output={self.output!r}, "
            f"dtype={self.dtype_name!r}, backend={self.backend.label!r})"
        )

    # -- forward --------------------------------------------------------------------
    @on_device
    def forward(self, X: Any, *, training: bool = False) -> tuple[Array, Caches]:
        """Forward propagation: ``A[L]`` and the caches, one per layer.

        Parameters
        ----------
        X : array (n0, m)
            Examples in columns, of any library; checked and moved to the network's
            device first.
        training : bool
            Apply inverted dropout to the hidden layers (when ``keep_prob < 1``).

        Returns
        -------
        AL : array (nL, m)
            ``A[L]`` on the network's backend.
        caches : list
            One per layer: what :meth:`backward` and :meth:`cost` need.
        """
        training = checks.boolean(training, "training")
        X = self._check_X(X)
        checks.pass_memory(self.layer_dims, X.shape[1], self.dtype_name, self.backend,
                           "forward", dropout=training and self.keep_prob < 1.0)
        return self._forward(X, training=training)

    def _forward(
        self, X: Array, *, training: bool = False, ws: Workspace | None = None,
        offset: int = 0, key: int | None = None,
    ) -> tuple[Array, Caches]:
        """The forward pass on checked inputs; with ``ws``, into its buffers.

        ``offset`` is the position of ``X``'s first column in the whole batch it belongs
        to (a part of a batch: accumulated, or one process's share of it); ``key`` the
        step's dropout key, the same for every part (``None``: draw one now).
        """
        p = self._params
        masks = None
        if training and self.keep_prob < 1.0:
            key = cast(int, self._dropout_key() if key is None else key)  # an int: dropout is on
            masks = self._dropout_mask(X, offset, key)
        A = X
        caches = []
        for l, g in enumerate(self.hidden, start=1):
            buffers = ws.layer(l) if ws is not None else layers.NO_BUFFERS
            A, cache = layers._dense_forward(A, p[f"W{l}"], p[f"b{l}"], g, buffers)
            D = None
            if masks is not None:
                D = masks[l - 1]
                A = A * D  # not in place: the cache keeps the undropped A for g'
            caches.append((cache, D))
        L = self.L
        out = ws.A[L] if ws is not None else None
        ZL, linear_cache = layers._linear_forward(A, p[f"W{L}"], p[f"b{L}"], out)
        AL = activations.get(self.output).forward(ZL)
        caches.append(((linear_cache, ZL, AL), None))
        return AL, caches

    def _dropout_key(self) -> int | None:
        """One training step's dropout key, drawn from the host RNG (``None`` without
        dropout: the RNG does not move)."""
        return dropout.step_key(self._rng) if self.keep_prob < 1.0 else None

    def _dropout_mask(self, X: Array, offset: int, key: int) -> list[Array]:
        """The step's masks ``D[1], ..., D[L-1]`` for the columns of ``X``, on its device.

        A hash of the step's ``key`` and of each entry's hidden unit and column in the
        whole batch (``offset`` + its column in ``X``): see ``deepnet.dropout``. So one
        seed gives the same masks on every backend, whatever the split of the batch into
        parts or processes, with no host-to-device copy.
        """
        return dropout.masks(X, self.layer_dims[1 : self.L], key, self.keep_prob,
                             column_offset=offset)

    # -- cost and backward --------------------------------------------------------------
    @on_device
    def cost(self, AL: Any, Y: Any, caches: Caches | None = None) -> float:
        """The cost ``J`` (with the L2 term) as a Python float.

        Parameters
        ----------
        AL : array (nL, m)
            The output of :meth:`forward`.
        Y : array (nL, m), or (m,) labels
            One-hot or 0/1 labels ``(nL, m)``; for a softmax output also integer class
            labels ``(m,)``; for one output unit also ``(m,)``; targets for ``linear``.
        caches : list, optional
            :meth:`forward`'s caches: the cost is then computed from the logits ``Z[L]``
            (stable), else from ``AL``.
        """
        AL = self._check_AL(AL)
        Y = self._check_Y(Y, AL.shape[1])
        if caches is not None:
            self._check_caches(caches, AL.shape[1], AL)
        return float(self._cost(AL, Y, caches))

    def _cost(
        self, AL: Array, Y: Array, caches: Caches | None, *, m: int | None = None,
        l2: bool = True,
    ) -> Array:
        """The cost as a 0-d array on the device (no read back).

        ``m`` is the size of the whole batch when ``AL`` is a part of it: the part's
        loss is then its share, ``Σ loss / m``. ``l2=False`` leaves out the L2 term (a
        step adds it once, after summing the parts: :meth:`_l2_cost`).
        """
        if AL.shape[1] == 0:  # an empty share of a batch (more processes than columns)
            J = self.xp.zeros((), dtype=AL.dtype, device=AL.device)
        elif caches is not None:
            ZL = caches[-1][0][1]
            J = self.loss.from_logits(ZL, Y)
        else:
            J = self.loss.from_output(AL, Y)
        if m is not None and m != AL.shape[1] and AL.shape[1] > 0:
            J = J * (AL.shape[1] / m)
        if l2 and self.l2 > 0.0:
            J = J + self._l2_cost(AL.shape[1] if m is None else m)
        return J

    def _l2_cost(self, m: int) -> Array:
        """``(λ/(2m)) Σ ||W[l]||²`` as a 0-d array on the device (one dot product per
        layer: no temporary the size of ``W``)."""
        squares = sum(squared_norm(self._params[f"W{l}"]) for l in range(1, self.L + 1))
        return (self.l2 / (2 * m)) * squares

    @on_device
    def backward(self, AL: Any, Y: Any, caches: Caches) -> dict[str, Array]:
        """Backward propagation by the notes' recursion from ``l = L`` down to 1.

        ``dZ[L] = (A[L] - Y) / m`` directly (for each output with its loss), then
        ``dW[l] = dZ[l] A[l-1]ᵀ``, ``db[l] = Σ dZ[l]``, ``dA[l-1] = W[l]ᵀ dZ[l]``,
        ``dZ[l-1] = dA[l-1] * g'(Z[l-1])``; with ``l2 = λ``, ``dW[l] += (λ/m) W[l]``.

        Parameters
        ----------
        AL : array (nL, m)
        Y : array (nL, m), or (m,) labels
            As in :meth:`cost`.
        caches : list
            :meth:`forward`'s caches for the same ``X``.

        Returns
        -------
        dict of str to array
            ``{"dW1": (n1, n0), "db1": (n1, 1), ..., "dWL": ..., "dbL": ...}`` on the
            network's backend.
        """
        AL = self._check_AL(AL)
        Y = self._check_Y(Y, AL.shape[1])
        self._check_caches(caches, AL.shape[1], AL)
        checks.pass_memory(self.layer_dims, AL.shape[1], self.dtype_name, self.backend,
                           "backward", backward=True)
        return self._backward(AL, Y, caches)

    def _backward(
        self, AL: Array, Y: Array, caches: Caches, ws: Workspace | None = None,
        scale: float = 1.0, *, m: int | None = None, l2: bool = True,
    ) -> dict[str, Array]:
        """The backward pass on checked inputs; with ``ws``, into its buffers.

        The ``1/m`` of every ``dW[l]`` and ``db[l]`` is folded into ``dZ[L]`` once (an
        ``(nL, m)`` array, small) rather than applied to each ``dW`` (``n[l]·n[l-1]``
        numbers each). ``scale`` multiplies every gradient the same way: a training step
        with plain GD passes its ``α`` so that the update is one pass, ``W -= dW``.
        """
        grads = {}
        m = AL.shape[1] if m is None else m  # a part of a batch of m: its share
        L = self.L
        dZ = losses.output_dZ(AL, Y)
        dZ *= scale / m
        buffers = ws.layer(L) if ws is not None else layers.NO_BUFFERS
        dA, dW, db = layers._linear_backward(dZ, caches[-1][0][0], buffers, L > 1, 1)
        grads[f"dW{L}"], grads[f"db{L}"] = dW, db
        for l in range(L - 1, 0, -1):
            cache, D = caches[l - 1]
            if D is not None:
                if ws is not None:
                    dA *= D
                else:
                    dA = dA * D
            buffers = ws.layer(l) if ws is not None else layers.NO_BUFFERS
            dA, dW, db = layers._dense_backward(dA, cache, self.hidden[l - 1], buffers,
                                                l > 1, 1)
            grads[f"dW{l}"], grads[f"db{l}"] = dW, db
        grads = {k: grads[k] for k in self._grad_keys()}
        if l2:
            self._add_l2(grads, scale, m)
        return grads

    def _add_l2(self, grads: dict[str, Array], scale: float, m: int) -> None:
        """``dW[l] += (scale · λ / m) W[l]``, in place (nothing where ``λ = 0``)."""
        if self.l2 > 0.0:
            for l in range(1, self.L + 1):
                decay = self._params[f"W{l}"] * (scale * self.l2 / m)
                grads[f"dW{l}"] += decay

    def _grad_keys(self) -> list[str]:
        """``dW1, db1, ..., dWL, dbL``."""
        keys = self.__dict__.get("_grad_key_list")
        if keys is None:
            keys = self.__dict__["_grad_key_list"] = ["d" + k for k in self.param_shapes()]
        return keys

    def _workspace(self, m: int) -> Workspace | None:
        """The reusable buffers for batches of ``m`` examples (``buffers.workspace``)."""
        return workspace(self, m)

    # -- checks ---------------------------------------------------------------------
    def _check_X(self, X: Any, what: str = "X") -> Array:
        return inputs.features(self.backend, X, self.layer_dims[0], self.dtype, what)

    def _check_Y(self, Y: Any, m: int, what: str = "Y") -> Array:
        return inputs.labels(
            self.backend, Y, output=self.output, nL=self.layer_dims[-1], m=m,
            dtype=self.dtype, what=what,
        )

    def _check_AL(self, AL: Any) -> Array:
        return inputs.output_activations(
            self.backend, AL, output=self.output, nL=self.layer_dims[-1], dtype=self.dtype
        )

    def _check_caches(self, caches: Any, m: int, AL: Array | None = None) -> Caches:
        """The caches of this network's forward of the batch whose output is ``AL``."""
        return inputs.caches(self.backend, caches, dims=self.layer_dims, m=m, dtype=self.dtype,
                             params=self._params, AL=AL)


__all__ = ["Caches", "Model"]
