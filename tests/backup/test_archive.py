"""The archive format on its own: round trip, manifest, and rejection of damaged archives."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from dindjobs.backup import archive as fmt
from dindjobs.backup.compression import compression_of, zstd_available
from dindjobs.errors import BackupError
from support.archives import forged_archive

COMPRESSIONS = [".tar.gz", pytest.param(".tar.zst", marks=pytest.mark.skipif(
    not zstd_available(), reason="zstandard is not installed"))]
BIG = os.urandom(fmt.CHUNK + 4097)  # spans two chunks, not block-aligned


def volume_tar(top: str = "jenkins_home", extra: list[tarfile.TarInfo] | None = None) -> bytes:
    """A tar stream shaped like the engine's archive of a volume: top dir first, owned by 1000."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(name, kind=tarfile.REGTYPE, data=b"", mode=0o644, uid=1000, **kw):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, uid, uid, 1_700_000_000
            for key, value in kw.items():
                setattr(info, key, value)
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
        add(top, tarfile.DIRTYPE, mode=0o755)
        add(f"{top}/jobs", tarfile.DIRTYPE, mode=0o755)
        add(f"{top}/jobs/a/config.xml", data=b"<project/>\n")
        add(f"{top}/big.bin", data=BIG, mode=0o600)
        add(f"{top}/empty", data=b"")
        add(f"{top}/link", tarfile.SYMTYPE, linkname="jobs/a/config.xml")
        add(f"{top}/hard", tarfile.LNKTYPE, linkname=f"{top}/empty")
        add(f"{top}/whiteout", tarfile.CHRTYPE, uid=0, devmajor=0, devminor=0)
        add(f"{top}/" + "long/" * 30 + "name.txt", data="ünïcode ✓".encode())
        for info in extra or []:
            tar.addfile(info)
    return buf.getvalue()


def chunks(data: bytes, size: int = 7000):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def write_archive(path, volumes=(("jenkins-home", "/var/jenkins_home"),), meta=None):
    with fmt.ArchiveWriter(path) as writer:
        for role, mount in volumes:
            writer.add_volume(role, mount, chunks(volume_tar(mount.rsplit("/", 1)[1])))
        return writer.commit(meta or {"image": "dindjobs-wrapper:latest"})


def members(data: bytes) -> list[tuple]:
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for m in tar:
            content = tar.extractfile(m).read() if m.isreg() else None
            out.append((m.name, m.type, m.mode, m.uid, m.gid, m.linkname, m.devmajor, m.devminor, content))
    return out


@pytest.mark.parametrize("suffix", COMPRESSIONS)
def test_round_trip_keeps_every_member_owner_mode_and_byte(tmp_path, suffix):
    path = tmp_path / f"b{suffix}"
    manifest = write_archive(path, volumes=(("jenkins-home", "/var/jenkins_home"), ("docker-data", "/var/lib/docker")))
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    assert fmt.verify(path) == manifest
    replay = fmt.Replay(path, manifest)
    try:
        home = b"".join(replay.volume("jenkins_home"))
        docker = b"".join(replay.volume("docker"))
    finally:
        replay.close()
    assert members(home) == members(volume_tar("jenkins_home"))
    assert members(docker) == members(volume_tar("docker"))


def test_manifest_lists_files_with_sizes_and_sha256(tmp_path):
    manifest = write_archive(tmp_path / "b.tar.gz", meta={"image": "img:1", "wrapper": {"name": "w"}})
    assert manifest["format"] == "dindjobs-backup" and manifest["format_version"] == 2
    assert manifest["image"] == "img:1" and manifest["dindjobs_version"] and manifest["created"].endswith("+00:00")
    files = {f["path"]: f for f in manifest["files"]}
    big = files["jenkins_home/big.bin"]
    assert big["size"] == len(BIG) and big["sha256"] == hashlib.sha256(BIG).hexdigest()
    assert big["uid"] == 1000 and big["mode"] & 0o777 == 0o600
    assert files["jenkins_home/link"] == {**files["jenkins_home/link"], "type": "symlink", "link": "jobs/a/config.xml"}
    assert files["jenkins_home/whiteout"]["dev"] == [0, 0]
    assert manifest["volumes"][0]["entries"] == len(files)
    # The manifest is the last member, readable on its own with plain tar tools.
    with tarfile.open(tmp_path / "b.tar.gz") as tar:
        names = tar.getnames()
        assert names[-1] == "manifest.json"
        assert json.load(tar.extractfile("manifest.json")) == manifest


