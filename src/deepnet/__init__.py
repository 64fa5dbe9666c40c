"""deepnet: fully connected deep networks written once against the Python Array API.

>>> import deepnet as dn
>>> net = dn.DeepNet([4, 8, 1], backend="numpy")
>>> net.L
2
"""

from deepnet import (
    activations,
    datasets,
    distributed,
    initializers,
    layers,
    losses,
    optimizers,
)
from deepnet.backend import (
    BACKEND_NAMES,
    available_backends,
    get_backend,
    set_backend,
    to_numpy,
    use_backend,
)
from deepnet.errors import (
    BackendError,
    CheckpointError,
    DeepNetError,
    DistributedError,
    DivergenceError,
    InputError,
    RankMismatchError,
    ShapeError,
)
from deepnet.gradcheck import gradient_check
from deepnet.history import EarlyStopping, History, StopTraining
from deepnet.layers import dense_backward, dense_forward, linear_backward, linear_forward
from deepnet.network import DeepNet, load
from deepnet.serialization import save
from deepnet.training import fit

__version__ = "0.1.0"

__all__ = [
    "BACKEND_NAMES",
    "BackendError",
    "CheckpointError",
    "DeepNet",
    "DeepNetError",
    "DistributedError",
    "DivergenceError",
    "EarlyStopping",
    "History",
    "InputError",
    "RankMismatchError",
    "ShapeError",
    "StopTraining",
    "activations",
    "available_backends",
    "datasets",
    "dense_backward",
    "dense_forward",
    "distributed",
    "fit",
    "get_backend",
    "gradient_check",
    "initializers",
    "layers",
    "linear_backward",
    "linear_forward",
    "load",
    "losses",
    "optimizers",
    "save",
    "set_backend",
    "to_numpy",
    "use_backend",
]
