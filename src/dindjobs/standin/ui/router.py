"""Which requests the UI answers. Everything else (the REST API) goes on to the stand-in's routes unchanged.

The UI takes: the sign-in paths; GET/HEAD of ``/``, ``/view/NAME/``, item pages (with their
trailing slash), a parameterized job's ``build`` form, ``/job/…/N/`` and ``/job/…/N/console``;
and the POST of its own build forms (they carry ``redirectTo``, which the REST clients never send),
whose 201 it turns into a 303 back to a page, as Jenkins' UI does with ``statusCode=303``.
"""

from __future__ import annotations

from typing import Any

from dindjobs.standin import jobroutes
from dindjobs.standin.items import Folder, Job
from dindjobs.standin.responses import Response, redirect
from dindjobs.standin.server import Request
from dindjobs.standin.ui import pages, signin
from dindjobs.standin.ui.html import new_page
from dindjobs.standin.ui.session import SIGN_IN_PATH, safe_target
from dindjobs.standin.web import check, visible

# Paths readable without Overall/Read, on top of Jenkins' own list (``login``, ``logout`` …).
SIGN_IN_PATHS = {"loginError", SIGN_IN_PATH[0]}


def route(app: Any, model: Any, req: Request) -> Response | None:
    """The UI's answer to ``req``, or None to let the REST routes answer."""
    segs = req.segments
    head = segs[0] if segs else ""
    if len(segs) == 1 and head in ("login", "loginError"):
        return signin.login_page(app, model, req, failed=head == "loginError")
    if segs == SIGN_IN_PATH:
        return signin.sign_in(app, model, req)
    if segs == ["logout"]:
        return signin.logout(model, req)
    job_segs = _job_segments(segs)
    if req.method == "POST":
        return _form_trigger(model, req, job_segs) if job_segs else None
    if req.method not in ("GET", "HEAD"):
        return None
    if not segs:
        return pages.dashboard(new_page(app, model, req), model, req)
    if head == "view" and len(segs) == 2 and req.trailing_slash:
        view = model.views.get(segs[1])
        if view is None:
            return None
        check(model, req, "View/Read")
        return pages.dashboard(new_page(app, model, req), model, req, view)
    return _item_page(app, model, req, job_segs) if job_segs else None


def _job_segments(segs: list[str]) -> list[str] | None:
    """The segments after the first ``job`` of ``/job/…`` or ``/view/NAME/job/…``."""
    if segs[:1] == ["job"]:
        return segs[1:]
    if segs[:1] == ["view"] and len(segs) > 2 and segs[2] == "job":
        return segs[3:]
    return None


def _resolve(model: Any, req: Request, segs: list[str]) -> tuple[Any, list[str]] | None:
    """(item, remaining segments); 404/403 as the REST routes give them; None if nothing matches."""
    group = model
    while segs:
        item = group.get(segs[0])
        if item is None:
            return None
        visible(model, req, item)
        rest = segs[1:]
        if isinstance(item, Folder) and rest[:1] == ["job"]:
            group, segs = item, rest[1:]
            continue
        return item, rest
    return None


def _item_page(app: Any, model: Any, req: Request, segs: list[str]) -> Response | None:
    found = _resolve(model, req, segs)
    if found is None:
        return None
    item, rest = found
    if not rest:
        if not req.trailing_slash:
            return None  # the REST routes redirect to the slash
        page = new_page(app, model, req)
        return pages.folder_page(page, model, req, item) if isinstance(item, Folder) else \
            pages.job_page(page, model, req, item)
    if not isinstance(item, Job):
        return None
    if rest == ["build"] and item.settings.parameters and not item.settings.disabled:
        return pages.parameters_form(new_page(app, model, req), item)
    head = rest[0]
    if not (head.isdigit() or head in jobroutes.PERMALINKS):
        return None
    run = item.runs.get(int(head)) if head.isdigit() else item.permalink(head)
    if run is None:
        return None
    if rest[1:] == [] and req.trailing_slash:
        return pages.run_page(new_page(app, model, req), model, req, run)
    if rest[1:] == ["console"]:
        return pages.console_page(new_page(app, model, req), model, req, run)
    return None


def _form_trigger(model: Any, req: Request, segs: list[str]) -> Response | None:
    """The UI's Build forms: the REST trigger (same checks), then a 303 to ``redirectTo``."""
    back = req.form.get("redirectTo")
    if not back:
        return None
    found = _resolve(model, req, segs)
    if found is None:
        return None
    job, rest = found
    if not isinstance(job, Job) or rest not in (["build"], ["buildWithParameters"]):
        return None
    for p in job.settings.parameters:
        if pages.kind_of(p) == "password" and req.form.get(p.name) == [""]:
            del req.form[p.name]  # an empty password field keeps the default
    answer = jobroutes.walk(model, req, segs)
    if answer.status not in (201, 303):
        return answer
    target = "/" + job.url_path if back[0] == "." else safe_target(back[0])
    return redirect(signin.location(req, target or "/" + job.url_path), 303)
