"""Checkpoints: round trips across backends, atomic saves, refusal of bad files."""

from __future__ import annotations

import json
import os
import threading
import zipfile

import numpy as np
import pytest
from conftest import assert_on_backend, load_backend

import deepnet as dn
from deepnet import serialization


def _trained(backend, dtype_name="float64", seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((4, 30))
    y = rng.integers(0, 3, 30)
    net = dn.DeepNet([4, 6, 5, 3], hidden=["tanh", "relu"], output="softmax", init="xavier",
                     l2=0.01, keep_prob=0.9, dtype=dtype_name, seed=seed, backend=backend)
    net.fit(X, y, epochs=3, batch_size=8, optimizer="adam", learning_rate=0.01,
            validation=0.2, progress=False)
    return net, X


def _same_network(a, b, X):
    assert a.config() == b.config()
    for k, v in a.params.items():
        np.testing.assert_array_equal(dn.to_numpy(v), dn.to_numpy(b.params[k]))
    np.testing.assert_allclose(dn.to_numpy(a.predict_proba(X)),
                               dn.to_numpy(b.predict_proba(X)), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("target", ["numpy", "torch", "array_api_strict:device1"])
def test_round_trip_across_backends(backend, dtype_name, target, tmp_path):
    net, X = _trained(backend, dtype_name)
    path = tmp_path / "net.npz"
    net.save(path)
    other = load_backend(target)
    loaded = dn.load(path, backend=other.name, device=None if other.name != "array_api_strict"
                     else "device1")
    assert loaded.backend is other
    for k, v in loaded.params.items():
        assert_on_backend(v, other, net.params[k].shape, dtype_name)
    _same_network(net, loaded, X)
    assert loaded.history == net.history
    back = tmp_path / "back.npz"
    loaded.save(back)
    again = dn.load(back, backend=backend)
    _same_network(net, again, X)


def test_load_uses_the_default_backend_and_can_convert_the_dtype(tmp_path):
    net, _ = _trained("numpy", "float64")
    net.save(tmp_path / "n.npz")
    with dn.use_backend("array_api_strict"):
        loaded = dn.load(tmp_path / "n.npz")
    assert loaded.backend.name == "array_api_strict" and loaded.dtype_name == "float64"
    small = dn.load(tmp_path / "n.npz", backend="numpy", dtype="float32")
    assert small.dtype_name == "float32"
    np.testing.assert_allclose(dn.to_numpy(small.params["W1"]), dn.to_numpy(net.params["W1"]),
                               rtol=1e-7)


def test_the_file_is_a_plain_npz_with_format_and_config(tmp_path):
    net, _ = _trained("numpy")
    path = tmp_path / "n.npz"
    net.save(path)
    with np.load(path, allow_pickle=False) as npz:
        assert str(npz["__format__"]) == "deepnet-checkpoint"
        assert int(npz["__version__"]) == serialization.FORMAT_VERSION
        config = json.loads(str(npz["config"]))
        assert config == net.config()
        assert set(npz.files) == {"__format__", "__version__", "config", "history",
                                  "W1", "b1", "W2", "b2", "W3", "b3"}
        np.testing.assert_array_equal(npz["W2"], dn.to_numpy(net.params["W2"]))
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would make it
    assert [p.name for p in tmp_path.iterdir()] == ["n.npz"]  # no temporary left behind


def test_an_untrained_network_round_trips(tmp_path):
    net = dn.DeepNet([3, 2], output="linear", backend="numpy")
    net.save(tmp_path / "u.npz")
    loaded = dn.load(tmp_path / "u.npz", backend="numpy")
    assert loaded.history is None
    _same_network(net, loaded, np.ones((3, 2)))


# -- atomic saves ------------------------------------------------------------------------


def _failing_savez(monkeypatch, error):
    real = np.savez

    def half_then_fail(file, **arrays):
        real(file, **dict(list(arrays.items())[:3]))  # some bytes reach the temp file
        raise error

    monkeypatch.setattr(serialization.np, "savez", half_then_fail)


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"),
                                   KeyboardInterrupt()])
def test_a_save_that_fails_midway_leaves_the_old_checkpoint(monkeypatch, tmp_path, error):
    old, X = _trained("numpy", seed=1)
    path = tmp_path / "ckpt.npz"
    old.save(path)
    before = path.read_bytes()
    new, _ = _trained("numpy", seed=2)
    _failing_savez(monkeypatch, error)
    expected = dn.CheckpointError if isinstance(error, OSError) else KeyboardInterrupt
    with pytest.raises(expected) as info:
        new.save(path)
    if expected is dn.CheckpointError:
        assert "unchanged" in str(info.value)
    assert path.read_bytes() == before
    _same_network(old, dn.load(path, backend="numpy"), X)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.npz"]


def test_a_failed_rename_leaves_the_old_checkpoint(monkeypatch, tmp_path):
    old, X = _trained("numpy", seed=1)
    path = tmp_path / "ckpt.npz"
    old.save(path)
    new, _ = _trained("numpy", seed=2)

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(serialization.os, "replace", refuse)
    with pytest.raises(dn.CheckpointError, match="Permission denied"):
        new.save(path)
    monkeypatch.undo()
    _same_network(old, dn.load(path, backend="numpy"), X)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.npz"]


