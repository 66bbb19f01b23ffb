"""The part of Jenkins Configuration as Code (JCasC) the image uses, read by the stand-in.

The wrapper image is secured by ``dind-image/casc/jenkins.yaml``; the stand-in reads the same
file so that tests check the security users really get. Covered: ``jenkins.systemMessage``,
``numExecutors``, ``mode``, ``securityRealm.local`` (``allowsSignup``, ``users`` with ``id``,
``password``, ``name``, ``description``, ``properties``), ``authorizationStrategy.
loggedInUsersCanDoAnything`` (``allowAnonymousRead``, which defaults to true as in Jenkins) and
``crumbIssuer.standard``. As JCasC does, an attribute it does not know is an error at start: a
key removed from Jenkins (``excludeClientIPFromCrumb``, gone in 2.543) fails here as it would
fail the real start. Keys JCasC knows but the stand-in does not implement are refused too, with
a message saying so.

Values go through JCasC's variable syntax: ``${VAR}``, ``${VAR:-default}`` (environment, then
``$SECRETS/VAR``, default ``/run/secrets``), ``^${X}`` for a literal ``${X}``, and the helpers
``readFile:``/``file:``, ``trim:``, ``base64:``, ``decodeBase64:``, nested as in
``${readFile:${JENKINS_ADMIN_PASSWORD_FILE}}``.

The YAML reader is a small subset parser (the stand-in uses the standard library only): block
mappings and sequences, plain and quoted scalars, ``{}`` and ``[]``. Anything else (anchors,
tags, block scalars, flow collections with content) is refused with its line number.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dindjobs.config import Secret

log = logging.getLogger("dindjobs.standin")


class CascError(Exception):
    """The configuration cannot be applied: Jenkins would not start."""


# --- YAML subset -------------------------------------------------------------------------------

@dataclasses.dataclass
class _Line:
    indent: int
    text: str
    number: int


def _strip_comment(text: str) -> str:
    quote = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"" and (i == 0 or text[i - 1] in " :-[{,"):
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1] in " \t"):
            return text[:i].rstrip()
    return text.rstrip()


def _lines(text: str, source: str) -> list[_Line]:
    lines = []
    for number, raw in enumerate(text.splitlines(), 1):
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise CascError(f"{source}:{number}: tabs are not allowed for indentation")
        body = _strip_comment(raw)
        if not body.strip():
            continue
        if body.strip() in ("---", "..."):
            if lines:
                raise CascError(f"{source}:{number}: several YAML documents in one file are not supported")
            continue
        lines.append(_Line(len(body) - len(body.lstrip(" ")), body.strip(), number))
    return lines


_DOUBLE_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "/": "/", "0": "\0"}


def _scalar(text: str, where: str) -> Any:
    if text.startswith('"'):
        if len(text) < 2 or not text.endswith('"'):
            raise CascError(f"{where}: unterminated double-quoted string")
        out, i, body = [], 0, text[1:-1]
        while i < len(body):
            ch = body[i]
            if ch == "\\":
                nxt = body[i + 1: i + 2]
                if nxt not in _DOUBLE_ESCAPES:
                    raise CascError(f"{where}: unsupported escape \\{nxt}")
                out.append(_DOUBLE_ESCAPES[nxt])
                i += 2
                continue
            out.append(ch)
            i += 1
        return "".join(out)
    if text.startswith("'"):
        if len(text) < 2 or not text.endswith("'"):
            raise CascError(f"{where}: unterminated single-quoted string")
        return text[1:-1].replace("''", "'")
    if text == "{}":
        return {}
    if text == "[]":
        return []
    if text[0] in "[{&*!|>%@`":
        raise CascError(f"{where}: {text[:20]!r}: this YAML form is not supported by the stand-in's reader")
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if text in ("null", "Null", "NULL", "~"):
        return None
    if re.fullmatch(r"[-+]?[0-9]+", text):
        return int(text)
    return text


def _split_key(line: _Line, source: str) -> tuple[str, str]:
    text = line.text
    if text[0] in "'\"":
        end = text.find(text[0], 1)
        if end < 0 or not text[end + 1:].startswith(":"):
            raise CascError(f"{source}:{line.number}: expected 'key: value'")
        return str(_scalar(text[: end + 1], f"{source}:{line.number}")), text[end + 2:].strip()
    match = re.match(r"([^:]+?):(?: +|$)(.*)$", text)
    if not match:
        raise CascError(f"{source}:{line.number}: expected 'key: value', got {text[:40]!r}")
    return match.group(1), match.group(2)


def _is_item(line: _Line) -> bool:
    return line.text == "-" or line.text.startswith("- ")


class _Parser:
    def __init__(self, lines: list[_Line], source: str) -> None:
        self.lines = lines
        self.source = source

    def block(self, i: int, indent: int) -> tuple[Any, int]:
        if _is_item(self.lines[i]):
            return self.sequence(i, indent)
        return self.mapping(i, indent)

    def mapping(self, i: int, indent: int) -> tuple[dict, int]:
        result: dict[str, Any] = {}
        lines = self.lines
        while i < len(lines) and lines[i].indent == indent and not _is_item(lines[i]):
            line = lines[i]
            key, rest = _split_key(line, self.source)
            if key in result:
                raise CascError(f"{self.source}:{line.number}: duplicate key {key!r}")
            i += 1
            if rest:
                result[key] = _scalar(rest, f"{self.source}:{line.number}")
            elif i < len(lines) and (lines[i].indent > indent or (lines[i].indent == indent and _is_item(lines[i]))):
                result[key], i = self.block(i, lines[i].indent)
            else:
                result[key] = None
        if i < len(lines) and lines[i].indent > indent:
            raise CascError(f"{self.source}:{lines[i].number}: bad indentation")
        return result, i

    def sequence(self, i: int, indent: int) -> tuple[list, int]:
        result: list[Any] = []
        lines = self.lines
        while i < len(lines) and lines[i].indent == indent and _is_item(lines[i]):
            line = lines[i]
            rest = line.text[1:].lstrip()
            if not rest:
                i += 1
                if i < len(lines) and lines[i].indent > indent:
                    value, i = self.block(i, lines[i].indent)
                else:
                    value = None
            elif re.match(r"[^'\"\[{][^:]*:(?: |$)|['\"].*?['\"]:(?: |$)", rest):
                # "- key: value" opens a mapping whose keys line up after the dash.
                inner = indent + len(line.text) - len(rest)
                lines[i] = _Line(inner, rest, line.number)
                value, i = self.mapping(i, inner)
            else:
                value = _scalar(rest, f"{self.source}:{line.number}")
                i += 1
            result.append(value)
        return result, i


def parse_yaml(text: str, source: str = "jenkins.yaml") -> Any:
    """The document in ``text`` (the subset described in the module docstring)."""
    lines = _lines(text, source)
    if not lines:
        return None
    value, end = _Parser(lines, source).block(0, lines[0].indent)
    if end < len(lines):
        raise CascError(f"{source}:{lines[end].number}: bad indentation")
    return value


# --- variables ---------------------------------------------------------------------------------

def resolve(value: str, env: Mapping[str, str], where: str = "") -> str:
    """Expand JCasC's ``${...}`` expressions in one scalar."""
    out, i = [], 0
    while i < len(value):
        if value.startswith("^${", i):
            end = _closing(value, i + 1, where)
            out.append(value[i + 1: end + 1])
            i = end + 1
        elif value.startswith("${", i):
            end = _closing(value, i, where)
            out.append(_expression(resolve(value[i + 2: end], env, where), env, where))
            i = end + 1
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def _closing(value: str, start: int, where: str) -> int:
    depth = 0
    for j in range(start, len(value)):
        if value.startswith("${", j):
            depth += 1
        elif value[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    raise CascError(f"{where}: unterminated ${{...}} in a value")


def _expression(expr: str, env: Mapping[str, str], where: str) -> str:
    prefix, _, rest = expr.partition(":")
    if prefix in ("readFile", "file") and rest:
        try:
            return Path(rest).read_text(encoding="utf-8")
        except OSError as exc:
            raise CascError(f"{where}: cannot read {rest}: {exc.strerror or exc}") from None
    if prefix == "trim" and rest:
        return rest.strip()
    if prefix == "base64" and rest:
        return base64.b64encode(rest.encode("utf-8")).decode("ascii")
    if prefix == "decodeBase64" and rest:
        try:
            return base64.b64decode(rest, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise CascError(f"{where}: decodeBase64 of something that is not base64") from None
    name, has_default, default = expr.partition(":-")
    found = _lookup(name, env)
    if found is not None:
        return found
    if has_default:
        return default
    log.warning("configuration as code: %s: ${%s} is not set; using an empty value", where, name)
    return ""


def _lookup(name: str, env: Mapping[str, str]) -> str | None:
    if name in env:
        return env[name]
    secret = Path(env.get("SECRETS") or "/run/secrets") / name
    try:
        return secret.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


# --- the subset of Jenkins' model ---------------------------------------------------------------

@dataclasses.dataclass
class CascUser:
    """A local user: id and password (None: no password, cannot sign in with one)."""

    id: str
    password: Secret | None


@dataclasses.dataclass
class Configuration:
    """What the stand-in takes from a JCasC file."""

    system_message: str | None = None
    executors: int | None = None
    users: list[CascUser] = dataclasses.field(default_factory=list)
    allows_signup: bool = False
    anonymous_read: bool = True
    crumbs: bool = True
    security_realm: bool = False


# type name -> (Java class as JCasC names it, attributes the stand-in knows)
_TYPES = {
    "root": ("root elements", {"jenkins"}),
    "jenkins": ("class jenkins.model.Jenkins",
                {"systemMessage", "numExecutors", "mode", "securityRealm", "authorizationStrategy", "crumbIssuer"}),
    "securityRealm": ("interface hudson.security.SecurityRealm", {"local"}),
    "local": ("class hudson.security.HudsonPrivateSecurityRealm", {"allowsSignup", "users", "enableCaptcha"}),
    "user": ("class io.jenkins.plugins.casc.core.UserConfigurator", {"id", "password", "name", "description",
                                                                     "properties"}),
    "authorizationStrategy": ("class hudson.security.AuthorizationStrategy", {"loggedInUsersCanDoAnything"}),
    "loggedInUsersCanDoAnything": ("class hudson.security.FullControlOnceLoggedInAuthorizationStrategy",
                                   {"allowAnonymousRead"}),
    "crumbIssuer": ("class hudson.security.csrf.CrumbIssuer", {"standard"}),
    "standard": ("class hudson.security.csrf.DefaultCrumbIssuer", set()),
}


def _attributes(value: Any, kind: str, where: str) -> dict:
    java_class, known = _TYPES[kind]
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CascError(f"{where}: expected a mapping for {java_class}, got {type(value).__name__}")
    unknown = sorted(set(value) - known)
    if unknown:
        raise CascError(f"{where}: Invalid configuration elements for type: {java_class} : {', '.join(unknown)}. "
                        f"Available attributes : {', '.join(sorted(known)) or 'none'} "
                        "(the attributes the dindjobs stand-in knows; JCasC refuses unknown ones at start)")
    return value


class _Reader:
    def __init__(self, env: Mapping[str, str], source: str) -> None:
        self.env = env
        self.source = source

    def text(self, value: Any, where: str) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if value is None:
            return ""
        if isinstance(value, (dict, list)):
            raise CascError(f"{self.source}: {where}: expected a single value")
        return resolve(str(value), self.env, f"{self.source}: {where}")

    def flag(self, value: Any, where: str) -> bool:
        text = self.text(value, where).strip().lower()
        if text not in ("true", "false"):
            raise CascError(f"{self.source}: {where}: expected true or false, got {text!r}")
        return text == "true"

    def apply(self, doc: dict, config: Configuration) -> None:
        top = _attributes(doc, "root", self.source)
        jenkins = _attributes(top.get("jenkins"), "jenkins", f"{self.source}: jenkins")
        if "systemMessage" in jenkins:
            config.system_message = self.text(jenkins["systemMessage"], "jenkins.systemMessage")
        if "numExecutors" in jenkins:
            raw = self.text(jenkins["numExecutors"], "jenkins.numExecutors")
            if not raw.strip().isdigit():
                raise CascError(f"{self.source}: jenkins.numExecutors: {raw!r} is not a number")
            config.executors = int(raw)
        if "mode" in jenkins and self.text(jenkins["mode"], "jenkins.mode") not in ("NORMAL", "EXCLUSIVE"):
            raise CascError(f"{self.source}: jenkins.mode: expected NORMAL or EXCLUSIVE")
        if "securityRealm" in jenkins:
            self.realm(jenkins["securityRealm"], config)
        if "authorizationStrategy" in jenkins:
            strategy = _attributes(jenkins["authorizationStrategy"] if not isinstance(
                jenkins["authorizationStrategy"], str) else {jenkins["authorizationStrategy"]: None},
                "authorizationStrategy", f"{self.source}: jenkins.authorizationStrategy")
            if len(strategy) != 1:
                raise CascError(f"{self.source}: jenkins.authorizationStrategy: expected exactly one strategy")
            options = _attributes(strategy["loggedInUsersCanDoAnything"], "loggedInUsersCanDoAnything",
                                  f"{self.source}: jenkins.authorizationStrategy.loggedInUsersCanDoAnything")
            config.anonymous_read = self.flag(options.get("allowAnonymousRead", True), "allowAnonymousRead")
        if "crumbIssuer" in jenkins:
            issuer = _attributes(jenkins["crumbIssuer"] if not isinstance(jenkins["crumbIssuer"], str)
                                 else {jenkins["crumbIssuer"]: None}, "crumbIssuer",
                                 f"{self.source}: jenkins.crumbIssuer")
            _attributes(issuer.get("standard"), "standard", f"{self.source}: jenkins.crumbIssuer.standard")
            config.crumbs = "standard" in issuer

    def realm(self, value: Any, config: Configuration) -> None:
        realm = _attributes(value, "securityRealm", f"{self.source}: jenkins.securityRealm")
        if "local" not in realm:
            raise CascError(f"{self.source}: jenkins.securityRealm: expected 'local'")
        local = _attributes(realm["local"], "local", f"{self.source}: jenkins.securityRealm.local")
        config.security_realm = True
        config.allows_signup = self.flag(local.get("allowsSignup", False), "allowsSignup")
        users = local.get("users") or []
        if not isinstance(users, list):
            raise CascError(f"{self.source}: jenkins.securityRealm.local.users: expected a list")
        for n, entry in enumerate(users):
            where = f"jenkins.securityRealm.local.users[{n}]"
            user = _attributes(entry, "user", f"{self.source}: {where}")
            user_id = self.text(user.get("id"), f"{where}.id").strip()
            if not user_id:
                raise CascError(f"{self.source}: {where}: a user needs an id")
            password = self.text(user.get("password"), f"{where}.password")
            if password.startswith("#jbcrypt:"):
                raise CascError(f"{self.source}: {where}.password: #jbcrypt hashes are not supported by the "
                                "dindjobs stand-in (give the password, e.g. with ${readFile:...})")
            config.users.append(CascUser(user_id, Secret(password, f"configuration as code {where}")
                                         if password else None))


def config_files(spec: str) -> list[Path]:
    """The files a ``CASC_JENKINS_CONFIG`` value names: comma-separated files or directories
    (every ``*.yml``/``*.yaml`` below, sorted, skipping hidden ones)."""
    files: list[Path] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        path = Path(part.removeprefix("file://"))
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in (".yml", ".yaml") and p.is_file()
                            and not any(s.startswith(".") for s in p.relative_to(path).parts))
        elif path.is_file():
            files.append(path)
        else:
            raise CascError(f"configuration as code: {part} does not exist")
    return files


def _merge(into: dict, doc: dict, where: str) -> None:
    for key, value in doc.items():
        if key in into and isinstance(into[key], dict) and isinstance(value, dict):
            _merge(into[key], value, f"{where}.{key}")
        elif key in into:
            raise CascError(f"configuration as code: {where}.{key} is set in more than one file")
        else:
            into[key] = value


def load(spec: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Configuration:
    """Read and check the JCasC file(s) ``spec`` names (raises CascError as Jenkins would fail)."""
    env = os.environ if env is None else env
    merged: dict = {}
    files = config_files(os.fspath(spec))
    for path in files:
        try:
            doc = parse_yaml(path.read_text(encoding="utf-8"), str(path))
        except (OSError, UnicodeDecodeError) as exc:
            raise CascError(f"configuration as code: cannot read {path}: {exc}") from None
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise CascError(f"{path}: expected a mapping at the top")
        _merge(merged, doc, "")
    config = Configuration()
    _Reader(env, ", ".join(map(str, files))).apply(merged, config)
    return config
