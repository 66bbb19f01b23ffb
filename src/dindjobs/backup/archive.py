"""The backup archive format: a compressed tar of the wrapper's volumes plus a manifest.

Layout (one tar stream, ``.tar.gz``, or ``.tar.zst`` when the ``zstandard`` module is there)::

    jenkins_home/...   every member of /var/jenkins_home, as the engine's archive API gives it
    docker/...         with --with-images: every member of /var/lib/docker, extended attributes
                       (SCHILY.xattr.* PAX records) included
    manifest.json      last: format version, dindjobs version, image, creation time, and for
                       every member its path, type, size, mode, owner, xattrs and (files) sha256

The manifest comes last because the archive is written in one streaming pass (a volume is never
held in memory or spooled to disk). A reader therefore trusts nothing until it has streamed the
whole archive and compared every member with the manifest: :func:`verify` does exactly that and
is what restore runs before it touches anything. Member paths are confined to their volume's
top directory (no ``..``, no absolute paths, no link leaving the volume, nothing written
through a link: :class:`LinkGuard`).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import json
import os
import posixpath
import tarfile
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from dindjobs import __version__
from dindjobs.backup.compression import compression_of, compressor, decompressor
from dindjobs.errors import BackupError
from dindjobs.progress import Progress

FORMAT = "dindjobs-backup"
FORMAT_VERSION = 2  # 2: entries carry extended attributes ("xattrs"); version 1 archives still restore
READABLE_VERSIONS = (1, 2)
XATTR = "SCHILY.xattr."  # how GNU tar and the engine spell an extended attribute in a PAX header
MANIFEST = "manifest.json"
ARCHIVE_MODE = 0o600
CHUNK = 1 << 20
BLOCK = tarfile.BLOCKSIZE
TYPES = {
    tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.CONTTYPE: "file", tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink", tarfile.CHRTYPE: "char",
    tarfile.BLKTYPE: "block", tarfile.FIFOTYPE: "fifo",
}


class Meter:
    """Counts bytes and reports ``label: N MiB at R MiB/s`` at most every ``interval`` seconds."""

    def __init__(self, label: str, progress: Progress, interval: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label, self.progress, self.interval, self.clock = label, progress, interval, clock
        self.start = self.last = clock()
        self.bytes = 0
        self.files = 0

    def add(self, count: int) -> None:
        self.bytes += count
        now = self.clock()
        if now - self.last >= self.interval:
            self.last = now
            self.progress(self.line(now))

    def line(self, now: float | None = None) -> str:
        elapsed = max((now if now is not None else self.clock()) - self.start, 1e-9)
        return (f"{self.label}: {self.files} entries, {self.bytes / 2**20:.1f} MiB "
                f"at {self.bytes / 2**20 / elapsed:.1f} MiB/s")

    @property
    def seconds(self) -> float:
        return self.clock() - self.start


class IterReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks (the engine's archive stream)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


def _safe_name(name: str, top: str) -> str:
    """``name`` if it lies in ``top`` (no absolute path, no ``..``), else BackupError."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts or path.parts[0] != top:
        raise BackupError(f"archive member {name!r} is outside {top}/: refusing it")
    return str(path)


def _entry(info: tarfile.TarInfo, top: str) -> dict[str, Any]:
    kind = TYPES.get(info.type)
    if kind is None:
        raise BackupError(f"archive member {info.name!r} has an unsupported type {info.type!r}")
    entry: dict[str, Any] = {"path": _safe_name(info.name, top), "type": kind, "size": info.size if kind == "file" else 0,
                             "mode": info.mode & 0o7777, "uid": info.uid, "gid": info.gid, "mtime": int(info.mtime)}
    if kind in ("symlink", "hardlink"):
        entry["link"] = info.linkname
        if kind == "hardlink":
            _safe_name(info.linkname, top)
    if kind in ("char", "block"):
        entry["dev"] = [info.devmajor, info.devminor]
    xattrs = {key[len(XATTR):]: value.encode("utf-8", "surrogateescape").hex()
              for key, value in info.pax_headers.items() if key.startswith(XATTR)}
    if xattrs:
        entry["xattrs"] = dict(sorted(xattrs.items()))
    return entry


