"""Reading a ``.npz`` without trusting it: names, ``.npy`` headers and sizes first.

``numpy.load`` decompresses an entry before anything about it can be checked, and reads
a ``.npy`` header of any declared length before comparing it with its limit: a 2 MiB file
can make it allocate gigabytes. :class:`Archive` reads the zip's directory, refuses
duplicate names and unknown compression, then parses each entry's ``.npy`` header itself
from its first bytes (at most :data:`MAX_HEADER` of them) so that the caller can compare
dtype and shape with what it expects, and checks that the size the zip declares is
exactly the header's plus the data's. Only then does :meth:`Archive.read` decompress an
entry, into one preallocated array, reading no more than the declared bytes.
"""

from __future__ import annotations

import ast
import struct
import zipfile
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from deepnet.errors import CheckpointError

MAGIC = b"\x93NUMPY"
#: The longest ``.npy`` header read (numpy writes about 128 bytes for a 2-D array).
MAX_HEADER = 4096
_CHUNK = 1 << 20
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


@dataclass(frozen=True)
class Entry:
    """One ``.npy`` entry, its header parsed: ``dtype``, ``shape``, Fortran order."""

    key: str
    info: zipfile.ZipInfo
    dtype: np.dtype
    shape: tuple[int, ...]
    fortran: bool
    offset: int  # bytes of magic, version, length and header: where the data starts

    @property
    def count(self) -> int:
        """The number of elements."""
        return int(np.prod(self.shape, dtype=object))

    @property
    def nbytes(self) -> int:
        """The bytes of data the header describes."""
        return self.count * self.dtype.itemsize


class Archive:
    """The entries of the ``.npz`` open in ``f``; nothing is decompressed here.

    ``keys`` are the entry names without ``.npy`` (names without it are kept whole, and
    are never read). ``where`` names the file in messages.
    """

    def __init__(self, f: BinaryIO, where: str, size: int) -> None:
        self.where = where
        try:
            self._zip = zipfile.ZipFile(f)
        except Exception as exc:  # BadZipFile, a damaged directory, struct errors
            raise CheckpointError(
                f"{where!r} is not a checkpoint: not a .npz (zip) file, or truncated "
                f"({size} bytes; {type(exc).__name__}: {exc})"
            ) from None
        self._infos: dict[str, zipfile.ZipInfo] = {}
        for info in self._zip.infolist():
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if key in self._infos:
                raise CheckpointError(
                    f"{where!r} holds two entries named {info.filename!r}; it was not "
                    "written by DeepNet.save"
                )
            self._infos[key] = info
        self._entries: dict[str, Entry] = {}

    @property
    def keys(self) -> list[str]:
        """The entries' names, ``.npy`` removed, in the zip's order."""
        return list(self._infos)

    def __contains__(self, key: str) -> bool:
        return key in self._infos

    def entry(self, key: str) -> Entry:
        """The parsed header of ``key`` (its first bytes decompressed, nothing more)."""
        if key not in self._entries:
            self._entries[key] = self._parse(key)
        return self._entries[key]

    def _damaged(self, key: str, reason: str) -> CheckpointError:
        return CheckpointError(
            f"{self.where!r} is damaged: its entry {key!r} {reason}; save the network again"
        )

    def _parse(self, key: str) -> Entry:
        info = self._infos[key]
        if not info.filename.endswith(".npy"):
            raise self._damaged(key, "is not a .npy array")
        if info.flag_bits & 0x1:
            raise self._damaged(key, "is encrypted")
        if info.compress_type not in _METHODS:
            raise self._damaged(
                key, f"uses zip compression method {info.compress_type}; deepnet reads "
                "stored or deflated entries only")
        try:
            with self._zip.open(info) as member:
                head = member.read(10)
                if len(head) < 10 or head[:6] != MAGIC:
                    raise self._damaged(key, "has no .npy header")
                major = head[6]
                if major == 1:
                    length, used = struct.unpack("<H", head[8:10])[0], 10
                elif major in (2, 3):
                    length, used = struct.unpack("<I", head[8:10] + member.read(2))[0], 12
                else:
                    raise self._damaged(key, f"has .npy format version {major}")
                if length > MAX_HEADER:
                    raise self._damaged(
                        key, f"declares a .npy header of {length:,} bytes (at most "
                        f"{MAX_HEADER:,} are read)")
                text = member.read(length)
        except CheckpointError:
            raise
        except Exception as exc:  # zlib and CRC errors of a torn header
            raise self._damaged(key, f"cannot be read ({type(exc).__name__}: {exc})") from None
        if len(text) != length:
            raise self._damaged(key, "ends inside its .npy header")
        dtype, shape, fortran = self._header(key, text, major)
        item = Entry(key, info, dtype, shape, fortran, used + length)
        if info.file_size != item.offset + item.nbytes:
            raise self._damaged(
                key, f"declares {info.file_size:,} bytes, but its header describes "
                f"{item.offset + item.nbytes:,} (dtype {dtype}, shape {shape})")
        return item

    def _header(self, key: str, raw: bytes, major: int) -> tuple[np.dtype, tuple, bool]:
        try:
            header = ast.literal_eval(raw.decode("utf8" if major == 3 else "latin1"))
        except Exception as exc:  # SyntaxError, ValueError (NUL bytes), MemoryError
            raise self._damaged(
                key, f"has a .npy header that cannot be parsed ({type(exc).__name__})"
            ) from None
        ok = (isinstance(header, dict)
              and set(header) == {"descr", "fortran_order", "shape"}
              and isinstance(header["descr"], str)
              and isinstance(header["fortran_order"], bool)
              and isinstance(header["shape"], tuple)
              and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                      for n in header["shape"]))
        if not ok:
            raise self._damaged(key, f"has a malformed .npy header {raw[:200]!r}")
        try:
            dtype = np.dtype(header["descr"])
        except Exception:
            raise self._damaged(key, f"has an unknown dtype {header['descr']!r}") from None
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
            raise self._damaged(key, f"has dtype {dtype}, which a checkpoint never holds")
        return dtype, header["shape"], header["fortran_order"]

    def read(self, key: str) -> np.ndarray:
        """The array of ``key``, decompressed into one preallocated array and CRC-checked.

        Call :meth:`entry` first and check its dtype and shape: this allocates
        ``entry.nbytes``.
        """
        item = self.entry(key)
        out = np.empty(item.count, dtype=item.dtype)
        view = out.view(np.uint8)
        try:
            with self._zip.open(item.info) as member:
                member.read(item.offset)
                done = 0
                while done < item.nbytes:
                    chunk = member.read(min(_CHUNK, item.nbytes - done))
                    if not chunk:
                        raise self._damaged(key, "ends before its data does")
                    view[done : done + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
                    done += len(chunk)
                member.read(1)  # at the end: the zip checks the CRC of the whole entry
        except CheckpointError:
            raise
        except Exception as exc:  # BadZipFile (CRC), zlib.error, EOFError of a torn file
            raise CheckpointError(
                f"{self.where!r} is damaged or truncated and cannot be read "
                f"({type(exc).__name__}: {exc}); save the network again"
            ) from None
        array = out.reshape(item.shape, order="F" if item.fortran else "C")
        if not array.dtype.isnative:
            array = array.astype(array.dtype.newbyteorder("="))
        return array

    def close(self) -> None:
        """Close the zip (not the file it reads)."""
        self._zip.close()


__all__ = ["MAGIC", "MAX_HEADER", "Archive", "Entry"]
