"""Three stand-in Jenkins named as targets in one JJB-style ini file."""

from __future__ import annotations

from pathlib import Path

from dindjobs.standin import StandIn
from support.standin_fixtures import ADMIN_PASSWORD, ADMIN_TOKEN, ADMIN_USER


def three_targets(standin_factory, tmp_path: Path) -> tuple[Path, dict[str, StandIn]]:
    """Stand-ins as ``[jenkins]`` (password in the ini), ``[staging]`` (token file, vars) and
    ``[prod]`` (password file, vars on two lines); returns (ini path, {target: stand-in})."""
    servers = {name: standin_factory() for name in ("jenkins", "staging", "prod")}
    token_file = tmp_path / "staging.token"
    token_file.write_text(ADMIN_TOKEN + "\n")
    password_file = tmp_path / "prod.password"
    password_file.write_text(ADMIN_PASSWORD + "\n")
    ini = tmp_path / "jenkins_jobs.ini"
    ini.write_text(
        "[job_builder]\nkeep_descriptions=False\n\n"
        f"[jenkins]\nurl={servers['jenkins'].url}\nuser={ADMIN_USER}\npassword={ADMIN_PASSWORD}\n\n"
        f"[staging]\nurl={servers['staging'].url}\nuser={ADMIN_USER}\ntoken_file={token_file}\n"
        "vars = env=staging, agent=stage-agents\n\n"
        f"[prod]\nurl={servers['prod'].url}\nuser={ADMIN_USER}\npassword_file={password_file}\n"
        "vars = env=prod\n  agent=prod-agents\n")
    return ini, servers
