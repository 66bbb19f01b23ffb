"""Proving a build ran nested: a job's evidence against the wrapper's nested daemon and the host.

Five proofs per job: the evidence was printed, its daemon is the nested daemon, it is not the
host's, its image exists in the nested daemon, and not on the host. A proof that cannot be made
(no wrapper, a daemon that does not answer) is ``skip``, never ``pass``.
"""

from __future__ import annotations

from collections.abc import Callable

from dindjobs.errors import DindjobsError
from dindjobs.verify.report import EVIDENCE_MARK, FAIL, PASS, SKIP, Check, Evidence
from dindjobs.wrapper.container import Wrapper, find_running


class Nesting:
    """Checks a job's evidence against the wrapper's nested daemon and the host engine.

    ``wrapper`` is a :class:`dindjobs.wrapper.container.Wrapper` (or None with ``unreachable`` saying why:
    then every check is skipped). Daemon IDs are asked once and reused for every job.
    """

    def __init__(self, wrapper: Wrapper | None, unreachable: str | None = None) -> None:
        self.wrapper = wrapper
        self.unreachable = unreachable
        self.nested_id: str | None = None
        self.nested_error: str | None = None
        self.host_id: str | None = None
        self.host_error: str | None = None
        if wrapper is None:
            self.nested_error = self.host_error = unreachable or "no wrapper"
            return
        self.nested_id, self.nested_error = _ask(wrapper.nested_daemon_id)
        self.host_id, self.host_error = _ask(wrapper.host_daemon_id)

    def prove(self, evidence: Evidence) -> list[Check]:
        """The five proofs for one job's evidence."""
        daemon = evidence.daemon_id
        checks = [
            self._daemon_printed(evidence),
            _compare("nested daemon", daemon, self.nested_id, f"nested daemon ID unknown: {self.nested_error}",
                     same=(PASS, f"job's daemon {daemon} is the nested daemon"),
                     other=(FAIL, f"job's daemon {daemon} is not the nested daemon {self.nested_id}")),
            _compare("not host daemon", daemon, self.host_id, f"host daemon not reachable: {self.host_error}",
                     same=(FAIL, f"the job built on the HOST daemon {daemon}"),
                     other=(PASS, f"host daemon is {self.host_id}")),
        ]
        checks.extend(self._image_checks(evidence.image_id))
        return checks

    def _daemon_printed(self, evidence: Evidence) -> Check:
        if evidence.conflicts:
            return Check("evidence", FAIL, "; ".join(evidence.conflicts))
        missing = [k for k, v in (("daemon-id", evidence.daemon_id), ("image-id", evidence.image_id))
                   if v is None]
        if missing:
            return Check("evidence", FAIL, f"no {' or '.join(missing)} line ({EVIDENCE_MARK} ...) in the console")
        return Check("evidence", PASS, f"daemon-id, image-id{', tag' if evidence.tag else ''} printed")

    def _image_checks(self, image_id: str | None) -> list[Check]:
        if image_id is None:
            return [Check("image in nested", FAIL, "no image-id evidence"),
                    Check("image not on host", FAIL, "no image-id evidence")]
        short = _short(image_id)
        return [
            self._look("image in nested", "nested daemon", self.nested_id, self.nested_error,
                       lambda: self.wrapper.image_exists_in_nested(image_id),
                       found=(PASS, f"{short} exists in the nested daemon"),
                       missing=(FAIL, f"{short} does not exist in the nested daemon")),
            self._look("image not on host", "host daemon", self.host_id, self.host_error,
                       lambda: self.wrapper.image_exists_on_host(image_id),
                       found=(FAIL, f"{short} EXISTS on the host daemon"),
                       missing=(PASS, f"{short} is not on the host daemon")),
        ]

    def _look(self, name: str, daemon: str, daemon_id: str | None, daemon_error: str | None,
              question: Callable[[], object], found: tuple[str, str], missing: tuple[str, str]) -> Check:
        """Ask a daemon about the image: ``found``/``missing`` are (status, detail); skip if it cannot answer."""
        if self.wrapper is None or daemon_id is None:
            return Check(name, SKIP, f"{daemon} not reachable: {daemon_error}")
        answer, error = _ask(question)
        if error:
            return Check(name, SKIP, f"could not ask the {daemon}: {error}")
        return Check(name, *(found if answer else missing))


def _ask(question: Callable[[], object]) -> tuple[object | None, str | None]:
    try:
        return question(), None
    except DindjobsError as exc:
        return None, exc.one_line()


def _short(image_id: str) -> str:
    return image_id[:19] if image_id.startswith("sha256:") else image_id[:12]


def open_nesting(name: str) -> Nesting:
    """A :class:`Nesting` for the running wrapper ``name`` on the engine (checks skipped if unreachable)."""
    wrapper, why = find_running(name)
    return Nesting(wrapper, why)


def _compare(name: str, daemon: str | None, known: str | None, unknown: str,
             same: tuple[str, str], other: tuple[str, str]) -> Check:
    """Compare the job's daemon ID with a known one: ``same``/``other`` are (status, detail)."""
    if daemon is None:
        return Check(name, FAIL, "no daemon-id evidence to compare")
    if known is None:
        return Check(name, SKIP, unknown)
    return Check(name, *(same if daemon == known else other))