def _as_version(entry: dict[str, Any], version: int) -> dict[str, Any]:
    """``entry`` as an archive of format ``version`` recorded it (version 1 had no xattrs)."""
    if version >= 2 or "xattrs" not in entry:
        return entry
    return {k: v for k, v in entry.items() if k != "xattrs"}


# Inside the nested daemon's data, links are image or volume content: they are resolved inside
# nested containers, never by the restore, so absolute targets there are data, not an escape.
# ("docker/overlay2/<id>/diff/...", "docker/volumes/<name>/_data/...", "docker/vfs/dir/<id>/...")
CONTENT_DIRS = (("overlay2", None, "diff"), ("fuse-overlayfs", None, "diff"), ("volumes", None, "_data"),
                ("vfs", "dir", None))


def _is_nested_content(parts: tuple[str, ...]) -> bool:
    return len(parts) > 4 and parts[0] == "docker" and any(
        parts[1] == first and (second is None or parts[2] == second) and (third is None or parts[3] == third)
        for first, second, third in CONTENT_DIRS)


class LinkGuard:
    """Refuses, member by member, anything that extraction would write through a symlink of the
    archive, and symlinks whose target leaves their volume (absolute, or ``..`` climbing out).

    Tar tools follow a symlink that an earlier member made when a later member's path goes
    through it: ``jenkins_home/x -> /var/lib/docker`` then ``jenkins_home/x/FILE`` writes into
    another volume. Refusing both halves keeps every write inside its volume's top directory.
    """

    def __init__(self, where: Path | str, hint: str = "nothing was changed") -> None:
        self.where, self.hint = where, hint
        self.links: set[str] = set()

    def _refuse(self, detail: str) -> BackupError:
        return BackupError(f"{self.where}: {detail}: refusing it", hint=self.hint)

    def _through_link(self, name: str) -> str | None:
        parts = PurePosixPath(name).parts
        for end in range(1, len(parts) + 1):
            prefix = "/".join(parts[:end])
            if prefix in self.links:
                return prefix
        return None

    def check(self, entry: dict[str, Any]) -> None:
        """Raise BackupError when ``entry`` (a manifest entry) would escape its volume."""
        name = entry["path"]
        link = self._through_link(name)
        if link is not None:
            raise self._refuse(f"member {name!r} would be written through the symlink {link!r}")
        if entry["type"] == "hardlink" and (link := self._through_link(entry["link"])) is not None:
            raise self._refuse(f"hard link {name!r} points through the symlink {link!r}")
        if entry["type"] != "symlink":
            return
        parts = PurePosixPath(name).parts
        target = entry["link"]
        if not _is_nested_content(parts):
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
            if target.startswith("/") or not (resolved == parts[0] or resolved.startswith(parts[0] + "/")):
                raise self._refuse(f"symlink {name!r} -> {target!r} leaves its volume {parts[0]}/")
        self.links.add(name)


def _header(info: tarfile.TarInfo) -> bytes:
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


def _copy(source: BinaryIO, size: int, sink: Callable[[bytes], None], meter: Meter | None) -> str:
    """Copy exactly ``size`` bytes in chunks; returns their sha256 (hex)."""
    digest = hashlib.sha256()
    left = size
    while left:
        chunk = source.read(min(CHUNK, left))
        if not chunk:
            raise BackupError(f"the stream ended {left} bytes early")
        digest.update(chunk)
        sink(chunk)
        left -= len(chunk)
        if meter is not None:
            meter.add(len(chunk))
    return digest.hexdigest()


