"""Hand-made backup archives for the backup tests."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

from dindjobs.backup import archive as fmt


def forged_archive(path, members):
    """An archive whose manifest agrees with its members, written without the writer's checks:
    what a tampered or hand-made archive looks like."""
    tar_bytes = io.BytesIO()
    files = []
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, target, data in members:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.uid, info.gid, info.mtime = kind, 0o755, 1000, 1000, 1_700_000_000
            info.linkname, info.size = target, len(data)
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
            entry = fmt._entry(info, name.split("/", 1)[0])
            if kind == tarfile.REGTYPE:
                entry["sha256"] = hashlib.sha256(data).hexdigest()
            files.append(entry)
        tops = sorted({f["path"].split("/", 1)[0] for f in files})
        manifest = {"format": fmt.FORMAT, "format_version": fmt.FORMAT_VERSION, "files": files,
                    "volumes": [{"role": t, "path": f"/var/{t}", "top": t, "entries": 0, "bytes": 0} for t in tops]}
        body = json.dumps(manifest).encode()
        info = tarfile.TarInfo(fmt.MANIFEST)
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    path.write_bytes(gzip.compress(tar_bytes.getvalue()))
