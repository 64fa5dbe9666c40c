"""File names in and out: the one check behind every file deepnet writes or reads.

Host-side and below ``serialization`` in the chain (it imports only ``errors``). Every
writer (``DeepNet.save``, the command line's checkpoint and plot) goes through
:func:`write_atomically`, every reader (``deepnet.load``) through :func:`open_input`.

The rules
---------
- **Only regular files.** A writer writes to an existing regular file or to a new name in
  an existing directory; a directory, character or block device (``/dev/null``), FIFO or
  socket at the name is refused and left as it is. A reader opens only regular files: the
  type is checked with ``stat`` before the file is opened (opening some devices has side
  effects) and again on the open descriptor, which is opened non-blocking, so a FIFO (or
  a file swapped for one in between) never blocks and ``/dev/zero`` is never read.
- **Symbolic links are followed, never replaced.** Writing through ``latest.npz ->
  run1/model.npz`` atomically replaces ``run1/model.npz`` (the new file is written in the
  target's own directory, so the rename never crosses a file system) and the link stays
  a link. A dangling link creates its target when the target's directory exists, as
  ``open()`` would; a loop of links is refused.
- **Missing directories are never created**, by the library or by the command line for
  a path the user gave: a name in a directory that does not exist is refused (a typo
  should not scatter files). The command line creates only its own default directory.
- **A read-only file is not replaced** although a rename could do it: ``chmod a-w`` is
  how people protect a good checkpoint. Permission errors are reported as such (a file
  that cannot be read is not called damaged).
- **Two outputs of one command must be two files**: :func:`distinct` refuses names that
  resolve to the same file (through links, ``..`` or hard links).
- **Atomic, and no process-wide state changes.** Bytes go to a hidden temporary file next
  to the target, are flushed and fsynced, and ``os.replace`` puts the file in place; a
  failure or an interrupt leaves the previous file (or no file) as it was. The
  temporary file is created with mode ``0o666`` and the kernel applies the umask (and a
  default ACL) itself, so the umask is never read or changed; a replaced file keeps its
  mode (and, for root, its owner). As with every atomic save, the file gets a new inode:
  other hard links to the old one keep the old content. The temporary file's name is
  shortened where a long target name would make it exceed the file system's limit, so
  every legal name can be written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from deepnet.errors import DeepNetError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_NOCTTY = getattr(os, "O_NOCTTY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BINARY = getattr(os, "O_BINARY", 0)


@dataclass(frozen=True)
class Role:
    """What a file is for, in the words of its error messages.

    ``Role("save", "checkpoint", CheckpointError)`` reads "cannot save the checkpoint to
    'x': it is a FIFO ...".
    """

    verb: str
    noun: str
    error: type[DeepNetError]

    def fail(self, text: str | None, reason: str, preposition: str = "to") -> DeepNetError:
        """The error to raise: ``cannot <verb> the <noun> <preposition> <text>: reason``."""
        where = "" if text is None else f" {preposition} {text!r}"
        return self.error(f"cannot {self.verb} the {self.noun}{where}: {reason}")


def file_name(path: Any, role: Role) -> str:
    """``path`` (``str``, ``bytes`` or ``os.PathLike``) as text; empty names and NUL refused."""
    try:
        text = os.fspath(path)
    except TypeError:
        raise role.fail(None, "the path must be a str or os.PathLike; got "
                        f"{type(path).__name__}") from None
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if not text or "\x00" in text:
        raise role.fail(None, f"{text!r} is not a valid file name")
    return text


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _reason(exc: OSError) -> str:
    """An ``OSError`` in words a user can act on (the system's own text included)."""
    code = exc.errno
    text = exc.strerror or str(exc)
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied" + ("" if text.lower() == "permission denied" else
                                      f" ({text})")
    if code == errno.EROFS:
        return f"the file system is read-only ({text})"
    if code == errno.ELOOP:
        return f"it is a loop of symbolic links ({text})"
    if code == errno.ENOTDIR:
        return f"a part of the path is not a directory ({text})"
    return text


# -- writing ------------------------------------------------------------------------------