class ArchiveWriter:
    """Writes an archive under a temporary name; :meth:`commit` renames it into place.

    Use as a context manager: leaving the block by an exception removes the temporary file, so
    a failed backup never leaves an archive that looks whole.
    """

    def __init__(self, path: Path, progress: Progress = lambda _: None) -> None:
        self.path = path
        self.compression = compression_of(path)
        self.progress = progress
        self.tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
        self.files: list[dict[str, Any]] = []
        self.volumes: list[dict[str, Any]] = []
        self._raw: BinaryIO | None = None
        self._out: BinaryIO | None = None

    def __enter__(self) -> ArchiveWriter:
        try:
            # 0600 from the first byte: the archive holds secret.key, secrets/ and credentials.
            fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, ARCHIVE_MODE)
            os.fchmod(fd, ARCHIVE_MODE)  # whatever the umask
            self._raw = os.fdopen(fd, "wb")
        except OSError as exc:
            raise BackupError(f"cannot write {self.tmp}: {exc.strerror}") from None
        self._out = compressor(self._raw, self.compression)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()

    def abort(self) -> None:
        """Close and delete the temporary file."""
        for stream in (self._out, self._raw):
            with contextlib.suppress(Exception):
                if stream is not None:
                    stream.close()
        self._out = self._raw = None
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()

    def _write(self, data: bytes) -> None:
        assert self._out is not None
        try:
            self._out.write(data)
        except OSError as exc:
            raise BackupError(f"cannot write {self.tmp}: {exc.strerror or exc}") from None

    def add_volume(self, role: str, mount: str, chunks: Iterable[bytes]) -> dict[str, Any]:
        """Re-pack one volume's tar stream (from the engine) member by member, hashing files."""
        top = PurePosixPath(mount).name
        meter = Meter(f"{role} ({mount})", self.progress)
        first = len(self.files)
        guard = LinkGuard(mount, hint="restore refuses such an archive: make the link relative and inside "
                                      "the volume, or remove it, then back up again")
        try:
            with tarfile.open(fileobj=IterReader(chunks), mode="r|") as tar:
                for info in tar:
                    entry = _entry(info, top)
                    guard.check(entry)  # an archive restore would refuse is not worth writing
                    self._write(_header(info))
                    if entry["type"] == "file":
                        source = tar.extractfile(info)
                        entry["sha256"] = _copy(source, info.size, self._write, meter)
                        self._write(_padding(info.size))
                    meter.files += 1
                    self.files.append(entry)
        except tarfile.TarError as exc:
            raise BackupError(f"the engine's archive of {mount} is not a valid tar stream: {exc}") from None
        summary = {"role": role, "path": mount, "top": top, "entries": len(self.files) - first,
                   "bytes": meter.bytes, "seconds": round(meter.seconds, 3)}
        self.volumes.append(summary)
        self.progress(meter.line())
        return summary

    def commit(self, meta: dict[str, Any]) -> dict[str, Any]:
        """Append the manifest, finish the stream, fsync and rename; returns the manifest."""
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "dindjobs_version": __version__,
                    "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                    **meta, "volumes": self.volumes, "files": self.files}
        body = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mode, info.mtime = len(body), 0o644, int(time.time())
        self._write(_header(info) + body + _padding(len(body)) + b"\0" * (2 * BLOCK))
        assert self._out is not None and self._raw is not None
        try:
            self._out.close()
            self._raw.flush()
            os.fsync(self._raw.fileno())
            self._raw.close()
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.abort()
            raise BackupError(f"cannot finish {self.path}: {exc.strerror or exc}") from None
        self._out = self._raw = None
        return manifest


def process_alive(pid: int) -> bool:
    """True when a process with this ID exists (ours or another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def remove_stale_partials(directory: Path) -> list[Path]:
    """Delete ``.NAME.tar.*.partial-PID`` files of backups whose process is gone (a ``kill -9``
    leaves them); returns what was deleted. Partial files of running backups are left alone."""
    removed = []
    for candidate in directory.glob(".*.partial-*"):
        stem, _, pid = candidate.name.rpartition(".partial-")
        if not pid.isdigit() or not stem.endswith((".tar.gz", ".tgz", ".tar.zst", ".tzst")):
            continue
        if int(pid) == os.getpid() or process_alive(int(pid)) or not candidate.is_file():
            continue
        with contextlib.suppress(FileNotFoundError):
            candidate.unlink()
            removed.append(candidate)
    return removed


def _corrupt(path: Path, detail: str) -> BackupError:
    return BackupError(f"{path} is corrupt or truncated: {detail}", hint="nothing was changed")


class _Tee(io.RawIOBase):
    """The decompressed archive, keeping what was read since :meth:`discard_before`'s position,
    so a member's header blocks can be sent on exactly as read instead of encoded again."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._kept = bytearray()
        self._base = 0  # stream position of _kept[0]

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        data = self._source.read(len(target))
        target[:len(data)] = data
        self._kept += data
        return len(data)

    def between(self, start: int, end: int) -> bytes:
        """The bytes read at stream positions [start, end)."""
        return bytes(self._kept[start - self._base:end - self._base])

    def discard_before(self, position: int) -> None:
        if position > self._base:
            del self._kept[:position - self._base]
            self._base = position


