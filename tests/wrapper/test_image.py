"""`dindjobs image` core (src/dindjobs/wrapper/image.py) against a recording fake build API."""

from __future__ import annotations

import stat

import pytest

from dindjobs import __version__
from dindjobs.errors import ConfigError, DockerEngineError
from dindjobs.wrapper.image import build_image, image_dir


class BuildAPI:
    def __init__(self, chunks):
        self.chunks, self.calls = chunks, []

    def build(self, **kwargs):
        self.calls.append(kwargs)
        return iter(self.chunks)


class Client:
    def __init__(self, chunks):
        self.api = BuildAPI(chunks)


def image_context(tmp_path, base_script: str | None = None):
    directory = tmp_path / "dind-image"
    (directory / "offline").mkdir(parents=True)
    (directory / "Dockerfile").write_text("ARG BASE_IMAGE=x\nFROM ${BASE_IMAGE}\n")
    if base_script is not None:
        script = directory / "offline" / "build-base.sh"
        script.write_text(base_script)
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return directory


def test_build_streams_progress_and_returns_the_id(tmp_path):
    chunks = [{"stream": "Step 1/2 : FROM x\n"}, {"stream": " ---> abc\n"}, {"aux": {"ID": "sha256:" + "b" * 64}},
              {"stream": "Successfully tagged t:1\n"}]
    client = Client(chunks)
    seen = []
    result = build_image(client, image_context(tmp_path), tag="t:1", base="my/base:1", progress=seen.append)
    assert result.id == "sha256:" + "b" * 64 and result.base == "my/base:1"
    call = client.api.calls[0]
    assert call["tag"] == "t:1" and call["network_mode"] == "host" and call["path"].endswith("dind-image")
    assert call["buildargs"]["BASE_IMAGE"] == "my/base:1" and call["buildargs"]["DINDJOBS_VERSION"] == __version__
    assert "VCS_REF" in call["buildargs"]
    assert seen[:2] == ["Step 1/2 : FROM x", " ---> abc"]


def test_build_error_is_one_line_in_the_engine_words(tmp_path):
    client = Client([{"stream": "Step 1/2\n"}, {"error": "The command '/bin/sh -c false' returned\n a non-zero code: 1",
                                               "errorDetail": {"message": "returned a non-zero code: 1"}}])
    with pytest.raises(DockerEngineError, match="^image build failed: returned a non-zero code: 1$"):
        build_image(client, image_context(tmp_path))


def test_offline_runs_the_base_script_first_and_builds_on_its_base(tmp_path):
    marker = tmp_path / "ran"
    script = f'#!/bin/sh\necho "base is $DINDJOBS_OFFLINE_BASE"\ntouch {marker}\n'
    client = Client([{"aux": {"ID": "sha256:" + "c" * 64}}])
    seen = []
    result = build_image(client, image_context(tmp_path, script), offline=True, progress=seen.append)
    assert marker.exists() and "base is dindjobs-offline-base:trixie" in seen
    assert client.api.calls[0]["buildargs"]["BASE_IMAGE"] == "dindjobs-offline-base:trixie"
    assert result.base == "dindjobs-offline-base:trixie"


def test_offline_base_failure_stops_before_the_build(tmp_path):
    client = Client([])
    with pytest.raises(DockerEngineError, match="failed with exit code 3: debootstrap said no"):
        build_image(client, image_context(tmp_path, "#!/bin/sh\necho 'debootstrap said no'\nexit 3\n"), offline=True)
    assert client.api.calls == []


def test_image_dir_explicit_env_or_checkout(tmp_path, monkeypatch):
    from dindjobs.wrapper import image as wrapper_image

    directory = image_context(tmp_path)
    assert image_dir(directory) == directory
    monkeypatch.setenv("DINDJOBS_IMAGE_DIR", str(directory))
    assert image_dir() == directory
    monkeypatch.delenv("DINDJOBS_IMAGE_DIR")
    assert (image_dir() / "Dockerfile").is_file()  # this checkout's dind-image/
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setattr(wrapper_image, "__file__", str(elsewhere / "a" / "b" / "c" / "d.py"))
    with pytest.raises(ConfigError, match="cannot find"):
        image_dir(tmp_path / "nowhere")
