"""up/down/status decisions and engine-error messages, against a fake docker client."""

from __future__ import annotations

import pytest

from dindjobs.errors import DockerEngineError, WrapperError
from dindjobs.wrapper.container import Wrapper, find_running
from dindjobs.wrapper.spec import EngineFacts, WrapperSpec
from support.cli import run_cli
from support.fakedocker import FakeEngine

FACTS = EngineFacts(has_bridge=False, capabilities=("CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_BPF"))


def spec(**kwargs) -> WrapperSpec:
    return WrapperSpec(**{"name": "dj", "port": 18080, **kwargs})


def up(engine, wanted: WrapperSpec, facts: EngineFacts = FACTS):
    return Wrapper(engine, wanted.name).up(wanted, facts)


def down(engine, name: str, **kwargs):
    return Wrapper(engine, name).down(**kwargs)


def status(engine, name: str):
    return Wrapper(engine, name).status()


@pytest.fixture(autouse=True)
def port_is_free(monkeypatch):
    monkeypatch.setattr("dindjobs.wrapper.container._port_answers", lambda port: False)


def test_privileged_falls_back_to_caps_and_says_so():
    engine = FakeEngine(privileged_fails=True)
    result = up(engine, spec(), FACTS)
    assert result.security == "caps" and result.action == "created"
    assert any("unable to apply caps" in note and "caps mode" in note for note in result.notes)
    first, second = engine.api.created
    assert first["HostConfig"]["Privileged"] is True
    assert "Privileged" not in second["HostConfig"] and second["HostConfig"]["CapAdd"] == list(FACTS.capabilities)
    # The container that could not start was removed, and the caps one runs.
    assert len(engine.api.removed) == 1
    assert engine.containers_by_name["dj"].status == "running"


def test_privileged_that_works_is_kept():
    engine = FakeEngine()
    assert up(engine, spec(), FACTS).security == "privileged"
    assert len(engine.api.created) == 1 and engine.api.removed == []


def test_caps_the_engine_does_not_know_are_dropped():
    engine = FakeEngine(unknown_caps={"CAP_BPF"})
    assert up(engine, spec(security="caps"), FACTS).security == "caps"
    assert engine.containers_by_name["dj"].body["HostConfig"]["CapAdd"] == ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]


def test_a_caps_mode_failure_surfaces_and_leaves_no_container():
    engine = FakeEngine(start_error="port is already allocated")
    with pytest.raises(DockerEngineError, match="port is already allocated"):
        up(engine, spec(), FACTS)
    assert engine.containers_by_name == {} and len(engine.api.created) == 1


def test_missing_image_says_how_to_build_it():
    engine = FakeEngine(image_ids={})
    with pytest.raises(DockerEngineError) as info:
        up(engine, spec(), FACTS)
    assert "image dindjobs-wrapper:latest is not on this engine" in info.value.one_line()
    assert "dindjobs image" in info.value.one_line()
    assert engine.volumes_by_name == {}  # nothing created before the check


def test_up_again_is_a_no_op_and_different_settings_are_named():
    engine = FakeEngine(privileged_fails=True)
    up(engine, spec(), FACTS)
    again = up(engine, spec(), FACTS)
    assert again.action == "unchanged" and len(engine.api.created) == 2
    assert up(engine, spec(security="caps"), FACTS).action == "unchanged"  # same as the fallback
    with pytest.raises(WrapperError) as info:
        up(engine, spec(port=18081, dockerd_args=("--debug",)), FACTS)
    message = info.value.one_line()
    assert "port: running 18080, asked 18081" in message and "dockerd_args: running none, asked '--debug'" in message
    assert "dindjobs down" in message


def test_up_starts_a_stopped_wrapper_with_the_same_settings():
    engine = FakeEngine()
    up(engine, spec(), FACTS)
    engine.containers_by_name["dj"].status = "exited"
    assert up(engine, spec(), FACTS).action == "started"
    assert engine.containers_by_name["dj"].status == "running"


def test_a_foreign_container_with_our_name_is_left_alone():
    engine = FakeEngine()
    engine.api.create_container_from_config({"Image": "dindjobs-wrapper:latest", "Labels": {}}, "dj")
    with pytest.raises(WrapperError, match="not managed by dindjobs"):
        up(engine, spec(), FACTS)
    with pytest.raises(WrapperError, match="not managed by dindjobs"):
        down(engine, "dj", remove_volumes=True)
    assert "dj" in engine.containers_by_name


def test_volumes_are_created_labelled_and_reused():
    engine = FakeEngine()
    engine.volumes.create("dj-docker-data")  # someone else's, unlabelled
    result = up(engine, spec(), FACTS)
    assert result.volumes == {"dj-jenkins-home": "created", "dj-docker-data": "reused"}
    assert engine.volumes_by_name["dj-jenkins-home"].attrs["Labels"] == {
        "io.dindjobs.managed": "true", "io.dindjobs.name": "dj", "io.dindjobs.role": "jenkins-home"}
    kept = down(engine, "dj")
    assert kept.container == "removed" and set(kept.volumes.values()) == {"kept"}
    removed = down(engine, "dj", remove_volumes=True)
    assert removed.volumes == {"dj-jenkins-home": "removed", "dj-docker-data": "kept (not created by dindjobs)"}
    assert list(engine.volumes_by_name) == ["dj-docker-data"]