@contextlib.contextmanager
def _members(path: Path, tee: Callable[[BinaryIO], BinaryIO] = lambda stream: stream,
             ) -> Iterator[tuple[tarfile.TarFile, Iterator[tarfile.TarInfo]]]:
    """The archive's tar members, streamed; decoding errors become BackupError."""
    try:
        raw = open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror}") from None
    with raw:
        try:
            with tarfile.open(fileobj=tee(decompressor(raw, path)), mode="r|") as tar:
                yield tar, iter(tar)
        except BackupError:
            raise
        except (tarfile.TarError, EOFError, zlib.error, OSError, ValueError) as exc:
            raise _corrupt(path, f"{type(exc).__name__}: {exc}") from None
        except Exception as exc:  # zstandard.ZstdError has no common base with the above
            if type(exc).__name__ == "ZstdError":
                raise _corrupt(path, f"zstd: {exc}") from None
            raise


def _check_manifest(path: Path, manifest: Any) -> dict[str, Any]:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _corrupt(path, "the manifest is not a dindjobs backup manifest")
    if manifest.get("format_version") not in READABLE_VERSIONS:
        raise BackupError(f"{path} has format version {manifest.get('format_version')}; this dindjobs reads "
                          f"versions {', '.join(map(str, READABLE_VERSIONS))}", hint="use the dindjobs version that wrote it")
    if not isinstance(manifest.get("files"), list) or not isinstance(manifest.get("volumes"), list):
        raise _corrupt(path, "the manifest has no file list")
    return manifest


def verify(path: Path, progress: Progress = lambda _: None) -> dict[str, Any]:
    """Stream the whole archive once, hash every member and compare with the manifest.

    Returns the manifest when every member matches; otherwise raises BackupError saying what is
    wrong (corrupt compression, truncation, a checksum or size mismatch, members missing or extra).
    """
    meter = Meter(f"verifying {path.name}", progress)
    guard = LinkGuard(path)
    seen: list[dict[str, Any]] = []
    manifest = None
    with _members(path) as (tar, members):
        for info in members:
            if manifest is not None:
                raise _corrupt(path, f"member {info.name!r} after the manifest")
            if info.name == MANIFEST:
                manifest = _check_manifest(path, _load_json(path, tar.extractfile(info).read()))
                continue
            top = PurePosixPath(info.name).parts[0] if info.name else ""
            entry = _entry(info, top)
            guard.check(entry)
            if entry["type"] == "file":
                entry["sha256"] = _copy(tar.extractfile(info), info.size, lambda _: None, meter)
            meter.files += 1
            seen.append(entry)
        _drain(path, tar)
    if manifest is None:
        raise _corrupt(path, "no manifest at the end (the archive is incomplete)")
    _compare(path, manifest, seen)
    progress(meter.line())
    return manifest


def _drain(path: Path, tar: tarfile.TarFile) -> None:
    """Read to the end of the compressed stream, so its own checksum (gzip CRC-32, zstd XXH64)
    is checked: tarfile stops at the first non-header block and would never see damage past it."""
    while True:
        rest = tar.fileobj.read(CHUNK)
        if not rest:
            return
        if rest.count(0) != len(rest):
            raise _corrupt(path, "unreadable data where a tar header should be (damaged or not ours)")


