"""Routes under ``/job/<name>/...``: folders, jobs, config.xml, triggers and builds."""

from __future__ import annotations

import json
import re
from html import escape

from dindjobs.standin.api import Bean, Prop
from dindjobs.standin.items import Folder, ItemGroup, Job, check_good_name
from dindjobs.standin.model import Jenkins
from dindjobs.standin.responses import (
    TEXT,
    XML,
    AccessDenied,
    Failure,
    NotFound,
    Oops,
    Response,
    page,
    redirect,
)
from dindjobs.standin.runs import Cause, Run
from dindjobs.standin.server import Request
from dindjobs.standin.web import (
    api_answer,
    check,
    index,
    post_or_404,
    require_post,
    simple_page,
    visible,
)

PERMALINKS = ("lastBuild", "firstBuild", "lastCompletedBuild", "lastSuccessfulBuild", "lastStableBuild",
              "lastUnstableBuild", "lastFailedBuild", "lastUnsuccessfulBuild")


def walk(model: Jenkins, req: Request, segs: list[str]) -> Response:
    """``segs`` starts after the first ``job``: resolve nested items, then act on the last one."""
    group: ItemGroup = model
    while True:
        if not segs:
            raise NotFound()
        item = visible(model, req, group.get(segs[0]))
        rest = segs[1:]
        if isinstance(item, Folder) and len(rest) >= 1 and rest[0] == "job":
            group, segs = item, rest[1:]
            continue
        if isinstance(item, Folder):
            return folder_action(model, req, item, rest)
        return job_action(model, req, item, rest)


def create_item(model: Jenkins, req: Request, parent: ItemGroup) -> Response:
    """``createItem``: XML body, ``mode=<class>`` form, or ``mode=copy&from=``."""
    check(model, req, "Job/Create", parent if isinstance(parent, Folder) else None)
    content_type = req.content_type
    mode = req.param("mode")
    if content_type is None and mode != "copy":
        raise Failure("No Content-Type header set")
    is_xml = content_type is not None and content_type.startswith(("application/xml", "text/xml"))
    name = req.param("name")
    if name is None:
        raise Failure("Query parameter 'name' is required")
    check_good_name(name)
    name = name.strip()
    if parent.get(name) is not None:
        raise Failure(f"A job already exists with the name \u2018{name}\u2019")
    if mode == "copy":
        source_name = req.param("from") or ""
        relative = f"{parent.full_name}/{source_name}" if parent.full_name else source_name
        source = (model.find(relative) if not source_name.startswith("/") else None) or (
            model.find(source_name) if source_name.strip("/") else None)
        if source is None:
            raise Failure("Specify which job to copy" if not source_name else f"No such job: {source_name}")
        item = model.copy(parent, name, source)
    elif is_xml:
        model.create_from_xml(parent, name, req.body)
        return Response(200, b"", None)
    else:
        if not mode:
            raise Failure("No mode given")
        item = model.create_empty(parent, name, mode)
    return redirect(req.root_url + item.url_path + "configure")


def folder_action(model: Jenkins, req: Request, folder: Folder, rest: list[str]) -> Response:
    if not rest:
        return item_index(model, req, folder)
    head = rest[0]
    if head == "createItem" and len(rest) == 1:
        post_or_404(req)  # Folder.doCreateItem is @POST: a GET does not match
        return create_item(model, req, folder)
    if head == "view" and len(rest) >= 2 and rest[1] == "All":
        if len(rest) == 2:
            return index(req, model) or simple_page(folder.full_display_name, "All")
        return api_answer(_FolderAllView(folder), rest[2:], req, model)
    return common_action(model, req, folder, rest)


def job_action(model: Jenkins, req: Request, job: Job, rest: list[str]) -> Response:
    if not rest:
        return item_index(model, req, job)
    head = rest[0]
    if len(rest) == 1 and head in ("build", "buildWithParameters"):
        return trigger(model, req, job, head == "buildWithParameters")
    if len(rest) == 1 and head in ("enable", "disable"):
        require_post(req)
        check(model, req, "Job/Configure", job)
        model.set_disabled(job, head == "disable")
        return redirect(req.root_url + job.url_path)
    if head.isdigit() or head in PERMALINKS:
        run = job.runs.get(int(head)) if head.isdigit() else job.permalink(head)
        if run is None:
            raise NotFound()
        return run_action(model, req, job, run, rest[1:])
    return common_action(model, req, job, rest)


def common_action(model: Jenkins, req: Request, item, rest: list[str]) -> Response:
    head = rest[0]
    if head == "api":
        return api_answer(item, rest, req, model)
    if len(rest) == 1 and head == "config.xml":
        return config_xml(model, req, item)
    if len(rest) == 1 and head == "doDelete":
        require_post(req)
        check(model, req, "Job/Delete", item)
        model.delete(item, req.auth.name)
        return redirect(req.root_url + item.parent.url_path)
    if len(rest) == 1 and head == "configure":
        check(model, req, "Job/Configure", item)
        return page(f"{item.full_name} Config", f"<h1>Configure {escape(item.full_name)}</h1>")
    raise NotFound()


def item_index(model: Jenkins, req: Request, item) -> Response:
    if req.method == "DELETE":
        check(model, req, "Job/Delete", item)
        model.delete(item, req.auth.name)
        return Response(204, b"", None)
    moved = index(req, model)
    if moved:
        return moved
    return simple_page(item.full_display_name, item.settings.description or "")


