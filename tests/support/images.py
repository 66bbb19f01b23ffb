"""Tiny image build contexts made on the spot from Debian's static busybox (nothing is pulled)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

BUSYBOX_STATIC = Path("/bin/busybox")


def busybox_context(directory: str = "", label: str | None = None, cmd: str = '"echo", "hello from busybox"') -> bytes:
    """A tar build context: busybox on scratch. ``directory`` prefixes the members (for
    put_archive into a container); ``label`` makes the image ID unique to its caller."""
    prefix = f"{directory.strip('/')}/" if directory else ""
    lines = ["FROM scratch"]
    if label:
        lines.append(f"LABEL djtest={label}")
    lines += ["COPY busybox /bin/busybox", f'CMD ["/bin/busybox", {cmd}]']
    dockerfile = ("\n".join(lines) + "\n").encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(f"{prefix}Dockerfile")
        info.size, info.mode = len(dockerfile), 0o644
        tar.addfile(info, io.BytesIO(dockerfile))
        busybox = BUSYBOX_STATIC.resolve()
        info = tar.gettarinfo(str(busybox), arcname=f"{prefix}busybox")
        info.uid = info.gid = 0
        with busybox.open("rb") as fh:
            tar.addfile(info, fh)
    return buf.getvalue()