def output_file(path: Any, role: Role, *, probe: bool = False) -> Path:
    """The regular file that writing ``path`` would replace or create (links followed).

    Checks the rules of this module without changing anything; ``probe=True`` also
    creates and removes a temporary file in the target's directory, the one test of
    writability that root, ACLs and network file systems cannot fool.

    Raises
    ------
    DeepNetError
        ``role.error``, saying why ``path`` cannot be written.
    """
    text = file_name(path, role)
    if text.endswith(("/", os.sep)) or os.path.basename(text) in (".", ".."):
        raise role.fail(text, "it names a directory, not a file")
    try:
        st = os.stat(text)
    except FileNotFoundError:
        st = None
    except OSError as exc:  # a loop, a name too long, a search permission denied
        raise role.fail(text, _reason(exc)) from None
    real = Path(os.path.realpath(text))
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise role.fail(text, "it is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise role.fail(text, f"it is {_kind(st.st_mode)}, not a regular file; deepnet "
                            "writes only regular files (or new names), and leaves this as it is")
        _check_replaceable(real, text, role)
    else:
        _check_directory(real.parent, text, role)
    if probe:
        _probe_directory(real.parent, text, role)
    return real


def _check_replaceable(real: Path, text: str, role: Role) -> None:
    """An existing regular file may be replaced only by someone who may write to it.

    Opening it for writing (without truncating, non-blocking) changes nothing and asks
    the kernel itself, which knows about root, ACLs and read-only mounts.
    """
    try:
        fd = os.open(real, os.O_WRONLY | _NONBLOCK | _NOCTTY | _CLOEXEC)
    except OSError as exc:
        reason = _reason(exc)
        if exc.errno in (errno.EACCES, errno.EPERM):
            reason = (f"the file is read-only for this user: {reason}; make it writable "
                      "(chmod u+w) or choose another name")
        raise role.fail(text, reason) from None
    os.close(fd)


def _check_directory(directory: Path, text: str, role: Role) -> None:
    try:
        st = os.stat(directory)
    except FileNotFoundError:
        link = os.path.islink(text)
        shown = str(directory) if link else (os.path.dirname(text) or ".")
        via = f" (the symbolic link {text!r} points into it)" if link else ""
        raise role.fail(text, f"the directory {shown!r} does not exist{via} (create it "
                        "first)") from None
    except OSError as exc:
        raise role.fail(text, _reason(exc)) from None
    if not stat.S_ISDIR(st.st_mode):
        raise role.fail(text, f"{str(directory)!r} is not a directory")


def _probe_directory(directory: Path, text: str, role: Role) -> None:
    try:
        fd, tmp = _create_temp(directory, "probe")
    except OSError as exc:
        raise role.fail(text, f"its directory is not writable: {_reason(exc)}") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def _name_max(directory: Path) -> int:
    try:
        return int(os.pathconf(directory, "PC_NAME_MAX"))
    except (AttributeError, ValueError, OSError):
        return 255


def _create_temp(directory: Path, name: str) -> tuple[int, Path]:
    """A new hidden file ``.<name>.<random>.tmp`` in ``directory``, opened for writing.

    Created with mode ``0o666`` so that the kernel applies the umask (and a default ACL)
    exactly as for an ordinary new file; the name is cut to fit the file system's
    ``NAME_MAX`` (in bytes), so a target name of any legal length has a temporary one.
    """
    encoded = os.fsencode(name)
    room = max(0, _name_max(directory) - 14)  # "." + stem + "." + 8 hex digits + ".tmp"
    stem = encoded[:room].decode(sys.getfilesystemencoding(), "ignore") if len(
        encoded) > room else name
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC | _BINARY
    for _ in range(100):
        tmp = directory / f".{stem}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(directory))


def _keep_owner_and_mode(fd: int, real: Path) -> None:
    """Give the new file the mode (and, where allowed, the owner) of the one it replaces."""
    try:
        st = os.stat(real)
    except OSError:
        return  # a new name: the mode the kernel gave it (0o666 less the umask) stays
    if hasattr(os, "fchown"):
        with contextlib.suppress(OSError):  # only root may give a file away
            os.fchown(fd, st.st_uid, st.st_gid)
    if hasattr(os, "fchmod"):
        os.fchmod(fd, stat.S_IMODE(st.st_mode) & 0o777)
    else:  # pragma: no cover - Windows
        os.chmod(fd, stat.S_IMODE(st.st_mode) & 0o777)


