"""The wrapper image on a real engine: built offline, run the way `dindjobs up` runs it.

One wrapper serves the checks that do not stop it; lifecycle checks that end a container
(stop, dockerd failure or death, a command's exit status, refusals) each get their own.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request

import docker.errors
import pytest

from support.dind import Wrapper, build_image, busybox_tar, free_port, run_wrapper

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

NESTED_TAG = "djt-nested-busybox:1"


@pytest.fixture(scope="session")
def wrapper_image(docker_engine) -> str:
    """The offline wrapper image: built once per session, reused when nothing changed."""
    return build_image(docker_engine.docker_host, offline=True)


@pytest.fixture(scope="module")
def wrapper(docker_client, wrapper_image, tmp_path_factory):
    """A running wrapper whose nested daemon holds NESTED_TAG, built by the jenkins user."""
    w = run_wrapper(docker_client, tmp_path_factory.mktemp("wrapper"), image=wrapper_image)
    try:
        w.wait_nested_ready()
        w.container.put_archive("/tmp", busybox_tar())
        code, out = w.exec(["docker", "build", "-q", "-t", NESTED_TAG, "/tmp/ctx"])
        assert code == 0, out
        yield w
    finally:
        w.remove()


@pytest.fixture
def make_wrapper(docker_client, wrapper_image, tmp_path):
    """Start extra wrappers for one test; all are removed with their volumes afterwards."""
    made: list[Wrapper] = []

    def make(**kwargs) -> Wrapper:
        w = run_wrapper(docker_client, tmp_path, image=wrapper_image, **kwargs)
        made.append(w)
        return w

    yield make
    for w in made:
        w.remove()


def wait_for(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def jenkins_pid(w: Wrapper, timeout: float = 30) -> int:
    """PID of the Jenkins stand-in, which starts just after the nested daemon is ready."""

    def pid():
        code, out = w.exec(["pgrep", "-f", "dindjobs.standin"], user="root")
        return int(out.split()[0]) if code == 0 else None

    try:
        return wait_for(pid, timeout, "the Jenkins stand-in process", interval=0.1)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{w.logs()[-2000:]}") from None


# --- the nested daemon ---------------------------------------------------------------------


def test_jenkins_user_builds_and_runs_in_the_nested_daemon(wrapper, docker_client):
    code, out = wrapper.exec(["docker", "run", "--rm", NESTED_TAG])
    assert code == 0, out
    assert "hello from busybox" in out
    code, out = wrapper.exec(["docker", "image", "inspect", "--format", "{{.Id}}", NESTED_TAG])
    assert code == 0, out
    nested_image_id = out.strip()
    # Nothing of it reaches the host engine.
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(NESTED_TAG)
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(nested_image_id)


def test_nested_daemon_is_not_the_host_daemon(wrapper, docker_client):
    code, out = wrapper.exec(["docker", "info", "--format", "{{.ID}}"])
    assert code == 0, out
    nested_id = out.strip()
    assert nested_id and nested_id != docker_client.info()["ID"]


def test_jenkins_runs_as_uid_1000_with_the_docker_group(wrapper):
    status = wrapper.exec(["cat", f"/proc/{jenkins_pid(wrapper)}/status"], user="root")[1]
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    assert fields["Uid"].split() == ["1000"] * 4
    assert "2375" in fields["Groups"].split()
    code, out = wrapper.exec(["stat", "-c", "%U:%G %a", "/var/run/docker.sock"], user="root")
    assert out.strip() == "root:docker 660"


def test_cgroups_are_writable_for_the_nested_daemon(wrapper):
    code, mounts = wrapper.exec(["cat", "/proc/self/mounts"], user="root")
    cgroup_mounts = [line.split() for line in mounts.splitlines() if line.split()[2] in ("cgroup", "cgroup2")]
    assert cgroup_mounts
    assert all("rw" in fields[3].split(",") for fields in cgroup_mounts), cgroup_mounts


def test_healthcheck_turns_healthy(wrapper):
    def health():
        wrapper.container.reload()
        return wrapper.container.attrs["State"]["Health"]["Status"] == "healthy"

    wait_for(health, 120, "the HEALTHCHECK to report healthy")
    code, out = wrapper.exec(["/usr/local/bin/dindjobs-healthcheck"])
    assert code == 0, out


def test_admin_password_works_and_never_shows(wrapper):
    password = wrapper.password_file.read_text().strip()
    url = f"http://127.0.0.1:{wrapper.port}/whoAmI/api/json"
    token = base64.b64encode(f"admin:{password}".encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})

    def who():
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.load(response)
        except (urllib.error.URLError, ConnectionError):
            return None

    me = wait_for(who, 120, "Jenkins to answer with the admin's identity")
    assert me["name"] == "admin" and me["anonymous"] is False
    inspect = json.dumps(wrapper.container.attrs)
    assert password not in inspect
    assert password not in wrapper.logs()
    # Jenkins reads a tmpfs copy, not the bind mount, and the environment holds only paths.
    environ = wrapper.exec(["cat", f"/proc/{jenkins_pid(wrapper)}/environ"], user="root")[1]
    assert password not in environ
    assert "JENKINS_ADMIN_PASSWORD_FILE=/run/dindjobs/secrets/admin-password" in environ.split("\0")


def test_security_and_plugins_come_from_the_image_files(wrapper):
    """casc/jenkins.yaml configured the stand-in (its system message is set nowhere else) and
    plugins.txt's plugins were installed and copied into JENKINS_HOME."""
    password = wrapper.password_file.read_text().strip()
    token = base64.b64encode(f"admin:{password}".encode()).decode()
    base = f"http://127.0.0.1:{wrapper.port}/"

    def get(path):
        request = urllib.request.Request(base + path, headers={"Authorization": f"Basic {token}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)

    root = wait_for(lambda: _or_none(lambda: get("api/json")), 120, "Jenkins to answer")
    assert root["description"].startswith("dindjobs wrapper:") and root["numExecutors"] == 2
    listed = sorted(p["shortName"] for p in get("pluginManager/api/json?tree=plugins[shortName]")["plugins"])
    code, out = wrapper.exec(["sh", "-c", "ls /var/jenkins_home/plugins"])
    assert code == 0 and sorted(n.removesuffix(".jpi") for n in out.split()) == listed
    assert {"cloudbees-folder", "configuration-as-code", "workflow-job"} <= set(listed)
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(base + "api/json", timeout=5)
    assert anonymous.value.code == 403


def _or_none(fn):
    try:
        return fn()
    except (urllib.error.URLError, ConnectionError):
        return None


def test_restart_and_kill_keep_the_nested_daemon_and_its_images(wrapper):
    for action in ["restart"] * 3 + ["kill"] * 3:
        if action == "restart":
            wrapper.container.restart(timeout=60)
        else:
            wrapper.container.kill()
            wrapper.container.wait(timeout=60)
            wrapper.container.start()
        wrapper.wait_nested_ready()
        code, out = wrapper.exec(["docker", "image", "inspect", "--format", "{{.Id}}", NESTED_TAG])
        assert code == 0, f"after {action}: {out}\n{wrapper.logs()[-3000:]}"
    code, out = wrapper.exec(["docker", "run", "--rm", NESTED_TAG])
    assert "hello from busybox" in out


# --- lifecycle: stop, failures, exit status ------------------------------------------------


def test_docker_stop_stops_jenkins_then_dockerd_and_exits_0(make_wrapper):
    w = make_wrapper()
    w.wait_nested_ready()
    jenkins_pid(w)
    w.container.stop(timeout=60)
    assert w.wait_exit() == 0
    logs = w.logs()
    jenkins_end = logs.index("Jenkins ended with status")
    dockerd_end = logs.index("dockerd ended with status 0")
    assert logs.index("SIGTERM: stopping Jenkins, then dockerd") < jenkins_end < dockerd_end
    assert "SIGKILL" not in logs


def test_a_dockerd_that_cannot_start_fails_the_container(make_wrapper):
    w = make_wrapper(env={"DINDJOBS_DOCKERD_ARGS": "--no-such-flag", "DINDJOBS_DOCKERD_TIMEOUT": "30"})
    assert w.wait_exit(timeout=60) != 0
    logs = w.logs()
    assert "unknown flag: --no-such-flag" in logs
    assert "dockerd exited with status" in logs
    assert "starting as jenkins" not in logs


def test_dockerd_death_stops_jenkins_and_fails(make_wrapper):
    w = make_wrapper()
    w.wait_nested_ready()
    jenkins_pid(w)
    code, out = w.exec(["sh", "-c", "kill -KILL $(cat /var/run/docker.pid)"], user="root")
    assert code == 0, out
    assert w.wait_exit() == 1
    logs = w.logs()
    assert "dockerd ended unexpectedly" in logs
    assert "Jenkins ended with status" in logs


def test_a_command_runs_instead_of_jenkins_and_its_status_propagates(make_wrapper):
    script = "id -u; id -G; docker info --format '{{.ServerVersion}}'; exit 7"
    w = make_wrapper(command=["sh", "-c", script])
    assert w.wait_exit() == 7
    logs = w.logs()
    assert "command sh ended with status 7: stopping dockerd" in logs
    assert "dockerd ended with status 0" in logs
    lines = [line for line in logs.splitlines() if not line.startswith(("dockerd:", "dindjobs-entrypoint:"))]
    assert lines[0] == "1000"
    assert "2375" in lines[1].split()


def test_jenkins_does_not_start_without_an_admin_password(make_wrapper):
    w = make_wrapper(env={"JENKINS_ADMIN_PASSWORD_FILE": "/run/secrets/none-here"})
    assert w.wait_exit(timeout=60) == 1
    logs = w.logs()
    assert "the admin password file /run/secrets/none-here is missing or empty" in logs
    assert "starting dockerd" not in logs


def test_plain_tcp_is_refused(make_wrapper):
    w = make_wrapper(env={"DINDJOBS_DOCKERD_ARGS": f"--host=tcp://127.0.0.1:{free_port()}"})
    assert w.wait_exit(timeout=60) == 1
    assert "plain TCP for the nested daemon is refused" in w.logs()


def test_tls_exposure_requires_a_client_certificate(make_wrapper):
    port = free_port()
    w = make_wrapper(env={"DINDJOBS_DOCKER_TLS": "1", "DINDJOBS_DOCKER_TLS_PORT": str(port)}, command=["sleep", "infinity"])
    w.wait_nested_ready()
    url = f"https://127.0.0.1:{port}/_ping"
    client = ["--cert", "/certs/client/cert.pem", "--key", "/certs/client/key.pem"]
    code, out = w.exec(["curl", "-fsS", "--cacert", "/certs/client/ca.pem", *client, url], user="root")
    assert (code, out) == (0, "OK")
    code, out = w.exec(["curl", "-fsS", "--cacert", "/certs/client/ca.pem", url], user="root")
    assert code != 0, out
    code, out = w.exec(["curl", "-fsS", f"http://127.0.0.1:{port}/_ping"], user="root")
    assert code != 0, out


def test_data_root_on_overlayfs_is_refused_unless_vfs_is_allowed(docker_client, wrapper_image):
    # The image's own root filesystem is overlayfs on this engine: the case of a container
    # started without a volume on /var/lib/docker (check_data_root is what main() calls).
    script = "source /usr/local/bin/dindjobs-entrypoint; check_data_root /opt; echo \"args: ${DOCKERD_ARGS[*]}\""

    def run(env):
        if docker_client.info().get("Driver") != "overlay2":
            pytest.skip("the engine's storage driver is not overlay2")
        # Not containers.run(remove=True): it removes the container but not the anonymous
        # volumes the image's VOLUME lines create, and every run would leak two.
        container = docker_client.containers.run(
            wrapper_image, ["-c", script], entrypoint="bash", environment=env, network_mode="host", detach=True,
        )
        try:
            code = container.wait(timeout=120)["StatusCode"]
            return code, container.logs(stdout=True, stderr=False).decode(), container.logs(stdout=False).decode()
        finally:
            container.remove(v=True, force=True)

    code, _, err = run({})
    assert code != 0
    assert "/opt is on overlayfs" in err and "DINDJOBS_ALLOW_VFS=1" in err
    code, out, _ = run({"DINDJOBS_ALLOW_VFS": "1"})
    assert code == 0 and "args: --storage-driver=vfs" in out


def test_empty_jenkins_home_is_given_to_jenkins_but_a_populated_one_is_not(make_wrapper, tmp_path):
    empty, populated = tmp_path / "empty", tmp_path / "populated"
    empty.mkdir()
    populated.mkdir()
    (populated / "config.xml").write_text("<hudson/>")
    show = ["stat", "-c", "%u", "/var/jenkins_home"]
    w = make_wrapper(jenkins_home=str(empty), command=show)
    assert w.wait_exit() == 0
    assert empty.stat().st_uid == 1000
    w = make_wrapper(jenkins_home=str(populated), command=show)
    assert w.wait_exit() == 0
    assert populated.stat().st_uid == 0
    assert "not owned by jenkins (uid 1000) and not empty; left as is" in w.logs()


def test_image_metadata(docker_client, wrapper_image):
    config = docker_client.images.get(wrapper_image).attrs["Config"]
    assert config["Entrypoint"] == ["/usr/bin/tini", "--", "/usr/local/bin/dindjobs-entrypoint"]
    assert set(config["Volumes"]) == {"/var/jenkins_home", "/var/lib/docker"}
    assert set(config["ExposedPorts"]) == {"8080/tcp", "50000/tcp"}
    assert config["StopSignal"] == "SIGTERM"
    assert config["Healthcheck"]["Test"] == ["CMD", "/usr/local/bin/dindjobs-healthcheck"]
    assert config["Labels"]["org.opencontainers.image.base.name"] == "dindjobs-offline-base:trixie"
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["JENKINS_ADMIN_PASSWORD_FILE"] == "/run/secrets/jenkins-admin-password"
    assert not [key for key in env if "PASSWORD" in key and not env[key].startswith("/")]
    # The wizard is skipped only together with the JCasC file that secures Jenkins.
    assert "-Djenkins.install.runSetupWizard=false" in env["JAVA_OPTS"]
    assert env["CASC_JENKINS_CONFIG"] == "/usr/share/jenkins/casc/jenkins.yaml"
