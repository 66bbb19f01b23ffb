"""Helpers the route handlers share: permission checks, method rules, API answers, redirects."""

from __future__ import annotations

from html import escape
from typing import Any

from dindjobs.standin import api
from dindjobs.standin.model import Context, Jenkins
from dindjobs.standin.responses import (
    XML,
    AccessDenied,
    NotFound,
    Oops,
    RequirePost,
    Response,
    json_response,
    page,
    redirect,
    text_response,
)
from dindjobs.standin.security import PERMISSIONS
from dindjobs.standin.server import Request


def context(model: Jenkins, req: Request) -> Context:
    """The export context: absolute URLs from the request, reads filtered by permission."""
    root = model.configured_url or req.root_url
    return Context(root, lambda item: model.policy.has(req.auth, "Job/Read", item.full_name))


def root_url(model: Jenkins, req: Request) -> str:
    return model.configured_url or req.root_url


def check(model: Jenkins, req: Request, perm: str, item: Any = None) -> None:
    """Raise AccessDenied (403) unless the caller holds ``perm`` (on ``item``)."""
    name = item.full_name if item is not None else None
    if not model.policy.has(req.auth, perm, name):
        raise AccessDenied(req.auth.name, PERMISSIONS[perm], perm, "/" + "/".join(req.segments))


def visible(model: Jenkins, req: Request, item: Any) -> Any:
    """An item the caller may see: 404 without Discover (as if missing), 403 without Read."""
    if item is None or not model.policy.has(req.auth, "Job/Discover", item.full_name):
        raise NotFound()
    check(model, req, "Job/Read", item)
    return item


def require_post(req: Request) -> None:
    """``@RequirePOST``: GET or HEAD get 405 with ``Allow: POST``."""
    if req.method != "POST":
        raise RequirePost()


def post_or_404(req: Request) -> None:
    """``@POST``: other methods do not match, which ends as a 404."""
    if req.method != "POST":
        raise NotFound()


def index(req: Request, model: Jenkins) -> Response | None:
    """The trailing-slash redirect of an object's index page, or None if the path has the slash."""
    if req.trailing_slash:
        return None
    query = f"?{req.query_string}" if req.query_string else ""
    return redirect(req.root_url + req.raw_path.lstrip("/") + "/" + query)


def api_answer(bean: Any, rest: list[str], req: Request, model: Jenkins) -> Response:
    """``<object>/api/json`` (and a minimal ``api/xml``), with ``tree`` and ``depth``."""
    if len(rest) != 2 or rest[0] != "api" or rest[1] not in ("json", "xml"):
        raise NotFound()
    try:
        pruner = api.pruner_for(req.param("tree"), req.param("depth"))
    except api.BadQuery as exc:
        raise Oops(str(exc)) from None
    data = api.export(bean, pruner, context(model, req))
    if rest[1] == "json":
        return json_response(data)
    xpath = req.param("xpath")
    if xpath is not None:
        if xpath.replace(" ", "") == 'concat(//crumbRequestField,":",//crumb)' and "crumb" in data:
            return text_response(f"{data['crumbRequestField']}:{data['crumb']}")
        raise Oops("unsupported xpath")
    root = (bean.java_class or "object").rsplit(".", 1)[-1].replace("$", "-")
    r = Response(200, api.to_xml(data, root[:1].lower() + root[1:]).encode("utf-8"), XML, kind="api")
    return r


def simple_page(title: str, text: str, status: int = 200) -> Response:
    return page(title, f"<h1>{escape(title)}</h1><p>{escape(text)}</p>", status=status)


def param_or_none(req: Request, name: str) -> str | None:
    value = req.param(name)
    return value if value else None