@pytest.mark.parametrize("suffix", COMPRESSIONS)
@pytest.mark.parametrize("keep", [0.0, 0.3, 0.9, 0.999])
def test_truncated_archive_is_rejected(tmp_path, suffix, keep):
    path = tmp_path / f"b{suffix}"
    write_archive(path)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(BackupError, match="corrupt or truncated|not a dindjobs backup"):
        fmt.verify(path)


def test_flipped_byte_inside_a_file_is_caught_by_its_checksum(tmp_path):
    path = tmp_path / "b.tar.gz"
    write_archive(path)
    raw = bytearray(gzip.decompress(path.read_bytes()))
    at = raw.index(b"<project/>")
    raw[at + 1] ^= 0x20  # well-formed gzip and tar, wrong content
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(BackupError, match=r"jenkins_home/jobs/a/config.xml: checksum mismatch"):
        fmt.verify(path)


def test_missing_member_and_missing_manifest_are_rejected(tmp_path):
    path = tmp_path / "b.tar.gz"
    write_archive(path)
    with tarfile.open(path) as tar:
        kept = [(m, tar.extractfile(m).read() if m.isreg() else None) for m in tar]

    def rewrite(selected):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for m, data in selected:
                tar.addfile(m, io.BytesIO(data) if data is not None else None)
        path.write_bytes(gzip.compress(buf.getvalue()))

    rewrite([k for k in kept if k[0].name != "jenkins_home/empty"])
    with pytest.raises(BackupError, match="corrupt or truncated"):
        fmt.verify(path)
    rewrite(kept[:-1])
    with pytest.raises(BackupError, match="no manifest"):
        fmt.verify(path)


def test_member_outside_the_volume_is_refused(tmp_path):
    evil = tarfile.TarInfo("jenkins_home/../../etc/passwd")
    with pytest.raises(BackupError, match="outside jenkins_home"):
        with fmt.ArchiveWriter(tmp_path / "b.tar.gz") as writer:
            writer.add_volume("jenkins-home", "/var/jenkins_home", chunks(volume_tar(extra=[evil])))
    assert list(tmp_path.iterdir()) == []  # the failed backup left nothing behind


def test_failure_midway_leaves_no_archive(tmp_path):
    def broken():
        yield volume_tar()[:20000]
        raise OSError("connection reset by the engine")

    with pytest.raises(OSError):
        with fmt.ArchiveWriter(tmp_path / "b.tar.gz") as writer:
            writer.add_volume("jenkins-home", "/var/jenkins_home", broken())
    assert list(tmp_path.iterdir()) == []


def test_names_and_compression(tmp_path):
    assert compression_of(tmp_path / "x.tar.gz") == "gz"
    with pytest.raises(BackupError, match="must end in"):
        compression_of(tmp_path / "x.zip")
    (tmp_path / "x.tar.gz").write_bytes(b"PK\x03\x04 not a tarball")
    with pytest.raises(BackupError, match="not a dindjobs backup"):
        fmt.verify(tmp_path / "x.tar.gz")


def test_meter_reports_bytes_and_rate():
    now = [0.0]
    lines = []
    meter = fmt.Meter("home", lines.append, interval=1.0, clock=lambda: now[0])
    meter.add(2**20)
    now[0] = 2.0
    meter.add(3 * 2**20)
    assert lines == ["home: 0 entries, 4.0 MiB at 2.0 MiB/s"]