def config_xml(model: Jenkins, req: Request, item) -> Response:
    if req.method == "GET":
        check(model, req, "Job/ExtendedRead", item)
        return Response(200, item.config.encode("utf-8"), XML)
    if req.method == "POST":
        check(model, req, "Job/Configure", item)
        model.update_config(item, req.body.decode(req.charset(), "replace"))
        return Response(200, b"", None)
    raise Failure(f"Unexpected request method {req.method}")


def trigger(model: Jenkins, req: Request, job: Job, with_params: bool) -> Response:
    """``build`` and ``buildWithParameters``: 201 + absolute Location of the queue item.

    The checks run in Jenkins' order: for ``build``, not buildable (409), then a GET on a
    parameterized job shows the form, then token or permission; for ``buildWithParameters``,
    token or permission, then 409, then "not parameterized" (500).
    """
    parameterized = bool(job.settings.parameters)
    if not with_params:
        if job.settings.disabled:
            raise Oops(f"{job.full_name} is not buildable", status=409)
        if parameterized and req.method != "POST":
            return page(job.full_name, "<h1>This build requires parameters</h1><form method='post'></form>")
    _check_build_permission(model, req, job)
    if job.settings.disabled:
        raise Oops(f"{job.full_name} is not buildable", status=409)
    delay = _delay(req.param("delay"))
    cause = Cause(None if req.auth.anonymous else req.auth.name)
    if not with_params:
        params = None
        if parameterized:
            submitted = req.form.get("json")
            if not submitted:
                raise Failure("Nothing is submitted")
            params = model.resolve_parameters(job, _json_params(submitted[0]))
        item, _ = model.queue.schedule(job, cause, params, delay)
        return redirect(req.root_url + item.url_path, 201)
    if not parameterized:
        raise Oops("This build is not parameterized!")
    params = model.resolve_parameters(job, req.params())
    item, created = model.queue.schedule(job, cause, params, delay)
    return redirect(req.root_url + item.url_path, 201 if created else 303)


def _check_build_permission(model: Jenkins, req: Request, job: Job) -> None:
    """``BuildAuthorizationToken.checkPermission``: the job's token, or BUILD and a POST."""
    token = req.param("token")
    if job.settings.auth_token and token is not None:
        if token != job.settings.auth_token:
            raise AccessDenied(req.auth.name, "hudson.model.Item.Build", "Job/Build",
                               message="Invalid token provided.")
        return
    check(model, req, "Job/Build", job)
    if req.method != "POST" and not req.auth.via_token:
        require_post(req)


def _delay(text: str | None) -> float | None:
    """``delay=5sec``, ``delay=2min``, or a bare number of milliseconds."""
    if not text:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*(ms|millis|sec|secs|seconds?|min|mins|minutes?|)\s*", text)
    if not m:
        raise Failure(f"Invalid delay: {text}")
    n = int(m.group(1))
    unit = m.group(2)
    if unit.startswith("s"):
        return float(n)
    if unit.startswith("min"):
        return n * 60.0
    return n / 1000.0


def _json_params(text: str) -> dict[str, list[str]]:
    try:
        data = json.loads(text)
    except ValueError:
        raise Failure("Nothing is submitted") from None
    entries = data.get("parameter", []) if isinstance(data, dict) else []
    if isinstance(entries, dict):
        entries = [entries]
    return {str(e.get("name")): [str(e.get("value", ""))] for e in entries if isinstance(e, dict)}


def run_action(model: Jenkins, req: Request, job: Job, run: Run, rest: list[str]) -> Response:
    if not rest:
        moved = index(req, model)
        return moved or simple_page(f"{job.full_display_name} #{run.number}", run.result or "in progress")
    head = rest[0]
    if head == "api":
        return api_answer(run, rest, req, model)
    if len(rest) == 1 and head == "consoleText":
        return Response(200, run.console_text(), TEXT)
    if len(rest) == 2 and head == "logText" and rest[1] == "progressiveText":
        try:
            start = int(req.param("start") or 0)
        except ValueError:
            start = 0
        text, offset, more = run.progressive(start)
        headers = [("X-Text-Size", str(offset))] + ([("X-More-Data", "true")] if more else [])
        return Response(200, text, TEXT, headers)
    if len(rest) == 1 and head == "stop":
        require_post(req)
        check(model, req, "Job/Cancel", job)
        run.abort(req.auth.name)
        back = req.headers.get("Referer") or (req.root_url + run.url_path)
        return redirect(back)
    if len(rest) == 1 and head == "doDelete":
        require_post(req)
        check(model, req, "Job/Delete", job)
        if run.in_progress:
            raise Oops("Unable to delete a build in progress")
        job.delete_run(run.number)
        return redirect(req.root_url + job.url_path)
    raise NotFound()


class _FolderAllView(Bean):
    """A folder's default ``All`` view."""

    java_class = "hudson.model.AllView"

    def __init__(self, folder: Folder) -> None:
        self.folder = folder

    def props(self, ctx) -> list[Prop]:
        return [Prop("description", None),
                Prop("jobs", lambda: [i for i in self.folder.items() if ctx.can_read(i)]),
                Prop("name", "All", 2), Prop("property", []),
                Prop("url", ctx.root_url + self.folder.url_path, 2)]