def test_concurrent_saves_to_one_path_never_tear_it(tmp_path):
    nets = [dn.DeepNet([30, 40, 20, 3], output="softmax", seed=s, backend="numpy")
            for s in range(4)]
    path = tmp_path / "shared.npz"
    errors = []

    def writer(net):
        try:
            for _ in range(5):
                net.save(path)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in nets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    loaded = dn.load(path, backend="numpy")
    matches = [all(np.array_equal(dn.to_numpy(loaded.params[k]), dn.to_numpy(v))
                   for k, v in n.params.items()) for n in nets]
    assert sum(matches) == 1  # exactly one writer's complete file, never a mixture
    assert [p.name for p in tmp_path.iterdir()] == ["shared.npz"]


def test_save_refuses_a_missing_directory(tmp_path):
    net = dn.DeepNet([2, 1], backend="numpy")
    with pytest.raises(dn.CheckpointError, match="does not exist"):
        net.save(tmp_path / "nope" / "n.npz")
    with pytest.raises(dn.CheckpointError, match="is a directory"):
        net.save(tmp_path)


# -- bad files -------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(dn.CheckpointError, match="does not exist"):
        dn.load(tmp_path / "none.npz")


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_truncated_file_is_refused(tmp_path, keep):
    net, _ = _trained("numpy")
    path = tmp_path / "n.npz"
    net.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(dn.CheckpointError, match="truncated"):
        dn.load(path, backend="numpy")


def test_torn_member_is_refused(tmp_path):
    net, _ = _trained("numpy")
    path = tmp_path / "n.npz"
    net.save(path)
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("W1.npy")
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + 100
    data[start : start + 40] = b"\x00" * 40  # damaged bytes inside W1 (crc mismatch)
    path.write_bytes(bytes(data))
    with pytest.raises(dn.CheckpointError, match="damaged"):
        dn.load(path, backend="numpy")


@pytest.mark.parametrize("content", [b"", b"hello, world\n", b"PK\x03\x04garbage"])
def test_non_checkpoint_bytes_are_refused(tmp_path, content):
    path = tmp_path / "x.npz"
    path.write_bytes(content)
    with pytest.raises(dn.CheckpointError, match=r"not a checkpoint|truncated|damaged"):
        dn.load(path)


def test_foreign_npz_is_refused(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, W1=np.zeros((2, 2)), weights=np.ones(3))
    with pytest.raises(dn.CheckpointError, match=r"not a deepnet checkpoint.*weights"):
        dn.load(path)
    np.save(tmp_path / "plain.npy", np.zeros(3))
    with pytest.raises(dn.CheckpointError, match="not a \\.npz"):
        dn.load(tmp_path / "plain.npy")


def _tampered(tmp_path, **changes):
    net, _ = _trained("numpy")
    path = tmp_path / "n.npz"
    net.save(path)
    with np.load(path) as npz:
        entries = {k: npz[k] for k in npz.files}
    for k, v in changes.items():
        if v is None:
            entries.pop(k)
        else:
            entries[k] = v
    np.savez(path, **entries)
    return path


def _config(**edits):
    config = {"layer_dims": [4, 6, 5, 3], "hidden": ["tanh", "relu"], "output": "softmax",
              "init": "xavier", "l2": 0.01, "keep_prob": 0.9, "dtype": "float64", "seed": 0}
    config.update(edits)
    return np.array(json.dumps(config))


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"__version__": np.array(99)}, "format version 99; this deepnet reads versions 1 to 1"),
        ({"__version__": None}, "format version is missing"),
        ({"config": np.array("{not json")}, "'config' is not valid JSON"),
        ({"config": None}, "'config' is missing"),
        ({"config": _config(output="softplus")}, "invalid configuration.*softplus"),
        ({"config": _config(layer_dims=[4, 0, 3])}, "layer_dims must be a list"),
        ({"config": np.array(json.dumps({"layer_dims": [4, 3]}))}, "configuration lacks"),
        ({"W2": None}, r"missing parameters \['W2'\]"),
        ({"W9": np.zeros((1, 1))}, r"unexpected entries \['W9'\]"),
        ({"W2": np.zeros((6, 5))}, r"W2 has shape \(6, 5\) but layer_dims .* needs \(5, 6\)"),
        ({"b3": np.full((3, 1), np.nan)}, "b3 holds NaN or inf"),
        ({"W1": np.zeros((6, 4), dtype=np.int64)}, "W1 has dtype int64"),
        ({"history": np.array("[1, 2]")}, "'history' must be a JSON object"),
    ],
)
def test_mismatched_contents_are_refused(tmp_path, changes, match):
    path = _tampered(tmp_path, **changes)
    with pytest.raises(dn.CheckpointError, match=match):
        dn.load(path, backend="numpy")


def test_load_reports_an_unavailable_backend(tmp_path):
    net = dn.DeepNet([2, 1], backend="numpy")
    net.save(tmp_path / "n.npz")
    with pytest.raises(dn.BackendError, match="unknown backend"):
        dn.load(tmp_path / "n.npz", backend="jax")
