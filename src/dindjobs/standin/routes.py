"""Top-level routes: dashboard, remote API root, security, crumbs, views, queue, administration."""

from __future__ import annotations

import time
from typing import Any

from dindjobs.standin import jobroutes
from dindjobs.standin.api import Raw
from dindjobs.standin.model import Jenkins
from dindjobs.standin.queue import QueueView
from dindjobs.standin.responses import (
    XML,
    AccessDenied,
    Failure,
    NotFound,
    Response,
    json_response,
    redirect,
    text_response,
)
from dindjobs.standin.security import CRUMB_FIELD
from dindjobs.standin.server import Request
from dindjobs.standin.ui import router as ui
from dindjobs.standin.web import api_answer, check, index, require_post, root_url, simple_page

# Paths Jenkins serves without Overall/Read (ALWAYS_READABLE_PATHS and unprotected root actions).
ALWAYS_READABLE = {"login", "logout", "whoAmI", "securityRealm", "instance-identity", "error", "oops",
                   "accessDenied", "signup", "adjuncts", "tcpSlaveAgentListener", "federatedLoginService"} | ui.SIGN_IN_PATHS
TOKEN_GENERATOR = ["descriptorByName", "jenkins.security.ApiTokenProperty", "generateNewToken"]


def dispatch(app: Any, model: Jenkins, req: Request) -> Response:
    """Answer one request on a ready instance."""
    segs = req.segments
    head = segs[0] if segs else ""
    if head not in ALWAYS_READABLE:
        check(model, req, "Overall/Read")
    answer = ui.route(app, model, req)  # the web UI's pages and forms; None for the REST API
    if answer is not None:
        return answer
    rest = segs[1:]
    if head == "api":
        return api_answer(model, segs, req, model)
    if head == "job":
        return jobroutes.walk(model, req, rest)
    if head == "createItem" and not rest:
        require_post(req)
        return jobroutes.create_item(model, req, model)
    if head == "view":
        return view_route(model, req, rest)
    if head == "createView" and not rest:
        require_post(req)
        check(model, req, "View/Create")
        view = model.views.create(req.param("name"), req.content_type, req.body, req.param("mode"))
        if req.param("mode"):
            return redirect(req.root_url + view.url_path + "configure")
        return Response(200, b"", None)
    if head == "queue":
        return queue_route(model, req, rest)
    if head == "crumbIssuer":
        if not model.use_crumbs:
            raise NotFound()
        app.ensure_session(req)
        crumb = model.sessions.crumb(req.auth.name, req.client_ip, req.session_id)
        bean = Raw("hudson.security.csrf.DefaultCrumbIssuer", crumb=crumb, crumbRequestField=CRUMB_FIELD)
        return api_answer(bean, rest, req, model)
    if head == "whoAmI":
        if not rest:
            return index(req, model) or simple_page("Who Am I?", req.auth.name)
        return api_answer(whoami(req), rest, req, model)
    if head in ("me", "user"):
        return user_route(app, model, req, segs)
    if head in ("quietDown", "cancelQuietDown", "safeRestart", "restart") and not rest:
        return admin_route(app, model, req, head)
    if head == "computer":
        return computer_route(model, req, rest)
    if head == "pluginManager" and rest[:1] == ["api"]:
        check(model, req, "Overall/SystemRead")
        plugins = [Raw("hudson.PluginWrapper", 1, active=p.active, backupVersion=None, bundled=False,
                       deleted=False, dependencies=[], downgradable=False, enabled=p.active, hasUpdate=False,
                       longName=p.long_name, pinned=False, shortName=p.short_name, supportsDynamicLoad="MAYBE",
                       url=f"https://plugins.jenkins.io/{p.short_name}", version=p.version)
                   for p in model.plugins.values()]
        return api_answer(Raw("hudson.LocalPluginManager", plugins=plugins), rest, req, model)
    raise NotFound()


def whoami(req: Request) -> Raw:
    anonymous = req.auth.anonymous
    return Raw("hudson.security.WhoAmI", name=req.auth.name, anonymous=anonymous, authenticated=True,
               authorities=["anonymous"] if anonymous else ["authenticated"])


def user_route(app: Any, model: Jenkins, req: Request, segs: list[str]) -> Response:
    """``/me/...`` and ``/user/<id>/...``: the user's API and its token generator."""
    if segs[0] == "me":
        if req.auth.anonymous:
            raise AccessDenied("anonymous", "hudson.model.Hudson.Read", "Overall/Read",
                               message="/me is not available when not logged in")
        user_id, rest = req.auth.name, segs[1:]
    else:
        if len(segs) < 2 or segs[1] not in model.realm.users:
            raise NotFound()
        user_id, rest = segs[1], segs[2:]
    if not rest:
        return index(req, model) or simple_page(user_id, user_id)
    if rest == TOKEN_GENERATOR:
        require_post(req)
        if req.auth.name != user_id:
            check(model, req, "Overall/Administer")
        uid, value = model.realm.generate_token(user_id)
        name = req.param("newTokenName") or "Token created on " + time.strftime("%Y-%m-%dT%H:%M:%S")
        return json_response({"status": "ok", "data": {"tokenName": name, "tokenUuid": uid, "tokenValue": value}})
    user = Raw("hudson.model.User", absoluteUrl=root_url(model, req) + f"user/{user_id}", description=None,
               fullName=user_id, id=user_id, property=[Raw("jenkins.security.ApiTokenProperty")])
    return api_answer(user, rest, req, model)


