"""The live "Jenkins" of one boot: the item tree, queue, views, sessions, and item operations.

A restart throws this object away and loads a new one from the same home, which is how jobs,
build history, queue ids and tokens survive while sessions (and so crumbs) do not.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from dindjobs.standin import xmlconfig
from dindjobs.standin.api import Bean, Prop, Raw
from dindjobs.standin.items import Folder, Item, ItemGroup, Job, check_good_name, load_children, make_item
from dindjobs.standin.plugins import Plugin
from dindjobs.standin.plugins import installed as installed_plugins
from dindjobs.standin.queue import Queue
from dindjobs.standin.responses import Failure, NotFound, Oops
from dindjobs.standin.runs import Run
from dindjobs.standin.security import Policy, Realm, Sessions
from dindjobs.standin.ui.session import SignIns
from dindjobs.standin.views import Views

# The Jenkins version whose REST behaviour the stand-in imitates: the one the image pins.
VERSION = "2.580.2"
NEW_ITEM_MODES = {xmlconfig.FREESTYLE, xmlconfig.FOLDER, xmlconfig.PIPELINE}


class Context:
    """Per-request facts the JSON export needs: the root URL and who is asking."""

    def __init__(self, root_url: str, can_read) -> None:
        self.root_url = root_url
        self.can_read = can_read


class Jenkins(ItemGroup, Bean):
    """``hudson.model.Hudson``: the root item group and everything one boot holds."""

    java_class = "hudson.model.Hudson"
    url_path = ""
    full_name = ""
    full_display_name = ""

    def __init__(self, home: Path, realm: Realm, policy: Policy, salt: str, *, executors: int,
                 quiet_period: float, root_url: str | None, post_production_delay: float = 0.0,
                 system_message: str | None = None) -> None:
        super().__init__()
        self.home = home
        self.dir = home
        self.version = VERSION
        self.realm = realm
        self.policy = policy
        self.lock = threading.RLock()
        self.session_hash = hashlib.sha256(f"{VERSION}{time.time_ns()}{secrets.token_hex(8)}".encode()).hexdigest()[:8]
        self.sessions = Sessions(salt)
        self.signins = SignIns()  # browser sign-ins, by session id
        self.queue = Queue(self, executors, quiet_period)
        self.views = Views(self, home)
        self.configured_url = root_url
        self.fallback_url = root_url or "http://127.0.0.1:8080/"
        self.post_production_delay = post_production_delay
        self.post_production_release = threading.Event()  # set: post-production pauses end now
        self.quieting_down = False
        self.quiet_down_reason: str | None = None
        self.use_crumbs = True
        self.system_message = system_message
        self.plugins: dict[str, Plugin] = {}
        self._workspaces: set[Path] = set()

    @property
    def active_plugins(self) -> set[str]:
        """Ids of the active plugins: what decides which item types load."""
        return {p.short_name for p in self.plugins.values() if p.active}

    def load(self) -> None:
        """Read the plugins, item tree, queue and views from the home directory."""
        self.plugins = installed_plugins(self.home)
        (self.home / "jobs").mkdir(parents=True, exist_ok=True)
        load_children(self, self.version, self.active_plugins)
        self.views.load()
        self.queue.load()
        if not (self.home / "config.xml").exists():
            self.views.save()

    def props(self, ctx: Any) -> list[Prop]:
        return [
            Prop("assignedLabels", [Raw(None, 2, name="built-in")]),
            Prop("mode", "NORMAL"),
            Prop("nodeDescription", "the Jenkins controller's built-in node"),
            Prop("nodeName", ""),
            Prop("numExecutors", self.queue.executors),
            Prop("description", self.system_message),
            Prop("jobs", lambda: [i for i in self.items() if ctx.can_read(i)]),
            Prop("overallLoad", {}),
            Prop("primaryView", self.views.primary),
            Prop("quietDownReason", self.quiet_down_reason),
            Prop("quietingDown", self.quieting_down),
            Prop("slaveAgentPort", 50000),
            Prop("unlabeledLoad", Raw("jenkins.model.UnlabeledLoadStatistics")),
            Prop("url", self.configured_url),
            Prop("useCrumbs", self.use_crumbs),
            Prop("useSecurity", True),
            Prop("views", lambda: list(self.views.views)),
        ]

    # -- lookup -------------------------------------------------------------------------------
    def find(self, full_name: str) -> Item | None:
        """An item by slash-separated full name, case-insensitively."""
        group: Any = self
        item = None
        for part in full_name.strip("/").split("/"):
            if not isinstance(group, ItemGroup):
                return None
            item = group.get(part)
            if item is None:
                return None
            group = item
        return item

    def find_job(self, full_name: str) -> Job | None:
        item = self.find(full_name)
        return item if isinstance(item, Job) else None

    # -- item operations ----------------------------------------------------------------------
    def create_from_xml(self, parent: ItemGroup, name: str, body: bytes) -> Item:
        """XML-mode createItem: the name was checked; Oops (500) on bad XML, nothing left behind."""
        self._check_free(parent, name)
        try:
            text = xmlconfig.normalise(body)
            return self._install(parent, name, text)
        except xmlconfig.BadConfig as exc:
            raise Oops(str(exc)) from None

    def create_empty(self, parent: ItemGroup, name: str, mode: str) -> Item:
        """Form-mode createItem (``mode=<class>``): an empty item saved by "XStream"."""
        if mode not in NEW_ITEM_MODES or xmlconfig.TYPE_PLUGINS.get(mode, "") not in {"", *self.active_plugins}:
            raise Failure(f"No item type \u2018{mode}\u2019 is known")
        self._check_free(parent, name)
        return self._install(parent, name, xmlconfig.EMPTY_CONFIGS[mode])

    def copy(self, parent: ItemGroup, name: str, source: Item) -> Item:
        """``mode=copy``: the source's config.xml byte for byte, a fresh build history."""
        self._check_free(parent, name)
        return self._install(parent, name, source.config)

    def _install(self, parent: ItemGroup, name: str, text: str) -> Item:
        """A new item under ``parent`` with config ``text``, in a fresh directory (build #1 next)."""
        item = make_item(parent, name, text, self.version, self.active_plugins)  # raises BadConfig before anything is written
        if parent.child_dir(name).exists():
            shutil.rmtree(parent.child_dir(name))
        item.set_config(text)
        parent.children[name.casefold()] = item
        return item

    def _check_free(self, parent: ItemGroup, name: str) -> None:
        if parent.get(name) is not None:
            raise Failure(f"A job already exists with the name \u2018{name}\u2019")

    def update_config(self, item: Item, text: str) -> None:
        """config.xml POST: Oops (500) on bad XML or another item type; the old config is kept."""
        try:
            normalised = xmlconfig.normalise(text)
            kind = xmlconfig.item_type(normalised, self.active_plugins)
        except xmlconfig.BadConfig as exc:
            raise Oops(str(exc)) from None
        if kind != item.java_class:
            raise Oops(f"Expecting class {item.java_class} but got {kind} instead")
        item.set_config(normalised)

    def delete(self, item: Item, by: str) -> None:
        """Delete an item; folders take their children, running builds are aborted."""
        jobs = [item] if isinstance(item, Job) else [i for i in item.walk() if isinstance(i, Job)]
        for job in jobs:
            if isinstance(job, Job):
                job.deleted = True
                self.queue.cancel_job(job)
                for run in job.running():
                    run.abort(by)
        item.parent.children.pop(item.name.casefold(), None)
        shutil.rmtree(item.dir, ignore_errors=True)

    def set_disabled(self, job: Job, disabled: bool) -> None:
        """enable/disable: a Jenkins-initiated save; disabling drops the job's queue items."""
        job.set_config(xmlconfig.jenkins_save(job.config, disabled=disabled))
        if disabled:
            self.queue.cancel_job(job)

    # -- builds -------------------------------------------------------------------------------
    def workspace_for(self, job: Job) -> Path:
        """``<home>/workspace/<full name>``, or ``@2``, ``@3``... while that one is in use."""
        base = self.home / "workspace" / job.full_name
        candidate, n = base, 1
        while candidate in self._workspaces:
            n += 1
            candidate = base.with_name(f"{base.name}@{n}")
        self._workspaces.add(candidate)
        return candidate

    def release_workspace(self, path: Path) -> None:
        self._workspaces.discard(path)

    def build_env(self, run: Run, workspace: Path) -> dict[str, str]:
        """The environment of a build: the server's, plus Jenkins' usual variables and parameters."""
        job = run.job
        root = self.configured_url or self.fallback_url
        env = dict(os.environ)
        tag = f"jenkins-{job.full_name}-{run.number}".replace("/", "-")
        env.update({
            "BUILD_NUMBER": str(run.number), "BUILD_ID": str(run.number),
            "BUILD_DISPLAY_NAME": f"#{run.number}", "BUILD_TAG": tag,
            "JOB_NAME": job.full_name, "JOB_BASE_NAME": job.name,
            "JOB_URL": root + job.url_path, "BUILD_URL": root + run.url_path,
            "JENKINS_URL": root, "WORKSPACE": str(workspace),
            "WORKSPACE_TMP": str(workspace.with_name(workspace.name + "@tmp")),
            "JENKINS_HOME": str(self.home), "EXECUTOR_NUMBER": str(run.executor_number),
            "NODE_NAME": "built-in", "NODE_LABELS": "built-in",
            "JENKINS_NODE_COOKIE": secrets.token_hex(16), "CI": "true",
        })
        for name, value, _cls in run.params:
            env[name] = value
        return env

    def resolve_parameters(self, job: Job, given: dict[str, list[str]]) -> list[tuple[str, str, str]]:
        """Parameter values for a trigger: given ones, defaults for the rest, unknown ones ignored."""
        values = []
        for p in job.settings.parameters:
            value = given[p.name][0] if p.name in given else p.default
            values.append((p.name, value, p.value_class))
        return values


def require(item: Any) -> Any:
    """Raise NotFound when ``item`` is None."""
    if item is None:
        raise NotFound()
    return item


__all__ = ["Context", "Folder", "Jenkins", "Job", "VERSION", "check_good_name", "require"]
