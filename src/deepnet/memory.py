"""How much memory building a network takes at its peak, and how much is available.

The guard refuses a network *before* anything is allocated (``Model.__init__`` calls
:func:`require` with :func:`network_peak`): a refusal with an ``InputError`` is kinder
than a ``MemoryError`` midway, and far kinder than the kernel's OOM killer, which
allocations on Linux usually meet instead of a ``MemoryError``.

The model of the peak (measured: ``benchmarks/memory_peak.py`` prints it beside the
measured peak resident memory for each backend, dtype and shape). With ``s`` the
itemsize of the network's dtype, ``w[l] = n[l]·n[l-1]``, ``P`` the parameters of the
layers made so far and ``N`` all of them:

- making layer ``l``: ``W[l]`` is drawn as float64 on the host (``8 w[l]``; NumPy scales
  it in place), cast to float32 when that is the dtype (``4 w[l]``) and copied onto the
  backend (``s w[l]``), beside the ``s P`` already made;
- adopting them: where the backend writes into buffers the parameters are copied into
  one flat array (``2 s N`` at once), elsewhere they are kept (``s N``);
- the C allocator keeps freed blocks under 32 MiB (glibc's largest mmap threshold) in
  its heap, where they count until reused: every temporary block under that size (a
  small layer's float64 draw, a float32 cast) is added whole;
- on a GPU the float64 draw and the cast stay on the host and the device holds ``s P``
  plus the copy, then ``2 s N``;
- the libraries' own first allocations (torch's, the largest, in
  ``benchmarks/memory_peak.py``'s output): 16 MiB counted.

The estimate is that model times 1.125 plus the 16 MiB. Available memory is Linux's
``MemAvailable`` (the memory that can be had without swapping), lowered to what the
process's cgroup (a container's limit) still allows; a GPU's is its free memory plus what
the library's own pool holds unused (``deepnet.backend.free_device_memory``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deepnet.backend import Backend, free_device_memory
from deepnet.errors import InputError

#: glibc's largest mmap threshold: blocks below it come from (and stay in) the heap.
HEAP_BLOCK = 32 * 2**20
MARGIN = 1.125
OVERHEAD = 16 * 2**20


@dataclass(frozen=True)
class Need:
    """Bytes needed at a peak: ``host`` RAM and ``device`` memory (``0`` on a CPU backend,
    where everything is host memory)."""

    host: int
    device: int = 0

    def __add__(self, other: Need) -> Need:
        return Need(self.host + other.host, self.device + other.device)


def itemsize(dtype_name: str) -> int:
    """Bytes per element of ``"float32"`` or ``"float64"``."""
    return 4 if dtype_name == "float32" else 8


def on_host(backend: Backend) -> bool:
    """Whether ``backend`` keeps its arrays in host memory (NumPy, array-api-strict, torch
    on the CPU)."""
    return free_device_memory(backend) is None


def network_peak(dims: Sequence[int], dtype_name: str, backend: Backend) -> Need:
    """The estimated peak of building a network ``dims`` on ``backend`` (see the module)."""
    s = itemsize(dtype_name)
    cast = 4 if s == 4 else 0
    flat = backend.supports_out
    host_side = on_host(backend)
    made = 0  # bytes of the parameters made so far, on the backend
    layer_peak = 0
    retained = 0
    for l in range(1, len(dims)):
        w = dims[l] * dims[l - 1]
        temporaries = (8 + cast) * w
        copy = s * w
        here = temporaries + (made + copy if host_side else 0)
        layer_peak = max(layer_peak, here if host_side else temporaries)
        retained += sum(block for block in (8 * w, cast * w) if block < HEAP_BLOCK)
        made += copy + s * dims[l]
    total = made  # s·N
    adopt = 2 * total if flat else total
    if host_side:
        return Need(_margin(max(layer_peak, adopt) + retained) + OVERHEAD)
    return Need(_margin(layer_peak + retained) + OVERHEAD, _margin(adopt))


def workspace_bytes(dims: Sequence[int], m: int, dtype_name: str) -> int:
    """Bytes of the reusable buffers ``fit`` keeps for batches of ``m`` examples.

    ``A[l]`` for every layer, ``dA[l]`` below the output, the flat gradients, a column of
    ``m`` ones and, per distinct hidden width ``n``, an ``(n, m)`` scratch and zeros
    (``buffers.Workspace``). The caller adds its copies of ``X`` and ``Y``.
    """
    L = len(dims) - 1
    s = itemsize(dtype_name)
    activations = sum(dims[l] for l in range(1, L + 1)) * m
    gradients_dA = sum(dims[l] for l in range(1, L)) * m
    parameters = sum(dims[l] * (dims[l - 1] + 1) for l in range(1, L + 1))
    scratch = 2 * sum(set(dims[1:L])) * m
    return s * (activations + gradients_dA + parameters + m + scratch)


def pass_bytes(dims: Sequence[int], m: int, dtype_name: str, *, dropout: bool = False,
               backward: bool = False) -> int:
    """Bytes a forward pass over ``m`` examples keeps (and, with ``backward``, what the
    backward pass adds), outside ``fit``'s workspace.

    Forward: ``Z[l]`` and ``A[l]`` of every layer, kept in the caches (with dropout, the
    mask and the dropped ``A[l]`` of each hidden layer too). Backward: ``dZ``, ``dA`` and
    a temporary of the widest layer, and the gradients.
    """
    L = len(dims) - 1
    s = itemsize(dtype_name)
    kept = 2 * sum(dims[1:]) * m + (2 * sum(dims[1:L]) * m if dropout else 0)
    if not backward:
        return s * kept
    gradients = sum(dims[l] * (dims[l - 1] + 1) for l in range(1, L + 1))
    return s * (3 * max(dims[1:]) * m + gradients)


#: Passes needing less than this are never checked (reading the available memory costs
#: a few file reads, and a pass this small fits anywhere deepnet runs).
SMALL_PASS = 64 * 2**20


def _margin(nbytes: int) -> int:
    return int(nbytes * MARGIN)


# -- what is available ------------------------------------------------------------------


def available_host_memory() -> int | None:
    """Bytes of host memory this process can still get, or ``None`` where unknown.

    ``MemAvailable`` of ``/proc/meminfo``, lowered to the room left under the process's
    cgroup limits (v2 ``memory.max`` at every level of its hierarchy, or v1
    ``memory.limit_in_bytes``); elsewhere the free physical pages (``sysconf``).
    """
    candidates = [x for x in (_meminfo_available(), *_cgroup_room()) if x is not None]
    if not candidates:
        try:
            candidates.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, ValueError, OSError):
            return None
    return max(0, min(candidates))


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None  # "max" means no limit


def _cgroup_room(root: Path = Path("/sys/fs/cgroup")) -> list[int]:
    """Room left under each memory limit of this process's cgroup and its ancestors."""
    try:
        lines = Path("/proc/self/cgroup").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    rooms = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, rel = parts
        if controllers == "":  # cgroup v2: limits may sit at any level above us
            here = root / rel.lstrip("/")
            while True:
                limit, used = _read_int(here / "memory.max"), _read_int(here / "memory.current")
                if limit is not None and used is not None:
                    rooms.append(limit - used)
                if here == root or root not in here.parents:
                    break
                here = here.parent
        elif "memory" in controllers.split(","):  # cgroup v1
            base = root / "memory" / rel.lstrip("/")
            for here in (base, root / "memory"):
                limit = _read_int(here / "memory.limit_in_bytes")
                used = _read_int(here / "memory.usage_in_bytes")
                if limit is not None and used is not None and limit < 2**60:
                    rooms.append(limit - used)
                    break
    return rooms


