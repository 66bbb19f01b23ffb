"""Talking to Jenkins: one facade for items, views, builds and the queue. The only module that
imports python-jenkins.

python-jenkins supplies the HTTP session (pre-emptive Basic auth, cookies, timeouts) and its
URL and name encoding. On top of it this module adds what the project needs and python-jenkins
gets wrong (see ../shared/reference/jobs-as-code-anchors.md §5):

- every response goes through :meth:`Jenkins._check` (hooked in via python-jenkins'
  ``_response_handler``), so errors keep their status and headers and become accurate
  :mod:`dindjobs.errors` types instead of "Possibly authentication failed";
- our own retries with backoff for idempotent requests on connection errors and 502/503/504
  (python-jenkins' ``retries`` is a no-op);
- restart handling: a changed ``X-Jenkins-Session`` or a 403 "No valid crumb" drops the crumb and
  the cookies once, fetches a fresh crumb under a lock, and retries;
- an explicit timeout on every request, and no secret in any message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

import jenkins as pyjenkins
import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from dindjobs.config import Settings
from dindjobs.errors import (
    JenkinsAPIError,
    JenkinsAuthError,
    JenkinsConnectionError,
    JenkinsError,
    JenkinsNotFoundError,
    JenkinsNotReadyError,
)
from dindjobs.jenkins.identity import STANDIN_HEADER, server_label

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({502, 503, 504})
XML_HEADERS = {"Content-Type": "text/xml; charset=utf-8"}


class _HTTPFailure(pyjenkins.JenkinsException):
    """A non-2xx response, carried whole so we can map it accurately."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class _HTTPNotFound(_HTTPFailure, pyjenkins.NotFoundException):
    """404; also a NotFoundException so python-jenkins' own code paths keep working."""


