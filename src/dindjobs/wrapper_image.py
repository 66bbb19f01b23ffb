"""Building the wrapper image through the Docker SDK (what `make image` does).

``--offline``: first ``dind-image/offline/build-base.sh`` (host-side debootstrap, cached) makes
the base image, then ``dind-image/`` is built on top of it with ``BASE_IMAGE``. Engines without a
bridge network build with host networking. Build output is streamed as progress.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

import docker
import docker.errors

from dindjobs.errors import ConfigError, DockerEngineError
from dindjobs.wrapper import engine_error, engine_errors
from dindjobs.wrapper_spec import DEFAULT_IMAGE, OFFLINE_BASE_IMAGE

Progress = Callable[[str], None]
ENV_IMAGE_DIR = "DINDJOBS_IMAGE_DIR"
BASE_SCRIPT = Path("offline") / "build-base.sh"


@dataclasses.dataclass
class ImageResult:
    """The built image: tag, ID and the base it was built from."""

    tag: str
    id: str
    base: str | None


def image_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The ``dind-image`` directory: explicit, ``$DINDJOBS_IMAGE_DIR``, the source checkout, or ./dind-image."""
    candidates = [explicit, os.environ.get(ENV_IMAGE_DIR)]
    candidates += [Path(__file__).resolve().parents[2] / "dind-image", Path.cwd() / "dind-image"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "Dockerfile").is_file():
            return Path(candidate)
    raise ConfigError(
        "cannot find the wrapper image's Dockerfile (dind-image/Dockerfile)",
        hint=f"run from the dindjobs checkout or set {ENV_IMAGE_DIR}",
    )


def build_offline_base(directory: Path, progress: Progress, run: Callable[..., subprocess.Popen] = subprocess.Popen) -> None:
    """Run ``offline/build-base.sh`` (it caches: a no-op when the base image is up to date)."""
    script = directory / BASE_SCRIPT
    if not script.is_file():
        raise ConfigError(f"{script} does not exist", hint="the offline base needs the image's build-base.sh")
    progress(f"building the offline base image with {script}")
    process = run([str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=str(directory.parent),
                  text=True, errors="replace")
    last = ""
    assert process.stdout is not None
    for line in process.stdout:
        line = line.rstrip("\n")
        if line.strip():
            last = line
            progress(line)
    code = process.wait()
    if code != 0:
        raise DockerEngineError(f"{script} failed with exit code {code}: {last}")


def build_image(
    client: docker.DockerClient,
    directory: Path,
    tag: str = DEFAULT_IMAGE,
    base: str | None = None,
    offline: bool = False,
    progress: Progress = lambda _: None,
) -> ImageResult:
    """Build ``directory`` (the dind-image context) as ``tag``; ``base`` sets ``BASE_IMAGE``."""
    if offline:
        build_offline_base(directory, progress)
        base = base or OFFLINE_BASE_IMAGE
    buildargs = {"BASE_IMAGE": base} if base else {}
    with engine_errors():
        has_bridge = bool(client.networks.list(names=["bridge"]))
        stream = client.api.build(
            path=str(directory), tag=tag, buildargs=buildargs, rm=True, forcerm=True, decode=True,
            network_mode=None if has_bridge else "host",
        )
        image_id = _follow_build(stream, progress)
    if not image_id:
        with engine_errors():
            try:
                image_id = client.images.get(tag).id
            except docker.errors.ImageNotFound as exc:
                raise engine_error(exc) from None
    progress(f"built {tag} ({image_id[:19]})")
    return ImageResult(tag, image_id, base)


def _follow_build(stream: Iterable[dict], progress: Progress) -> str | None:
    """Relay build messages as progress; the image ID, or an error with the engine's own words."""
    image_id = None
    for chunk in stream:
        if "error" in chunk:
            detail = (chunk.get("errorDetail") or {}).get("message") or chunk["error"]
            raise DockerEngineError(f"image build failed: {' '.join(str(detail).split())}")
        if "stream" in chunk:
            for line in str(chunk["stream"]).splitlines():
                if line.strip():
                    progress(line)
        elif "status" in chunk:
            progress(" ".join(str(chunk.get(k, "")) for k in ("id", "status", "progress")).strip())
        aux = chunk.get("aux") or {}
        if isinstance(aux, dict) and aux.get("ID"):
            image_id = aux["ID"]
    return image_id
