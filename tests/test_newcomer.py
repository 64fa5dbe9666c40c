"""Traps a newcomer hit using only the documentation (an audit of this round), each now
refused with a clear message or behaving as the documentation says."""

from __future__ import annotations

import numpy as np
import pytest

import deepnet as dn
from deepnet import cli


def test_a_device_variable_applies_to_its_backend_named_in_code(monkeypatch):
    pytest.importorskip("array_api_strict")
    monkeypatch.setenv("DEEPNET_BACKEND", "array_api_strict")
    monkeypatch.setenv("DEEPNET_DEVICE", "device1")
    monkeypatch.setattr(dn.backend.select, "_override", [])
    net = dn.DeepNet([2, 3, 1], backend="array_api_strict")  # no device: the variable's
    assert dn.backend.device_label(net.device) == "device1"
    assert net.to("array_api_strict").backend is net.backend
    assert dn.DeepNet([2, 1], backend="numpy").device == "cpu"  # another library: its own
    monkeypatch.setenv("DEEPNET_BACKEND", "numpy")  # the variable names another backend
    assert dn.backend.device_label(dn.DeepNet([2, 1], backend="array_api_strict").device) \
        == "CPU_DEVICE"
    with dn.use_backend("array_api_strict", "device1"):  # a block's device, likewise
        assert dn.backend.device_label(
            dn.DeepNet([2, 1], backend="array_api_strict").device) == "device1"


def test_kernels_refuse_arrays_of_two_libraries_with_a_deepnet_error():
    torch = pytest.importorskip("torch")
    net = dn.DeepNet([2, 3, 1], backend="torch")
    p = net.params
    with pytest.raises(dn.InputError, match=r"different libraries \(numpy, torch\).*"
                       r"net\.backend\.asarray"):
        dn.dense_forward(np.zeros((2, 4)), p["W1"], p["b1"], "tanh")
    A, _ = dn.dense_forward(net.backend.asarray(np.zeros((2, 4)), net.dtype), p["W1"],
                            p["b1"], "tanh")  # what the tutorial does
    assert isinstance(A, torch.Tensor)


@pytest.mark.parametrize(("labels", "held"), [
    (np.array(["a", "b", "a"]), "strings"),
    (np.array([1, 2, 3], dtype=object), "Python objects"),
    (np.array([1 + 1j, 2, 3]), "complex numbers"),
])
def test_non_numbers_are_named_for_what_they_are(backend, labels, held):
    net = dn.DeepNet([2, 1], backend=backend)
    with pytest.raises(dn.InputError, match=f"{held} are not supported"):
        net.fit(np.zeros((2, 3)), labels, epochs=1, progress=False)


@pytest.mark.parametrize(("flags", "words"), [
    (["--layers", "64,,10"], "64,,10"),
    (["--batch-size", "0"], "positive integer, or 'full'"),
    (["--batch-size", "-0"], "positive integer, or 'full'"),
])
def test_command_line_typos_are_refused(capsys, flags, words):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--no-progress", *flags])
    assert exit_.value.code == 2 and words in capsys.readouterr().err


def test_a_directory_as_checkpoint_is_named_before_the_plot(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    assert cli.main(["train", "--no-progress", "--checkpoint", "runs/"]) == 2
    err = capsys.readouterr().err
    assert "checkpoint" in err and "directory" in err and "--plot" not in err


def test_bench_names_only_what_is_wrong(capsys):
    for argv, wrong, right in ((["--dtype", "float16"], "--dtype", "--repeat"),
                               (["--advise", "-5", "512"], "positive width", "--dtype")):
        with pytest.raises(SystemExit) as exit_:
            cli.main(["bench", *argv])
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert exit_.value.code == 2 and wrong in err and right not in err, err
