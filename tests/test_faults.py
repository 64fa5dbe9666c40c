"""Fault injection: what an attacker or a careless user can put where deepnet reads and
writes, and what happens when a signal or another thread comes at the wrong moment.

Each class of defect of issue 10 has its cases here (the ``# ==`` sections). Every case
asserts the error (a ``DeepNetError``, or one line on stderr and an exit status for the
command line), the words that say what was expected and what was found, and that nothing
was destroyed: a device node is still a device node, a previous checkpoint is byte for
byte the same, no temporary file is left behind.

Permission cases need a user the file modes apply to. Run as root, they drop the
capabilities that let root ignore file modes (``CAP_DAC_OVERRIDE``, ...) in one thread
(Linux capabilities are per thread), so they run here as root and elsewhere as anyone;
device nodes need ``mknod`` (root) and skip with that reason elsewhere.
"""

from __future__ import annotations

import asyncio
import ctypes
import io
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import ALL_BACKENDS

import deepnet as dn
from deepnet import backend as B
from deepnet import cli, memory, serialization

try:
    import torch
except ImportError:  # pragma: no cover - an optional extra
    torch = None

SRC = str(Path(dn.__file__).resolve().parents[1])


def _device_of(backend) -> str | None:
    return backend.label.split(":", 1)[1] if ":" in backend.label else None


def _net(backend="numpy", seed=0, dims=(3, 5, 1), **kwargs):
    return dn.DeepNet(list(dims), seed=seed, backend=backend, **kwargs)


def _params(net) -> dict[str, np.ndarray]:
    return {k: dn.to_numpy(v).copy() for k, v in net.params.items()}


def _same(a, b) -> bool:
    pa, pb = _params(a), _params(b)
    return pa.keys() == pb.keys() and all(np.array_equal(pa[k], pb[k]) for k in pa)