@pytest.mark.parametrize("suffix", COMPRESSIONS)
def test_every_byte_of_the_file_is_covered(tmp_path, suffix):
    """A flip anywhere, even in tar padding or the trailing zero blocks, is caught, and so is
    the loss of the last bytes (the compressor's own checksum)."""
    path = tmp_path / f"b{suffix}"
    write_archive(path)
    data = path.read_bytes()
    for offset in list(range(len(data) - 64, len(data))) + list(range(10, len(data), len(data) // 50)):
        damaged = bytearray(data)
        damaged[offset] ^= 0x10
        path.write_bytes(bytes(damaged))
        if decoded(bytes(damaged), suffix) == decoded(data, suffix):
            continue  # a bit deflate ignores (e.g. block padding): the content is intact
        with pytest.raises(BackupError, match="corrupt or truncated|not a dindjobs backup"):
            fmt.verify(path)
    for cut in range(1, 9):
        path.write_bytes(data[:-cut])
        with pytest.raises(BackupError, match="corrupt or truncated"):
            fmt.verify(path)


def decoded(data: bytes, suffix: str) -> bytes | None:
    """The decompressed bytes, or None when the compression layer itself rejects them."""
    try:
        if suffix == ".tar.gz":
            return gzip.decompress(data)
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True).read()
    except Exception:  # noqa: BLE001 - any decoding failure counts as "rejected"
        return None


def test_archive_and_its_partial_file_are_private_whatever_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = tmp_path / "b.tar.gz"
        with fmt.ArchiveWriter(path) as writer:
            assert writer.tmp.stat().st_mode & 0o777 == 0o600
            writer.add_volume("jenkins-home", "/var/jenkins_home", chunks(volume_tar()))
            writer.commit({})
        assert path.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_stale_partials_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".b.tar.gz.partial-{dead.pid}"
    live = tmp_path / f".c.tar.zst.partial-{os.getppid()}"
    other = tmp_path / f".notes.txt.partial-{dead.pid}"
    for path in (stale, live, other):
        path.write_bytes(b"half an archive")
    assert fmt.remove_stale_partials(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name])


D, L, F, H = tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.REGTYPE, tarfile.LNKTYPE


@pytest.mark.parametrize(("members", "message"), [
    ([("jenkins_home", D, "", b""), ("jenkins_home/x", L, "/var/lib/docker", b""),
      ("jenkins_home/x/FILE", F, "", b"planted")], r"symlink 'jenkins_home/x' -> '/var/lib/docker' leaves"),
    ([("jenkins_home", D, "", b""), ("jenkins_home/up", L, "../../etc", b"")], r"'\.\./\.\./etc' leaves its volume"),
    ([("jenkins_home", D, "", b""), ("jenkins_home/a", L, "jobs", b""), ("jenkins_home/jobs", D, "", b""),
      ("jenkins_home/a/config.xml", F, "", b"x")], r"'jenkins_home/a/config.xml' would be written through the "
                                                   r"symlink 'jenkins_home/a'"),
    ([("jenkins_home", D, "", b""), ("jenkins_home/a", L, "jobs", b""), ("jenkins_home/a", F, "", b"x")],
     r"'jenkins_home/a' would be written through the symlink"),
    ([("jenkins_home", D, "", b""), ("jenkins_home/a", L, "jobs", b""),
      ("jenkins_home/h", H, "jenkins_home/a/secret", b"")], r"hard link 'jenkins_home/h' points through the symlink"),
])
def test_links_that_would_write_outside_their_volume_are_refused(tmp_path, members, message):
    path = tmp_path / "evil.tar.gz"
    forged_archive(path, members)
    with pytest.raises(BackupError, match=message) as caught:
        fmt.verify(path)
    assert "nothing was changed" in caught.value.one_line()
    with pytest.raises(BackupError, match=message) as caught:
        with fmt.ArchiveWriter(tmp_path / "b.tar.gz") as writer:
            writer.add_volume("jenkins-home", "/var/jenkins_home", [tarfile_bytes(members)])
    assert "restore refuses such an archive" in caught.value.one_line()
    assert not (tmp_path / "b.tar.gz").exists()


def tarfile_bytes(members) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, target, data in members:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.size = kind, target, len(data)
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return buf.getvalue()


def test_links_inside_their_volume_and_in_nested_image_content_are_kept(tmp_path):
    path = tmp_path / "ok.tar.gz"
    forged_archive(path, [
        ("jenkins_home", D, "", b""), ("jenkins_home/jobs", D, "", b""),
        ("jenkins_home/jobs/last", L, "../jobs", b""), ("jenkins_home/top", L, ".", b""),
        ("docker", D, "", b""), ("docker/overlay2/abc/diff/etc", D, "", b""),
        ("docker/overlay2/abc/diff/etc/localtime", L, "/usr/share/zoneinfo/UTC", b""),
        ("docker/overlay2/abc/diff/bin", L, "../../../usr/bin", b""),
        ("docker/overlay2/l/ABC", L, "../abc/diff", b""),
        ("docker/volumes/v/_data/x", L, "/etc/hosts", b""),
    ])
    assert len(fmt.verify(path)["files"]) == 10
    forged_archive(path, [("docker", D, "", b""), ("docker/overlay2/abc/link", L, "/etc", b"")])
    with pytest.raises(BackupError, match="leaves its volume docker/"):
        fmt.verify(path)