def require(need: Need, backend: Backend, what: str,
            advice: str = "use smaller layers") -> None:
    """Refuse (``InputError``) when ``need`` exceeds the memory available now.

    ``what`` names the thing, e.g. ``"layer_dims [64, 10]"``; the message gives both sizes.
    Where the backend's device is the host (NumPy, array-api-strict, torch on the CPU),
    ``need.device`` is host memory too and is added to ``need.host``.
    """
    device = free_device_memory(backend)
    wanted = need.host + (need.device if device is None else 0)
    host = available_host_memory()
    if host is not None and wanted > host:
        raise InputError(
            f"{what} needs about {_gib(wanted)} of host memory at its peak, but only "
            f"{_gib(host)} is available here; {advice} (or free memory)"
        )
    if need.device and device is not None:
        if need.device > device:
            raise InputError(
                f"{what} needs about {_gib(need.device)} on {backend.label} at its peak, "
                f"but only {_gib(device)} is free there; {advice} (or another device)"
            )


def _gib(nbytes: int) -> str:
    return f"{nbytes / 2**30:,.2f} GiB" if nbytes >= 2**28 else f"{nbytes / 2**20:,.1f} MiB"


__all__ = [
    "HEAP_BLOCK",
    "MARGIN",
    "OVERHEAD",
    "SMALL_PASS",
    "Need",
    "available_host_memory",
    "itemsize",
    "network_peak",
    "on_host",
    "pass_bytes",
    "require",
    "workspace_bytes",
]
