"""Settings: command-line flags beat the environment, which beats the ini file.

The ini file is JJB-compatible: ``[jenkins] url, user, password`` plus our own ``[dindjobs]``
section, so an existing ``jenkins_jobs.ini`` works with ``--conf``. Secrets (passwords and API
tokens) are never taken from argv: only from the environment, files, the wrapper's state
directory or an interactive prompt. They are held in :class:`Secret`, which never prints itself.
"""

from __future__ import annotations

import configparser
import dataclasses
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from dindjobs.errors import ConfigError, DindjobsError, SecretError

DEFAULT_URL = "http://127.0.0.1:8080/"
DEFAULT_NAME = "dindjobs"
DEFAULT_USER = "admin"
DEFAULT_TIMEOUT = 30.0
DEFAULT_WORKERS = 4

ENV_URL = "DINDJOBS_URL"
ENV_USER = "DINDJOBS_USER"
ENV_PASSWORD = "DINDJOBS_PASSWORD"
ENV_PASSWORD_FILE = "DINDJOBS_PASSWORD_FILE"
ENV_TOKEN = "DINDJOBS_TOKEN"
ENV_TOKEN_FILE = "DINDJOBS_TOKEN_FILE"
ENV_CONFIG = "DINDJOBS_CONFIG"
ENV_NAME = "DINDJOBS_NAME"
ENV_STATE_DIR = "DINDJOBS_STATE_DIR"

ADMIN_PASSWORD_FILE = "admin-password"
_SERVER_KEYS = ("name", "password_file", "token_file")  # [dindjobs] keys a server section may set itself


