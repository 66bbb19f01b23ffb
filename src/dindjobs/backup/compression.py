"""Compression of backup archives: zstd when the ``zstandard`` module is there, else gzip."""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Any, BinaryIO

from dindjobs.errors import BackupError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def zstd_available() -> bool:
    """True when the optional ``zstandard`` module can be imported."""
    try:
        import zstandard  # noqa: F401
    except ImportError:
        return False
    return True


def default_suffix() -> str:
    """``.tar.zst`` when zstandard is installed, else ``.tar.gz``."""
    return ".tar.zst" if zstd_available() else ".tar.gz"


def compression_of(path: Path) -> str:
    """``zst`` or ``gz`` from the file name; raises BackupError for anything else."""
    name = path.name
    if name.endswith((".tar.zst", ".tzst")):
        if not zstd_available():
            raise BackupError(f"{path}: .tar.zst needs the zstandard module", hint="pip install zstandard, or use .tar.gz")
        return "zst"
    if name.endswith((".tar.gz", ".tgz")):
        return "gz"
    raise BackupError(f"{path}: the archive name must end in .tar.gz or .tar.zst")


def compressor(raw: BinaryIO, compression: str) -> BinaryIO:
    """A writer compressing into ``raw``: zstd (with its checksum) or gzip."""
    if compression == "zst":
        import zstandard

        return zstandard.ZstdCompressor(level=3, write_checksum=True).stream_writer(raw, closefd=False)
    # Level 6 (gzip's default) was measured slower than the disk; 3 keeps most of the ratio.
    return gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=3, mtime=0)  # no name in the header


def decompressor(raw: BinaryIO, path: Path) -> BinaryIO:
    """A reader of ``raw`` by its magic bytes; a truncated zstd frame raises EOFError."""
    magic = raw.read(4)
    raw.seek(0)
    if magic.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if magic == ZSTD_MAGIC:
        if not zstd_available():
            raise BackupError(f"{path} is zstd-compressed and the zstandard module is missing", hint="pip install zstandard")
        return _ZstdReader(raw)
    raise BackupError(f"{path} is not a dindjobs backup (neither gzip nor zstd data)")


class _ZstdReader(io.RawIOBase):
    """zstd decoding that notices a truncated frame (zstandard's stream_reader just ends)."""

    FEED = 4096  # compressed bytes per step: bounds one step's output (zstd's worst ratio is ~32768)

    def __init__(self, raw: BinaryIO) -> None:
        import zstandard

        self._raw = raw
        self._obj = zstandard.ZstdDecompressor().decompressobj()
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            data = self._raw.read(self.FEED)
            if not data:
                if not self._obj.eof:
                    raise EOFError("the zstd frame is truncated")
                return 0
            if self._obj.eof:
                raise ValueError("data after the end of the zstd frame")
            self._buffer = self._obj.decompress(data)
            if self._obj.eof and self._obj.unused_data:
                raise ValueError("data after the end of the zstd frame")
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n
