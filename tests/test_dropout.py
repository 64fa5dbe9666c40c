"""Dropout masks made on the device (``deepnet.dropout``), against an independent oracle:
the module docstring's definition evaluated with Python integers, one entry at a time."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import assert_on_backend

import deepnet as dn
from deepnet import dropout

M32 = (1 << 32) - 1


def _oracle(key: int, rows: range, cols: range, keep_prob: float) -> np.ndarray:
    """``1[h < threshold]`` for global rows ``rows`` and global columns ``cols``."""
    K = ((key >> 32) & 0x7FFFFFFF) | 1
    k = key & M32
    threshold = round(keep_prob * 2**32)
    out = np.zeros((len(rows), len(cols)), dtype=bool)
    for a, r in enumerate(rows):
        for b, c in enumerate(cols):
            x = ((r * 0x61C88647 + c) * K + k) & M32
            x = ((x ^ (x >> 16)) * 0x4BAA368D) & M32
            x = ((x ^ (x >> 15)) * 0x65D2E199) & M32
            out[a, b] = x < threshold
    return out


KEY = 0x5DEECE66D2B7E151


def _like(backend, m, dtype_name="float32"):
    return backend.asarray(np.zeros((2, m)), backend.dtype(dtype_name))


def test_masks_match_the_oracle_on_every_backend(backend, dtype_name):
    widths = [5, 3, 4]
    masks = dropout.masks(_like(backend, 7, dtype_name), widths, KEY, 0.6)
    start = 0
    for n, D in zip(widths, masks):
        got = assert_on_backend(D, backend, (n, 7), dtype_name)
        keep = _oracle(KEY, range(start, start + n), range(7), 0.6)
        expected = np.where(keep, np.asarray(1 / 0.6, dtype_name), 0).astype(dtype_name)
        np.testing.assert_array_equal(got, expected)
        start += n


@pytest.mark.parametrize("splits", [[4], [1, 3], [2, 1, 1], [0, 4]])
def test_a_columns_mask_does_not_depend_on_the_split(backend, splits):
    """Processes holding consecutive slices of a batch of 17 (uneven, one empty) get
    exactly the slices of the whole batch's masks."""
    m = 17
    whole = [dn.to_numpy(D) for D in dropout.masks(_like(backend, m), [6, 9], KEY, 0.5)]
    bounds = np.cumsum([0, *splits]) * m // sum(splits)
    for lo, hi in itertools.pairwise(bounds):
        part = dropout.masks(_like(backend, int(hi - lo)), [6, 9], KEY, 0.5,
                             column_offset=int(lo))
        for D, W in zip(part, whole):
            np.testing.assert_array_equal(dn.to_numpy(D), W[:, lo:hi])


def test_layers_hashed_together_or_apart_give_the_same_masks(backend, monkeypatch):
    together = [dn.to_numpy(D) for D in dropout.masks(_like(backend, 8), [3, 5, 2], KEY, 0.7)]
    monkeypatch.setattr(dropout, "_CHUNK", 1)  # every layer on its own
    apart = [dn.to_numpy(D) for D in dropout.masks(_like(backend, 8), [3, 5, 2], KEY, 0.7)]
    for a, b in zip(together, apart):
        np.testing.assert_array_equal(a, b)


def test_the_wrapping_uint32_path_equals_the_int64_path():
    rows = np.arange(40, dtype=np.int64).reshape(-1, 1) + (1 << 30)
    cols = np.arange(50, dtype=np.int64).reshape(1, -1) + 123456
    for key in (KEY, 0, (1 << 63) - 2, 12345):
        h64 = dropout.unit_hash(rows, cols, key)
        h32 = dropout.unit_hash(rows.astype(np.uint32), cols.astype(np.uint32), key)
        assert h64.dtype == np.int64 and h32.dtype == np.uint32
        np.testing.assert_array_equal(h64, h32.astype(np.int64))
        assert h64.min() >= 0 and h64.max() <= M32


def test_a_near_one_keep_prob_keeps_everything(backend):
    (D,) = dropout.masks(_like(backend, 5, "float64"), [4], KEY, 1 - 1e-12)
    np.testing.assert_array_equal(dn.to_numpy(D), np.full((4, 5), 1 / (1 - 1e-12)))