class Secret:
    """A password or token that never shows itself in repr, str, logs or tracebacks."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self.source = source  # where it came from, e.g. "env DINDJOBS_TOKEN"; safe to print

    def reveal(self) -> str:
        """The secret value, for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret(<hidden>, source={self.source!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything a command needs to know, resolved once."""

    url: str = DEFAULT_URL
    user: str | None = None
    password: Secret | None = None
    token: Secret | None = None
    timeout: float = DEFAULT_TIMEOUT
    name: str = DEFAULT_NAME
    workers: int = DEFAULT_WORKERS
    state_dir: Path = dataclasses.field(default_factory=lambda: default_state_dir({}))
    conf_path: Path | None = None
    url_source: str = "default"  # which of flag / env / ini / wrapper label / default gave the URL
    warnings: tuple[str, ...] = ()  # said once on stderr by the CLI (e.g. a URL that is not the wrapper's)

    @property
    def credential(self) -> Secret | None:
        """The secret to authenticate with: an API token if there is one, else the password."""
        return self.token or self.password

    @property
    def wrapper_state_dir(self) -> Path:
        """Where `dindjobs up` keeps this wrapper's local state (e.g. its admin password)."""
        return self.state_dir / self.name

    def secrets(self) -> list[str]:
        """Every secret value, so log output can be scrubbed of them."""
        return [s.reveal() for s in (self.password, self.token) if s is not None and s.reveal()]

    def describe(self) -> dict[str, object]:
        """A printable view of the settings, with secrets reduced to their source."""
        return {
            "url": self.url,
            "url_source": self.url_source,
            "user": self.user,
            "password": self.password.source if self.password else None,
            "token": self.token.source if self.token else None,
            "timeout": self.timeout,
            "name": self.name,
            "workers": self.workers,
            "state_dir": str(self.state_dir),
            "conf_path": str(self.conf_path) if self.conf_path else None,
        }


def default_state_dir(env: Mapping[str, str]) -> Path:
    """``$DINDJOBS_STATE_DIR``, else ``$XDG_STATE_HOME/dindjobs``, else ``~/.local/state/dindjobs``."""
    if env.get(ENV_STATE_DIR):
        return Path(env[ENV_STATE_DIR])
    base = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "dindjobs"


def read_secret_file(path: str | os.PathLike[str], what: str) -> Secret:
    """Read a secret from a file (trailing newline stripped); errors name the file, not the value."""
    p = Path(path)
    try:
        value = p.read_text(encoding="utf-8").rstrip("\r\n")
    except FileNotFoundError:
        raise SecretError(f"{what} file {p} does not exist") from None
    except PermissionError:
        raise SecretError(f"{what} file {p} is not readable by this user") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretError(f"{what} file {p} could not be read: {type(exc).__name__}") from None
    if not value:
        raise SecretError(f"{what} file {p} is empty")
    return Secret(value, f"file {p}")


def read_ini(path: Path) -> configparser.ConfigParser:
    """Parse an ini file; a problem is reported as ``path:line: what`` without the line's text
    (it may hold a password)."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} could not be read: {exc.strerror or type(exc).__name__}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: byte 0x{data[exc.start]:02x} is not UTF-8 (the ini must be UTF-8 text)") from None
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise ConfigError(_ini_problem(path, exc)) from None
    return parser


def _ini_problem(path: Path, exc: configparser.Error) -> str:
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return f"{path}:{exc.lineno}: a setting before any [section] header"
    if isinstance(exc, configparser.DuplicateOptionError):
        return f"{path}:{exc.lineno}: {exc.option!r} is set twice in [{exc.section}]"
    if isinstance(exc, configparser.DuplicateSectionError):
        return f"{path}:{exc.lineno}: section [{exc.section}] appears twice"
    if isinstance(exc, configparser.ParsingError) and exc.errors:
        line = exc.errors[0][0]
        return f"{path}:{line}: not a valid ini line (expected 'key = value' or '[section]')"
    return f"{path}: not a valid ini file ({type(exc).__name__})"


def _first(*values: object) -> object | None:
    for value in values:
        if value is not None and value != "":
            return value
    return None


def _without_userinfo(url: str) -> str:
    """``url`` without a ``user:password@`` part, for messages."""
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@", r"\1***@", url)


def _number(value: object, key: str, kind: type, where: str) -> float | int:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}{key} must be a number, got {value!r}") from None
    if number <= 0:
        raise ConfigError(f"{where}{key} must be positive, got {value!r}")
    return number


def load_settings(
    flags: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
    prompt: Callable[[str], str] | None = None,
    wrapper_url: Callable[[str], str | None] | None = None,
    section: str = "jenkins",
) -> Settings:
    """Resolve settings from flags, then environment, then the ini file.

    ``flags`` holds command-line values (None when not given): ``conf``, ``url``, ``user``,
    ``name``, ``timeout``, ``workers``, ``password_file``, ``token_file``. ``prompt`` is called
    for a password only when a user is known, no secret was found and it is not None (the CLI
    passes one only on a TTY). ``wrapper_url(name)`` is the URL recorded on the wrapper of that
    name (None when there is none); see :func:`resolve_url` for how the target is chosen.
    ``section`` is the ini section that names the server (JJB's ``--section``): for another
    section than ``[jenkins]`` its ``url``, ``user``, ``password``, ``timeout`` and its own
    ``name``, ``password_file`` and ``token_file`` stand in for those of ``[jenkins]`` and
    ``[dindjobs]`` (the caller leaves out the flags and environment meant for the default).
    """
    flags = dict(flags or {})
    env = os.environ if env is None else env

    conf_value = _first(flags.get("conf"), env.get(ENV_CONFIG))
    conf_path = Path(str(conf_value)) if conf_value else None
    ini = read_ini(conf_path) if conf_path else configparser.ConfigParser(interpolation=None)

    def ini_get(where: str, key: str) -> str | None:
        server_key = where == "dindjobs" and key in _SERVER_KEYS
        if where == "jenkins" or (server_key and (section != "jenkins" or ini.has_option(section, key))):
            where = section  # a server section's own name / secret files beat those of [dindjobs]
        if ini.has_section(where) and ini.has_option(where, key):
            return ini.get(where, key)
        return None

    name_given = _first(flags.get("name"), env.get(ENV_NAME), ini_get("dindjobs", "name"))
    name = str(name_given or DEFAULT_NAME)
    url, url_source, warnings = resolve_url(
        [(flags.get("url"), "flag --url"), (env.get(ENV_URL), f"env {ENV_URL}"),
         (ini_get("jenkins", "url"), f"file {conf_path} [{section}] url")],
        name, name_given is not None, wrapper_url)
    timeout = _number(
        _first(flags.get("timeout"), ini_get("jenkins", "timeout"), DEFAULT_TIMEOUT),
        "timeout", float, f"{conf_path}: [jenkins] " if flags.get("timeout") is None and ini_get("jenkins", "timeout") else "",
    )
    workers = _number(
        _first(flags.get("workers"), ini_get("dindjobs", "workers"), DEFAULT_WORKERS),
        "workers", int, f"{conf_path}: [dindjobs] " if flags.get("workers") is None and ini_get("dindjobs", "workers") else "",
    )
    state_dir_value = _first(ini_get("dindjobs", "state_dir"))
    state_dir = Path(str(state_dir_value)) if state_dir_value and not env.get(ENV_STATE_DIR) else default_state_dir(env)

    token = _resolve_token(flags, env, ini_get)
    password = _resolve_password(flags, env, ini_get, conf_path, section)
    user = _first(flags.get("user"), env.get(ENV_USER), ini_get("jenkins", "user"))
    own_wrapper = not url_source.startswith(("flag", "env", "file"))  # a wrapper's (or the default) Jenkins

    if token is None and password is None:
        # `dindjobs up` stores the admin password of the wrapper it started.
        state_file = state_dir / name / ADMIN_PASSWORD_FILE
        if state_file.exists() and user in (None, DEFAULT_USER):
            password = read_secret_file(state_file, "admin password")
            user = DEFAULT_USER
        elif user is not None and prompt is not None:
            value = prompt(f"Password for {user} at {url}")
            if value:
                password = Secret(value, "prompt")
    if (token or password) and user is None:
        if not own_wrapper:
            raise ConfigError(
                "a password or token is set but no user",
                hint=f"set {ENV_USER}, --user or [jenkins] user",
            )
        user = DEFAULT_USER  # the wrapper's Jenkins is set up with this admin id

    return Settings(
        url=url,
        user=str(user) if user is not None else None,
        password=password,
        token=token,
        timeout=float(timeout),
        name=name,
        workers=int(workers),
        state_dir=state_dir,
        conf_path=conf_path,
        url_source=url_source,
        warnings=tuple(warnings),
    )


def resolve_url(explicit: Iterable[tuple[object, str]], name: str, name_given: bool,
                wrapper_url: Callable[[str], str | None] | None) -> tuple[str, str, list[str]]:
    """The Jenkins to talk to: ``(url, where it came from, warnings)``.

    An explicit URL (the first non-empty of ``explicit``, pairs of value and source) wins;
    otherwise the URL recorded on the wrapper called ``name`` when it exists; otherwise the
    default. When a URL and a wrapper name are both given and disagree, a warning says so.
    """
    url, source = next(((str(v), where) for v, where in explicit if v not in (None, "")), (None, ""))
    recorded, problem = None, ""
    if wrapper_url is not None and (url is None or name_given):
        try:
            recorded = wrapper_url(name)
        except DindjobsError as exc:
            problem = exc.one_line()
    warnings = []
    if url is not None:
        url = _checked_url(url, source)
        if recorded and name_given and canonical_url(recorded) != canonical_url(url):
            warnings.append(f"using {url} ({source}), not {recorded} of wrapper {name!r}")
        return url, source, warnings
    if recorded:
        return _checked_url(recorded, f"wrapper {name}"), f"wrapper {name} (container label)", warnings
    if name_given:
        why = problem or f"no wrapper named {name!r} on the engine"
        return DEFAULT_URL, f"default ({why})", warnings
    return DEFAULT_URL, "default", warnings


def _checked_url(url: str, source: str) -> str:
    if not url.startswith(("http://", "https://")):
        problem = f"Jenkins URL must start with http:// or https://, got {_without_userinfo(url)!r}"
        if source.startswith("file "):  # name the file first, as every ini problem does
            path, _, key = source.removeprefix("file ").partition(" ")
            raise ConfigError(f"{path}: {problem} ({key})")
        raise ConfigError(f"{problem} ({source})")
    return url if url.endswith("/") else url + "/"


_LOOPBACK = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_url(url: str) -> str:
    """``url`` spelled one way: scheme and host lower case, every loopback name as 127.0.0.1,
    the default port dropped, one trailing slash (what identifies a Jenkins across spellings)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if host in _LOOPBACK:
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    path = parts.path.rstrip("/") + "/"
    return f"{scheme}://{netloc}{path}"


def _resolve_token(flags, env, ini_get) -> Secret | None:
    if flags.get("token_file"):
        return read_secret_file(str(flags["token_file"]), "token")
    if env.get(ENV_TOKEN):
        return Secret(env[ENV_TOKEN], f"env {ENV_TOKEN}")
    if env.get(ENV_TOKEN_FILE):
        return read_secret_file(env[ENV_TOKEN_FILE], "token")
    if ini_get("dindjobs", "token_file"):
        return read_secret_file(ini_get("dindjobs", "token_file"), "token")
    return None


def _resolve_password(flags, env, ini_get, conf_path, section: str = "jenkins") -> Secret | None:
    if flags.get("password_file"):
        return read_secret_file(str(flags["password_file"]), "password")
    if env.get(ENV_PASSWORD):
        return Secret(env[ENV_PASSWORD], f"env {ENV_PASSWORD}")
    if env.get(ENV_PASSWORD_FILE):
        return read_secret_file(env[ENV_PASSWORD_FILE], "password")
    if ini_get("dindjobs", "password_file"):
        return read_secret_file(ini_get("dindjobs", "password_file"), "password")
    if ini_get("jenkins", "password"):
        return Secret(ini_get("jenkins", "password"), f"file {conf_path} [{section}] password")
    return None


class RedactingFilter(logging.Filter):
    """Replaces every whole occurrence of a known secret value in log records with ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = list(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if any(self._secrets):
            message = redact(record.getMessage(), self._secrets)
            record.msg, record.args = message, None
        return True


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every whole occurrence of a secret value replaced by ``***``.

    Whole: not preceded or followed by a letter, digit or ``_``, so the password ``e`` leaves
    "error" alone and ``admin`` leaves "administrator" alone. This is the last line of defence:
    messages are made without secrets in the first place."""
    values = sorted({s for s in secrets if s}, key=len, reverse=True)
    if not values:
        return text
    pattern = "|".join(re.escape(value) for value in values)
    return re.sub(rf"(?<!\w)(?:{pattern})(?!\w)", "***", text)