def test_down_stops_gracefully_with_the_stop_timeout_and_forgets_the_password(tmp_path):
    engine = FakeEngine()
    up(engine, spec(), FACTS)
    container = engine.containers_by_name["dj"]
    password = tmp_path / "admin-password"
    password.write_text("x")
    result = down(engine, "dj", remove_volumes=True, forget=password)
    assert container.stop_calls == [60]
    assert result.password_file == f"removed {password}" and not password.exists()


def test_status_of_a_running_wrapper(monkeypatch):
    engine = FakeEngine()
    up(engine, spec(), FACTS)
    container = engine.containers_by_name["dj"]
    container.exec_results[("timeout", "30", "docker", "info", "--format", "{{.ID}}")] = (0, b"NEST:ED\n")
    monkeypatch.setattr("dindjobs.wrapper.container.probe_http", lambda url, timeout: {"reachable": True, "status": 200, "url": url})
    report = status(engine, "dj")
    assert report["state"] == "running" and report["security"] == "privileged" and report["network"] == "host"
    assert report["nested_daemon"] == {"reachable": True, "id": "NEST:ED"}
    assert report["jenkins"]["reachable"] and report["jenkins"]["url"] == "http://127.0.0.1:18080/"
    assert [v["size"] for v in report["volumes"]] == [4096, 4096]
    container.exec_results.clear()
    assert status(engine, "dj")["nested_daemon"]["reachable"] is False
    assert status(engine, "other")["state"] == "absent"


def test_wrapper_api_for_other_modules():
    engine = FakeEngine()
    up(engine, spec(), FACTS)
    wrapper = Wrapper(engine, "dj")
    assert (wrapper.container_name, wrapper.volume_names) == ("dj", ("dj-jenkins-home", "dj-docker-data"))
    assert wrapper.host_daemon_id() == "HOST:DAEMON:ID"
    assert wrapper.image_exists_on_host("dindjobs-wrapper:latest") and not wrapper.image_exists_on_host("sha256:beef")
    engine.containers_by_name["dj"].exec_results[("timeout", "30", "docker", "image", "inspect", "--format", "{{.Id}}", "sha256:cafe")] = (0, b"sha256:cafe")
    assert wrapper.image_exists_in_nested("sha256:cafe") and not wrapper.image_exists_in_nested("sha256:beef")
    assert wrapper.exec(["true"]) == (127, "not scripted")
    wrapper.stop()
    with pytest.raises(WrapperError, match="is exited"):
        wrapper.exec(["true"])


def test_wait_healthy_follows_health_and_stops_at_a_crash_loop():
    engine = FakeEngine()
    up(engine, spec(), FACTS)
    container = engine.containers_by_name["dj"]
    wrapper = Wrapper(engine, "dj")
    seen = []
    container.health = "starting"

    def progress(message):
        seen.append(message)
        container.health = "healthy"  # healthy on the next look

    wrapper.wait_healthy(5, progress=progress, interval=0)
    assert seen == ["wrapper dj: running/starting"]

    container.health, container.crash_looping = "unhealthy", True
    with pytest.raises(WrapperError, match="keeps restarting: last exit code 1"):
        wrapper.wait_healthy(5, interval=0)


def test_strict_down_refuses_a_foreign_volume_before_touching_anything():
    engine = FakeEngine()
    engine.volumes.create("dj-docker-data")  # someone else's, unlabelled
    up(engine, spec(), FACTS)
    engine.changes.clear()
    with pytest.raises(WrapperError, match="volume dj-docker-data was not created by dindjobs: leaving it alone"):
        down(engine, "dj", remove_volumes=True, strict=True)
    assert engine.changes == []


def test_nested_daemon_state_and_find_running(monkeypatch):
    engine = FakeEngine()
    monkeypatch.setattr("dindjobs.wrapper.container.connect", lambda timeout: engine)
    assert find_running("dj") == (None, "no wrapper named dj (start it with `dindjobs up`)")
    up(engine, spec(), FACTS)
    wrapper, why = find_running("dj")
    assert why is None and wrapper.name == "dj"
    assert wrapper.nested_daemon_state() == "not answering yet"
    engine.containers_by_name["dj"].exec_results[("timeout", "30", "docker", "info", "--format", "{{.ID}}")] = (0, b"N:1\n")
    assert wrapper.nested_daemon_state() is None
    wrapper.stop()
    assert find_running("dj") == (None, "wrapper dj is exited (start it with `dindjobs up`)")


def test_cli_up_prints_the_password_path_never_the_value(capsys, clean_env, monkeypatch):
    secret = "cli-secret-5b2d8e"
    monkeypatch.setenv("DINDJOBS_PASSWORD", secret)
    monkeypatch.setenv("DINDJOBS_USER", "admin")
    engine = FakeEngine(privileged_fails=True)
    monkeypatch.setattr("dindjobs.commands.up.connect", lambda: engine)
    monkeypatch.setattr("dindjobs.wrapper.container.engine_facts", lambda client: FACTS)
    code, out, err = run_cli(capsys, "up", "--name", "dj", "--port", "18080", "--json")
    assert code == 0, err
    assert secret not in out + err
    assert "caps mode" in err and "host networking" in err
    password_file = str(clean_env / "state" / "dj" / "admin-password")
    assert f'"password_file": "{password_file}"' in out
    body = engine.containers_by_name["dj"].body
    assert secret not in repr(body)