def test_positions_beyond_2_31_are_refused(backend):
    with pytest.raises(dn.InputError, match="below 2\\^31"):
        dropout.masks(_like(backend, 4), [3], KEY, 0.5, column_offset=(1 << 31) - 2)
    with pytest.raises(dn.InputError, match="below 2\\^31"):
        dropout.masks(_like(backend, 4), [3], KEY, 0.5, column_offset=-1)


# -- statistics: the masks look like independent coin flips ----------------------------------


@pytest.mark.parametrize("keep_prob", [0.1, 0.5, 0.8, 0.97])
def test_keep_rate_and_independence(keep_prob):
    rng = np.random.default_rng(7)
    like = np.zeros((1, 256), np.float32)
    steps = [dropout.masks(like, [128, 128], dropout.step_key(rng), keep_prob)
             for _ in range(4)]
    keep = np.stack([np.concatenate([D > 0 for D in s]) for s in steps])  # (4, 256, 256)
    n = keep.size
    rate = keep.mean()
    sd = np.sqrt(keep_prob * (1 - keep_prob) / n)
    assert abs(rate - keep_prob) < 5 * sd

    def agreement_excess(a, b):
        """P(a == b) minus what independent flips give, in standard deviations."""
        same = (a == b).mean()
        p = keep_prob**2 + (1 - keep_prob) ** 2
        return (same - p) / np.sqrt(p * (1 - p) / a.size)

    pairs = {
        "next column": (keep[:, :, :-1], keep[:, :, 1:]),
        "next row": (keep[:, :-1, :], keep[:, 1:, :]),
        "next layer": (keep[:, :128, :], keep[:, 128:, :]),
        "next step": (keep[:-1], keep[1:]),
        "row 0 and 64": (keep[:, :64, :], keep[:, 64:128, :]),
        "column 0 and 2^7": (keep[:, :, :128], keep[:, :, 128:]),
    }
    for name, (a, b) in pairs.items():
        assert abs(agreement_excess(a, b)) < 5, name


def test_one_seed_trains_one_network_on_every_backend(backend):
    """With dropout, two epochs of mini-batch Adam on any backend equal NumPy's."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((4, 40))
    Y = (X[:1] * X[1:2] > 0).astype(float)
    nets = [dn.DeepNet([4, 8, 6, 1], keep_prob=0.7, l2=0.05, dtype="float64", seed=9,
                       backend=b) for b in ("numpy", backend)]
    for net in nets:
        net.fit(X, Y, epochs=2, batch_size=16, optimizer="adam", progress=False)
    for key, value in nets[0].params.items():
        np.testing.assert_allclose(dn.to_numpy(nets[1].params[key]), dn.to_numpy(value),
                                   rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cuts", [[4, 11], [1], [7, 8, 9]])
def test_a_batch_in_parts_gets_the_whole_batchs_masks(backend, cuts):
    """deepnet.step.step with the batch cut into parts (as a streamed batch, or processes
    holding shares of it, are): one key for the step, each part its columns' masks, so
    the update equals the one from the whole batch (to the order of the sums)."""
    from deepnet import optimizers
    from deepnet.step import step

    rng = np.random.default_rng(5)
    m = 15
    X = rng.standard_normal((4, m))
    Y = (rng.random((1, m)) > 0.5).astype(float)
    nets = []
    for parts_at in ([], cuts):
        net = dn.DeepNet([4, 9, 7, 1], keep_prob=0.6, l2=0.1, dtype="float64", seed=11,
                         backend=backend, reuse_buffers=False)
        Xd, Yd = net._check_X(X), net._check_Y(Y, m)
        bounds = [0, *parts_at, m]
        parts = [(Xd[:, lo:hi], Yd[:, lo:hi], lo) for lo, hi in itertools.pairwise(bounds)]
        opt = optimizers.get("momentum", 0.1)
        for _ in range(3):
            step(net, parts, opt, m)
        nets.append(net)
    for key, value in nets[0].params.items():
        np.testing.assert_allclose(dn.to_numpy(nets[1].params[key]), dn.to_numpy(value),
                                   rtol=1e-12, atol=1e-14)