class _Client(pyjenkins.Jenkins):
    """python-jenkins with every response routed through our checker."""

    def __init__(self, checker: Callable[[requests.Response], requests.Response], *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._checker = checker

    def _response_handler(self, response):
        return self._checker(response)


@dataclass(frozen=True)
class LiveItem:
    """A job, folder or view as the server lists it."""

    kind: str  # "job" or "view"
    name: str  # full name as Jenkins spells it
    cls: str  # Jenkins' _class
    is_folder: bool = False  # lists children (any item group: folders, multibranch, ...)


@dataclass
class Listing:
    """All items from one tree request: jobs keyed by lower-cased full name, views by name."""

    jobs: dict[str, LiveItem] = field(default_factory=dict)
    views: dict[str, LiveItem] = field(default_factory=dict)

    def job(self, name: str) -> LiveItem | None:
        return self.jobs.get(name.lower())


class Jenkins:
    """A connection to one Jenkins. Thread-safe: sync shares one across its workers."""

    TREE_LEVELS = 10  # folder levels per tree request, like python-jenkins

    def __init__(self, settings: Settings, *, pool_size: int = 16, retries: int = 5,
                 backoff: float = 0.25, timeout: float | None = None) -> None:
        self.url = settings.url if settings.url.endswith("/") else settings.url + "/"
        self.user = settings.user
        self.timeout = float(timeout if timeout is not None else settings.timeout)
        self.retries = retries
        self.backoff = backoff
        secret = settings.credential
        self._pj = _Client(self._check, self.url, settings.user if secret else None,
                           secret.reveal() if secret else None, timeout=self.timeout)
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(pool_size, 4), max_retries=0)
        session = self._pj._session
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        # Every request goes to this one server, so the environment's proxy (with NO_PROXY) and CA
        # bundle settings for it are resolved once here, not again by requests on each request:
        # that was a quarter of a request's CPU, and a no-op sync is 511 requests per target.
        from_env = session.merge_environment_settings(self.url, {}, None, session.verify, None)
        session.proxies.update(from_env["proxies"])
        if self.url.startswith("https:"):
            session.verify = from_env["verify"]
        session.trust_env = False
        self._state_lock = threading.Lock()  # session/identity bookkeeping
        self._crumb_lock = threading.Lock()  # one crumb fetch at a time, shared by all workers
        self._boot = 0  # bumped whenever X-Jenkins-Session changes (a restart)
        self._crumb_boot = -1  # the boot the current crumb was fetched in
        self._crumb_generation = 0  # bumped on each crumb fetch
        self.session_id: str | None = None  # X-Jenkins-Session: changes on every restart
        self.identity: str | None = None  # X-Instance-Identity: the instance's public key
        self.version: str | None = None  # X-Jenkins
        self.standin: str | None = None  # X-Dindjobs-Standin: set when the dindjobs stand-in answers
        self.restarts_seen = 0

    def close(self) -> None:
        """Release pooled connections."""
        self._pj._session.close()

    # --- the request core ------------------------------------------------------------------

    def _check(self, response: requests.Response) -> requests.Response:
        headers = response.headers
        if headers.get("X-Instance-Identity"):
            self.identity = headers["X-Instance-Identity"]
        if headers.get("X-Jenkins"):
            self.version = headers["X-Jenkins"]
            self.standin = headers.get(STANDIN_HEADER)
        session = headers.get("X-Jenkins-Session")
        if session:
            with self._state_lock:
                if self.session_id and session != self.session_id:
                    log.info("Jenkins restarted (session %s -> %s): the crumb will be renewed",
                             self.session_id, session)
                    self.restarts_seen += 1
                    self._boot += 1
                self.session_id = session
        if response.status_code >= 400:
            raise (_HTTPNotFound if response.status_code == 404 else _HTTPFailure)(response)
        return response

    def _crumb(self) -> tuple[int, dict | None]:
        """The crumb for a POST: fetched once per Jenkins boot, so all workers share one session."""
        with self._crumb_lock:
            if self._pj.crumb is None or self._crumb_boot != self._boot:
                if self._pj.crumb is not None:
                    # Sessions (and so crumbs) die with a restart; drop the dead JSESSIONID too.
                    self._pj._session.cookies.clear()
                try:
                    response = self._pj.jenkins_request(
                        requests.Request("GET", self.url + "crumbIssuer/api/json"), add_crumb=False)
                    self._pj.crumb = response.json() if response.content else False
                except _HTTPNotFound:
                    self._pj.crumb = False  # CSRF protection is off
                self._crumb_boot = self._boot  # read after the fetch: it may have revealed a restart
                self._crumb_generation += 1
            return self._crumb_generation, (self._pj.crumb or None)

    def _crumb_rejected(self, generation: int) -> None:
        with self._crumb_lock:
            if generation == self._crumb_generation:  # nobody renewed it meanwhile
                self._pj.crumb = None
                self._pj._session.cookies.clear()

    def request(self, method: str, path: str, *, what: str, data: bytes | str | None = None,
                headers: Mapping[str, str] | None = None, idempotent: bool | None = None,
                rejected_xml: bool = False, retries: int | None = None) -> requests.Response:
        """Send one request (path relative to the Jenkins URL) with retries and crumb handling.

        ``what`` names the object for error messages ("job 'a/b'"). GET/HEAD are idempotent;
        for POSTs pass ``idempotent=True`` when repeating them is harmless. ``rejected_xml``
        makes a 500 read "Jenkins rejected the XML". ``retries`` overrides the client's budget
        (0 for probes that do their own polling).
        """
        budget = self.retries if retries is None else retries
        if idempotent is None:
            idempotent = method in ("GET", "HEAD")
        needs_crumb = method not in ("GET", "HEAD")
        crumb_retried = False
        attempt = 0
        while True:
            sent = False  # until the crumb is in hand, nothing has reached Jenkins' handler
            try:
                generation, crumb = self._crumb() if needs_crumb else (0, None)
                req = requests.Request(method, self.url + path.lstrip("/"), data=data,
                                       headers=dict(headers or {}))
                if crumb:
                    req.headers[crumb["crumbRequestField"]] = crumb["crumb"]
                sent = True
                return self._pj.jenkins_request(req, add_crumb=False)
            except _HTTPFailure as failure:
                response = failure.response
                status = response.status_code
                if sent and status == 403 and needs_crumb and "No valid crumb" in response.text and not crumb_retried:
                    crumb_retried = True  # a crumb-rejected request never ran: always safe to resend
                    self._crumb_rejected(generation)
                    continue
                if status in RETRY_STATUSES and (idempotent or not sent) and attempt < budget:
                    attempt += 1
                    self._sleep(attempt)
                    continue
                raise self._error(response, what, rejected_xml) from None
            except requests.ConnectionError as exc:
                refused = _never_connected(exc)
                if (idempotent or refused or not sent) and attempt < budget:
                    attempt += 1
                    self._sleep(attempt)
                    continue
                state = "connection refused" if refused else "connection reset or lost"
                raise JenkinsConnectionError(f"cannot reach Jenkins at {self.url} ({state})") from None
            except pyjenkins.TimeoutException:
                if (idempotent or not sent) and attempt < budget:
                    attempt += 1
                    self._sleep(attempt)
                    continue
                raise JenkinsConnectionError(
                    f"Jenkins at {self.url} did not answer within {self.timeout:g} s ({what})") from None

    def _sleep(self, attempt: int) -> None:
        time.sleep(min(self.backoff * (2 ** (attempt - 1)), 2.0))

    def _error(self, response: requests.Response, what: str, rejected_xml: bool) -> JenkinsError:
        status = response.status_code
        headers = response.headers
        if status == 401:
            return JenkinsAuthError(f"401 bad credentials for user {self.user!r} at {self.url}", status=401,
                                    hint="check the user and its API token or password")
        if status == 403:
            if "No valid crumb" in response.text:
                return JenkinsAuthError(f"403 no valid crumb for {what}, even after fetching a fresh one", status=403)
            who = headers.get("X-You-Are-Authenticated-As") or self.user or "anonymous"
            permission = headers.get("X-Required-Permission")
            if who == "anonymous":
                return JenkinsAuthError(f"403 authentication required for {what}", status=403,
                                        hint="set DINDJOBS_USER and DINDJOBS_TOKEN")
            needed = f"the {permission} permission" if permission else "a permission"
            return JenkinsAuthError(f"403 user {who!r} is missing {needed} for {what}", status=403)
        if status == 404:
            return JenkinsNotFoundError(f"404 {what} does not exist", status=404)
        if status == 400:
            reason = _header_text(headers.get("X-Error")) or "bad request"
            return JenkinsAPIError(f"400 {reason} ({what})", status=400)
        if status == 500 and rejected_xml:
            return JenkinsAPIError(f"500 Jenkins rejected the XML of {what}", status=500,
                                   hint="malformed XML, or an item type Jenkins does not know")
        if status == 503:
            return JenkinsNotReadyError(f"503 Jenkins is not ready ({_not_ready_reason(response)}) for {what}")
        return JenkinsAPIError(f"{status} {response.reason or 'error'} on {what}", status=status)

    def get_json(self, path: str, *, what: str, retries: int | None = None) -> dict:
        """GET a JSON document."""
        response = self.request("GET", path, what=what, retries=retries)
        try:
            return response.json()
        except ValueError:
            raise JenkinsAPIError(f"Jenkins sent something that is not JSON for {what}") from None

    # --- identity and listing --------------------------------------------------------------

    def whoami(self, retries: int | None = None) -> dict:
        """``{name, anonymous, authenticated, authorities}`` of the identity our credentials give."""
        return self.get_json("whoAmI/api/json", what="whoAmI", retries=retries)

    @property
    def server_label(self) -> str:
        """What answered, for people: ``Jenkins 2.580.2`` or ``dindjobs stand-in (Jenkins ... REST API)``."""
        return server_label(self.version, self.standin)

    def server_info(self) -> dict:
        """Version, session and instance identity, from the headers of a cheap request."""
        self.get_json("api/json?tree=mode", what="the Jenkins root")
        return {"url": self.url, "version": self.version, "session": self.session_id, "identity": self.identity,
                "server": self.server_label}

    def list_items(self) -> Listing:
        """Every job, folder and top-level view: one tree request (more only past 10 folder levels)."""
        tree = self._jobs_tree()
        data = self.get_json(f"api/json?tree={tree},views[name]", what="the item list")
        listing = Listing()
        for view in data.get("views") or []:
            listing.views[view["name"]] = LiveItem("view", view["name"], view.get("_class", ""))
        pending = [([], data.get("jobs") or [])]
        while pending:
            parents, children = pending.pop()
            if any("name" not in child for child in children):
                url = "".join(f"job/{_quote(p)}/" for p in parents)
                children = self.get_json(f"{url}api/json?tree={tree}", what=f"folder {'/'.join(parents)!r}")["jobs"]
            for child in children:
                path = [*parents, child["name"]]
                full = "/".join(path)
                is_folder = isinstance(child.get("jobs"), list)
                listing.jobs[full.lower()] = LiveItem("job", full, child.get("_class", ""), is_folder)
                if is_folder and child["jobs"]:
                    pending.append((path, child["jobs"]))
        return listing

    def _jobs_tree(self, fields: str = "") -> str:
        """A ``tree`` parameter for jobs ``TREE_LEVELS`` folders deep, each with ``name`` and ``fields``."""
        tree = "jobs"
        for _ in range(self.TREE_LEVELS):
            tree = f"jobs[name,{fields}{tree}]"
        return tree

    # --- jobs and folders --------------------------------------------------------------------

    def _job_path(self, name: str, suffix: str = "") -> str:
        folder_url, short = self._pj._get_job_folder(name)
        return f"{_quote(folder_url, safe='/')}job/{_quote(short)}/{suffix}"

    def get_job_config(self, name: str) -> str:
        """The stored config.xml of a job or folder."""
        response = self.request("GET", self._job_path(name, "config.xml"), what=f"job {name!r}")
        return _text(response)

    def create_job(self, name: str, xml: str) -> None:
        """Create a job or folder from XML (its parent folder must exist)."""
        folder_url, short = self._pj._get_job_folder(name)
        path = f"{_quote(folder_url, safe='/')}createItem?name={_quote(short)}"
        where = f"folder {name.rsplit('/', 1)[0]!r} (parent of job {name!r})" if "/" in name else f"job {name!r}"
        try:
            self.request("POST", path, what=where, data=xml.encode("utf-8"), headers=XML_HEADERS,
                         rejected_xml=True)
        except JenkinsAPIError as exc:
            if exc.status == 500:
                raise JenkinsAPIError(f"500 Jenkins rejected the XML of job {name!r}", status=500,
                                      hint=exc.hint) from None
            raise

    def update_job(self, name: str, xml: str) -> None:
        """Replace the config.xml of an existing job or folder (never creates)."""
        self.request("POST", self._job_path(name, "config.xml"), what=f"job {name!r}",
                     data=xml.encode("utf-8"), headers=XML_HEADERS, idempotent=True, rejected_xml=True)

    def delete_job(self, name: str) -> None:
        """Delete a job, or a folder with everything in it."""
        self.request("POST", self._job_path(name, "doDelete"), what=f"job {name!r}")

    def enable_job(self, name: str) -> None:
        """Enable a job."""
        self.request("POST", self._job_path(name, "enable"), what=f"job {name!r}", idempotent=True)

    def disable_job(self, name: str) -> None:
        """Disable a job."""
        self.request("POST", self._job_path(name, "disable"), what=f"job {name!r}", idempotent=True)

    # --- views -------------------------------------------------------------------------------

    def get_view_config(self, name: str) -> str:
        """The stored config.xml of a top-level view."""
        return _text(self.request("GET", f"view/{_quote(name)}/config.xml", what=f"view {name!r}"))

    def create_view(self, name: str, xml: str) -> None:
        """Create a top-level view from XML."""
        self.request("POST", f"createView?name={_quote(name)}", what=f"view {name!r}",
                     data=xml.encode("utf-8"), headers=XML_HEADERS, rejected_xml=True)

    def update_view(self, name: str, xml: str) -> None:
        """Replace a view's config.xml."""
        self.request("POST", f"view/{_quote(name)}/config.xml", what=f"view {name!r}",
                     data=xml.encode("utf-8"), headers=XML_HEADERS, idempotent=True, rejected_xml=True)

    def delete_view(self, name: str) -> None:
        """Delete a top-level view."""
        self.request("POST", f"view/{_quote(name)}/doDelete", what=f"view {name!r}")

    # --- builds and the queue -------------------------------------------------------------------

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
        return _text(response), next_start, more

    def console_text(self, job: str, number: int) -> str:
        """The whole log of a build so far."""
        return _text(self.request("GET", self._job_path(job, f"{int(number)}/consoleText"),
                                  what=f"log of build {job!r} #{number}"))

    def stop_build(self, job: str, number: int) -> None:
        """Abort a running build (a no-op for a finished one)."""
        self.request("POST", self._job_path(job, f"{int(number)}/stop"), what=f"build {job!r} #{number}",
                     idempotent=True)

    # --- quiet-down and build records ---------------------------------------------------------

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
        data = self.get_json(f"api/json?tree={self._jobs_tree(f'{field}[number,building],')}", what="the build list")
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


def _quote(text: str, safe: str = "") -> str:
    return quote(text.encode("utf-8"), safe=safe)


def _text(response: requests.Response) -> str:
    # Jenkins sends config.xml as application/xml without a charset; it is UTF-8.
    return response.content.decode("utf-8", errors="replace")


def _header_text(value: str | None) -> str | None:
    """A header as Jenkins meant it: it sends UTF-8 bytes, which HTTP clients decode as Latin-1."""
    if not value:
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _never_connected(exc: requests.ConnectionError) -> bool:
    """True when the TCP connection was never made (refused, unreachable): nothing was sent."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError) or "Connection refused" in str(exc)


def _not_ready_reason(response: requests.Response) -> str:
    text = response.text
    if "getting ready" in text:
        return "getting ready"
    if "restarting" in text:
        return "restarting"
    return "unavailable"