def _temporaries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def _cli(args, tmp_path, monkeypatch, capsys):
    """``deepnet train`` (moons, one tiny epoch) in-process; ``(code, stdout, stderr)``."""
    monkeypatch.chdir(tmp_path)
    code = cli.main(["train", "--dataset", "moons", "--epochs", "1", "--no-progress",
                     "--validation", "0", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _refused_before_training(code, out, err, *words):
    assert code == 2, (out, err)
    assert err.startswith("deepnet train: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert "epochs in" not in out  # refused before the first epoch, not after the last
    for word in words:
        assert word in err, f"{word!r} not in {err!r}"


# == privileges ==============================================================================

_DAC_CAPS = (1 << 1) | (1 << 2) | (1 << 3)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER


def _drop_dac_capabilities() -> None:
    libc = ctypes.CDLL(None, use_errno=True)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    header, data = Header(0x20080522, 0), (Data * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget failed")
    data[0].effective &= ~_DAC_CAPS
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def unprivileged(fn):
    """``fn()`` where file modes apply: directly for an ordinary user; as root, in a thread
    that has dropped the capabilities that override them (per thread, on Linux)."""
    if os.geteuid() != 0:
        return fn()
    if not sys.platform.startswith("linux"):
        pytest.skip("running as root off Linux: file modes cannot be made to apply")
    result = {}

    def run():
        try:
            _drop_dac_capabilities()
        except (OSError, AttributeError) as exc:  # no libc capset here
            result["skip"] = f"root cannot drop its file-mode capabilities here: {exc}"
            return
        try:
            result["value"] = fn()
        except BaseException as exc:  # re-raised in the test's thread
            result["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "skip" in result:
        pytest.skip(result["skip"])
    if "error" in result:
        raise result["error"]
    return result["value"]


def _make_node(path: Path, kind: str) -> None:
    if kind == "character device":
        try:
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a twin of /dev/null
        except (PermissionError, AttributeError) as exc:
            pytest.skip(f"mknod needs root (or CAP_MKNOD): {exc}")
    elif kind == "FIFO":
        os.mkfifo(path)
    elif kind == "socket":
        if len(str(path)) > 100:
            pytest.skip("the temporary path is too long for a UNIX socket")
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sock.close()
    elif kind == "directory":
        path.mkdir()


def _is(path: Path, kind: str) -> bool:
    test = {"character device": stat.S_ISCHR, "FIFO": stat.S_ISFIFO,
            "socket": stat.S_ISSOCK, "directory": stat.S_ISDIR}[kind]
    return test(os.lstat(path).st_mode)


# == 1. writing only regular files or new names ===================================================

NODES = ["character device", "FIFO", "socket", "directory"]


@pytest.mark.parametrize("kind", NODES)
def test_save_leaves_what_is_not_a_regular_file_as_it_is(backend, tmp_path, kind):
    node = tmp_path / "node"
    _make_node(node, kind)
    net = _net(backend)
    word = "directory" if kind == "directory" else kind
    with pytest.raises(dn.CheckpointError, match=f"cannot save the checkpoint.*{word}"):
        net.save(node)
    assert _is(node, kind)
    assert _temporaries(tmp_path) == []


def _needs_matplotlib() -> None:
    """The command checks a plot's path only where it would write a plot."""
    pytest.importorskip("matplotlib", reason="no plot is written without matplotlib")


@pytest.mark.parametrize("flag", ["--checkpoint", "--plot"])
@pytest.mark.parametrize("kind", NODES)
def test_the_command_line_refuses_them_before_training(tmp_path, monkeypatch, capsys, kind,
                                                      flag):
    if flag == "--plot":
        _needs_matplotlib()
    node = tmp_path / "node.png"
    _make_node(node, kind)
    other = ["--checkpoint", "ok.npz"] if flag == "--plot" else ["--no-plot"]
    code, out, err = _cli([flag, str(node), *other], tmp_path, monkeypatch, capsys)
    _refused_before_training(code, out, err, "directory" if kind == "directory" else kind)
    assert _is(node, kind)
    assert not (tmp_path / "ok.npz").exists()


@pytest.mark.parametrize("name", ["", "dir/", ".", "..", "nul\x00l.npz"])
def test_the_command_line_refuses_names_that_are_not_files(tmp_path, monkeypatch, capsys,
                                                          name):
    (tmp_path / "dir").mkdir()
    code, out, err = _cli(["--checkpoint", name, "--no-plot"], tmp_path, monkeypatch, capsys)
    _refused_before_training(code, out, err, "checkpoint")


# == 2. reading only regular files ==========================================================


def _load_with_deadline(path, seconds=20.0):
    """``dn.load(path)`` in a thread: a read that blocks fails the test, not the suite."""
    result = {}

    def run():
        try:
            result["value"] = dn.load(path, backend="numpy")
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"dn.load({str(path)!r}) is still reading or blocked"
    if "error" in result:
        raise result["error"]
    return result["value"]


@pytest.mark.parametrize("kind", [*NODES, "/dev/zero", "/dev/urandom"])
def test_load_refuses_what_is_not_a_regular_file_without_reading_it(tmp_path, kind):
    if kind.startswith("/dev/"):
        node = Path(kind)
        if not node.exists():
            pytest.skip(f"{kind} does not exist here")
        word = "character device"
    else:
        node = tmp_path / "node.npz"
        _make_node(node, kind)
        word = kind
    with pytest.raises(dn.CheckpointError, match=f"cannot load the checkpoint.*{word}"):
        _load_with_deadline(node)


def test_a_fifo_with_a_writer_is_refused_too(tmp_path):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", f"cat /dev/zero > '{fifo}'"])
    try:
        with pytest.raises(dn.CheckpointError, match=r"FIFO"):
            _load_with_deadline(fifo)
    finally:
        writer.kill()
        writer.wait()


# == 3. symbolic links: followed, never replaced ===================================================


def test_a_link_to_a_checkpoint_updates_its_target(backend, tmp_path):
    (tmp_path / "run1").mkdir()
    target = tmp_path / "run1" / "model.npz"
    _net(backend, seed=1).save(target)
    target.chmod(0o640)
    link = tmp_path / "latest.npz"
    link.symlink_to(Path("run1") / "model.npz")
    new = _net(backend, seed=2)
    new.save(link)
    assert link.is_symlink() and os.readlink(link) == str(Path("run1") / "model.npz")
    assert _same(dn.load(target, backend="numpy"), new)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # the replaced file's mode kept
    assert _temporaries(tmp_path) == [] and _temporaries(tmp_path / "run1") == []


def test_a_dangling_link_creates_its_target_but_not_its_directory(tmp_path):
    net = _net()
    (tmp_path / "new").symlink_to("made.npz")
    net.save(tmp_path / "new")
    assert (tmp_path / "new").is_symlink() and _same(dn.load(tmp_path / "made.npz"), net)
    (tmp_path / "lost").symlink_to("missing/x.npz")
    with pytest.raises(dn.CheckpointError, match=r"does not exist.*points into it"):
        net.save(tmp_path / "lost")
    with pytest.raises(dn.CheckpointError, match=r"symbolic link to 'missing/x.npz'.*not exist"):
        dn.load(tmp_path / "lost")
    assert not (tmp_path / "missing").exists()


def test_a_loop_of_links_is_refused(tmp_path):
    (tmp_path / "a.npz").symlink_to("b.npz")
    (tmp_path / "b.npz").symlink_to("a.npz")
    with pytest.raises(dn.CheckpointError, match=r"loop of symbolic links"):
        _net().save(tmp_path / "a.npz")
    with pytest.raises(dn.CheckpointError, match=r"loop of symbolic links"):
        dn.load(tmp_path / "a.npz")
    assert (tmp_path / "a.npz").is_symlink() and (tmp_path / "b.npz").is_symlink()


def test_a_link_to_another_file_system_is_updated_there(tmp_path):
    shm = Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK) or (
            os.stat(shm).st_dev == os.stat(tmp_path).st_dev):
        pytest.skip("no writable /dev/shm on another file system here")
    with tempfile.TemporaryDirectory(dir=shm) as other:
        target = Path(other) / "model.npz"
        _net(seed=1).save(target)
        link = tmp_path / "model.npz"
        link.symlink_to(target)
        new = _net(seed=2)
        new.save(link)  # the temporary file is written beside the target: no cross-device
        assert link.is_symlink() and _same(dn.load(target), new)
        assert _temporaries(Path(other)) == [] and _temporaries(tmp_path) == []


def test_a_linked_directory_and_dot_dot_resolve_to_one_file(tmp_path, monkeypatch, capsys):
    _needs_matplotlib()
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to("real")
    code, out, err = _cli(["--checkpoint", "real/x.png", "--plot", "alias/../real/x.png"],
                          tmp_path, monkeypatch, capsys)
    _refused_before_training(code, out, err, "--checkpoint and --plot name the same file")


# == 4. two outputs, one file ===================================================================


@pytest.mark.parametrize("case", ["default plot", "same name", "link", "hard link"])
def test_two_outputs_that_are_one_file_are_refused(tmp_path, monkeypatch, capsys, case):
    _needs_matplotlib()  # without it no plot is written: nothing to clash
    old = _net(seed=1)
    old.save(tmp_path / "model.png")
    before = (tmp_path / "model.png").read_bytes()
    if case == "default plot":  # the plot's default name is the checkpoint's with .png
        args = ["--checkpoint", "model.png"]
    elif case == "same name":
        args = ["--checkpoint", "model.png", "--plot", "./model.png"]
    elif case == "link":
        (tmp_path / "curves.png").symlink_to("model.png")
        args = ["--checkpoint", "model.png", "--plot", "curves.png"]
    else:
        os.link(tmp_path / "model.png", tmp_path / "curves.png")
        args = ["--checkpoint", "model.png", "--plot", "curves.png"]
    code, out, err = _cli(args, tmp_path, monkeypatch, capsys)
    _refused_before_training(code, out, err, "name the same file")
    assert (tmp_path / "model.png").read_bytes() == before


@pytest.mark.parametrize("plot", ["x.xyz", "curves", "x.PNG.bak"])
def test_a_plot_format_is_checked_before_training(tmp_path, monkeypatch, capsys, plot):
    pytest.importorskip("matplotlib")
    code, out, err = _cli(["--checkpoint", "m.npz", "--plot", plot], tmp_path, monkeypatch,
                          capsys)
    _refused_before_training(code, out, err, "--plot", ".png, .pdf, .svg")
    assert not (tmp_path / "m.npz").exists()


def test_a_plot_is_written_in_the_format_of_its_suffix(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    code, out, _ = _cli(["--checkpoint", "m.npz", "--plot", "curves.SVG"], tmp_path,
                        monkeypatch, capsys)
    assert code == 0, out
    assert b"<svg" in (tmp_path / "curves.SVG").read_bytes()[:400]


# == 5. permissions ============================================================================


def test_an_unreadable_checkpoint_is_reported_as_such(tmp_path):
    path = tmp_path / "model.npz"
    _net().save(path)
    path.chmod(0)

    def load():
        with pytest.raises(dn.CheckpointError) as info:
            dn.load(path)
        return str(info.value)

    message = unprivileged(load)
    assert "permission denied" in message.lower() and "mode 000" in message
    assert "may be intact" in message and "truncated" not in message
    path.chmod(0o600)
    dn.load(path)  # the file was fine all along


def test_a_read_only_checkpoint_is_not_replaced(tmp_path):
    path = tmp_path / "model.npz"
    old = _net(seed=1)
    old.save(path)
    path.chmod(0o444)
    before = path.read_bytes()

    def save():
        with pytest.raises(dn.CheckpointError, match=r"read-only for this user"):
            _net(seed=2).save(path)

    unprivileged(save)
    assert path.read_bytes() == before and _temporaries(tmp_path) == []


@pytest.mark.parametrize("flag", ["--checkpoint", "--plot"])
def test_a_read_only_directory_is_refused_before_training(tmp_path, monkeypatch, capsys, flag):
    if flag == "--plot":
        _needs_matplotlib()
    locked = tmp_path / "locked"
    locked.mkdir()
    _net(seed=1).save(locked / "model.npz")
    before = (locked / "model.npz").read_bytes()
    locked.chmod(0o555)
    try:
        def save():
            with pytest.raises(dn.CheckpointError, match=r"(?i)permission denied"):
                _net(seed=2).save(locked / "model.npz")

        unprivileged(save)
        args = (["--checkpoint", str(locked / "model.npz"), "--no-plot"] if flag ==
                "--checkpoint" else ["--checkpoint", "ok.npz", "--plot", str(locked / "c.png")])
        code, out, err = unprivileged(lambda: _cli(args, tmp_path, monkeypatch, capsys))
        _refused_before_training(code, out, err, "not writable", "ermission denied")
    finally:
        locked.chmod(0o755)
    assert (locked / "model.npz").read_bytes() == before
    assert _temporaries(locked) == [] and not (tmp_path / "ok.npz").exists()


def test_a_directory_that_cannot_be_searched_is_reported_as_such(tmp_path):
    closed = tmp_path / "closed"
    closed.mkdir()
    _net().save(closed / "model.npz")
    closed.chmod(0o600)  # readable, not searchable: the names inside cannot be reached
    try:
        def both():
            with pytest.raises(dn.CheckpointError, match="permission denied"):
                dn.load(closed / "model.npz")
            with pytest.raises(dn.CheckpointError, match="permission denied"):
                _net(seed=2).save(closed / "model.npz")

        unprivileged(both)
    finally:
        closed.chmod(0o755)
    assert _same(dn.load(closed / "model.npz"), _net())


def test_the_command_line_refuses_a_read_only_checkpoint_before_training(
        tmp_path, monkeypatch, capsys):
    path = tmp_path / "model.npz"
    _net(seed=1).save(path)
    path.chmod(0o444)
    before = path.read_bytes()
    code, out, err = unprivileged(lambda: _cli(["--checkpoint", "model.npz", "--no-plot"],
                                               tmp_path, monkeypatch, capsys))
    _refused_before_training(code, out, err, "read-only for this user", "chmod u+w")
    assert path.read_bytes() == before


# == 6. names of any legal length ==================================================================


@pytest.mark.parametrize("length", [242, 250, 255])
def test_names_up_to_the_file_system_limit_save_and_load(backend, tmp_path, length):
    name = "m" * (length - 4) + ".npz"
    net = _net(backend)
    net.save(tmp_path / name)
    net.save(tmp_path / name)  # and replace
    assert _same(dn.load(tmp_path / name, backend=backend.name,
                         device=_device_of(backend)), net)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_a_name_longer_than_the_limit_is_refused_clearly(tmp_path):
    wide = "é" * 127 + ".npz"  # 258 bytes in UTF-8: too long, though 131 characters
    with pytest.raises(dn.CheckpointError, match=r"File name too long"):
        _net().save(tmp_path / wide)
    assert list(tmp_path.iterdir()) == []


# == 7. no process-wide state changes to save a file ===============================================


def _umask_now() -> int | None:
    """The umask as /proc shows it: reading it through os.umask would change it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    return None


def test_concurrent_saves_under_a_restrictive_umask(tmp_path):
    if _umask_now() is None:
        pytest.skip("/proc/self/status shows no Umask here")
    old = os.umask(0o077)
    try:
        nets = [_net(seed=s, dims=(8, 16, 4), output="softmax") for s in range(8)]
        stop, seen, errors = threading.Event(), set(), []

        def saver(i):
            try:
                for r in range(40):
                    nets[i].save(tmp_path / f"net{i}-{r % 4}.npz")
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        def bystander():  # files other code creates meanwhile get the umask too
            for r in range(200):
                with open(tmp_path / f"plain{r}.txt", "w") as f:
                    f.write("x")

        def watcher():
            while not stop.is_set():
                seen.add(_umask_now())

        threads = [threading.Thread(target=saver, args=(i,)) for i in range(8)]
        threads += [threading.Thread(target=bystander)]
        watch = threading.Thread(target=watcher)
        watch.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stop.set()
        watch.join()
    finally:
        os.umask(old)
    assert not errors
    assert seen == {0o077}  # the process umask never moved
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert set(modes.values()) == {0o600}, {k: oct(v) for k, v in modes.items() if v != 0o600}
    assert len(modes) == 8 * 4 + 200


# == 8. zip bombs and hostile archives ===================================================


@pytest.fixture
def decompressed(monkeypatch):
    """Counts the bytes decompressed from zip entries while loading."""
    count = [0]
    real_read, real_readinto = zipfile.ZipExtFile.read, zipfile.ZipExtFile.readinto

    def read(self, n=-1):
        data = real_read(self, n)
        count[0] += len(data)
        return data

    def readinto(self, b):
        got = real_readinto(self, b)
        count[0] += got
        return got

    monkeypatch.setattr(zipfile.ZipExtFile, "read", read)
    monkeypatch.setattr(zipfile.ZipExtFile, "readinto", readinto)
    return count


def _npy_header(dtype, shape, version=(2, 0), length=None) -> bytes:
    out = io.BytesIO()
    header = {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
    if version == (1, 0):
        np.lib.format.write_array_header_1_0(out, header)
    else:
        np.lib.format.write_array_header_2_0(out, header)
    raw = out.getvalue()
    if length is not None:  # a lying header length
        raw = raw[:8] + length.to_bytes(4, "little") + raw[12:]
    return raw


def _member(out: zipfile.ZipFile, name: str, head: bytes, zeros: int) -> None:
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    with out.open(info, "w", force_zip64=True) as member:
        member.write(head)
        chunk = bytes(1 << 22)
        while zeros > 0:
            member.write(chunk[: min(zeros, len(chunk))])
            zeros -= len(chunk)


def _rebuilt(tmp_path, replace=(), extra=()) -> Path:
    """A real checkpoint of [3, 5, 1] with entries replaced or added (``(name, head,
    zeros)``), all deflated: a few KiB on disk, whatever they declare."""
    good = tmp_path / "good.npz"
    _net().save(good)
    path = tmp_path / "hostile.npz"
    replaced = {name for name, _, _ in replace}
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            if info.filename not in replaced:
                out.writestr(info.filename, src.read(info.filename))
        for name, head, zeros in (*replace, *extra):
            _member(out, name, head, zeros)
    return path


MIB = 2**20
BOMBS = {  # name -> (replace, extra, words)
    "extra entry": ((), [("junk.npy", _npy_header("<f8", (8 * MIB,)), 64 * MIB)],
                    "unexpected entries ['junk']"),
    "mis-shaped W1": ([("W1.npy", _npy_header("<f8", (5, 3 * MIB)), 120 * MIB)], (),
                      "W1 has shape (5, 3145728)"),
    "oversized header": ([("W1.npy", _npy_header("<f8", (5, 3), length=2**31), 0)], (),
                         "declares a .npy header of 2,147,483,648 bytes"),
    "huge history": ([("history.npy", _npy_header("<U33554433", ()), 128 * MIB + 4)], (),
                     "declares 33,554,433 characters"),
    "lying size": ([("W1.npy", _npy_header("<f8", (5, 3)), 15 * 8 + 64 * MIB)], (),
                   "declares"),
    "object dtype": ([("W1.npy", _npy_header("|O", (5, 3)), 15 * 8)], (),
                     "which a checkpoint never holds"),
    "integer W": ([("W1.npy", _npy_header("<i8", (5, 3)), 15 * 8)], (),
                  "W1 has dtype int64"),
}


@pytest.mark.parametrize("case", list(BOMBS))
def test_a_hostile_archive_is_refused_before_its_data_is_decompressed(tmp_path, decompressed,
                                                                      case):
    replace, extra, words = BOMBS[case]
    path = _rebuilt(tmp_path, replace, extra)
    assert path.stat().st_size < 2 * MIB
    decompressed[0] = 0
    with pytest.raises(dn.CheckpointError) as info:
        dn.load(path)
    assert words in str(info.value)
    assert decompressed[0] < 64 * 1024, f"{decompressed[0]:,} bytes decompressed"


def test_duplicate_encrypted_and_foreign_compression_are_refused(tmp_path):
    good = tmp_path / "good.npz"
    _net().save(good)
    with zipfile.ZipFile(good) as src:
        entries = {i.filename: src.read(i.filename) for i in src.infolist()}
    dup = tmp_path / "dup.npz"
    with pytest.warns(UserWarning, match=r"Duplicate name"), zipfile.ZipFile(dup, "w") as out:
        for name, data in entries.items():
            out.writestr(name, data)
        out.writestr("W1.npy", entries["W1.npy"])
    with pytest.raises(dn.CheckpointError, match=r"two entries named 'W1.npy'"):
        dn.load(dup)
    bz = tmp_path / "bz.npz"
    with zipfile.ZipFile(bz, "w") as out:
        for name, data in entries.items():
            out.writestr(name, data, compress_type=zipfile.ZIP_BZIP2 if name == "W1.npy"
                         else zipfile.ZIP_STORED)
    with pytest.raises(dn.CheckpointError, match=r"compression method 12"):
        dn.load(bz)
    enc = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as z:
        at = z.start_dir
    while enc[at : at + 4] == b"PK\x01\x02":  # walk the central directory to W1's record
        n, m, k = (int.from_bytes(enc[at + i : at + i + 2], "little") for i in (28, 30, 32))
        if enc[at + 46 : at + 46 + n] == b"W1.npy":
            enc[at + 8] |= 1  # general purpose flags: encrypted
            break
        at += 46 + n + m + k
    (tmp_path / "enc.npz").write_bytes(bytes(enc))
    with pytest.raises(dn.CheckpointError, match=r"encrypted"):
        dn.load(tmp_path / "enc.npz")


def test_parameters_beyond_the_memory_available_are_refused_before_reading(
        tmp_path, monkeypatch, decompressed):
    path = tmp_path / "m.npz"
    _net(dims=(64, 512, 10), output="softmax").save(path)
    monkeypatch.setattr(memory, "available_host_memory", lambda: 64 * 1024)
    decompressed[0] = 0
    with pytest.raises(dn.CheckpointError, match=r"more than the .* GiB of memory available"):
        serialization.read(path)
    assert decompressed[0] < 16 * 1024


def _with_entry(tmp_path, key, text) -> Path:
    path = tmp_path / "n.npz"
    if not path.exists():
        _net().save(path)
    with np.load(path) as npz:
        entries = {k: npz[k] for k in npz.files}
    entries[key] = np.array(text)
    out = tmp_path / "hostile.npz"
    np.savez(out, **entries)
    return out


def _config(**edits) -> str:
    config = _net().config()
    config.update(edits)
    return json.dumps(config)


HOSTILE_JSON = {
    "deep config": ("config", "[" * 100_000 + "]" * 100_000, "not valid JSON"),
    "deep history": ("history", "{\"cost\": " + "[" * 100_000 + "]" * 100_000 + "}",
                     "not valid JSON"),
    "nested within the recursion limit": (
        "config", _config(hidden=json.loads("[" * 600 + "]" * 600)), "nested more than"),
    "null in history": ("history", json.dumps({"cost": [0.5, None]}), "'cost' is not a list"),
    "NaN token": ("history", '{"cost": [NaN]}', "NaN is not strict JSON"),
    "Infinity token": ("config", _config(l2=0).replace('"l2": 0', '"l2": Infinity'),
                       "Infinity is not strict JSON"),
    "number beyond float": ("history", json.dumps({"cost": [10**400]}), "'cost' is not a list"),
    "5000-digit number": ("config", _config().replace('"l2": 0.0', '"l2": ' + "9" * 5000),
                          "not valid JSON"),
    "string in history": ("history", json.dumps({"cost": ["low"]}), "'cost' is not a list"),
    "bool in history": ("history", json.dumps({"cost": [True]}), "'cost' is not a list"),
    "best_epoch out of range": ("history", json.dumps({"cost": [0.5], "best_epoch": 10**30}),
                                "best_epoch is"),
    "unknown monitor": ("history", json.dumps({"cost": [0.5], "monitor": "luck"}),
                        "monitor is 'luck'"),
    "stopped_early not a bool": ("history", json.dumps({"cost": [], "stopped_early": "yes"}),
                                 "'stopped_early' is yes"),
    "history a list": ("history", "[1, 2]", "must be a JSON object"),
    "config with a null layer": ("config", _config(layer_dims=[3, None]), "layer_dims must"),
    "seed of the wrong type": ("config", _config(seed="abc"), "invalid configuration"),
    "hidden a number": ("config", _config(hidden=7), "invalid configuration"),
}


@pytest.mark.parametrize("case", list(HOSTILE_JSON))
def test_hostile_json_is_a_checkpoint_error_at_load(tmp_path, case):
    key, text, words = HOSTILE_JSON[case]
    path = _with_entry(tmp_path, key, text)
    with pytest.raises(dn.CheckpointError) as info:
        dn.load(path)
    assert words in str(info.value), str(info.value)


def test_every_history_that_loads_can_be_shown_and_saved_again(tmp_path):
    net = _net()
    net.history = dn.History(cost=[0.7, float("inf")], val_cost=[float("nan"), 0.5],
                             time=[0.1, 0.1], learning_rate=[0.01, 0.01], best_epoch=1)
    net.save(tmp_path / "a.npz")
    loaded = dn.load(tmp_path / "a.npz")
    assert repr(loaded.history) == repr(net.history)
    assert loaded.history.cost == [0.7, float("inf")] and np.isnan(loaded.history.val_cost[0])
    loaded.save(tmp_path / "b.npz")
    assert repr(dn.load(tmp_path / "b.npz").history) == repr(net.history)


def test_a_history_too_long_for_a_checkpoint_is_refused_before_writing(tmp_path, monkeypatch):
    monkeypatch.setattr(serialization, "HISTORY_MAX_CHARS", 100)
    net = _net()
    net.history = dn.History(cost=[0.5] * 50)
    with pytest.raises(dn.CheckpointError, match=r"set net.history = None"):
        net.save(tmp_path / "n.npz")
    assert list(tmp_path.iterdir()) == []


def test_float64_weights_beyond_float32_are_a_checkpoint_error(tmp_path):
    net = _net(dtype="float64")
    W1 = dn.to_numpy(net.params["W1"]).copy()
    W1[0, 0] = 1e300
    net.set_params({**net.params, "W1": W1})
    net.save(tmp_path / "big.npz")
    assert dn.load(tmp_path / "big.npz").dtype_name == "float64"  # fine as saved
    with pytest.raises(dn.CheckpointError, match=r"cannot be loaded as float32.*float64"):
        dn.load(tmp_path / "big.npz", dtype="float32")
    path = _with_entry(tmp_path, "config", _config(dtype="float32"))  # a tampered dtype
    with np.load(path) as npz:
        entries = {k: npz[k] for k in npz.files}
    entries["W1"] = W1
    np.savez(path, **entries)
    with pytest.raises(dn.CheckpointError, match=r"cannot be loaded as float32"):
        dn.load(path)


# == 9. signals: during a save, during each phase of the command line ==========================

_PHASES = textwrap.dedent("""
    import os, signal, sys
    from deepnet import cli, cli_train, datasets, loop, serialization

    phase, argv = sys.argv[1], sys.argv[2:]

    def interrupt():
        os.kill(os.getpid(), signal.SIGINT)  # a real signal, as from Ctrl-C

    def at(obj, name, when=lambda calls: calls == 1, after=False):
        real, calls = getattr(obj, name), [0]
        def wrapped(*args, **kwargs):
            calls[0] += 1
            if not after and when(calls[0]):
                interrupt()
            out = real(*args, **kwargs)
            if after and when(calls[0]):
                interrupt()
            return out
        setattr(obj, name, wrapped)

    if phase == "start":
        at(cli, "_parser")
    elif phase == "network":
        at(cli_train, "_network")
    elif phase == "data":
        at(datasets, "make_moons")
    elif phase == "fit":  # three steps an epoch: the fifth is in the second epoch
        at(loop, "step", when=lambda calls: calls == 5)
    elif phase == "save":  # midway through writing the checkpoint's bytes
        real_savez = serialization.np.savez
        def savez(file, **arrays):
            items = list(arrays.items())
            interrupt()
            real_savez(file, **dict(items))
        serialization.np.savez = savez
    elif phase == "finalizer":  # handled inside a weakref callback: Python swallows it
        import weakref
        real_step, calls = loop.step, [0]
        class Thing:
            pass
        def step(*args, **kwargs):
            calls[0] += 1
            if calls[0] == 5:
                def callback(ref):
                    interrupt()
                    for _ in range(1000):  # the handler runs here, inside the callback
                        pass
                thing = Thing()
                ref = weakref.ref(thing, callback)
                del thing
            return real_step(*args, **kwargs)
        loop.step = step
    elif phase == "report":
        at(cli_train, "accuracy")
    elif phase == "plot":
        from matplotlib.figure import Figure
        at(Figure, "savefig")
    sys.exit(cli.main(argv))
""")

_ARGS = ["train", "--dataset", "moons", "--epochs", "3", "--batch-size", "250",
         "--validation", "0", "--no-progress", "--checkpoint", "model.npz", "--plot",
         "curves.png"]


def _env():
    return {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _as_from_a_terminal():
    """``preexec_fn`` of a child these tests interrupt: SIGINT at its default, as a
    terminal's Ctrl-C finds it. A launcher may have left it ignored (a background job of
    a shell without job control, as `.ci/run &` is), and a child inherits that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="module")
def phase_runs(tmp_path_factory):
    """Every phase run at once (2 cores: a few seconds); ``phase -> (code, out, err, dir)``."""
    pytest.importorskip("matplotlib")
    phases = ["start", "network", "data", "fit", "finalizer", "save", "report", "plot"]
    runs = {}
    for phase in phases:
        where = tmp_path_factory.mktemp(f"phase-{phase}")
        (where / "phases.py").write_text(_PHASES)
        _net(seed=99, dims=(2, 16, 16, 1)).save(where / "model.npz")  # a previous run's
        (where / "curves.png").write_bytes(b"previous plot")
        runs[phase] = (where, subprocess.Popen(
            [sys.executable, "phases.py", phase, *_ARGS], cwd=where, env=_env(),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=_as_from_a_terminal))
    out = {}
    for phase, (where, proc) in runs.items():
        stdout, stderr = proc.communicate(timeout=300)
        out[phase] = (proc.returncode, stdout, stderr, where)
    return out


@pytest.mark.parametrize(("phase", "epochs", "words"), [
    ("start", None, "nothing was written"),
    ("network", None, "nothing was written"),
    ("data", None, "nothing was written"),
    ("fit", 1, "interrupted after 1 completed epochs; saved them"),
    ("finalizer", 2, "interrupted after 2 completed epochs; saved them"),
    ("save", 3, "saved them to model.npz"),
    ("report", 3, "the checkpoint model.npz is saved; the plot"),
    ("plot", 3, "the checkpoint model.npz is saved and so is the plot"),
])
def test_ctrl_c_in_each_phase_of_the_command_line(phase_runs, phase, epochs, words):
    code, out, err, where = phase_runs[phase]
    assert code == 130, (out, err)
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "Exception ignored" not in err, err
    assert words in err, err
    loaded = dn.load(where / "model.npz")
    if epochs is None:  # the previous checkpoint, untouched
        assert _same(loaded, _net(seed=99, dims=(2, 16, 16, 1)))
        assert loaded.history is None
    else:  # a complete new one
        assert loaded.history.epochs == epochs
    plot = (where / "curves.png").read_bytes()
    if phase == "plot":  # held while it was written: complete
        assert plot.startswith(b"\x89PNG")
    else:
        assert plot == b"previous plot"  # never half-written
    assert _temporaries(where) == []


def test_ctrl_c_at_random_moments_leaves_whole_files(tmp_path):
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(10)
    runs = []
    for i, delay in enumerate(rng.uniform(0.0, 0.8, 4)):
        where = tmp_path / f"run{i}"
        where.mkdir()
        proc = subprocess.Popen(
            [sys.executable, "-m", "deepnet", *_ARGS[:4], "30", *_ARGS[5:]], cwd=where,
            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=_as_from_a_terminal)
        runs.append((where, proc, delay))
    results = []
    try:
        for _, proc, delay in runs:
            banner = proc.stdout.readline()  # main() is running: the banner is printed
            assert banner.startswith("deepnet train:"), banner
            time.sleep(delay)
            proc.send_signal(signal.SIGINT)
    finally:
        for where, proc, delay in runs:
            out, err = proc.communicate(timeout=300)
            results.append((where, proc.returncode, delay, out, err))
    for where, code, delay, out, err in results:
        assert code in (0, 130), (code, delay, out, err)
        assert "Traceback" not in err and "Exception ignored" not in err, err
        assert err.count("\n") <= 1, err
        if (where / "model.npz").exists():
            dn.load(where / "model.npz")  # complete, whenever the signal came
        assert _temporaries(where) == []


_SAVER = textwrap.dedent("""
    import sys
    import deepnet as dn
    net = dn.DeepNet([64, 96, 96, 10], output="softmax", seed=2, backend="numpy")
    print("ready", flush=True)
    while True:
        net.save(sys.argv[1])
""")


def test_ctrl_c_during_library_saves_keeps_the_file_whole(tmp_path):
    path = tmp_path / "ckpt.npz"
    old = dn.DeepNet([64, 96, 96, 10], output="softmax", seed=1, backend="numpy")
    new = dn.DeepNet([64, 96, 96, 10], output="softmax", seed=2, backend="numpy")
    old.save(path)
    (tmp_path / "saver.py").write_text(_SAVER)
    for delay in np.random.default_rng(3).uniform(0.0, 0.2, 4):
        proc = subprocess.Popen([sys.executable, "saver.py", str(path)], cwd=tmp_path,
                                env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                preexec_fn=_as_from_a_terminal)
        try:
            assert proc.stdout.readline().strip() == b"ready"
            time.sleep(delay)
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=60)
        finally:  # a saver the signal did not stop would save on forever
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        loaded = dn.load(path)
        assert _same(loaded, old) or _same(loaded, new)


# == 10. use_backend: per thread and per asyncio task ==========================================


@pytest.fixture
def clean_default(monkeypatch):
    monkeypatch.setattr(B.select, "_override", [])
    for var in ("DEEPNET_BACKEND", "DEEPNET_DEVICE", "DEEPNET_DTYPE"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_use_backend_in_racing_threads(clean_default):
    names = ["numpy", "array_api_strict", ("array_api_strict", "device1")]
    if torch is not None:
        names.append("torch")
    barrier = threading.Barrier(len(names) + 1)
    wrong, built = [], []

    def worker(choice):
        name, device = choice if isinstance(choice, tuple) else (choice, None)
        with dn.use_backend(name, device) as mine:
            barrier.wait()
            for _ in range(150):
                net = dn.DeepNet([2, 1])
                built.append(1)
                if net.backend is not mine:
                    wrong.append((mine.label, net.backend.label))

    def outsider():  # a thread outside any block sees the process default
        barrier.wait()
        for _ in range(150):
            if dn.get_backend().name != "numpy":
                wrong.append(("outside", dn.get_backend().label))

    threads = [threading.Thread(target=worker, args=(c,)) for c in names]
    threads.append(threading.Thread(target=outsider))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == [] and len(built) == 150 * len(names)


def test_set_backend_is_the_process_default_for_every_thread(clean_default):
    chosen = dn.set_backend("array_api_strict")
    seen = []
    t = threading.Thread(target=lambda: seen.append(dn.get_backend()))
    t.start()
    t.join()
    assert seen == [chosen]
    with dn.use_backend("numpy"):
        t = threading.Thread(target=lambda: seen.append(dn.get_backend()))
        t.start()
        t.join()
    assert seen[1] is chosen  # a block in this thread does not leak into another


def test_use_backend_in_interleaved_asyncio_tasks(clean_default):
    async def task(name, device, out):
        with dn.use_backend(name, device) as mine:
            for _ in range(20):
                await asyncio.sleep(0)  # let the other tasks run inside their blocks
                out.append(dn.DeepNet([2, 1]).backend is mine)

    async def main():
        out = []
        await asyncio.gather(task("numpy", None, out), task("array_api_strict", None, out),
                             task("array_api_strict", "device1", out))
        with dn.use_backend("array_api_strict") as outer:
            inherited = await asyncio.create_task(_current())
        return out, inherited, outer

    async def _current():
        return dn.get_backend()

    async def in_a_thread():
        with dn.use_backend("array_api_strict", "device1") as outer:
            return await asyncio.to_thread(dn.get_backend), outer

    out, inherited, outer = asyncio.run(main())
    assert out == [True] * 60
    assert inherited is outer  # a task made inside a block inherits it
    seen, outer = asyncio.run(in_a_thread())
    assert seen is outer  # asyncio.to_thread copies the context, block included
    assert dn.get_backend().name == "numpy"


# == 11. devices and variables, normalised once ====================================================


@pytest.mark.parametrize(("name", "device", "same_as"), [
    ("numpy", " CPU ", ("numpy", None)),
    ("torch", "cpu:0", ("torch", None)),
    ("torch", " CPU:0 ", ("torch", "cpu")),
    ("array_api_strict", "Device1", ("array_api_strict", "device1")),
    ("array_api_strict", "cpu_device", ("array_api_strict", None)),
    (" Array_API_Strict ", None, ("array_api_strict", None)),
])
def test_one_device_is_one_backend(name, device, same_as):
    if "torch" in name and torch is None:
        pytest.skip("torch is not installed")
    assert dn.get_backend(name, device) is dn.get_backend(*same_as)
    net = dn.DeepNet([3, 4, 1], backend=name, device=device)
    X = np.ones((3, 5))
    AL, caches = net.forward(X)  # the network accepts its own arrays
    net.backward(AL, np.ones((1, 5)), caches)
    assert net.cost(AL, np.ones((1, 5)), caches) >= 0


def test_environment_variables_are_normalised_like_arguments(clean_default):
    clean_default.setenv("DEEPNET_BACKEND", " Array_API_Strict ")
    clean_default.setenv("DEEPNET_DEVICE", " DEVICE1 ")
    clean_default.setenv("DEEPNET_DTYPE", " Float64 ")
    net = dn.DeepNet([2, 1])
    assert net.backend is dn.get_backend("array_api_strict", "device1")
    assert net.dtype_name == "float64"
    if torch is not None:
        clean_default.setenv("DEEPNET_BACKEND", "TORCH")
        clean_default.setenv("DEEPNET_DEVICE", "cpu:0")
        assert dn.DeepNet([2, 1]).backend is dn.get_backend("torch")
    for var in ("DEEPNET_BACKEND", "DEEPNET_DEVICE", "DEEPNET_DTYPE"):
        clean_default.setenv(var, "   ")  # only spaces: unset
    net = dn.DeepNet([2, 1])
    assert net.backend.name == "numpy" and net.dtype_name == "float32"


def test_the_device_message_names_what_works_in_each_library():
    strict = dn.get_backend("array_api_strict", "device1")
    net = dn.DeepNet([2, 1], backend=strict)
    other = dn.get_backend("array_api_strict").xp.ones((2, 3))
    with pytest.raises(dn.InputError) as info:
        net.forward(other)
    assert "x.to_device(array_api_strict.Device('device1'))" in str(info.value)
    fake_cupy = B.Backend("cupy", strict.xp, type("Dev", (), {"id": 1})(), None)
    fake_cupy.device.__class__.__module__ = "cupy.cuda.device"
    hint = B._move_hint(fake_cupy)
    assert "to_device" not in hint and "cupy.asarray(x)" in hint and "Device(1)" in hint
    if torch is not None:
        fake_torch = B.Backend("torch", strict.xp, torch.device("cuda", 1), torch)
        assert B._move_hint(fake_torch) == "x.to('cuda:1')"


# == 12. caches of another network or another batch ================================================


def test_caches_must_come_from_this_network_and_this_batch(backend):
    a, b = _net(backend, seed=1), _net(backend, seed=2)
    rng = np.random.default_rng(0)
    X1, X2 = rng.standard_normal((3, 6)), rng.standard_normal((3, 6))
    Y = (rng.random((1, 6)) > 0.5).astype(float)
    ALa, caches_a = a.forward(X1)
    ALb, caches_b = b.forward(X1)
    AL2, _ = a.forward(X2)
    for call in (a.cost, a.backward):
        with pytest.raises(dn.InputError, match=r"not this network's parameters"):
            call(ALa, Y, caches_b)
        with pytest.raises(dn.InputError, match=r"not this network's parameters"):
            call(ALb, Y, caches_b)
        with pytest.raises(dn.InputError, match=r"another batch"):
            call(AL2, Y, caches_a)
    assert a.cost(ALa, Y, caches_a) == pytest.approx(a.cost(ALa, Y))  # its own: fine
    a.backward(ALa, Y, caches_a)
    a.set_params(_params(b))  # new parameters: the old caches no longer describe it
    with pytest.raises(dn.InputError, match=r"before set_params"):
        a.backward(ALa, Y, caches_a)


def test_a_softmax_needs_two_units(backend):
    with pytest.raises(dn.InputError, match=r"softmax output needs nL >= 2"):
        dn.DeepNet([4, 3, 1], output="softmax", backend=backend)
    dn.DeepNet([4, 3, 2], output="softmax", backend=backend)


# == 13. the memory guard ======================================================================


def test_a_network_beyond_memory_is_refused_before_allocating(backend, monkeypatch):
    drawn = []
    real = dn.initializers.initialize_parameters
    monkeypatch.setattr(dn.initializers, "initialize_parameters",
                        lambda *args: drawn.append(args) or real(*args))
    with pytest.raises(dn.InputError, match=r"needs about .* GiB of host memory at its peak"):
        dn.DeepNet([2**31 - 1, 1], backend=backend)
    assert drawn == []  # refused before a single weight was drawn


def test_the_guard_compares_with_available_memory(monkeypatch, backend):
    monkeypatch.setattr(memory, "available_host_memory", lambda: 20 * 2**20)
    with pytest.raises(dn.InputError, match=r"layer_dims \[64, 20000, 10\].*only 20.0 MiB"):
        dn.DeepNet([64, 20000, 10], output="softmax", backend=backend)
    dn.DeepNet([4, 3, 2], output="softmax", backend=backend)  # small ones still pass


def test_a_gpu_network_is_checked_against_its_device(monkeypatch):
    numpy = dn.get_backend("numpy")
    fake = B.Backend("cupy", numpy.xp, "gpu0", np)
    monkeypatch.setattr(memory, "free_device_memory", lambda b: 100 * 2**20)
    need = memory.network_peak([4096, 4096, 10], "float32", fake)
    assert need.device > 2 * 4 * 4096 * 4096 and need.host < 3 * 12 * 4096 * 4096
    with pytest.raises(dn.InputError, match=r"on cupy:gpu0 at its peak.*100.0 MiB is free"):
        memory.require(need, fake, "layer_dims [4096, 4096, 10]")


def test_device_bytes_are_host_bytes_on_a_cpu_backend(monkeypatch, backend):
    monkeypatch.setattr(memory, "available_host_memory", lambda: 100 * 2**20)
    memory.require(memory.Need(host=60 * 2**20), backend, "x")
    with pytest.raises(dn.InputError, match=r"needs about 120.0 MiB of host memory"):
        memory.require(memory.Need(host=60 * 2**20, device=60 * 2**20), backend, "x")


def test_the_workspace_estimate_counts_every_buffer():
    net = dn.DeepNet([7, 12, 12, 5, 3], output="softmax", backend="numpy")
    ws = net._workspace(20)
    arrays = [*ws.A[1:], *ws.dA[1:-1], ws.grads_flat, ws.ones, *ws.tmp.values(),
              *ws.zeros.values()]
    assert memory.workspace_bytes(net.layer_dims, 20, "float32") == sum(a.nbytes
                                                                         for a in arrays)


_PEAK = textwrap.dedent("""
    import json, os, resource, sys
    import deepnet as dn
    from deepnet import memory
    name, device, shapes = sys.argv[1], sys.argv[2] or None, json.loads(sys.argv[3])
    dn.DeepNet([2, 1], backend=name, device=device)  # the library loaded before measuring
    out = []
    for dims, dtype in shapes:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # one child per network: ru_maxrss only grows
            os.close(r)
            with open("/proc/self/statm") as f:
                before = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            dn.DeepNet(dims, backend=name, device=device, dtype=dtype)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            os.write(w, str(peak - before).encode())
            os._exit(0)
        os.close(w)
        measured = int(os.read(r, 64))
        os.waitpid(pid, 0)
        need = memory.network_peak(dims, dtype, dn.get_backend(name, device))
        out.append([dims, dtype, measured, need.host])
    print(json.dumps(out))
""")


def test_the_estimate_bounds_the_measured_peak(backend, tmp_path):
    if not hasattr(os, "fork") or not Path("/proc/self/statm").exists():
        pytest.skip("measuring a peak needs fork and /proc")
    name, device = ALL_BACKENDS[next(k for k, v in ALL_BACKENDS.items()
                                     if v == (backend.name, _device_of(backend)))]
    shapes = [([2**22, 1], "float32"), ([1536, 1536, 1536], "float64"),
              ([64, 2048, 2048, 10], "float32")]
    (tmp_path / "peak.py").write_text(_PEAK)
    proc = subprocess.run([sys.executable, "peak.py", name, device or "", json.dumps(shapes)],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for dims, dtype, measured, estimate in json.loads(proc.stdout):
        assert estimate >= measured, (dims, dtype, measured, estimate)
        assert estimate <= 2.5 * measured + memory.OVERHEAD, (dims, dtype, measured,
                                                                  estimate)


# == 14. the command line: help, info ==============================================================


def test_every_train_flag_has_help_and_one_default(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    parser = cli._parser()
    train = next(a for a in parser._subparsers._group_actions[0].choices.values()
                 if a.prog.endswith("train"))
    flags = [a for a in train._actions if a.option_strings and "-h" not in a.option_strings]
    for action in flags:
        assert action.help and action.help.count("(default:") == 1, action.option_strings
    assert text.count("(default:") == len(flags)
    assert "%(default)" not in text


def test_info_says_when_the_default_backend_cannot_run(capsys, clean_default):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "default: numpy float32" in out
    for var, value, words in [("DEEPNET_BACKEND", "jax", "is not a backend"),
                              ("DEEPNET_DEVICE", "cuda:0", "runs on the CPU only"),
                              ("DEEPNET_DTYPE", "float16", "float32, float64")]:
        with clean_default.context() as env:
            env.setenv(var, value)
            assert cli.main(["info"]) == 2
            out, err = capsys.readouterr()
            assert "backends:" in out  # the table is still printed, to help
            assert err.startswith("deepnet info: error: the default backend cannot run")
            assert words in err and err.count("\n") == 1


@pytest.mark.parametrize("args", [["info"], ["train", "--dataset", "moons", "--epochs", "1",
                                             "--no-progress", "--no-plot"]])
def test_a_closed_output_pipe_ends_the_command_quietly(tmp_path, args):
    read_end, write_end = os.pipe()
    os.close(read_end)  # `deepnet ... | head` after head has exited
    try:
        proc = subprocess.run([sys.executable, "-m", "deepnet", *args], cwd=tmp_path,
                              env=_env(), stdout=write_end, stderr=subprocess.PIPE, text=True,
                              timeout=120, check=False)
    finally:
        os.close(write_end)
    assert proc.returncode == 141, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# == 17. the benchmark command's files (second review) ========================================
# `deepnet bench` wrote its four files with a writer of its own: a FIFO or device there
# became a regular file, a link was replaced by a file, a directory named results.json
# failed only after the whole sweep (a traceback), two names for one file overwrote each
# other; its results files were read without bounds (deep JSON, wrong types: tracebacks);
# and `python -m deepnet.bench` answered Ctrl-C and deepnet errors with a traceback.

from bench_synthetic import synthetic  # noqa: E402

from deepnet.bench import cli as bench_cli  # noqa: E402
from deepnet.bench import results as bench_results  # noqa: E402

_BENCH = ["--backends", "numpy", "--no-progress", "--no-reference"]


def _no_sweep(*args, **kwargs):
    raise AssertionError("the sweep must not start")


def _one_line(err: str, *words: str) -> None:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, f"{word!r} not in {err!r}"


@pytest.mark.parametrize("name", bench_results.OUTPUTS)
@pytest.mark.parametrize("kind", NODES)
def test_bench_refuses_outputs_that_are_not_regular_files_before_measuring(
        tmp_path, monkeypatch, capsys, kind, name):
    monkeypatch.setattr(bench_cli, "run_sweep", _no_sweep)
    _make_node(tmp_path / name, kind)
    assert bench_cli.main([*_BENCH, "--out", str(tmp_path)]) == 2
    _one_line(capsys.readouterr().err, name, "directory" if kind == "directory" else kind)
    assert _is(tmp_path / name, kind)


@pytest.mark.parametrize("link", ["symbolic", "hard"])
def test_bench_refuses_two_outputs_that_are_one_file(tmp_path, monkeypatch, capsys, link):
    monkeypatch.setattr(bench_cli, "run_sweep", _no_sweep)
    (tmp_path / "results.json").write_text("{}")
    if link == "symbolic":
        os.symlink("results.json", tmp_path / "throughput.png")
    else:
        os.link(tmp_path / "results.json", tmp_path / "results.md")
    assert bench_cli.main([*_BENCH, "--out", str(tmp_path)]) == 2
    _one_line(capsys.readouterr().err, "name the same file")
    assert (tmp_path / "results.json").read_text() == "{}"


def test_bench_writes_through_a_link_and_keeps_it(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "kept").mkdir()
    os.symlink(tmp_path / "kept" / "report.md", tmp_path / "out" / "results.md")
    bench_results.check_out_dir(tmp_path / "out")
    bench_cli.write_reports(synthetic({"torch": 1.3}), tmp_path / "out")
    assert (tmp_path / "out" / "results.md").is_symlink()
    assert (tmp_path / "kept" / "report.md").read_text().startswith("# deepnet bench")
    assert _temporaries(tmp_path / "out") == [] and _temporaries(tmp_path / "kept") == []


def test_bench_render_checks_its_outputs_before_drawing(tmp_path, capsys):
    bench_results.write_json(synthetic({"torch": 1.3}), tmp_path)
    before = (tmp_path / "results.json").read_bytes()
    os.mkfifo(tmp_path / "crossover.png")
    assert bench_cli.main(["--render", "--out", str(tmp_path)]) == 2
    _one_line(capsys.readouterr().err, "crossover.png", "FIFO")
    assert _is(tmp_path / "crossover.png", "FIFO")
    assert not (tmp_path / "results.md").exists()
    assert (tmp_path / "results.json").read_bytes() == before


def _hostile_results(case: str) -> str | bytes:
    good = synthetic({"torch": 1.3})
    if case == "nested":
        return '{"schema": "deepnet-bench/2", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    if case == "not utf-8":
        return b'{"schema": "deepnet-bench/2", "created": "\xff"}'
    edits = {
        "samples a number": ("samples", 5),
        "a sample a string": ("samples", ["x"]),
        "seconds a string": ("samples", [{**good["samples"][0], "seconds": "fast"}]),
        "seconds NaN": ("samples", [{**good["samples"][0], "seconds": float("nan")}]),
        "n huge": ("samples", [{**good["samples"][0], "n": 2**70}]),
        "created null": ("created", None),
        "config a number": ("config", 3),
        "criteria of text": ("config", {"criteria": {"confidence": "high"}}),
        "target without a role": ("targets", {"numpy": {}}),
        "skipped of numbers": ("skipped", [1]),
    }
    key, value = edits[case]
    return json.dumps({**good, key: value})


HOSTILE_RESULTS = ["nested", "not utf-8", "samples a number", "a sample a string",
                   "seconds a string", "seconds NaN", "n huge", "created null",
                   "config a number", "criteria of text", "target without a role",
                   "skipped of numbers"]


@pytest.mark.parametrize("command", ["compare", "render", "advise"])
@pytest.mark.parametrize("case", HOSTILE_RESULTS)
def test_a_hostile_results_file_is_one_line_and_status_2(tmp_path, capsys, case, command):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(synthetic({"torch": 1.3})))
    bad = tmp_path / "bad" / "results.json"
    bad.parent.mkdir()
    data = _hostile_results(case)
    (bad.write_bytes if isinstance(data, bytes) else bad.write_text)(data)
    argv = {"compare": ["compare", str(good), str(bad)],
            "render": ["--render", "--out", str(bad.parent)],
            "advise": ["--advise", "64", "64", "--out", str(bad)]}[command]
    assert bench_cli.main(argv) == 2
    _one_line(capsys.readouterr().err, "bad")
    assert sorted(p.name for p in bad.parent.iterdir()) == ["results.json"]


@pytest.mark.parametrize("kind", ["FIFO", "directory"])
def test_a_results_file_that_is_not_a_regular_file_is_not_read(tmp_path, capsys, kind):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(synthetic({"torch": 1.3})))
    _make_node(tmp_path / "node.json", kind)
    assert bench_cli.main(["compare", str(good), str(tmp_path / "node.json")]) == 2
    _one_line(capsys.readouterr().err, "node.json")


def test_an_unreadable_results_file_is_reported_as_such(tmp_path, capsys):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(synthetic({"torch": 1.3})))
    locked = tmp_path / "locked.json"
    locked.write_text(good.read_text())
    locked.chmod(0)
    code = unprivileged(lambda: bench_cli.main(["compare", str(good), str(locked)]))
    assert code == 2
    _one_line(capsys.readouterr().err, "permission denied")


def test_ctrl_c_in_the_bench_command_is_one_line_and_130(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench_cli, "run_sweep", interrupted)
    assert bench_cli.main([*_BENCH, "--out", str(tmp_path)]) == 130
    _one_line(_after_notices(capsys.readouterr().err, "deepnet bench: "), "interrupted")


def _after_notices(err: str, prog: str) -> str:
    """The last line of ``err``: notices before it (no torch, no matplotlib where they are
    not installed) are single lines of the command too, never a traceback."""
    lines = err.splitlines(keepends=True)
    assert lines and all(line.startswith(prog) for line in lines), err
    return lines[-1]


_BENCH_MODULE = """
import runpy, sys
from deepnet.bench import cli
def interrupted(*args, **kwargs):
    raise {error}
cli.run_sweep = interrupted
sys.argv = ["deepnet.bench", "--backends", "numpy", "--no-progress", "--out", {out!r}]
runpy.run_module("deepnet.bench", run_name="__main__")
"""


@pytest.mark.parametrize("error, code", [("KeyboardInterrupt", 130),
                                         ("__import__('deepnet').InputError('bad')", 2)])
def test_python_m_deepnet_bench_ends_as_deepnet_bench_does(tmp_path, error, code):
    script = _BENCH_MODULE.format(error=error, out=str(tmp_path / "out"))
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == code, proc.stderr
    _one_line(_after_notices(proc.stderr, "python -m deepnet.bench: "))


# == 18. the memory of a forward or backward pass (second review) ==============================
# The guard covered making a network and fit's workspace, but net.forward(X), backward and
# predict/evaluate with a large batch_size allocated their activations unchecked: a
# MemoryError (a foreign error) at best, the OOM killer at worst.


@pytest.mark.parametrize("call", ["forward", "backward", "predict", "evaluate"])
def test_a_pass_beyond_the_memory_available_is_refused_before_allocating(backend, monkeypatch,
                                                                        call):
    net = _net(backend, dims=(3, 4096, 1))
    m = 8192  # Z and A of 4096 units: 256 MiB as float32
    X = np.random.default_rng(0).random((3, m)).astype(np.float32)
    Y = np.zeros((1, m), dtype=np.float32)
    AL, caches = net.forward(X) if call == "backward" else (None, None)
    monkeypatch.setattr(memory, "available_host_memory", lambda: 100 * 2**20)
    monkeypatch.setattr(memory, "free_device_memory", lambda backend: None)
    run = {"forward": lambda: net.forward(X), "backward": lambda: net.backward(AL, Y, caches),
           "predict": lambda: net.predict(X, batch_size=m),
           "evaluate": lambda: net.evaluate(X, Y, batch_size=m)}[call]
    with pytest.raises(dn.InputError, match=r"needs about .* available here; pass fewer "
                       "examples at a time"):
        run()
    assert net.predict(X, batch_size=1024).shape == (1, m)  # small chunks still fit


# == 19. one spelling rule for names and devices, at every door (second review) ================
# torch took "cpu:0" but NumPy and array-api-strict refused it (so DEEPNET_DEVICE=cpu:0 broke
# the other CPU backends); the package's own name "array-api-strict" was unknown; the
# command line refused "--backend Torch" and "--dtype Float64", which the variables took.


@pytest.mark.parametrize(("name", "device", "same_as"), [
    ("numpy", "cpu:0", ("numpy", None)),
    ("numpy", " CPU:0 ", ("numpy", None)),
    ("array_api_strict", "cpu:0", ("array_api_strict", None)),
    ("array-api-strict", None, ("array_api_strict", None)),
    (" Array-API-Strict ", "device1", ("array_api_strict", "device1")),
])
def test_every_cpu_backend_takes_the_cpu_as_torch_spells_it(name, device, same_as):
    assert dn.get_backend(name, device) is dn.get_backend(*same_as)
    net = dn.DeepNet([3, 4, 1], backend=name, device=device)
    AL, caches = net.forward(np.ones((3, 5)))
    net.backward(AL, np.ones((1, 5)), caches)


def test_the_variables_take_the_same_spellings(clean_default):
    clean_default.setenv("DEEPNET_BACKEND", "array-api-strict")
    clean_default.setenv("DEEPNET_DEVICE", "cpu:0")
    assert dn.DeepNet([2, 1]).backend is dn.get_backend("array_api_strict")
    clean_default.setenv("DEEPNET_BACKEND", "numpy")
    assert dn.DeepNet([2, 1]).backend is dn.get_backend("numpy")


def test_the_command_line_takes_the_same_spellings(tmp_path, monkeypatch, capsys):
    code, out, err = _cli(["--backend", "Array-API-Strict", "--device", "CPU:0",
                           "--dtype", "Float64", "--checkpoint", "c.npz", "--no-plot"],
                          tmp_path, monkeypatch, capsys)
    assert code == 0, err
    assert "array_api_strict float64" in out
    assert dn.load(tmp_path / "c.npz").dtype_name == "float64"


def test_scikit_learn_takes_the_same_spellings():
    pytest.importorskip("sklearn")
    from deepnet.sklearn import DeepNetClassifier

    X = np.random.default_rng(0).random((20, 3))
    y = np.arange(20) % 2
    clf = DeepNetClassifier(hidden_layer_sizes=(4,), epochs=2, backend="Array-API-Strict")
    assert clf.fit(X, y).predict(X).shape == (20,)
