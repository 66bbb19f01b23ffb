"""Folders and freestyle jobs: names, lookup, config.xml and their layout under the home.

Layout as Jenkins has it: ``jobs/<name>/config.xml``, folders nest as
``jobs/<folder>/jobs/<child>/``, a job keeps ``nextBuildNumber`` and ``builds/<n>/``. Names are
looked up case-insensitively and validated with ``Jenkins.checkGoodName``'s rules and messages.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Container, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from dindjobs.standin import xmlconfig
from dindjobs.standin.api import Bean, Prop, Raw
from dindjobs.standin.responses import Failure
from dindjobs.standin.runs import Run

log = logging.getLogger("dindjobs.standin")

UNSAFE = "?*/\\%!@#$^&|<>[]:;"
PIPELINE_REFUSAL = ("running pipelines needs jenkins.war: the dindjobs stand-in stores Pipeline jobs "
                    "but cannot run them (use the wrapper image built on jenkins/jenkins)")
RESULT_COLORS = {"SUCCESS": "blue", "UNSTABLE": "yellow", "FAILURE": "red", "ABORTED": "aborted",
                 "NOT_BUILT": "notbuilt"}


def check_good_name(name: str | None) -> None:
    """Raise Failure (400) with Jenkins' message if ``name`` is not a valid item name."""
    if not name:
        raise Failure("No name is specified")
    if name.strip() in (".", ".."):
        raise Failure(f"\u201c{name.strip()}\u201d is not an allowed name")
    for ch in name:
        if ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F:
            printable = "".join(f"\\u{ord(c):04x}" if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F else c
                                for c in name)
            raise Failure(f"No control code is allowed: {printable}")
        if ch in UNSAFE:
            raise Failure(f"\u2018{ch}\u2019 is an unsafe character")
    if name.strip().endswith("."):
        raise Failure("A name cannot end with \u2018.\u2019")


