"""Building the wrapper image through the Docker SDK (what `make image` does).

``--offline``: first ``dind-image/offline/build-base.sh`` (host-side debootstrap, cached) makes
the base image, then ``dind-image/`` is built on top of it with ``BASE_IMAGE``, with host
networking like ``dind-image/build.sh``. Build output is streamed as progress.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

import docker
import docker.errors

from dindjobs import __version__
from dindjobs.errors import ConfigError, DockerEngineError
from dindjobs.progress import Progress, no_progress
from dindjobs.wrapper.engine import engine_error, engine_errors
from dindjobs.wrapper.spec import DEFAULT_IMAGE, OFFLINE_BASE_IMAGE

ENV_IMAGE_DIR = "DINDJOBS_IMAGE_DIR"
ENV_OFFLINE_BASE = "DINDJOBS_OFFLINE_BASE"
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
    candidates += [Path(__file__).resolve().parents[3] / "dind-image", Path.cwd() / "dind-image"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "Dockerfile").is_file():
            return Path(candidate)
    raise ConfigError(
        "cannot find the wrapper image's Dockerfile (dind-image/Dockerfile)",
        hint=f"run from the dindjobs checkout or set {ENV_IMAGE_DIR}",
    )


def build_offline_base(directory: Path, base: str, progress: Progress) -> None:
    """Run ``offline/build-base.sh`` to make ``base`` (it caches: quick when the base is up to date)."""
    script = directory / BASE_SCRIPT
    if not script.is_file():
        raise ConfigError(f"{script} does not exist", hint="the offline base needs the image's build-base.sh")
    progress(f"building the offline base image {base} with {script}")
    process = subprocess.Popen(
        [str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=str(directory.parent),
        env={**os.environ, "DINDJOBS_OFFLINE_BASE": base}, text=True, errors="replace",
    )
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
    progress: Progress = no_progress,
) -> ImageResult:
    """Build ``directory`` (the dind-image context) as ``tag``; ``base`` sets ``BASE_IMAGE``.

    Same inputs as ``dind-image/build.sh``: version and revision build args, host networking
    (apt inside the build must work on engines started with ``--bridge=none``).
    """
    if offline:
        base = base or os.environ.get(ENV_OFFLINE_BASE) or OFFLINE_BASE_IMAGE
        build_offline_base(directory, base, progress)
    buildargs = {"DINDJOBS_VERSION": __version__, "VCS_REF": _revision(directory)}
    if base:
        buildargs["BASE_IMAGE"] = base
    with engine_errors():
        stream = client.api.build(
            path=str(directory), tag=tag, buildargs=buildargs, rm=True, forcerm=True, decode=True,
            network_mode="host",
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


def _revision(directory: Path) -> str:
    """The checkout's short commit, as the image's revision label; ``unknown`` outside git."""
    try:
        done = subprocess.run(["git", "-C", str(directory), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else "unknown"


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
