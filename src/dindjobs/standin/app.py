"""The stand-in's lifecycle and request pipeline: :class:`StandIn`.

Lifecycle (as Jenkins): DOWN (connection refused) -> LOADING (503 "Jenkins is getting ready to
work" on every path, no ``X-Jenkins``) -> READY (``X-Jenkins``, a fresh ``X-Jenkins-Session``)
-> on restart: RESTARTING (503 "Jenkins is restarting"), DOWN, LOADING, READY with a new session;
or FAILED (500 on every path). Each request then goes: Basic auth (401) -> crumb check on POST
(403) -> routing -> Jenkins' response headers.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from dindjobs.errors import DindjobsError
from dindjobs.standin import routes
from dindjobs.standin.casc import CascError
from dindjobs.standin.casc import load as load_casc
from dindjobs.standin.model import Jenkins
from dindjobs.standin.plugins import install as install_plugins
from dindjobs.standin.plugins import installed as installed_plugins
from dindjobs.standin.responses import (
    HttpError,
    JettyError,
    Oops,
    Response,
    boot_failure_page,
    loading_page,
    restarting_page,
)
from dindjobs.standin.security import CRUMB_FIELD, BadCredentials, Policy, Realm, User, admin_from_environment
from dindjobs.standin.server import Request, Server
from dindjobs.standin.ui.session import COOKIE_FLAGS, SIGN_IN_PATH, session_auth

log = logging.getLogger("dindjobs.standin")

DOWN, LOADING, READY, RESTARTING, FAILED = "DOWN", "LOADING", "READY", "RESTARTING", "FAILED"
MAX_LOGGED = 100_000
STANDIN_HEADER = "X-Dindjobs-Standin"


class LoggedRequest(NamedTuple):
    """One answered request, for tests: method, path (no query), status, query, user."""

    method: str
    path: str
    status: int
    query: str
    user: str


def _persistent(path: Path, make) -> str:
    """A per-home value generated once (secret.key, instance identity)."""
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        value = make()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value + "\n")
        return value


def _new_identity() -> str:
    # The shape of Jenkins' instance identity: an X.509 SubjectPublicKeyInfo of an RSA-2048 key.
    prefix = bytes.fromhex("30820122300d06092a864886f70d01010105000382010f003082010a0282010100")
    modulus = bytes([0x80 | secrets.randbelow(128)]) + secrets.token_bytes(255)
    return base64.b64encode(prefix + modulus + bytes.fromhex("0203010001")).decode("ascii")


class StandIn:
    """A Jenkins 2.580 stand-in serving ``home`` on ``host:port`` (port 0 picks a free one).

    ``users``: :class:`~dindjobs.standin.security.User` objects (default: the admin from
    ``JENKINS_ADMIN_ID`` / ``JENKINS_ADMIN_PASSWORD_FILE``). ``startup_delay``: seconds of 503
    "getting ready" after each (re)start. ``quiet_period``: the global quiet period (Jenkins: 5 s).
    ``restart_delay`` / ``restart_down``: seconds of the "restarting" 503 page, then of connection
    refused, during a restart. ``post_production_delay``: a pause between ``building:false`` and
    ``Finished:`` in the log (0 in real use; makes the window observable in tests, which end it
    with :meth:`end_post_production`). ``csrf=False``
    is Jenkins with CSRF protection disabled: no crumb checks, ``crumbIssuer`` answers 404.

    ``casc``: a Configuration as Code file (or ``CASC_JENKINS_CONFIG``-style list), read at each
    boot as JCasC does: its users, anonymous read, executors, crumb issuer and system message
    replace ``users``, ``anonymous_read``, ``executors`` and ``csrf``; an error in it fails the
    boot (500). ``plugin_file``: a plugins.txt whose plugins are installed into ``home/plugins``
    before the first boot, as the image build does (the stand-in loads what that directory holds).
    """

    def __init__(self, home: str | os.PathLike[str], *, host: str = "127.0.0.1", port: int = 0,
                 users: Iterable[User] | None = None, anonymous_read: bool = False,
                 startup_delay: float = 0.0, quiet_period: float = 5.0, executors: int = 2,
                 root_url: str | None = None, restart_delay: float = 0.5, restart_down: float = 0.0,
                 post_production_delay: float = 0.0, csrf: bool = True,
                 casc: str | os.PathLike[str] | None = None, plugin_file: str | os.PathLike[str] | None = None) -> None:
        self.home = Path(home).absolute()
        self.host = host
        self.port = port
        self.users = list(users) if users is not None else []
        self.policy = Policy(anonymous_read)
        self.startup_delay = startup_delay
        self.quiet_period = quiet_period
        self.executors = executors
        self.root_url = root_url
        self.restart_delay = restart_delay
        self.restart_down = restart_down
        self.post_production_delay = post_production_delay
        self._post_production_release = threading.Event()
        self.csrf = csrf
        self.casc = casc
        self.system_message: str | None = None
        self.phase = DOWN
        self.model: Jenkins | None = None
        self.failure: str | None = None
        self.requests: list[LoggedRequest] = []
        self._server: Server | None = None
        self._serve_thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._lifecycle = threading.Lock()
        self._end_loading = threading.Event()  # set: the current boot stops waiting (or is cancelled)
        self._boot_cancelled = False
        self.salt = self.identity = ""
        self._setup_error: str | None = None  # an unusable home or admin secret: the boot fails (500)
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            if plugin_file is not None:
                install_plugins(plugin_file, self.home / "plugins")
            if users is None and casc is None:
                self.users = [admin_from_environment(self.home)]
            self.salt = _persistent(self.home / "secret.key", lambda: secrets.token_hex(32))
            self.identity = _persistent(self.home / "secrets" / "instance-identity", _new_identity)
        except (OSError, ValueError, DindjobsError) as exc:
            self._setup_error = f"{type(exc).__name__}: {exc}"

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``http://host:port/`` (known once started)."""
        return f"http://{self.host}:{self.port}/"

    @property
    def session(self) -> str | None:
        """The current ``X-Jenkins-Session`` (None unless ready)."""
        return self.model.session_hash if self.model is not None and self.phase == READY else None

    def start(self, wait: bool = True, timeout: float = 30.0) -> StandIn:
        """Listen, then load the home in the background; ``wait`` blocks until ready (or failed)."""
        self._listen()
        self._boot_async()
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        if not self._ready.wait(timeout):
            raise TimeoutError(f"stand-in not ready after {timeout}s (phase {self.phase})")

    def finish_startup(self) -> None:
        """End the current startup delay now (tests use a long delay, then release it)."""
        self._end_loading.set()

    def end_post_production(self) -> None:
        """End every ``post_production_delay`` pause now, and from now on."""
        self._post_production_release.set()

    def stop(self) -> None:
        """Abort running builds, persist, close the socket."""
        self._boot_cancelled = True
        self._end_loading.set()
        self._post_production_release.set()
        with self._lifecycle:
            self._shutdown_model()
            self._close()
            self.phase = DOWN

    def fail_boot(self, reason: str = "java.lang.IllegalStateException: boot failure (stand-in)") -> None:
        """Switch to the fatal-boot state: 500 on every path, for good."""
        with self._lifecycle:  # a boot finishing at this moment must not flip it back to READY
            self.failure = reason
            self.phase = FAILED
            self._ready.set()

    def restart(self, delay: float | None = None, wait: bool = True, safe: bool = False,
                reason: str | None = None, timeout: float = 60.0) -> None:
        """Restart like ``/restart`` (or ``/safeRestart`` with ``safe``: after running builds)."""
        self._ready.clear()
        if safe and self.model is not None:
            with self.model.lock:
                self.model.quieting_down = True
                self.model.quiet_down_reason = reason
        else:
            self.phase = RESTARTING
        thread = threading.Thread(target=self._restart, args=(delay, safe), name="standin-restart", daemon=True)
        thread.start()
        if wait:
            thread.join(timeout)
            self.wait_ready(timeout)

    def cancel_quiet_down(self) -> None:
        model = self.model
        if model is not None:
            with model.lock:
                model.quieting_down = False
                model.quiet_down_reason = None
                model.queue.cond.notify_all()

    def restrict(self, user: str, permissions: Iterable[str], item: str | None = None) -> None:
        """Limit ``user`` (or ``"anonymous"``) to ``permissions`` such as ``"Job/Discover"``."""
        self.policy.restrict(user, permissions, item)

    def writes(self) -> list[LoggedRequest]:
        """Logged requests that could change state (every method but GET and HEAD)."""
        return [r for r in self.requests if r.method not in ("GET", "HEAD")]

    def _listen(self) -> None:
        self._server = Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._serve_thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                              name="standin-http", daemon=True)
        self._serve_thread.start()
        log.info("listening on %s", self.url)

    def _close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.drop_connections()
            self._server.server_close()
            self._server = None

    def _boot_async(self) -> None:
        self.phase = LOADING
        self._boot_cancelled = False
        self._end_loading.clear()
        threading.Thread(target=self._boot, name="standin-boot", daemon=True).start()

    def _boot(self) -> None:
        started = time.monotonic()
        if self._setup_error:
            log.error("Jenkins failed to load: %s", self._setup_error)
            self.fail_boot(self._setup_error)
            return
        try:
            if self.casc is not None:
                self._configure_as_code()
            model = Jenkins(self.home, Realm(self.home, self.users), self.policy, self.salt,
                            executors=self.executors, quiet_period=self.quiet_period, root_url=self.root_url,
                            post_production_delay=self.post_production_delay, system_message=self.system_message)
            model.fallback_url = self.root_url or self.url
            model.post_production_release = self._post_production_release
            model.use_crumbs = self.csrf
            model.load()
        except CascError as exc:
            log.error("Jenkins failed to load: configuration as code: %s", exc)
            self.fail_boot(f"io.jenkins.plugins.casc.ConfiguratorException: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - any boot error is Jenkins' HudsonFailedToLoad
            log.exception("Jenkins failed to load")
            self.fail_boot(f"{type(exc).__name__}: {exc}")
            return
        remaining = self.startup_delay - (time.monotonic() - started)
        if remaining > 0:
            self._end_loading.wait(remaining)
        with self._lifecycle:
            if self.phase == FAILED or self._boot_cancelled:
                return
            self.model = model
            model.queue.start()
            self.phase = READY
            self._ready.set()
        log.info("Jenkins is fully up and running (session %s)", model.session_hash)

    def _configure_as_code(self) -> None:
        """Apply the JCasC file (each boot, as Jenkins does); raises CascError."""
        if "configuration-as-code" not in installed_plugins(self.home):
            # Jenkins would ignore the file and, with the setup wizard skipped, run unsecured.
            raise CascError(f"{self.casc} is given but the configuration-as-code plugin is not installed: "
                            "Jenkins would ignore it (add the plugin to plugins.txt)")
        config = load_casc(self.casc)
        if not config.security_realm:
            raise CascError("the stand-in needs jenkins.securityRealm.local (it does not run unsecured)")
        self.users = [User(u.id, u.password) for u in config.users]
        self.policy.anonymous_read = config.anonymous_read
        self.csrf = config.crumbs
        self.system_message = config.system_message
        if config.executors is not None:
            self.executors = config.executors
        log.info("configuration as code applied from %s: %d user(s), anonymous read %s", self.casc,
                 len(self.users), "on" if config.anonymous_read else "off")

    def _restart(self, delay: float | None, safe: bool) -> None:
        with self._lifecycle:
            model = self.model
            if safe and model is not None:
                while model.queue.active:
                    time.sleep(0.05)
                self.phase = RESTARTING
            log.info("restarting")
            time.sleep(self.restart_delay if delay is None else delay)
            self._shutdown_model()
            if self.restart_down > 0:
                self._close()
                self.phase = DOWN
                time.sleep(self.restart_down)
                self._listen()
            else:
                self._server.drop_connections()
            self._boot_async()

    def _shutdown_model(self) -> None:
        model, self.model = self.model, None
        if model is not None:
            model.queue.stop(abort_by="SYSTEM")

    # -- request pipeline ---------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        """Answer one request according to the current phase."""
        phase, model = self.phase, self.model
        if phase == FAILED:
            r = boot_failure_page(self.failure or "boot failure")
        elif phase != READY or model is None:
            r = restarting_page() if phase == RESTARTING else loading_page()
        else:
            r = self._handle_ready(model, req)
        self.requests.append(LoggedRequest(req.method, req.raw_path, r.status, _redact(req.query_string),
                                           req.auth.name))
        if len(self.requests) > MAX_LOGGED:  # a long-running instance keeps the recent half
            del self.requests[: MAX_LOGGED // 2]
        return r

    def ensure_session(self, req: Request) -> None:
        """Give the request an HTTP session (the crumb issuer, dashboard and login do this)."""
        model = self.model
        if model is not None and not model.sessions.valid(req.session_id):
            req.session_id = model.sessions.create()
            req.new_session = True

    def _handle_ready(self, model: Jenkins, req: Request) -> Response:
        try:
            try:
                req.auth = model.realm.authenticate(req.headers.get("Authorization"))
            except BadCredentials as exc:
                raise JettyError(401, str(exc), [("WWW-Authenticate", 'Basic realm="Jenkins"')]) from None
            req.session_id = req.cookie(model.sessions.cookie_name)
            if req.auth.anonymous:  # no credentials: the browser session's user, if signed in
                req.auth = session_auth(model.signins, model.sessions, req.session_id, model.realm.users)
            # The sign-in form checks its own crumb: without one, the sign-in fails (-> /loginError).
            if req.method == "POST" and self.csrf and not req.auth.via_token and req.segments != SIGN_IN_PATH:
                crumb = req.headers.get(CRUMB_FIELD) or req.param(CRUMB_FIELD)
                if not model.sessions.crumb_ok(crumb, req.auth.name, req.client_ip, req.session_id):
                    raise JettyError(403, "No valid crumb was included in the request")
            with model.lock:
                r = routes.dispatch(self, model, req)
        except HttpError as exc:
            if isinstance(exc, JettyError):
                exc.uri = req.raw_path
            r = exc.response()
        except Exception:  # noqa: BLE001 - Jenkins turns any uncaught exception into the Oops page
            log.exception("uncaught exception on %s %s", req.method, req.raw_path)
            r = Oops().response()
        self._decorate(model, req, r)
        return r

    def _decorate(self, model: Jenkins, req: Request, r: Response) -> None:
        if r.kind in ("api", "page"):
            r.headers += [("X-Jenkins", model.version), ("X-Jenkins-Session", model.session_hash)]
        if r.kind == "api":
            r.headers += [("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "deny")]
        elif r.kind == "page":
            r.headers += [("X-Hudson", "1.395"), ("X-Frame-Options", "sameorigin")]
        r.headers.append(("X-Instance-Identity", self.identity))
        # Not a Jenkins header: tells clients they talk to the stand-in, whatever X-Jenkins says.
        r.headers.append((STANDIN_HEADER, model.version))
        if req.new_session:
            r.headers.append(("Set-Cookie", f"{model.sessions.cookie_name}={req.session_id}; {COOKIE_FLAGS}"))


def _redact(query: str) -> str:
    """A query string with job trigger tokens hidden (it is logged)."""
    if "token=" not in query:
        return query
    return "&".join("token=***" if p.startswith("token=") else p for p in query.split("&"))
