"""Which rendered items need plugins the server lacks, checked before sync writes anything.

Jenkins refuses to create an item whose type comes from a plugin it does not have (a 500 on
createItem), but keeps and silently ignores a nested element whose plugin is missing (a
``timestamps`` wrapper without the Timestamper plugin does nothing). So, from the server's
plugin list: an item type it cannot create is an error before the first write; any other
component is a warning naming the job, the component and the plugin.

Which plugin a component needs comes from JJB's own documentation ("Requires the Jenkins
:jenkins-plugins:`...`", collected by :mod:`dindjobs.jobs.render`). The one table here,
``ITEM_TYPE_PLUGINS``, names the plugin that provides each item type by its XML root element,
because JJB documents umbrella plugins there (``workflow-aggregator`` for pipelines) while
Jenkins needs the one that holds the class (``workflow-job``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from dindjobs.errors import DindjobsError, JenkinsAuthError, JenkinsNotFoundError
from dindjobs.jobs.render import Rendered, RenderedItem

# XML root element of an item -> (plugin providing that item type, what such items are called).
ITEM_TYPE_PLUGINS = {
    "com.cloudbees.hudson.plugins.folder.Folder": ("cloudbees-folder", "folders"),
    "flow-definition": ("workflow-job", "pipeline jobs"),
    "org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject": ("workflow-multibranch",
                                                                              "multibranch pipeline jobs"),
    "matrix-project": ("matrix-project", "matrix jobs"),
    "maven2-moduleset": ("maven-plugin", "Maven jobs"),
}


@dataclass
class PluginReport:
    """What a check found: errors (item types the server cannot create) and warnings."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def server_plugins(client) -> set[str] | None:
    """Ids of the server's active plugins, or None when our user may not read them (or the
    server has no plugin manager API)."""
    data = client.get_json("pluginManager/api/json?tree=plugins[shortName,active]", what="the plugin list")
    return {p["shortName"] for p in data.get("plugins") or [] if p.get("active", True) and p.get("shortName")}


def check_items(items: list[RenderedItem], installed: set[str], url: str) -> PluginReport:
    """Errors and warnings for ``items`` on a server at ``url`` with the ``installed`` plugins."""
    report = PluginReport()
    missing: dict[tuple[str, str, str], list[str]] = {}  # (component, name, plugin) -> items
    for item in items:
        type_plugin, type_name = ITEM_TYPE_PLUGINS.get(item.root_tag, (None, None))
        for component, name, plugin in item.plugins:
            if component in ("project", "view"):
                plugin = type_plugin or plugin
                type_name = type_name or f"{component}-type {name} items"
                if plugin not in installed:
                    report.errors.append(f"{item.kind} {item.name}: {type_name} need the {plugin} plugin, "
                                         f"which {url} does not have")
                type_plugin = None  # reported (or present): not again below
            elif plugin not in installed:
                missing.setdefault((component, name, plugin), []).append(f"{item.kind} {item.name}")
        if type_plugin and type_plugin not in installed:  # a type JJB documents no plugin for
            report.errors.append(f"{item.kind} {item.name}: {type_name} need the {type_plugin} plugin, "
                                 f"which {url} does not have")
    for (component, name, plugin), users in missing.items():
        # One warning per component, naming its items (the first few of a long list).
        who = users[0] if len(users) == 1 else ", ".join(users[:3]) + (
            f" and {len(users) - 3} more" if len(users) > 3 else "")
        report.warnings.append(f"{who}: {component} '{name}' needs the {plugin} plugin, which {url} does not "
                               "have: Jenkins will keep the element but ignore it")
    return report


def check_plugins(rendered: Rendered, client, warn: Callable[[str], None]) -> PluginReport | None:
    """Check ``rendered`` against the server's plugins: warnings go to ``warn``, errors raise
    :class:`DindjobsError` (call it before the first write). None when the list cannot be read."""
    try:
        installed = server_plugins(client)
    except (JenkinsAuthError, JenkinsNotFoundError) as exc:
        warn(f"plugin check skipped: cannot read the plugin list of {client.url} ({exc.one_line()}); "
             "items needing a missing plugin will fail or be ignored by Jenkins")
        return None
    report = check_items(rendered.items, installed, client.url)
    for line in report.warnings:
        warn(line)
    if report.errors:
        more = f" (and {len(report.errors) - 1} more: {'; '.join(report.errors[1:])})" if len(report.errors) > 1 else ""
        raise DindjobsError(report.errors[0] + more,
                            hint="install the plugin (dind-image/plugins.txt, then rebuild the image), "
                                 "or remove those items; nothing was written")
    return report