_RAW_SAFE = frozenset("!$&'()*+,-.=@_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def encode_name(name: str) -> str:
    """A name as a URL path segment, as Jenkins' ``Util.rawEncode`` does (space -> %20, + kept)."""
    return "".join(c if c in _RAW_SAFE else quote(c, safe="") if c != "~" else "%7E" for c in name)


class ItemGroup:
    """Something holding items: the root or a folder."""

    dir: Path
    url_path: str  # "" for the root, "job/a/job/b/" for a folder
    full_name: str

    def __init__(self) -> None:
        self.children: dict[str, Item] = {}

    def get(self, name: str) -> Item | None:
        return self.children.get(name.casefold())

    def items(self) -> list[Item]:
        """Children sorted by name, case-insensitively."""
        return sorted(self.children.values(), key=lambda i: i.name.casefold())

    def walk(self) -> Iterator[Item]:
        for item in self.items():
            yield item
            if isinstance(item, Folder):
                yield from item.walk()

    def child_dir(self, name: str) -> Path:
        return self.dir / "jobs" / name


class Item(Bean):
    """A top-level item: a folder or a job, with its stored config.xml text."""

    def __init__(self, parent: ItemGroup, name: str, config: str, version: str) -> None:
        self.parent = parent
        self.name = name
        self.version = version
        self.config = config
        self.settings = xmlconfig.read_settings(config)

    @property
    def dir(self) -> Path:
        return self.parent.child_dir(self.name)

    @property
    def full_name(self) -> str:
        return f"{self.parent.full_name}/{self.name}" if self.parent.full_name else self.name

    @property
    def url_path(self) -> str:
        return f"{self.parent.url_path}job/{encode_name(self.name)}/"

    @property
    def display_name(self) -> str:
        return self.settings.display_name or self.name

    @property
    def full_display_name(self) -> str:
        parent = getattr(self.parent, "full_display_name", "")
        return f"{parent} \u00bb {self.display_name}" if parent else self.display_name

    def set_config(self, text: str) -> None:
        """Store a new (already normalised) config.xml and reload the settings from it."""
        settings = xmlconfig.read_settings(text)
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / "config.xml.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.dir / "config.xml")
        self.config = text
        self.settings = settings

    def common_props(self, ctx: Any) -> list[Prop]:
        return [
            Prop("actions", []),
            Prop("description", self.settings.description),
            Prop("displayName", self.display_name),
            Prop("displayNameOrNull", self.settings.display_name),
            Prop("fullDisplayName", self.full_display_name),
            Prop("fullName", self.full_name),
            Prop("name", self.name, 2),
            Prop("url", lambda: ctx.root_url + self.url_path, 2),
        ]


class Folder(Item, ItemGroup):
    """``com.cloudbees.hudson.plugins.folder.Folder``."""

    java_class = xmlconfig.FOLDER

    def __init__(self, parent: ItemGroup, name: str, config: str, version: str) -> None:
        Item.__init__(self, parent, name, config, version)
        ItemGroup.__init__(self)

    def props(self, ctx: Any) -> list[Prop]:
        view = Raw("hudson.model.AllView", 2, name="All", url=ctx.root_url + self.url_path)
        return self.common_props(ctx) + [
            Prop("healthReport", []),
            Prop("jobs", lambda: [i for i in self.items() if ctx.can_read(i)]),
            Prop("primaryView", view),
            Prop("views", [view]),
        ]


class Job(Item):
    """``hudson.model.FreeStyleProject`` with its builds."""

    java_class = xmlconfig.FREESTYLE
    build_refusal: str | None = None  # why builds of this job cannot run here, if they cannot

    def __init__(self, parent: ItemGroup, name: str, config: str, version: str) -> None:
        super().__init__(parent, name, config, version)
        self.runs: dict[int, Run] = {}
        self.next_build_number = 1
        self.queue_item: Any = None  # set by the queue while an item for this job waits
        self.deleted = False  # a build still running after its job's deletion must not write

    # -- build history ------------------------------------------------------------------------
    def load_runs(self) -> None:
        path = self.dir / "nextBuildNumber"
        try:
            self.next_build_number = int(path.read_text().strip())
        except (OSError, ValueError):
            self.next_build_number = 1
        builds = self.dir / "builds"
        if builds.is_dir():
            for d in builds.iterdir():
                if d.name.isdigit() and (d / "build.xml").exists():
                    run = Run.load(self, d)
                    if run is not None:
                        self.runs[run.number] = run
        if self.runs:
            self.next_build_number = max(self.next_build_number, max(self.runs) + 1)

    def take_build_number(self) -> int:
        """Assign the next build number (at start, never reused) and persist the counter."""
        number = self.next_build_number
        self.next_build_number += 1
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "nextBuildNumber").write_text(f"{self.next_build_number}\n")
        return number

    def delete_run(self, number: int) -> None:
        self.runs.pop(number, None)
        shutil.rmtree(self.dir / "builds" / str(number), ignore_errors=True)

    def newest_first(self) -> list[Run]:
        return [self.runs[n] for n in sorted(self.runs, reverse=True)]

    def running(self) -> list[Run]:
        return [r for r in self.runs.values() if r.building]

    def permalink(self, name: str) -> Run | None:
        """``lastBuild``, ``lastSuccessfulBuild``, ... or None."""
        runs = self.newest_first()
        done = [r for r in runs if not r.building]
        pick = {
            "lastBuild": runs,
            "firstBuild": list(reversed(runs)),
            "lastCompletedBuild": done,
            "lastSuccessfulBuild": [r for r in done if r.result in ("SUCCESS", "UNSTABLE")],
            "lastStableBuild": [r for r in done if r.result == "SUCCESS"],
            "lastUnstableBuild": [r for r in done if r.result == "UNSTABLE"],
            "lastFailedBuild": [r for r in done if r.result == "FAILURE"],
            "lastUnsuccessfulBuild": [r for r in done if r.result != "SUCCESS"],
        }.get(name)
        return pick[0] if pick else None

    def estimated_duration(self) -> int:
        done = [r.duration for r in self.newest_first() if r.result == "SUCCESS"][:3]
        return int(sum(done) / len(done)) if done else -1

    @property
    def color(self) -> str:
        if self.settings.disabled:
            return "disabled"
        last = self.permalink("lastCompletedBuild")
        base = RESULT_COLORS.get(last.result or "", "notbuilt") if last else "notbuilt"
        return base + "_anime" if self.running() else base

    def props(self, ctx: Any) -> list[Prop]:
        def link(name: str) -> Any:
            return lambda: self.permalink(name)

        props = []
        if self.settings.parameters:
            defs = [_ParamDef(p) for p in self.settings.parameters]
            props.append(Raw("hudson.model.ParametersDefinitionProperty", 2, parameterDefinitions=defs))
        return self.common_props(ctx) + [
            Prop("buildable", not self.settings.disabled),
            Prop("builds", lambda: self.newest_first()[:100]),
            Prop("color", lambda: self.color, 2),
            Prop("firstBuild", link("firstBuild")),
            Prop("healthReport", []),
            Prop("inQueue", lambda: self.queue_item is not None),
            Prop("keepDependencies", False),
            Prop("lastBuild", link("lastBuild")),
            Prop("lastCompletedBuild", link("lastCompletedBuild")),
            Prop("lastFailedBuild", link("lastFailedBuild")),
            Prop("lastStableBuild", link("lastStableBuild")),
            Prop("lastSuccessfulBuild", link("lastSuccessfulBuild")),
            Prop("lastUnstableBuild", link("lastUnstableBuild")),
            Prop("lastUnsuccessfulBuild", link("lastUnsuccessfulBuild")),
            Prop("nextBuildNumber", self.next_build_number),
            Prop("property", props),
            Prop("queueItem", lambda: self.queue_item, inline=True),
            Prop("concurrentBuild", self.settings.concurrent),
            Prop("disabled", self.settings.disabled),
            Prop("downstreamProjects", []),
            Prop("labelExpression", self.settings.label),
            Prop("scm", Raw("hudson.scm.NullSCM")),
            Prop("upstreamProjects", []),
            Prop("allBuilds", lambda: self.newest_first(), -2),
        ]


