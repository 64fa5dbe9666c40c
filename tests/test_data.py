"""The data path: example-major tables, memory maps streamed by batch, the prefetch thread.

The oracle for every new path is the plain one: the same fit on a C-ordered array in
memory. A memory map, any memory order or stride, and a batch fed in parts must give the
same parameters — bit for bit where the arithmetic is the same, to rounding where only
the order of a sum differs (a streamed full batch).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import assert_on_backend

import deepnet as dn
from deepnet import data, loader

FIT = {"epochs": 3, "batch_size": 16, "optimizer": "adam", "learning_rate": 0.01,
       "seed": 5, "progress": False}


def _problem(m=70, n0=6, classes=3, seed=11):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, m)
    X = (rng.standard_normal((n0, classes))[:, y] + rng.standard_normal((n0, m)))
    return X.astype(np.float32), y


def _net(backend, **kw):
    kw = {"hidden": "relu", "output": "softmax", "dtype": "float64", "seed": 3,
          "keep_prob": 0.8, "l2": 0.1, **kw}
    return dn.DeepNet([6, 8, 5, 3], backend=backend, **kw)


def _host(net):
    return {k: dn.to_numpy(v).copy() for k, v in net.params.items()}


def _assert_same(a, b, exact=True):
    for key, value in a.items():
        if exact:
            np.testing.assert_array_equal(value, b[key], err_msg=key)
        else:
            np.testing.assert_allclose(value, b[key], rtol=1e-12, atol=1e-13, err_msg=key)


def _prefetch_threads():
    return [t for t in threading.enumerate() if t.name == "deepnet-prefetch"]


# -- memory maps --------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["examples in rows", "examples in columns"])
@pytest.mark.parametrize("validation", [None, 0.2])
def test_a_memory_map_trains_bit_for_bit_like_the_array_in_memory(backend, tmp_path, layout,
                                                                  validation):
    X, y = _problem()
    if layout == "examples in rows":
        np.save(tmp_path / "X.npy", np.ascontiguousarray(X.T))
        Xm = np.load(tmp_path / "X.npy", mmap_mode="r").T
    else:
        np.save(tmp_path / "X.npy", X)
        Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    np.save(tmp_path / "y.npy", y)
    ym = np.load(tmp_path / "y.npy", mmap_mode="r")
    assert isinstance(Xm, np.memmap) and isinstance(ym, np.memmap)
    ref = _net(backend)
    href = ref.fit(X, y, validation=validation, **FIT)
    net = _net(backend)
    history = net.fit(Xm, ym, validation=validation, **FIT)
    _assert_same(_host(net), _host(ref))
    assert history.cost == href.cost and history.accuracy == href.accuracy
    assert history.val_cost == href.val_cost
    assert not _prefetch_threads()


def test_streamed_validation_pairs_and_prefetch_off_agree(backend, tmp_path):
    X, y = _problem()
    Xv, yv = _problem(m=23, seed=12)
    np.save(tmp_path / "Xv.npy", Xv)
    ref = _net(backend)
    href = ref.fit(X, y, validation=(Xv, yv), **FIT)
    net = _net(backend)
    Xvm = np.load(tmp_path / "Xv.npy", mmap_mode="r")
    history = net.fit(X, y, validation=(Xvm, yv), prefetch=False, **FIT)
    assert history.val_cost == href.val_cost and history.val_accuracy == href.val_accuracy
    _assert_same(_host(net), _host(ref))


def test_a_streamed_full_batch_is_summed_in_parts(backend, tmp_path, monkeypatch):
    """Batch size None on a memory map: the whole set in chunks, one update per epoch."""
    monkeypatch.setattr(loader, "STREAM_CHUNK", 16)  # 70 examples: five parts
    X, y = _problem()
    np.save(tmp_path / "X.npy", X)
    kwargs = {**FIT, "batch_size": None, "optimizer": "momentum", "learning_rate": 0.1}
    ref = _net(backend, keep_prob=1.0)
    href = ref.fit(X, y, **kwargs)
    net = _net(backend, keep_prob=1.0)
    history = net.fit(np.load(tmp_path / "X.npy", mmap_mode="r"), y, **kwargs)
    _assert_same(_host(net), _host(ref), exact=False)  # the parts' sums: another order
    np.testing.assert_allclose(history.cost, href.cost, rtol=1e-12)


def test_memory_maps_get_the_errors_of_arrays_before_any_work(tmp_path):
    net = dn.DeepNet([6, 3], output="softmax", backend="numpy")
    before = _host(net)
    X, y = _problem()
    np.save(tmp_path / "wrong.npy", X[:5])
    with pytest.raises(dn.ShapeError, match=r"\(n0, m\) = \(6, m\); got \(5, 70\)"):
        net.fit(np.load(tmp_path / "wrong.npy", mmap_mode="r"), y, epochs=1)
    np.save(tmp_path / "text.npy", np.array([["a"] * 70] * 6))
    with pytest.raises(dn.InputError, match="strings are not supported"):
        net.fit(np.load(tmp_path / "text.npy", mmap_mode="r"), y, epochs=1)
    bad = X.copy()
    bad[2, 40] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(dn.InputError, match=r"nan\.npy.*must be finite"):
        net.fit(np.load(tmp_path / "nan.npy", mmap_mode="r"), y, epochs=1)
    np.save(tmp_path / "y.npy", np.full(70, 3))
    with pytest.raises(dn.InputError, match=r"y\.npy.*0\.\.2"):
        net.fit(X, np.load(tmp_path / "y.npy", mmap_mode="r"), epochs=1)
    np.save(tmp_path / "short.npy", y[:60])
    with pytest.raises(dn.ShapeError, match="60 examples but X has m = 70"):
        net.fit(X, np.load(tmp_path / "short.npy", mmap_mode="r"), epochs=1)
    _assert_same(_host(net), before)
    assert net.history is None


@pytest.mark.parametrize("change", ["grows", "shrinks"])
def test_a_file_that_changes_under_the_fit_is_named_and_the_last_epoch_kept(tmp_path, change):
    X, y = _problem()
    path = tmp_path / "X.npy"
    np.save(path, np.ascontiguousarray(X.T))
    Xm = np.load(path, mmap_mode="r").T
    kept = []

    def tamper(net, epoch, logs):
        kept.append(_host(net))
        if epoch == 1:
            with open(path, "r+b") as f:
                if change == "grows":
                    f.seek(0, 2)
                    f.write(b"\0" * 64)
                else:  # the last example's bytes go; the map still covers them
                    f.truncate(path.stat().st_size - 4 * 6)

    net = _net("numpy", keep_prob=1.0)
    with pytest.raises(dn.InputError, match=r"X\.npy changed under the fit"):
        net.fit(Xm, y, callbacks=[tamper], **{**FIT, "epochs": 5})
    assert net.history.epochs == 2
    _assert_same(_host(net), kept[-1])
    assert not _prefetch_threads()


def test_streaming_holds_one_batch_not_the_file(tmp_path):
    """RssAnon (anonymous memory, not the page cache of the map) stays far below the
    file's size while a fit streams it."""
    m, n0 = 20_000, 800  # 64 MB of float32
    rng = np.random.default_rng(0)
    rows = np.lib.format.open_memmap(tmp_path / "big.npy", mode="w+", dtype=np.float32,
                                     shape=(m, n0))
    for start in range(0, m, 2000):
        rows[start:start + 2000] = rng.random((2000, n0), dtype=np.float32)
    rows.flush()
    del rows
    y = rng.integers(0, 2, m)
    X = np.load(tmp_path / "big.npy", mmap_mode="r").T
    net = dn.DeepNet([n0, 16, 1], backend="numpy", seed=0)

    def anon_kb():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("RssAnon"))

    before = anon_kb()
    peaks = []
    net.fit(X, y, epochs=1, batch_size=256, progress=False,
            callbacks=[lambda *a: peaks.append(anon_kb())])
    assert max(peaks) - before < 24 * 1024  # kB: far below the 62,500 kB of the file


