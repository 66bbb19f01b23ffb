"""Targets: the Jenkins a command runs against, when it runs against several.

A target is a named Jenkins. An ini section in JJB's format names one (``[jenkins]`` is the
default; ``[staging] url, user, password`` is read as ``jenkins-jobs --section staging`` would,
plus our ``password_file``, ``token_file``, ``name`` (its wrapper) and ``vars``); a name with no
section is a local wrapper of that name. Settings are resolved by :func:`config.load_settings`
for every target, so the ledger, the sync lock and the credentials are each target's own.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Generic, TypeVar

from dindjobs.config import (
    ENV_CONFIG,
    ENV_NAME,
    ENV_PASSWORD,
    ENV_PASSWORD_FILE,
    ENV_TOKEN,
    ENV_TOKEN_FILE,
    ENV_URL,
    ENV_USER,
    Settings,
    canonical_url,
    load_settings,
    read_ini,
)
from dindjobs.errors import ConfigError, DindjobsError, ExitCode

T = TypeVar("T")

DEFAULT_TARGET = "jenkins"
# Sections of the ini that configure rendering or dindjobs itself, not a server.
_NOT_SERVERS = ("job_builder", "dindjobs", "__future__")
# What the flags and environment say about the default target only.
_DEFAULT_ONLY_FLAGS = ("url", "user", "name", "password_file", "token_file")
_DEFAULT_ONLY_ENV = (ENV_URL, ENV_USER, ENV_NAME, ENV_PASSWORD, ENV_PASSWORD_FILE, ENV_TOKEN, ENV_TOKEN_FILE)


@dataclass(frozen=True)
class Target:
    """One Jenkins to sync: its name, resolved settings and template variables."""

    name: str
    settings: Settings
    variables: tuple[tuple[str, str], ...] = ()


def parse_vars(text: str, where: str) -> tuple[tuple[str, str], ...]:
    """``"env=staging, label=docker"`` (commas or new lines) as sorted ``(name, value)`` pairs."""
    pairs = {}
    for part in text.replace("\n", ",").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"vars must be NAME=value pairs, got {part.strip()!r} ({where})")
        pairs[name.strip()] = value.strip()
    return tuple(sorted(pairs.items()))


def server_sections(ini: configparser.ConfigParser) -> list[str]:
    """The sections of ``ini`` that name a Jenkins, in file order."""
    return [s for s in ini.sections() if s not in _NOT_SERVERS and not s.startswith("plugin ")]


def resolve_targets(
    names: Sequence[str],
    all_targets: bool,
    flags: Mapping[str, object],
    *,
    env: Mapping[str, str] | None = None,
    prompt: Callable[[str], str] | None = None,
    wrapper_url: Callable[[str], str | None] | None = None,
) -> list[Target]:
    """The targets a command runs against (``--target`` names, or every server section).

    ``[jenkins]`` (the default target) takes the flags and environment as today; every other
    target only what its section (or its wrapper) says, so ``DINDJOBS_URL`` cannot make two
    targets the same Jenkins. Two targets that resolve to one URL are an error.
    """
    env = os.environ if env is None else env
    conf_value = flags.get("conf") or env.get(ENV_CONFIG)
    ini = read_ini(Path(str(conf_value))) if conf_value else configparser.ConfigParser(interpolation=None)
    if all_targets:
        names = [*server_sections(ini), *(n for n in names if n not in ini.sections())]
        if not names:
            raise ConfigError("--all-targets: the ini file names no Jenkins section",
                              hint="pass --conf FILE with [jenkins], [staging], ... sections")
    given = {k: v for k, v in flags.items() if v is not None}
    if len(dict.fromkeys(names)) > 1 and any(k in given for k in ("url", "user", "password_file", "token_file")):
        raise ConfigError("--url, --user, --password-file and --token-file name one Jenkins, not several targets",
                          hint="put each target's url and credentials in its ini section")
    others_flags = {k: v for k, v in given.items() if k not in _DEFAULT_ONLY_FLAGS}
    others_env = {k: v for k, v in env.items() if k not in _DEFAULT_ONLY_ENV}
    targets: list[Target] = []
    for name in dict.fromkeys(names):
        where = f"file {conf_value} [{name}]"
        if name == DEFAULT_TARGET:
            settings = load_settings(given, env, prompt, wrapper_url)
        elif ini.has_section(name):
            if not (ini.has_option(name, "url") or ini.has_option(name, "name")):
                raise ConfigError(f"target {name!r} has neither a url nor a wrapper name ({where})")
            settings = load_settings(others_flags, others_env, prompt, wrapper_url, section=name)
            if not ini.has_option(name, "name"):
                settings = replace(settings, name=name)  # no wrapper named: its own name in messages
        else:
            settings = load_settings({**others_flags, "name": name}, others_env, prompt, wrapper_url, section=name)
            if settings.url_source.startswith("default"):
                raise ConfigError(f"no target {name!r}: no such section in the ini and no wrapper of that name",
                                  hint="add a [section] with url and credentials, or start it with dindjobs up")
        variables = parse_vars(ini.get(name, "vars"), where) if ini.has_option(name, "vars") else ()
        targets.append(Target(name, settings, variables))
    seen: dict[str, str] = {}
    for target in targets:
        url = canonical_url(target.settings.url)
        if url in seen:
            raise ConfigError(f"targets {seen[url]!r} and {target.name!r} are the same Jenkins ({url})")
        seen[url] = target.name
    return targets


def combined_exit(codes: Sequence[int | None]) -> int:
    """One exit code for several targets; None stands for a target that could not run.

    1 when none could run, 3 when one could not or ended in 3 (partial failure), otherwise the
    worst of the rest (an error 1 of one target counts as its failure: 3)."""
    if codes and all(code is None for code in codes):
        return int(ExitCode.ERROR)
    ran = [code for code in codes if code is not None]
    if len(ran) < len(codes) or any(code in (ExitCode.ERROR, ExitCode.PARTIAL_FAILURE) for code in ran):
        return int(ExitCode.PARTIAL_FAILURE)
    return int(ExitCode.CHANGES_PENDING) if ExitCode.CHANGES_PENDING in ran else int(ExitCode.OK)


@dataclass
class Each(Generic[T]):
    """What one target gave back from :func:`run_each`, or the error that stopped it."""

    target: Target
    value: T | None = None
    error: DindjobsError | None = None


def run_each(targets: Sequence[Target], work: Callable[[Target], T]) -> list[Each[T]]:
    """``work(target)`` for every target at the same time; a target's error stays its own."""
    def one(target: Target) -> Each[T]:
        try:
            return Each(target, value=work(target))
        except DindjobsError as exc:
            return Each(target, error=exc)

    with ThreadPoolExecutor(max_workers=max(1, len(targets)), thread_name_prefix="target") as pool:
        return list(pool.map(one, targets))