def write_atomically(path: Any, write: Callable[[BinaryIO], None], role: Role) -> Path:
    """Write ``path`` atomically with ``write(file)``; the file written (links followed).

    Checks ``path`` (:func:`output_file`), writes a temporary file next to the target,
    flushes and fsyncs it, gives it the replaced file's mode and renames it over the
    target. On any failure, or an interrupt, the temporary file is removed and the
    previous file is left untouched.
    """
    real = output_file(path, role)
    text = file_name(path, role)
    directory = real.parent
    try:
        fd, tmp = _create_temp(directory, real.name)
    except OSError as exc:  # a read-only directory, no space for inodes
        raise role.error(f"could not write the {role.noun} {text!r} ({_reason(exc)}); any "
                         "previous file there is unchanged") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            _keep_owner_and_mode(f.fileno(), real)
            os.fsync(f.fileno())
        _still_replaceable(real, text, role)
        os.replace(tmp, real)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, DeepNetError):
            raise
        if isinstance(exc, Exception):  # OSError, or a failure inside the writer
            raise role.error(
                f"could not write the {role.noun} {text!r} ({type(exc).__name__}: {exc}); "
                "any previous file there is unchanged"
            ) from exc
        raise  # KeyboardInterrupt, SystemExit: the temporary file is gone, the old kept
    _fsync_directory(directory)
    return real


def _still_replaceable(real: Path, text: str, role: Role) -> None:
    """The target was checked before the bytes were written: check it again just before
    the rename, so that a FIFO or device put there meanwhile is not replaced either."""
    try:
        st = os.lstat(real)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        raise role.fail(text, f"it became {_kind(st.st_mode)} while the {role.noun} was "
                        "written; nothing was replaced")


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable where the platform allows it (POSIX)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def distinct(outputs: Mapping[str, Path], error: type[DeepNetError]) -> None:
    """Refuse two outputs (``{label: path from output_file}``) that are one file.

    Paths from :func:`output_file` have their links resolved; hard links (two names, one
    file) are caught by comparing device and inode where both exist.
    """
    items = list(outputs.items())
    for i, (label_a, a) in enumerate(items):
        for label_b, b in items[i + 1 :]:
            same = a == b
            if not same:
                with contextlib.suppress(OSError):
                    same = os.path.samefile(a, b)
            if same:
                raise error(
                    f"{label_a} and {label_b} name the same file {str(a)!r}: the second "
                    "would overwrite the first; give them different names"
                )


# -- reading ------------------------------------------------------------------------------


@contextlib.contextmanager
def open_input(path: Any, role: Role) -> Iterator[BinaryIO]:
    """``path`` opened for reading in binary, provided it is a regular file.

    Raises
    ------
    DeepNetError
        ``role.error`` for a missing file, a directory, a device, FIFO or socket, a loop of
        links, or a permission denied (said as such: the file may well be intact).
    """
    text = file_name(path, role)
    try:
        st = os.stat(text)
    except FileNotFoundError:
        if os.path.islink(text):
            reason = (f"it is a symbolic link to {os.readlink(text)!r}, which does not "
                      "exist")
        else:
            reason = "the file does not exist"
        raise role.fail(text, reason, "from") from None
    except OSError as exc:
        raise role.fail(text, _reason(exc), "from") from None
    if not stat.S_ISREG(st.st_mode):
        raise role.fail(text, f"it is {_kind(st.st_mode)}, not a {role.noun} file; deepnet "
                        "reads only regular files", "from")
    try:
        fd = os.open(text, os.O_RDONLY | _NONBLOCK | _NOCTTY | _CLOEXEC | _BINARY)
    except OSError as exc:
        reason = _reason(exc)
        if exc.errno in (errno.EACCES, errno.EPERM):
            reason = (f"{reason}: this user may not read it (mode "
                      f"{stat.S_IMODE(st.st_mode):03o}); the file itself may be intact, so "
                      "fix its permissions (chmod u+r) rather than delete it")
        raise role.fail(text, reason, "from") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped for something else meanwhile
        os.close(fd)
        raise role.fail(text, "it is not a regular file (it changed while being opened)",
                        "from")
    with os.fdopen(fd, "rb") as f:
        yield f


__all__ = ["Role", "distinct", "file_name", "open_input", "output_file", "write_atomically"]
