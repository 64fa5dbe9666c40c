"""deepnet's errors: one hierarchy, each kind also the built-in a caller would catch."""


class DeepNetError(Exception):
    """Base of every error deepnet raises on purpose."""


class BackendError(DeepNetError, RuntimeError):
    """The array library, device or dtype asked for cannot be used here."""


class ShapeError(DeepNetError, ValueError):
    """An array does not have the shape the notation requires."""


class InputError(DeepNetError, ValueError, TypeError):
    """An argument has the wrong type, range, dtype or values (NaN, inf, labels)."""


class CheckpointError(DeepNetError, ValueError):
    """A checkpoint file is missing, truncated, foreign or does not match."""


class DivergenceError(DeepNetError, RuntimeError):
    """Training produced a non-finite cost or parameter; the last finite ones were kept."""


class DistributedError(DeepNetError, RuntimeError):
    """A distributed run stopped: a rank failed, was lost or timed out (``deepnet.distributed``)."""


class RankMismatchError(InputError, DistributedError):
    """The ranks of a distributed run were given inputs that differ (shapes, seed, ...)."""


__all__ = [
    "BackendError",
    "CheckpointError",
    "DeepNetError",
    "DistributedError",
    "DivergenceError",
    "InputError",
    "RankMismatchError",
    "ShapeError",
]