def view_route(model: Jenkins, req: Request, rest: list[str]) -> Response:
    if not rest:
        raise NotFound()
    view = model.views.get(rest[0])
    if view is None:
        raise NotFound()
    check(model, req, "View/Read")
    sub = rest[1:]
    if not sub:
        return index(req, model) or simple_page(view.name, view.elem.findtext("description") or "")
    if sub[0] == "api":
        return api_answer(view, sub, req, model)
    if sub[0] == "job":
        return jobroutes.walk(model, req, sub[1:])
    if sub == ["config.xml"]:
        if req.method == "GET":
            return Response(200, view.xml().encode("utf-8"), XML)
        if req.method == "POST":
            check(model, req, "View/Configure")
            model.views.update(view, req.body.decode(req.charset(), "replace"))
            return Response(200, b"", None)
        raise Failure(f"Unexpected request method {req.method}")
    if sub == ["doDelete"]:
        require_post(req)
        check(model, req, "View/Delete")
        model.views.delete(view)
        return redirect(req.root_url)
    if sub == ["configure"]:
        return simple_page(f"{view.name} Config", view.name)
    raise NotFound()


def queue_route(model: Jenkins, req: Request, rest: list[str]) -> Response:
    if rest[:1] == ["api"]:
        return api_answer(QueueView(model.queue), rest, req, model)
    if rest == ["cancelItem"]:
        require_post(req)
        raw = req.param("id") or ""
        item = model.queue.get(int(raw)) if raw.isdigit() else None
        if item is None or item.state == "LeftItem":
            raise NotFound()
        check(model, req, "Job/Cancel", item.job)
        model.queue.cancel(item.id)
        return Response(204, b"", None)
    if len(rest) >= 2 and rest[0] == "item" and rest[1].isdigit():
        item = model.queue.get(int(rest[1]))
        if item is None or not model.policy.has(req.auth, "Job/Discover", item.job.full_name):
            raise NotFound()
        check(model, req, "Job/Read", item.job)
        if len(rest) == 2:
            moved = index(req, model)
            return moved or text_response(
                "Queue item exists. For details check, for example, "
                f"{root_url(model, req)}{item.url_path}api/json?tree=cancelled,executable[url]")
        return api_answer(item, rest[2:], req, model)
    if not rest:
        return index(req, model) or simple_page("Queue", "Build Queue")
    raise NotFound()


def admin_route(app: Any, model: Jenkins, req: Request, head: str) -> Response:
    check(model, req, "Overall/Manage")
    if head in ("safeRestart", "restart") and req.method != "POST":
        return simple_page("Restart", "Are you sure about restarting Jenkins?")
    require_post(req)
    home = req.root_url
    if head == "quietDown":
        with model.lock:
            model.quieting_down = True
            model.quiet_down_reason = req.param("message") or None
        if req.param("block") == "true":
            timeout = int(req.param("timeout") or 0) / 1000.0
            deadline = time.monotonic() + (timeout if timeout > 0 else 3600)
            with model.queue.cond:  # waiting releases the model lock the request holds
                while model.queue.active and time.monotonic() < deadline:
                    model.queue.cond.wait(max(0.01, deadline - time.monotonic()))
        return redirect(home)
    if head == "cancelQuietDown":
        app.cancel_quiet_down()
        return redirect(home)
    if head == "safeRestart":
        if req.param("cancel") is not None:
            app.cancel_quiet_down()
        else:
            app.restart(wait=False, safe=True, reason=req.param("message"))
        return redirect(home)
    app.restart(wait=False)
    return redirect(home)


BUILT_IN_NAMES = ("(built-in)", "(master)")


def _built_in(model: Jenkins) -> Raw:
    active = model.queue.active
    executors = [Raw("hudson.model.Executor", 1, currentExecutable=active.get(n), idle=n not in active,
                     likelyStuck=False, number=n - 1, progress=-1)
                 for n in range(1, model.queue.executors + 1)]
    return Raw("hudson.model.Hudson$MasterComputer", 1, displayName="Built-In Node", executors=executors,
               idle=not active, numExecutors=model.queue.executors, offline=False, temporarilyOffline=False,
               assignedLabels=[Raw(None, 2, name="built-in")])


def computer_route(model: Jenkins, req: Request, rest: list[str]) -> Response:
    """``/computer/api/json`` and ``/computer/(built-in)/api/json``: the one built-in node."""
    if rest[:1] == ["api"]:
        busy = len(model.queue.active)
        nodes = Raw("hudson.model.ComputerSet", 1, ("computer",), busyExecutors=busy, computer=[_built_in(model)],
                    displayName="Nodes", totalExecutors=model.queue.executors)
        return api_answer(nodes, rest, req, model)
    if rest and rest[0] in BUILT_IN_NAMES:
        if len(rest) == 1:
            return index(req, model) or simple_page("Built-In Node", "Built-In Node")
        return api_answer(_built_in(model), rest[1:], req, model)
    raise NotFound()
