"""The default backend: the environment variables, ``set_backend`` and ``use_backend``;
``get_backend`` makes and caches one ``Backend`` per library and canonical device."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

from deepnet.backend.host import backend_key, device_label
from deepnet.backend.libraries import _LOADERS, BACKEND_NAMES, Backend
from deepnet.errors import BackendError

_cache: dict[tuple[str, str | None], Backend] = {}
# one Backend per (library, canonical device label): "cpu:0" and "cpu" load the same one
_canonical: dict[tuple[str, str], Backend] = {}
_lock = threading.Lock()
# set_backend's choice, the process default (a list of at most one Backend)
_override: list[Backend] = []
# the use_backend blocks of the current thread or asyncio task, innermost last
_scoped: contextvars.ContextVar[tuple[Backend, ...]] = contextvars.ContextVar(
    "deepnet_use_backend", default=()
)


def get_backend(name: str | Backend | None = None, device: str | None = None) -> Backend:
    """The backend called ``name`` on ``device``.

    With no ``name``, the default: the innermost :func:`use_backend` of this thread or
    asyncio task, else the last :func:`set_backend`, else ``DEEPNET_BACKEND`` and
    ``DEEPNET_DEVICE``. A ``name`` with no ``device`` takes the default's device where the
    default is the same library (``DEEPNET_BACKEND=torch DEEPNET_DEVICE=cuda:1`` with
    ``backend="torch"`` in a script: ``cuda:1``), else the library's own default device.
    """
    device = _device_text(device)
    if isinstance(name, Backend):
        if device is not None:
            asked = get_backend(name.name, device)
            if device_label(asked.device) != device_label(name.device):
                raise BackendError(
                    f"backend {name.label!r} is on device {device_label(name.device)!r}, but "
                    f"device={device!r} was asked for; pass the backend's name with the "
                    "device, or the Backend alone"
                )
        return name
    if name is None:
        default = _default()
        if isinstance(default, Backend):
            return default if device is None else get_backend(default.name, device)
        name, dev_default = default
        device = device if device is not None else dev_default
    elif device is None:
        device = _default_device_for(_normalize_name(name))
    key = _normalize_name(name), device
    with _lock:
        backend = _cache.get(key)
        if backend is None:
            loaded = _LOADERS[key[0]](key[1])
            backend = _canonical.setdefault((loaded.name, device_label(loaded.device)), loaded)
            _cache[key] = backend
        return backend


def _default() -> Backend | tuple[str, str | None]:
    """The innermost use_backend, set_backend's choice, or the environment's names."""
    scoped = _scoped.get()
    if scoped:
        return scoped[-1]
    chosen = _override[:1]  # a copy: another thread may call set_backend meanwhile
    if chosen:
        return chosen[0]
    raw = os.environ.get("DEEPNET_BACKEND", "")
    name = backend_key(raw) or "numpy"
    if name not in _LOADERS:
        raise BackendError(
            f"DEEPNET_BACKEND={raw!r} is not a backend; valid names: "
            f"{', '.join(BACKEND_NAMES)}"
        )
    return name, _device_text(os.environ.get("DEEPNET_DEVICE"))


def _default_device_for(name: str) -> str | None:
    """The device a backend named without one takes: the default's device where the
    default (use_backend, set_backend, else DEEPNET_BACKEND with DEEPNET_DEVICE) is the
    same library, else the library's own default."""
    try:
        default = _default()
    except BackendError:  # a broken DEEPNET_BACKEND does not matter to an explicit name
        return None
    if isinstance(default, Backend):
        return device_label(default.device) if default.name == name else None
    return default[1] if default[0] == name else None


def _device_text(device: Any) -> str | None:
    """A device as given (a name, an index, a library's device object) as stripped text;
    ``None`` (or an empty name) for the library's default device."""
    if device is None:
        return None
    if type(device).__module__.startswith("cupy") and hasattr(device, "id"):
        device = device.id
    text = str(device).strip()
    return text or None


def _normalize_name(name: Any) -> str:
    if not isinstance(name, str) or backend_key(name) not in _LOADERS:
        raise BackendError(
            f"unknown backend {name!r}; valid names: {', '.join(BACKEND_NAMES)}"
        )
    return backend_key(name)


def set_backend(name: str, device: str | None = None) -> Backend:
    """Make ``name`` (on ``device``) the backend new networks are built on: the process
    default, seen by every thread and task outside a :func:`use_backend` block.

    Inside a :func:`use_backend` block the block's backend still wins until it ends.
    Overrides ``DEEPNET_BACKEND``/``DEEPNET_DEVICE`` for this process; returns the backend
    (loaded now, so a missing library is reported here).
    """
    backend = get_backend(name, device)
    with _lock:
        _override[:] = [backend]
    return backend


@contextlib.contextmanager
def use_backend(name: str, device: str | None = None) -> Iterator[Backend]:
    """Within the block, new networks are built on ``name`` (on ``device``).

    The choice holds for the current thread or asyncio task only (a ``contextvars``
    variable): other threads, and tasks not started inside the block, keep theirs. A task
    created inside the block inherits it, as contextvars do; a thread pool's workers do
    not (submit ``contextvars.copy_context().run`` to carry it over).
    """
    backend = get_backend(name, device)
    token = _scoped.set((*_scoped.get(), backend))
    try:
        yield backend
    finally:
        try:
            _scoped.reset(token)
        except ValueError:  # exited in another context than it was entered in
            stack = list(_scoped.get())
            if backend in stack:
                del stack[len(stack) - 1 - stack[::-1].index(backend)]
            _scoped.set(tuple(stack))


def available_backends() -> dict[str, str]:
    """Each backend name: ``"ok"`` where it loads here, else the reason it does not."""
    out = {}
    for name in BACKEND_NAMES:
        try:
            get_backend(name)
            out[name] = "ok"
        except BackendError as exc:
            out[name] = str(exc)
    return out


def on_device(method: Callable) -> Callable:
    """Run a public method with the network's device current (``Backend.activate``):
    CuPy runs kernels on the thread's current device, whatever the caller made current.
    NumPy's float warnings stay quiet meanwhile: deepnet checks its inputs itself and
    ``fit`` reports non-finite results as errors, so none reaches the caller."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self.backend.activate(), self.backend.quiet_float_errors():
            return method(self, *args, **kwargs)

    return wrapper


__all__ = ["available_backends", "get_backend", "on_device", "set_backend", "use_backend"]
