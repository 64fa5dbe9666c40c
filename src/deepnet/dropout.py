"""Inverted-dropout masks made on the device from a counter-based hash.

A training step draws one integer ``key`` from the network's host RNG
(:func:`step_key`); every mask entry is then a pure function of that key and of the
entry's position, computed on the device with standard integer operations::

    r  hidden unit: layer l's row i is r = n[1] + ... + n[l-1] + i
    c  the example's column in the global batch (column_offset + j)
    p  = (r·A + c)              mod 2^32     A = 0x61C88647 (2^32 / golden ratio²)
    x  = (p·K + k)              mod 2^32     K odd, k: both from the step's key
    h  = x ^ (x >> 16);  h = h·C1 mod 2^32
    h  = h ^ (h >> 15);  h = h·C2 mod 2^32   C1 = 0x4BAA368D, C2 = 0x65D2E199
    D[l][i, j] = 1/keep_prob  if h < round(keep_prob · 2^32)  else 0

So a mask is bit-identical on every backend and device (integer arithmetic, compared
in the integer domain; the kept value is ``1/keep_prob`` rounded to the dtype), and the
mask of a column does not depend on how a batch is split: a process holding columns
``[c0, c0 + m)`` of the global batch passes ``column_offset=c0`` and gets exactly those
columns of the whole batch's mask (data-parallel training relies on it).

Every intermediate stays below 2^63 (a value below 2^32 times a constant below 2^31), so
no backend's int64 ever overflows: no reliance on wrap-around. The golden-ratio
multiplier spaces rows so that ``p`` is distinct for every (r, c) of any layer with fewer
than about 10^9 entries; ``K`` and ``k`` make the step's positions an unrelated set
of words; the two xorshift-multiply rounds were chosen among 300 random pairs of odd
31-bit constants as the pair whose top output bits showed no avalanche bias above the
sampling noise (2^20 inputs): the decision ``h < threshold`` rests on the top bits.

*Same seed, same network*: the masks depend on the seed (through the host RNG), the
step, the layer widths and each example's position in the batch, and on nothing else —
not the backend, the device, the dtype or the split of the batch. They are not the
masks of deepnet before this module (which drew ``n[l] × m`` uniforms from the host RNG
per layer and step): a seed gives other masks, and the host RNG advances by one draw
per training step instead of ``Σ n[l] · m``, so later shuffles differ too.
"""

from __future__ import annotations

from collections.abc import Sequence

from deepnet.backend import Array, array_namespace
from deepnet.errors import InputError
from deepnet.hooks import integers_wrap

__all__ = ["keep_threshold", "masks", "step_key", "unit_hash"]

_M32 = 0xFFFFFFFF
ROW_MULTIPLIER = 0x61C88647
C1 = 0x4BAA368D
C2 = 0x65D2E199
_LIMIT = 1 << 31  # rows and columns are counted below this
_CHUNK = 1 << 22  # hash at most this many entries at once (int64 temporaries: 32 MiB)


def step_key(rng) -> int:
    """One training step's key: a 63-bit integer drawn from the host RNG ``rng``."""
    return int(rng.integers(0, (1 << 63) - 1))


def _split(key: int) -> tuple[int, int]:
    """``(K, k)``: an odd multiplier below 2^31 and an offset below 2^32."""
    return ((key >> 32) & 0x7FFFFFFF) | 1, key & _M32


def keep_threshold(keep_prob: float) -> int:
    """``round(keep_prob · 2^32)``: ``h < threshold`` keeps a unit (``2^32`` keeps all)."""
    return round(keep_prob * (1 << 32))


def unit_hash(rows: Array, cols: Array, key: int) -> Array:
    """``h`` of the module docstring for integer ``rows (R, 1)`` and ``cols (1, m)``.

    int64 inputs take the portable path: every product stays below 2^63, so no
    library's arithmetic ever overflows (the standard leaves integer overflow
    unspecified). uint32 inputs take the short path, which lets the products wrap modulo
    2^32 and skips the masks: only for libraries whose uint32 arithmetic is known to
    wrap (``backend.integers_wrap``). Both give the same values in ``[0, 2^32)``.
    """
    K, k = _split(key)
    if array_namespace(rows).isdtype(rows.dtype, "unsigned integer"):
        h = (rows * ROW_MULTIPLIER) * K + k + cols * K  # (R, m), wrapping
        h ^= h >> 16
        h *= C1
        h ^= h >> 15
        h *= C2
        return h
    row_part = ((rows * ROW_MULTIPLIER) & _M32) * K  # < 2^63
    row_part = ((row_part & _M32) + k) & _M32  # (R, 1): the small side carries the key
    col_part = (cols * K) & _M32  # (1, m)
    h = row_part + col_part  # the one full-size allocation; every step below is in place
    h &= _M32
    h ^= h >> 16
    h *= C1
    h &= _M32
    h ^= h >> 15
    h *= C2
    h &= _M32
    return h


def masks(
    like: Array, widths: Sequence[int], key: int, keep_prob: float, *,
    column_offset: int = 0,
) -> list[Array]:
    """``D[1], ..., D[len(widths)]``: inverted-dropout masks of shape ``(n[l], m)``.

    Parameters
    ----------
    like : any ``(·, m)`` array of the batch (e.g. ``X``): the masks get its namespace,
        device, dtype and number of columns ``m``.
    widths : the hidden layers' sizes ``n[1], ..., n[L-1]``.
    key : this step's key (:func:`step_key`).
    keep_prob : probability of keeping a unit, in ``(0, 1]``.
    column_offset : the column of ``like``'s first example in the global batch.

    Returns
    -------
    One array per hidden layer, entries ``0`` or ``1/keep_prob`` in ``like``'s dtype.
    Layers are hashed together while their entries fit in one chunk (fewer kernel
    launches at small sizes), in chunks otherwise; the values are the same either way.
    """
    xp = array_namespace(like)
    m = like.shape[1]
    total = sum(widths)
    if column_offset < 0 or column_offset + m > _LIMIT or total > _LIMIT:
        raise InputError(
            f"dropout masks count rows and columns below 2^31; got {total} hidden units "
            f"and columns [{column_offset}, {column_offset + m})"
        )
    device, dtype = like.device, like.dtype
    threshold = keep_threshold(keep_prob)
    scale = 1.0 / keep_prob
    itype = xp.uint32 if integers_wrap(like) else xp.int64
    cols = xp.arange(column_offset, column_offset + m, dtype=itype, device=device)
    cols = xp.reshape(cols, (1, m))
    out: list[Array] = []
    start = 0
    for group in _groups(widths, m):
        rows = sum(group)
        if threshold >= 1 << 32:  # keep_prob rounds to 1: every unit is kept
            D = xp.full((rows, m), scale, dtype=dtype, device=device)
        else:
            r = xp.arange(start, start + rows, dtype=itype, device=device)
            h = unit_hash(xp.reshape(r, (rows, 1)), cols, key)
            D = xp.astype(h < threshold, dtype)
            D *= scale
        offset = 0
        for n in group:
            out.append(D[offset : offset + n, :])
            offset += n
        start += rows
    return out


def _groups(widths: Sequence[int], m: int) -> list[list[int]]:
    """Consecutive layers whose masks fit in one chunk of ``_CHUNK`` entries together."""
    groups: list[list[int]] = []
    size = 0
    for n in widths:
        if groups and size + n * m <= _CHUNK:
            groups[-1].append(n)
            size += n * m
        else:
            groups.append([n])
            size = n * m
    return groups