def with_xattrs() -> list[tarfile.TarInfo]:
    """An overlay2 layer's opaque directory and a file with a (binary) file capability."""
    opaque = tarfile.TarInfo("docker/overlay2/abc/diff/data")
    opaque.type, opaque.mode = tarfile.DIRTYPE, 0o755
    opaque.pax_headers = {"SCHILY.xattr.trusted.overlay.opaque": "y"}
    capable = tarfile.TarInfo("docker/overlay2/abc/diff/ping")
    capable.pax_headers = {"SCHILY.xattr.security.capability": b"\x01\x00\x00\x02\x00\x20\xff".decode(
        "utf-8", "surrogateescape")}
    return [opaque, capable]


def test_extended_attributes_are_archived_checked_and_replayed(tmp_path):
    path = tmp_path / "b.tar.gz"
    with fmt.ArchiveWriter(path) as writer:
        writer.add_volume("docker-data", "/var/lib/docker", chunks(volume_tar("docker", extra=with_xattrs())))
        manifest = writer.commit({})
    files = {f["path"]: f for f in manifest["files"]}
    assert files["docker/overlay2/abc/diff/data"]["xattrs"] == {"trusted.overlay.opaque": "79"}
    assert files["docker/overlay2/abc/diff/ping"]["xattrs"] == {"security.capability": "010000020020ff"}
    assert fmt.verify(path) == manifest
    replay = fmt.Replay(path, manifest)
    try:
        replayed = b"".join(replay.volume("docker"))
    finally:
        replay.close()
    with tarfile.open(fileobj=io.BytesIO(replayed)) as tar:
        headers = {m.name: m.pax_headers for m in tar}
    assert headers["docker/overlay2/abc/diff/data"]["SCHILY.xattr.trusted.overlay.opaque"] == "y"
    raw = headers["docker/overlay2/abc/diff/ping"]["SCHILY.xattr.security.capability"]
    assert raw.encode("utf-8", "surrogateescape") == b"\x01\x00\x00\x02\x00\x20\xff"

    # A lost attribute is a difference like any other: the archive is refused.
    raw_tar = bytearray(gzip.decompress(path.read_bytes()))
    at = raw_tar.index(b"trusted.overlay.opaque=y")
    raw_tar[at:at + 24] = b"trusted.overlay.opaque=n"
    path.write_bytes(gzip.compress(bytes(raw_tar)))
    with pytest.raises(BackupError, match="docker/overlay2/abc/diff/data: xattrs differ"):
        fmt.verify(path)


def test_an_archive_of_format_1_written_by_earlier_code_still_verifies_and_replays(tmp_path):
    old = Path(__file__).parent / "data" / "format-v1.tar.gz"
    manifest = fmt.verify(old)
    assert manifest["format_version"] == 1 and manifest["wrapper"]["name"] == "old"
    replay = fmt.Replay(old, manifest)
    try:
        streams = {v["top"]: b"".join(replay.volume(v["top"])) for v in manifest["volumes"]}
    finally:
        replay.close()
    with tarfile.open(old) as tar:
        for top, stream in streams.items():
            names = [m.name for m in tar.getmembers() if m.name.split("/")[0] == top]
            assert [m[0] for m in members(stream)] == names


def test_replay_sends_the_archived_bytes_as_they_are_and_notices_a_change(tmp_path):
    path = tmp_path / "b.tar.gz"
    manifest = write_archive(path)
    raw = gzip.decompress(path.read_bytes())
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        end = tar.getmember(fmt.MANIFEST).offset
    replay = fmt.Replay(path, manifest)
    try:
        assert b"".join(replay.volume("jenkins_home")) == raw[:end] + b"\0" * 2 * tarfile.BLOCKSIZE
    finally:
        replay.close()

    # Changed between verify and replay: refused at that member, before its padding is sent.
    damaged = bytearray(raw)
    at = damaged.index(b"<project/>")
    damaged[at + 1] ^= 0x20
    path.write_bytes(gzip.compress(bytes(damaged)))
    replay = fmt.Replay(path, manifest)
    sent = bytearray()
    try:
        with pytest.raises(BackupError, match=r"changed since it was verified \(jenkins_home/jobs/a/config.xml\)"):
            for piece in replay._volume("jenkins_home"):
                sent += piece
    finally:
        replay.close()
    assert bytes(sent).endswith(b"<Project/>\n")  # the bad content went out, its padding did not