# -- layouts of arrays in memory ----------------------------------------------------------


def _matrix(X):
    import warnings

    with warnings.catch_warnings():  # NumPy discourages np.matrix; users still have them
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return np.asmatrix(X)


LAYOUTS = {
    "C-ordered (n0, m)": lambda X: np.ascontiguousarray(X),
    "X.T of row-major (m, n0)": lambda X: np.ascontiguousarray(X.T).T,
    "float64": lambda X: X.astype(np.float64),
    "big-endian": lambda X: X.astype(">f4"),
    "reversed columns, then back": lambda X: np.ascontiguousarray(X[:, ::-1])[:, ::-1],
    "every other column of a wider array": lambda X: np.repeat(X, 2, axis=1)[:, ::2],
    "np.matrix": lambda X: _matrix(X),
    "list of lists": lambda X: X.tolist(),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_memory_layout_trains_like_a_contiguous_copy(backend, layout):
    X, y = _problem()
    ref = _net(backend, dtype="float32")
    ref.fit(X, y, **FIT)
    net = _net(backend, dtype="float32")
    net.fit(LAYOUTS[layout](X), y[::-1].copy()[::-1], **FIT)
    _assert_same(_host(net), _host(ref))


def test_row_major_data_passed_as_X_T_is_not_copied():
    X, _ = _problem()
    rows = np.ascontiguousarray(X.T)  # (m, n0), what scikit-learn users hold
    for name in ("numpy", "torch"):
        backend = dn.get_backend(name) if name == "numpy" else _torch_cpu()
        table = data.features(backend, rows.T, 6, backend.dtype("float32"))
        assert np.shares_memory(dn.to_numpy(table.rows), rows), name
    copied = data.features(dn.get_backend("numpy"), X, 6, np.float32)
    assert not np.shares_memory(copied.rows, X) and copied.rows.flags.c_contiguous


def _torch_cpu():
    try:
        return dn.get_backend("torch")
    except dn.BackendError as exc:
        pytest.skip(str(exc))


def test_masked_arrays_are_refused_with_a_reason(backend):
    X, y = _problem()
    net = _net(backend)
    masked = np.ma.masked_array(X, mask=X > 2)
    for call in (lambda: net.fit(masked, y, **FIT), lambda: net.predict(masked)):
        with pytest.raises(dn.InputError, match=r"masked array.*filled\(value\)"):
            call()


# -- the loader and the prefetch thread ----------------------------------------------------


def test_batches_are_the_shuffle_cut_and_sorted():
    rng = np.random.default_rng(3)
    batches = loader.plan(np.random.default_rng(3), 10, 4)
    order = rng.permutation(10)
    assert [b.tolist() for b in batches] == [sorted(order[:4]), sorted(order[4:8]),
                                             sorted(order[8:])]
    assert [b.tolist() for b in loader.plan(rng, 5, None)] == [[0, 1, 2, 3, 4]]
    assert [loader.share(10, r, 3) for r in range(3)] == [(0, 3), (3, 6), (6, 10)]
    assert [loader.share(2, r, 4) for r in range(4)] == [(0, 0), (0, 1), (1, 1), (1, 2)]


def test_the_prefetcher_keeps_order_raises_in_place_and_stops():
    def numbers():
        yield from range(5)
        raise ValueError("broken at 5")

    got = []
    with pytest.raises(ValueError, match="broken at 5"):
        with loader.Prefetcher(numbers()) as ahead:
            for item in ahead:
                got.append(item)
    assert got == [0, 1, 2, 3, 4] and not _prefetch_threads()

    def endless():
        i = 0
        while True:
            yield i
            i += 1

    with loader.Prefetcher(endless()) as ahead:
        for item in ahead:
            if item == 3:
                break
    assert not _prefetch_threads()


@pytest.mark.parametrize("failure", [KeyboardInterrupt, RuntimeError])
def test_no_thread_outlives_a_failed_streamed_fit(tmp_path, monkeypatch, failure):
    X, y = _problem()
    np.save(tmp_path / "X.npy", X)
    from deepnet import loop

    real, calls = loop.step, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 7:  # in the second epoch, with the next batch being read
            raise failure("stop")
        return real(*args, **kwargs)

    ref = _net("numpy")
    ref.fit(X, y, **{**FIT, "epochs": 1})
    monkeypatch.setattr(loop, "step", failing)
    net = _net("numpy")
    with pytest.raises(failure):
        net.fit(np.load(tmp_path / "X.npy", mmap_mode="r"), y, **FIT)
    assert not _prefetch_threads()
    assert net.history.epochs == 1
    _assert_same(_host(net), _host(ref))


def test_gather_rows_writes_into_its_buffer(backend):
    rows = backend.asarray(np.arange(12.0).reshape(6, 2), backend.dtype("float64"))
    idx = backend.asarray(np.array([4, 1, 5]), what="idx")
    out = None
    if backend.supports_out:
        out = backend.xp.empty((3, 2), dtype=backend.dtype("float64"), device=backend.device)
    got = dn.backend.gather_rows(rows, idx, out=out)
    if out is not None:
        assert got is out
    np.testing.assert_array_equal(assert_on_backend(got, backend, (3, 2), "float64"),
                                  [[8, 9], [2, 3], [10, 11]])
