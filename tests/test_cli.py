"""The ``deepnet`` command: train end to end, info, bench forwarding, clear errors."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import deepnet as dn
from deepnet import cli, loop

TINY = ["--epochs", "2", "--layers", "64,16,10", "--batch-size", "64", "--no-progress"]


def _run(*args, cwd):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120,
                          check=False)


def test_train_end_to_end_in_a_subprocess(tmp_path):
    pytest.importorskip("sklearn")
    ckpt, png = tmp_path / "out" / "tiny.npz", tmp_path / "tiny.png"
    ckpt.parent.mkdir()  # the command creates only its own default directory, runs/
    proc = _run(sys.executable, "-m", "deepnet.cli", "train", *TINY, "--checkpoint", str(ckpt),
                "--plot", str(png), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    match = re.search(r"train accuracy (\S+)\s+test accuracy (\S+)", proc.stdout)
    assert match, proc.stdout
    net = dn.load(ckpt, backend="numpy")
    assert list(net.layer_dims) == [64, 16, 10] and net.output == "softmax"
    assert net.history.epochs == 2 and len(net.history.val_cost) == 2
    d = dn.datasets.load_digits()
    test_acc = float(np.mean(dn.to_numpy(net.predict(d.X_test)) == d.y_test))
    assert float(match.group(2)) == pytest.approx(test_acc, abs=1e-4)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "plot: skipped" in proc.stdout
    else:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_info_runs_as_the_console_script(tmp_path):
    script = shutil.which("deepnet") or str(Path(sys.executable).with_name("deepnet"))
    if not Path(script).exists():
        pytest.skip("the deepnet console script is not installed in this environment")
    proc = _run(script, "info", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"numpy\s+ok\s+numpy \d", proc.stdout), proc.stdout
    for name in dn.BACKEND_NAMES:
        assert name in proc.stdout
    assert "BLAS" in proc.stdout


def test_deepnet_errors_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    pytest.importorskip("sklearn")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--layers", "60,10", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("deepnet train: error: --layers must start with the 64 input")
    assert cli.main(["train", "--backend", "numpy", "--device", "cuda:0", *TINY]) == 2
    assert "runs on the CPU only" in capsys.readouterr().err
    assert cli.main(["train", "--epochs", "0"]) == 2
    assert "--epochs must be a positive integer" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_bad_flags_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--layers", "64,x,10"])
    assert info.value.code == 2
    assert "expected comma-separated layer sizes" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["train", "--optimizer", "sgd"])
    assert cli.main([]) == 2


@pytest.mark.parametrize("argv", [
    ["train", "--epochs", "x"], ["train", "--bogus"], ["frob"], ["train", "--optimizer", "sgd"],
    ["train", "--layers", "64,,10"], ["bench", "--widths", "q"], ["bench", "compare"],
    ["bench", "--nope"],
])
def test_usage_errors_are_one_line_too(argv, capsys):
    """argparse printed its usage block (18 lines for train) above the error: a usage
    error is one line naming the command and where the options are listed, status 2."""
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.count("\n") == 1 and "usage:" not in err, err
    assert re.fullmatch(r"deepnet( train| bench( compare)?)?: error: .+ \(see deepnet"
                        r"( train| bench( compare)?)? --help\)\n", err), err


def test_train_a_generated_set_with_sigmoid_output(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = cli.main(["train", "--dataset", "moons", "--epochs", "3", "--no-progress",
                     "--no-plot", "--optimizer", "momentum", "--learning-rate", "0.1",
                     "--batch-size", "full", "--validation", "0"])
    assert code == 0
    out = capsys.readouterr().out
    assert "moons (750 train / 250 test)" in out and "full batch" in out
    net = dn.load(tmp_path / "runs" / "moons.npz", backend="numpy")
    assert list(net.layer_dims) == [2, 16, 16, 1] and net.output == "sigmoid"
    assert net.history.val_cost == [] and net.history.epochs == 3
    assert not (tmp_path / "runs" / "moons.png").exists()


def test_plot_is_skipped_without_matplotlib(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert cli.main(["train", "--dataset", "flower", "--epochs", "1", "--no-progress"]) == 0
    assert "plot: skipped (matplotlib is not installed" in capsys.readouterr().out
    assert (tmp_path / "runs" / "flower.npz").exists()


def test_ctrl_c_saves_the_completed_epochs(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    real = loop.step
    calls = []

    def interrupted(net, parts, optimizer, m, **kwargs):
        calls.append(1)
        if len(calls) == 2 * 24 + 5:  # in the third epoch (24 batches of 32 per epoch)
            raise KeyboardInterrupt
        return real(net, parts, optimizer, m, **kwargs)

    monkeypatch.setattr(loop, "step", interrupted)
    code = cli.main(["train", "--dataset", "circles", "--epochs", "10", "--no-progress",
                     "--validation", "0", "--no-plot"])
    assert code == 130
    assert "interrupted after 2 completed epochs" in capsys.readouterr().err
    assert dn.load(tmp_path / "runs" / "circles.npz").history.epochs == 2


def test_bench_forwards_its_arguments(monkeypatch, capsys):
    seen = []
    fake = types.ModuleType("deepnet.bench")

    def main(argv=None):
        seen.append(argv)
        return 3

    fake.main = main
    monkeypatch.setitem(sys.modules, "deepnet.bench", fake)
    assert cli.main(["bench", "--quick", "--backends", "numpy"]) == 3
    assert seen == [["--quick", "--backends", "numpy"]]
    monkeypatch.setitem(sys.modules, "deepnet.bench", None)
    assert cli.main(["bench"]) == 2
    assert "no deepnet.bench module" in capsys.readouterr().err


def test_default_network_reaches_96_percent_on_digits(tmp_path, capsys):
    pytest.importorskip("sklearn")
    ckpt = tmp_path / "digits.npz"
    assert cli.main(["train", "--no-progress", "--no-plot", "--checkpoint", str(ckpt),
                     "--backend", "numpy", "--dtype", "float32"]) == 0
    out = capsys.readouterr().out
    net = dn.load(ckpt, backend="numpy")
    assert list(net.layer_dims) == [64, 128, 64, 10]
    assert net.hidden == ["relu", "relu"] and net.output == "softmax"
    d = dn.datasets.load_digits()
    test_acc = float(np.mean(dn.to_numpy(net.predict(d.X_test)) == d.y_test))
    assert test_acc >= 0.96, out
    assert f"test accuracy {test_acc:.4f}" in out


def test_one_rule_for_missing_directories_in_the_cli_and_in_save(tmp_path, capsys,
                                                                 monkeypatch):
    """A directory in a path the user gives must exist, for DeepNet.save and for the
    command alike (a typo should not scatter files); the command creates only runs/."""
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "no" / "such" / "model.npz"
    with pytest.raises(dn.CheckpointError, match=r"does not exist.*create it first"):
        dn.DeepNet([2, 1], backend="numpy").save(missing)
    code = cli.main(["train", "--dataset", "moons", "--epochs", "1", "--no-progress",
                     "--checkpoint", str(missing)])
    err = capsys.readouterr().err
    assert code == 2 and "does not exist" in err and "create it first" in err, err
    assert not (tmp_path / "no").exists() and not (tmp_path / "runs").exists()
    assert cli.main(["train", "--dataset", "moons", "--epochs", "1", "--no-progress",
                     "--no-plot"]) == 0
    assert (tmp_path / "runs" / "moons.npz").is_file()