def _load_json(path: Path, data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise _corrupt(path, "the manifest is not valid JSON") from None


def _compare(path: Path, manifest: dict[str, Any], seen: list[dict[str, Any]]) -> None:
    expected = manifest["files"]
    tops = {v.get("top") for v in manifest["volumes"]}
    for index, entry in enumerate(seen):
        if index >= len(expected):
            raise _corrupt(path, f"{entry['path']} is not in the manifest")
        want = expected[index]
        entry = _as_version(entry, manifest["format_version"])
        if want != entry:
            fields = sorted(k for k in set(want) | set(entry) if want.get(k) != entry.get(k))
            what = "checksum mismatch" if fields == ["sha256"] else f"{', '.join(fields)} differ"
            raise _corrupt(path, f"{want.get('path', entry['path'])}: {what}")
        if entry["path"].split("/", 1)[0] not in tops:
            raise _corrupt(path, f"{entry['path']} belongs to no volume of the manifest")
    if len(seen) < len(expected):
        raise _corrupt(path, f"{len(expected) - len(seen)} members of the manifest are missing, "
                             f"first {expected[len(seen)]['path']}")


class Replay:
    """The second pass of a restore: each volume's members as a tar stream for the engine.

    Call :meth:`volume` for the volumes in archive order; each stream re-checks every file's
    sha256 against the (already verified) manifest while it goes, in case the file changed
    between the two passes.
    """

    def __init__(self, path: Path, manifest: dict[str, Any], progress: Progress = lambda _: None) -> None:
        self.path, self.manifest, self.progress = path, manifest, progress
        self._tee: _Tee | None = None
        self._context = _members(path, self._teed)
        self._tar, self._iter = self._context.__enter__()
        self._pending: tarfile.TarInfo | None = None
        self._index = 0

    def close(self) -> None:
        """Release the archive file."""
        self._context.__exit__(None, None, None)

    def _teed(self, stream: BinaryIO) -> BinaryIO:
        self._tee = _Tee(stream)
        return io.BufferedReader(self._tee, CHUNK)

    def _next(self) -> tarfile.TarInfo | None:
        if self._pending is not None:
            info, self._pending = self._pending, None
            return info
        return next(self._iter, None)

    def volume(self, top: str) -> Iterator[bytes]:
        """Tar bytes of the members under ``top/`` (the generator the engine's upload consumes),
        in pieces of about :data:`CHUNK` bytes: each piece is one HTTP chunk, and thousands of
        512-byte headers sent one by one made the upload several times slower."""
        pending = bytearray()
        for piece in self._volume(top):
            pending += piece
            if len(pending) >= CHUNK:
                yield bytes(pending)
                pending.clear()
        if pending:
            yield bytes(pending)

    def _volume(self, top: str) -> Iterator[bytes]:
        meter = Meter(f"restoring {top}", self.progress)
        while True:
            info = self._next()
            if info is None or info.name == MANIFEST or PurePosixPath(info.name).parts[0] != top:
                self._pending = info
                break
            want = self.manifest["files"][self._index]
            self._index += 1
            if _as_version(_entry(info, top), self.manifest["format_version"]) != \
                    {k: v for k, v in want.items() if k != "sha256"}:
                raise BackupError(f"{self.path} changed since it was verified ({info.name})")
            # The header blocks exactly as read (PAX records included): encoding them again
            # with tarfile was a quarter of the restore's CPU time on a home of small files.
            assert self._tee is not None
            yield self._tee.between(info.offset, info.offset_data)
            if info.isreg():
                # Streamed, not buffered (a layer file may be gigabytes): a mismatch found at the
                # end aborts the upload, and the engine rejects the incomplete tar stream.
                source, digest, left = self._tar.extractfile(info), hashlib.sha256(), info.size
                while left:
                    chunk = source.read(min(CHUNK, left))
                    if not chunk:
                        raise _corrupt(self.path, f"{info.name} ends early")
                    digest.update(chunk)
                    left -= len(chunk)
                    meter.add(len(chunk))
                    self._tee.discard_before(info.offset_data + info.size - left)
                    yield chunk
                if digest.hexdigest() != want["sha256"]:
                    raise BackupError(f"{self.path} changed since it was verified ({info.name})")
                yield _padding(info.size)
            self._tee.discard_before(info.offset_data + info.size + len(_padding(info.size)))
            meter.files += 1
        yield b"\0" * (2 * BLOCK)
        self.progress(meter.line())
