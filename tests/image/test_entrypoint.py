"""The entrypoint's preparation functions, run by bash against fake trees (no Docker, no root needs).

The entrypoint is sourced (sourcing defines functions and runs nothing); each test calls one
function. cgroup v2 nesting cannot happen on this cgroup v1 host, so its logic is exercised here
against a fake cgroup2 directory: files instead of kernel interfaces, and ``cg_write`` replaced
where a test needs the kernel's EBUSY.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ENTRYPOINT = Path(__file__).resolve().parents[2] / "dind-image" / "entrypoint.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def run(snippet: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    script = f'source "{ENTRYPOINT}"\n{snippet}'
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env or {"PATH": "/usr/bin:/bin"}, timeout=60)


def fake_cgroup2(root: Path, controllers: str = "cpuset cpu io memory pids", pids: str = "1\n7\n42\n") -> Path:
    root.mkdir()
    (root / "cgroup.controllers").write_text(controllers + "\n")
    (root / "cgroup.procs").write_text(pids)
    (root / "cgroup.subtree_control").write_text("")
    return root


def test_sourcing_runs_nothing():
    result = run("echo sourced")
    assert result.returncode == 0
    assert result.stdout == "sourced\n"
    assert result.stderr == ""


def test_cgroup_v2_moves_every_process_into_init_and_enables_all_controllers(tmp_path):
    root = fake_cgroup2(tmp_path / "cg")
    result = run(f'cgroup_v2_nest "{root}"')
    assert result.returncode == 0, result.stderr
    assert (root / "init" / "cgroup.procs").read_text().split() == ["1", "7", "42"]
    assert (root / "cgroup.subtree_control").read_text().split() == ["+cpuset", "+cpu", "+io", "+memory", "+pids"]


def test_cgroup_v2_retries_while_the_kernel_says_busy(tmp_path):
    root = fake_cgroup2(tmp_path / "cg")
    # The kernel refuses subtree_control (EBUSY) while a process is still in the root cgroup,
    # e.g. one `docker exec` started during the move. Simulate two refusals.
    snippet = f"""
    busy=2
    cg_write() {{
        if [[ "$2" == */cgroup.subtree_control ]] && ((busy > 0)); then busy=$((busy - 1)); return 1; fi
        printf '%s\\n' "$1" >>"$2"
    }}
    cgroup_v2_nest "{root}" 5
    echo "busy left: $busy"
    """
    result = run(snippet)
    assert result.returncode == 0, result.stderr
    assert "busy left: 0" in result.stdout
    # Every attempt moves the processes again (new ones may have appeared): 3 attempts, 3 moves.
    assert (root / "init" / "cgroup.procs").read_text().split() == ["1", "7", "42"] * 3
    assert "+memory" in (root / "cgroup.subtree_control").read_text()


def test_cgroup_v2_gives_up_with_a_clear_error(tmp_path):
    root = fake_cgroup2(tmp_path / "cg")
    # Always busy; `sleep` made a no-op so the 100 attempts take no time.
    snippet = """
    cg_write() { [[ "$2" == */cgroup.subtree_control ]] && return 1; printf '%s\\n' "$1" >>"$2"; }
    sleep() { :; }
    prepare_cgroups
    """
    result = run(snippet, env={"PATH": "/usr/bin:/bin", "DINDJOBS_CGROUP_ROOT": str(root)})
    assert result.returncode == 1
    assert "after 100 attempts" in result.stderr
    assert "cgroup v2 nesting failed" in result.stderr


def test_cgroup_v2_ignores_processes_that_exit_during_the_move(tmp_path):
    root = fake_cgroup2(tmp_path / "cg", pids="1\n99999\n")
    snippet = f"""
    cg_write() {{ [ "$1" = 99999 ] && return 1; printf '%s\\n' "$1" >>"$2"; }}
    cgroup_v2_nest "{root}" 1
    """
    result = run(snippet)
    assert result.returncode == 0, result.stderr
    assert (root / "init" / "cgroup.procs").read_text().split() == ["1"]


def test_cgroup_v2_without_controllers_is_fine(tmp_path):
    root = fake_cgroup2(tmp_path / "cg", controllers="")
    result = run(f'cgroup_v2_nest "{root}" 1')
    assert result.returncode == 0, result.stderr
    assert "controllers enabled: none" in result.stderr


def test_prepare_cgroups_picks_v1_without_cgroup_controllers(tmp_path):
    # No cgroup.controllers file: the v1 branch, which only re-mounts read-only cgroup mounts
    # under the root; none are under this fake root, so it mounts nothing and succeeds.
    (tmp_path / "v1").mkdir()
    result = run("prepare_cgroups", env={"PATH": "/usr/bin:/bin", "DINDJOBS_CGROUP_ROOT": str(tmp_path / "v1")})
    assert result.returncode == 0, result.stderr
    assert "cgroup v1" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        "--host=tcp://0.0.0.0:2375",
        "-H tcp://127.0.0.1:2375",
        "--bridge=none -Htcp://:2375",
        # dockerd reads a host without a scheme as TCP.
        "--host=127.0.0.1:2375",
        "--host 0.0.0.0:2375",
        "-H :2375",
    ],
)
def test_plain_tcp_is_refused(args):
    result = run(f"read -r -a extra <<<'{args}'; check_no_plain_tcp \"${{extra[@]}}\"; echo accepted")
    assert result.returncode == 1
    assert "accepted" not in result.stdout
    assert "plain TCP for the nested daemon is refused" in result.stderr
    assert "DINDJOBS_DOCKER_TLS=1" in result.stderr


def test_other_dockerd_args_are_accepted():
    result = run(
        "check_no_plain_tcp --bridge=none --iptables=false --mtu=1400"
        " --host=unix:///var/run/extra.sock -H fd://; echo accepted"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "accepted\n"


def test_data_root_on_a_regular_filesystem_passes(tmp_path):
    result = run(f'check_data_root "{tmp_path}"; echo "args: ${{DOCKERD_ARGS[*]}}"')
    assert result.returncode == 0, result.stderr
    assert result.stdout == "args: \n"


def test_elapsed_formats_tenths_of_a_second():
    result = run("elapsed 1700000000.250000 1700000003.519999; echo; elapsed 1700000000.900000 1700000001.000000")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3.2", "0.1"]