class _ParamDef(Bean):
    def __init__(self, p: xmlconfig.Parameter) -> None:
        self.p = p
        self.java_class = p.kind

    def props(self, ctx: Any) -> list[Prop]:
        default = Raw(self.p.value_class, 4, name=self.p.name, value=self.p.default)
        return [Prop("defaultParameterValue", default, 3), Prop("description", None, 3),
                Prop("name", self.p.name, 3),
                Prop("type", self.p.kind.rsplit(".", 1)[-1], 3)]


class PipelineJob(Job):
    """``org.jenkinsci.plugins.workflow.job.WorkflowJob``: stored, read and deleted like any job;
    its builds end at once, since running a pipeline takes the Pipeline engine of jenkins.war."""

    java_class = xmlconfig.PIPELINE
    run_class = "org.jenkinsci.plugins.workflow.job.WorkflowRun"
    build_refusal = PIPELINE_REFUSAL


ITEM_CLASSES = {xmlconfig.FOLDER: Folder, xmlconfig.FREESTYLE: Job, xmlconfig.PIPELINE: PipelineJob}


def make_item(parent: ItemGroup, name: str, config: str, version: str, plugins: Container[str] | None = None) -> Item:
    """The item for a normalised config (raises xmlconfig.BadConfig, also for a type whose
    plugin is not among ``plugins`` when that is given)."""
    kind = xmlconfig.item_type(config, plugins)
    return ITEM_CLASSES[kind](parent, name, config, version)


def load_children(group: ItemGroup, version: str, plugins: Container[str] | None = None) -> None:
    """Load every item under ``group.dir / "jobs"`` (recursively); broken ones, and those whose
    plugin is missing, are skipped with a warning, as Jenkins does."""
    base = group.dir / "jobs"
    if not base.is_dir():
        return
    for d in sorted(base.iterdir()):
        cfg = d / "config.xml"
        if not cfg.is_file():
            continue
        try:
            item = make_item(group, d.name, cfg.read_text(encoding="utf-8"), version, plugins)
        except (xmlconfig.BadConfig, OSError, UnicodeDecodeError) as exc:
            log.warning("failed to load %s: %s", d, exc)
            continue
        group.children[d.name.casefold()] = item
        if isinstance(item, Folder):
            load_children(item, version, plugins)
        elif isinstance(item, Job):
            item.load_runs()
