"""``/login``, ``/j_spring_security_check``, ``/loginError`` and ``/logout``, as the pinned Jenkins has them.

The form posts ``j_username``, ``j_password``, ``from`` and the session's crumb (required since
2.528.3 LTS: without it the sign-in fails like a wrong password). Success replaces the session id
and sends the browser back to ``from`` when that is a path on this server, else to the dashboard.
Failure goes to ``/loginError`` (401), which never says whether the name or the password was wrong.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from dindjobs.standin.responses import Response, redirect
from dindjobs.standin.security import CRUMB_FIELD
from dindjobs.standin.server import Request
from dindjobs.standin.ui.html import hidden, new_page
from dindjobs.standin.ui.session import COOKIE_FLAGS, safe_target
from dindjobs.standin.web import require_post

log = logging.getLogger("dindjobs.standin")

# Characters kept as they are when a ``from`` path becomes a Location header.
_PATH_SAFE = "/?=&%:@!$'()*+,;~-._"


def location(req: Request, target: str | None) -> str:
    """The absolute URL of a safe ``from`` path (or of the dashboard)."""
    return req.root_url + (quote(target[1:], safe=_PATH_SAFE) if target else "")


def login_page(app, model, req: Request, failed: bool = False) -> Response:
    """The sign-in form (``/login``), or with the failure message and 401 (``/loginError``)."""
    page = new_page(app, model, req)
    target = safe_target(req.param("from")) or ""
    error = '<p class="error" role="alert">Invalid username or password</p>' if failed else ""
    body = (f'<div class="login"><h1>Sign in</h1>{error}'
            '<form name="login" method="post" action="/j_spring_security_check">'
            '<label for="j_username">Username</label>'
            '<input type="text" id="j_username" name="j_username" autocomplete="username" autofocus required>'
            '<label for="j_password">Password</label>'
            '<input type="password" id="j_password" name="j_password" autocomplete="current-password" required>'
            f'{hidden("from", target)}{page.crumb_input()}'
            '<button type="submit" name="Submit" class="primary">Sign in</button></form>'
            '<p class="muted">On the wrapper, the admin\'s password is in the file that '
            '<code>make demo</code> and <code>dindjobs up</code> name.</p></div>')
    return page.render("Sign in", body, status=401 if failed else 200)


def sign_in(app, model, req: Request) -> Response:
    """``POST /j_spring_security_check``: check the crumb and the password, then rotate the session."""
    require_post(req)
    target = safe_target(req.param("from"))
    name = (req.form.get("j_username") or [""])[0]
    password = (req.form.get("j_password") or [""])[0]
    crumb_ok = not model.use_crumbs or model.sessions.crumb_ok(
        req.headers.get(CRUMB_FIELD) or req.param(CRUMB_FIELD), req.auth.name, req.client_ip, req.session_id)
    user = model.realm.users.get(name)
    if not (crumb_ok and user is not None and user.password_matches(password)):
        log.info("sign-in failed for %r from %s%s", name, req.client_ip, "" if crumb_ok else " (no valid crumb)")
        query = f"?from={quote(target, safe='')}" if target else ""
        return redirect(req.root_url + "loginError" + query)
    model.signins.drop(req.session_id)
    req.session_id = model.sessions.create()  # a new id: a session planted before sign-in stays anonymous
    req.new_session = True
    model.signins.add(req.session_id, user.name)
    log.info("%s signed in from %s", user.name, req.client_ip)
    return redirect(location(req, target))


def logout(model, req: Request) -> Response:
    """``/logout``: forget the sign-in, expire the cookie, back to the dashboard (any verb, as Jenkins)."""
    model.signins.drop(req.session_id)
    r = redirect(req.root_url)
    r.headers.append(("Set-Cookie", f"{model.sessions.cookie_name}=; Max-Age=0; "
                                    f"Expires=Thu, 01 Jan 1970 00:00:00 GMT; {COOKIE_FLAGS}"))
    return r

