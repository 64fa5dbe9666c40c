"""The base of the update rules: α and its schedule, the per-parameter state (moments,
step and epoch counts), the backend's fused update or the portable one, flushing moments
before they turn subnormal, and the checks that tie the state to one network.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from deepnet.backend import Array, array_namespace, fused, into, out_supported
from deepnet.checks import real_number
from deepnet.errors import InputError
from deepnet.schedules import Schedule, get_schedule


class Optimizer:
    """Base of the update rules: ``learning_rate`` (α0), its schedule, the current α and
    the per-parameter state.

    Pass an instance to ``fit`` (or to ``deepnet.step.train_step``) to set the
    hyperparameters; its state — moments, step count ``t``, epochs run — carries over
    from one ``fit`` to the next, so a second ``fit`` continues the first.

    Parameters
    ----------
    learning_rate : float, optional
        α0 > 0; ``None`` takes the rule's :attr:`default_learning_rate`.
    schedule : str, Schedule or None
        How α decays per epoch (``deepnet.schedules``); ``None`` keeps it constant.
    fused : bool
        Use the backend's fused update where it has one (``deepnet.fused``); ``False``
        runs the portable update everywhere.
    """

    name = "optimizer"

    #: the α0 used when none is given (``fit``, the CLI and the constructor alike)
    default_learning_rate = 0.1

    def __init__(self, learning_rate: float | None = None,
                 schedule: str | Schedule | None = None, *, fused: bool = True) -> None:
        if learning_rate is None:
            learning_rate = self.default_learning_rate
        self.learning_rate = real_number(
            learning_rate, "learning_rate", low=0.0, low_open=True
        )
        self.fused = bool(fused)
        self.shapes: dict[str, tuple[int, ...]] | None = None  # of the network it updates
        self.schedule = get_schedule(schedule)
        self.alpha = self.learning_rate
        self.t = 0  # number of updates made
        self.epochs = 0  # number of epochs completed, over every fit this optimizer ran
        self.state: dict[str, dict[str, Array]] = {}

    def set_epoch(self, epoch: int) -> None:
        """Set α for ``epoch`` (an int, 0-based, counted over every fit) from the schedule.

        ``fit`` calls it with :attr:`epochs`, so an optimizer object passed to a second
        ``fit`` continues its schedule where the first left it.
        """
        self.alpha = self.schedule(self.learning_rate, epoch)

    #: names of the per-parameter moments this rule keeps (``v``, ``s``)
    moments: tuple[str, ...] = ()

    def step(self, params: Mapping[str, Array], grads: Mapping[str, Array]) -> None:
        """Update every ``params[k]`` in place from ``grads["d" + k]``.

        Where the backend has a fused form of this rule (``deepnet.backend.fused``: one pass on
        torch and CuPy, cache-sized blocks on NumPy) and :attr:`fused` is on, that runs;
        else the portable update (``_apply``), which array-api-strict always runs.

        Parameters
        ----------
        params : mapping of str to array
            ``{"W1": W1 (n1, n0), "b1": b1 (n1, 1), ...}``, updated in place (or one
            flat array of them all, ``{"params": flat}``).
        grads : mapping of str to array
            ``{"dW1": ..., "db1": ...}`` shaped like the parameters (``{"dparams": ...}``
            for a flat array).
        """
        self.t += 1
        for key, W in params.items():
            dW = grads["d" + key]
            state = [self._zeros(key, name, W) for name in self.moments]
            tmp = self._scratch(key, W)
            kernel = fused.kernel(self.name, W) if self.fused else None
            if kernel is None:
                self._apply(W, dW, *state, tmp)
            else:
                kernel(self, W, dW, *state, tmp)
        if self.moments and self.t % self._flush_every() == 0:
            self._flush_tiny()

    def _apply(self, W: Array, dW: Array, *state_and_tmp: Array | None) -> None:
        """The portable update of ``W`` (in place) from ``dW`` and the moments."""
        raise NotImplementedError

    def _flush_every(self) -> int:
        """Steps between flushes: a moment just above the threshold must not decay below
        the smallest normal number in between (``β^K ≥ 2^-10`` for the smallest ``β``)."""
        betas = [b for b in (getattr(self, n, None) for n in ("beta", "beta1", "beta2"))
                 if b is not None]
        smallest = min(betas, default=0.5)
        if smallest <= 0.0:
            return 1
        return max(1, int(10.0 / -math.log2(smallest)))

    def _flush_tiny(self) -> None:
        """Set moments smaller than ``2^20`` times the dtype's smallest normal number to
        zero — what a GPU's or XLA's flush-to-zero does — so they never decay into
        subnormal numbers, which CPUs add and multiply far more slowly (with the flush,
        uncentered inputs train as fast as standardized ones: ``benchmarks/RESULTS.md``,
        ``python benchmarks/data_path.py subnormal``)."""
        for slot in self.state.values():
            for name in self.moments:
                v = slot.get(name)
                if v is None:
                    continue
                xp = array_namespace(v)
                threshold = float(xp.finfo(v.dtype).smallest_normal) * 2.0**20
                tmp = slot.get("scratch")
                keep = into(tmp, "abs", v)
                keep = into(tmp, "greater_equal", keep, threshold)
                if tmp is None:
                    keep = xp.astype(keep, v.dtype)
                v *= keep

    def prescale(self) -> float | None:
        """``c`` where the update is exactly ``W -= c · dW`` (GD: ``α``), else ``None``.

        A training step can then have the backward pass deliver ``c · dW`` directly and
        call :meth:`step_prescaled`, one pass over each ``W`` instead of two.
        """
        return None

    def step_prescaled(self, params: Mapping[str, Array], grads: Mapping[str, Array]) -> None:
        """``W -= dW`` for gradients that already carry :meth:`prescale`'s factor.

        Parameters as in :meth:`step`.
        """
        self.t += 1
        for key, W in params.items():
            W -= grads["d" + key]

    def _zeros(self, key: str, name: str, like: Array) -> Array:
        slot = self.state.setdefault(key, {})
        if name not in slot:
            xp = array_namespace(like)
            slot[name] = xp.zeros(like.shape, dtype=like.dtype, device=like.device)
        return slot[name]

    def _scratch(self, key: str, like: Array) -> Array | None:
        """A reusable buffer shaped like ``like``, where the backend can write into one.

        With it, an update allocates nothing (``backend.into``); without it (array-api-
        strict) every temporary is a new array. The results are the same.
        """
        if not out_supported(like):
            return None
        return self._zeros(key, "scratch", like)

    def check_state(self, params: Mapping[str, Array],
                    shapes: Mapping[str, tuple[int, ...]] | None = None) -> None:
        """Refuse moments made for other parameters than ``params``, or non-finite ones.

        ``params`` is what the network's step updates (``DeepNet._update_targets()``: the
        parameter dict, or one flat array of them all) and ``shapes`` the network's
        parameter shapes (``W1 (n1, n0)``, ...), which the state is tied to: a flat array
        of the same length from another architecture is refused too. An optimizer object
        carries its state from one ``fit`` to the next; used on a network of another
        architecture, backend, device or dtype, that state cannot apply.

        Raises
        ------
        InputError
            Naming the mismatch, with the remedy (``reset()`` or a new optimizer).
        """
        hint = ("it was used on another network; call optimizer.reset() first, or pass a "
                "new optimizer (or its name)")
        if shapes is not None:
            shapes = {k: tuple(v) for k, v in shapes.items()}
            if self.state and self.shapes is not None and self.shapes != shapes:
                raise InputError(
                    f"this {type(self).__name__} holds state for parameters of shapes "
                    f"{_layout(self.shapes)}, but the network's are {_layout(shapes)}; "
                    f"{hint}"
                )
        name_of = {"params": "the flat array of all parameters"}
        for key, slot in self.state.items():
            W = params.get(key) if isinstance(key, str) else None
            if W is None:
                raise InputError(
                    f"this {type(self).__name__} holds state for {name_of.get(key, key)!s} "
                    f"but the network's update has {[name_of.get(k, k) for k in params]}; "
                    f"{hint}"
                )
            what = name_of.get(key, key)
            for name, v in slot.items():
                same = (type(v) is type(W) and tuple(v.shape) == tuple(W.shape)
                        and v.dtype == W.dtype and str(v.device) == str(W.device))
                if not same:
                    raise InputError(
                        f"this {type(self).__name__} holds state {name!r} for {what} of "
                        f"shape {tuple(v.shape)}, {v.dtype} on {v.device} "
                        f"({type(v).__module__}), but the network's is {tuple(W.shape)}, "
                        f"{W.dtype} on {W.device}; {hint}"
                    )
                if name != "scratch":
                    xp = array_namespace(v)
                    if not bool(xp.all(xp.isfinite(v))):
                        raise InputError(
                            f"this {type(self).__name__}'s state {name!r} for {what} holds "
                            f"NaN or inf (left by a diverged run?); {hint}"
                        )

    def bind(self, shapes: Mapping[str, tuple[int, ...]]) -> None:
        """Tie this optimizer's state to a network's parameter shapes (``fit`` calls it
        after :meth:`check_state`)."""
        self.shapes = {k: tuple(v) for k, v in shapes.items()}

    def reset(self) -> None:
        """Forget the state (moments, step and epoch counts)."""
        self.t = 0
        self.epochs = 0
        self.state = {}
        self.shapes = None

    def hyperparameters(self) -> dict[str, Any]:
        """The constructor's arguments besides the schedule, by name."""
        return {"learning_rate": self.learning_rate}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args}, schedule={self.schedule!r})"


def _layout(shapes: Mapping[str, tuple[int, ...]]) -> str:
    """``W1 (5, 3), b1 (5, 1), ...`` in short."""
    text = ", ".join(f"{k} {v}" for k, v in shapes.items())
    return text if len(text) <= 120 else text[:117] + "..."


__all__ = ["Optimizer"]
