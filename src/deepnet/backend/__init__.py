"""Choosing the array library, device and dtype; moving arrays in and out.

This is the one compat layer: only in this package are ``array_api_compat``,
NumPy-as-a-backend, CuPy and torch imported. A backend is one entry in
``libraries._LOADERS``. The package's modules form a chain: ``host`` (arrays on the host,
device names) → ``libraries`` (``Backend``, the loaders, namespaces) → ``select`` (the
default backend, ``on_device``) → ``hooks`` (``into``, ``gather_rows``: buffer reuse; the
device's free memory) → ``kernels``
(library-specific operands and formulations) and ``fused`` (fused optimizer updates);
the last two are imported by name, not re-exported here. Nothing is read
from the environment at import time, and CuPy or torch are imported only when a
backend that needs them is first used.

Environment variables (read when a default backend is asked for):

``DEEPNET_BACKEND``  ``numpy`` (default) | ``cupy`` | ``torch`` | ``array_api_strict``
``DEEPNET_DEVICE``   e.g. ``cuda:1`` (torch), ``1`` (cupy), ``device1`` (array_api_strict)
``DEEPNET_DTYPE``    ``float32`` (default) | ``float64``

Names, devices and dtypes are normalised once, here, whether they come from these
variables or from arguments: case and surrounding spaces do not matter (a variable that
is empty or only spaces is unset), and each device
has one canonical name (torch's ``cpu:0`` is ``cpu``, ``cuda`` is the current
``cuda:N``), so one device is always one ``Backend`` object.

The default backend is, in order: the innermost :func:`use_backend` block of the current
thread or asyncio task (a ``contextvars`` variable: blocks in other threads or tasks do not
leak in), else the process default of :func:`set_backend`, else the variables above.
"""

# private names are re-exported too, for the rest of deepnet and its tests
from deepnet.backend.hooks import (  # noqa: F401
    _OUT_LIBRARY,
    free_device_memory,
    gather_rows,
    into,
    is_row_major,
    like,
    out_supported,
    row_major,
)
from deepnet.backend.host import (  # noqa: F401
    DTYPE_NAMES,
    Array,
    _check_dtype_kind,
    _library_of,
    _same_device,
    backend_key,
    device_label,
    host_array,
    host_input,
    host_rng,
    resolve_dtype_name,
    to_numpy,
)
from deepnet.backend.libraries import (  # noqa: F401
    BACKEND_NAMES,
    Backend,
    _cupy_namespace,
    _move_hint,
    array_namespace,
)
from deepnet.backend.select import (  # noqa: F401
    _cache,
    _canonical,
    _override,
    available_backends,
    get_backend,
    on_device,
    set_backend,
    use_backend,
)

__all__ = [
    "BACKEND_NAMES",
    "DTYPE_NAMES",
    "Array",
    "Backend",
    "array_namespace",
    "available_backends",
    "backend_key",
    "device_label",
    "free_device_memory",
    "gather_rows",
    "get_backend",
    "host_array",
    "host_input",
    "host_rng",
    "into",
    "is_row_major",
    "like",
    "on_device",
    "out_supported",
    "resolve_dtype_name",
    "row_major",
    "set_backend",
    "to_numpy",
    "use_backend",
]
