"""Builds, the queue, logs and quiet-down: the part of the Jenkins client that verify and backup use.

A mixin of :class:`dindjobs.jenkins.client.Jenkins` (import that, not this): it only calls the
client's request core (``request``, ``get_json``, ``_job_path``), so python-jenkins stays
imported by ``jenkins.py`` alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlencode

from dindjobs.errors import JenkinsAPIError


def _body_text(response) -> str:
    # Jenkins' logs and configs are UTF-8 whatever the Content-Type says.
    return response.content.decode("utf-8", errors="replace")


class BuildsMixin:
    """Trigger, follow and stop builds; quiet-down; every job's builds in one request."""

    TREE_LEVELS = 10  # folder levels per tree request, like python-jenkins

    def trigger(self, job: str, params: Mapping[str, str] | None = None, delay: float | None = None) -> int:
        """Queue a build; returns the queue item id. ``params=None`` uses /build, a dict /buildWithParameters.

        ``delay`` (seconds) replaces the job's quiet period for this trigger (Jenkins' ``delay``).
        """
        query = dict(params or {})
        if delay is not None:
            query["delay"] = f"{int(delay)}sec"
        path = self._job_path(job, "build" if params is None else "buildWithParameters")
        if query:
            path += "?" + urlencode(query)
        response = self.request("POST", path, what=f"job {job!r}")
        # A duplicate parameterized trigger answers 303 to the queued item; requests followed it.
        location = next((r.headers["Location"] for r in response.history if "Location" in r.headers), None)
        location = response.headers.get("Location") or location
        if not location or "/queue/item/" not in location:
            raise JenkinsAPIError(f"Jenkins queued job {job!r} but sent no queue item location")
        return int(location.rstrip("/").rsplit("/", 1)[-1])

    def job_info(self, job: str, tree: str | None = None) -> dict:
        """A job's JSON (``api/json``), restricted to ``tree`` when given (e.g. ``lastBuild[number]``)."""
        query = f"?tree={quote(tree, safe='[],')}" if tree else ""
        return self.get_json(self._job_path(job, f"api/json{query}"), what=f"job {job!r}")

    def queue_item(self, queue_id: int) -> dict:
        """A queue item: ``why`` while waiting, ``executable`` once started, ``cancelled`` if so."""
        return self.get_json(f"queue/item/{int(queue_id)}/api/json", what=f"queue item {queue_id}")

    def build_info(self, job: str, number: int) -> dict:
        """A build's JSON (``building``, ``inProgress``, ``result``, ``duration``, ...)."""
        return self.get_json(self._job_path(job, f"{int(number)}/api/json"), what=f"build {job!r} #{number}")

    def progressive_log(self, job: str, number: int, start: int = 0) -> tuple[str, int, bool]:
        """Log text from byte offset ``start``: ``(text, next_start, more_data)``."""
        response = self.request("GET", self._job_path(job, f"{int(number)}/logText/progressiveText?start={int(start)}"),
                                what=f"log of build {job!r} #{number}")
        next_start = int(response.headers.get("X-Text-Size", start + len(response.content)))
        more = response.headers.get("X-More-Data", "").lower() == "true"
        return _body_text(response), next_start, more

    def console_text(self, job: str, number: int) -> str:
        """The whole log of a build so far."""
        return _body_text(self.request("GET", self._job_path(job, f"{int(number)}/consoleText"),
                                  what=f"log of build {job!r} #{number}"))

    def stop_build(self, job: str, number: int) -> None:
        """Abort a running build (a no-op for a finished one)."""
        self.request("POST", self._job_path(job, f"{int(number)}/stop"), what=f"build {job!r} #{number}",
                     idempotent=True)

    # --- quiet-down and build records (backup) ------------------------------------------------

    def quiet_down(self, reason: str | None = None) -> None:
        """Prepare for shutdown: no new build starts (triggers still queue); running ones go on."""
        path = "quietDown" + (f"?message={quote(reason.encode('utf-8'), safe='')}" if reason else "")
        self.request("POST", path, what="quiet-down", idempotent=True)

    def cancel_quiet_down(self) -> None:
        """Let queued builds start again."""
        self.request("POST", "cancelQuietDown", what="cancel quiet-down", idempotent=True)

    def quieting_down(self) -> bool:
        """Whether Jenkins is in quiet-down."""
        return bool(self.get_json("api/json?tree=quietingDown", what="the Jenkins root").get("quietingDown"))

    def job_builds(self, all_builds: bool = False) -> dict[str, list[dict]]:
        """``{job full name: [{number, building}, ...]}`` for every job, in one tree request.

        ``all_builds``: the whole history (``allBuilds``); else the newest 100 per job, which
        always include the running ones.
        """
        field = "allBuilds" if all_builds else "builds"
        tree = "jobs"
        for _ in range(self.TREE_LEVELS):
            tree = f"jobs[name,{field}[number,building],{tree}]"
        data = self.get_json(f"api/json?tree={tree}", what="the build list")
        found: dict[str, list[dict]] = {}
        pending = [("", data.get("jobs") or [])]
        while pending:
            prefix, children = pending.pop()
            for child in children:
                if "name" not in child:
                    continue
                full = prefix + child["name"]
                if isinstance(child.get("jobs"), list):
                    pending.append((full + "/", child["jobs"]))
                if isinstance(child.get(field), list):
                    found[full] = [{"number": b.get("number"), "building": bool(b.get("building"))}
                                   for b in child[field]]
        return found

    def running_builds(self) -> list[str]:
        """``job #n`` for every build in progress."""
        return sorted(f"{job} #{b['number']}" for job, builds in self.job_builds().items()
                      for b in builds if b["building"])
