"""The UI's page layout: header, stand-in banner, breadcrumbs, tabs, status balls and the stylesheet.

Every value shown goes through :func:`esc`. Each page gets a fresh nonce; the
Content-Security-Policy allows only the inline style and script carrying it, so markup that
slipped through escaping still could not run.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from html import escape

from dindjobs.standin.queue import timespan
from dindjobs.standin.responses import HTML, Response
from dindjobs.standin.security import CRUMB_FIELD

BANNER = ("This is the <b>dindjobs stand-in</b>, not Jenkins: a small Python server that answers "
          "Jenkins' REST API and runs freestyle jobs' shell steps. It cannot install plugins, run "
          "Pipeline jobs, agents or SCM checkouts, or edit jobs and users in the browser: change jobs "
          "with <code>dindjobs sync</code>. The real wrapper image runs Jenkins itself.")

COLORS = {"blue": "Success", "red": "Failed", "yellow": "Unstable", "aborted": "Aborted",
          "notbuilt": "Not built", "disabled": "Disabled"}
RESULT_COLOR = {"SUCCESS": "blue", "FAILURE": "red", "UNSTABLE": "yellow", "ABORTED": "aborted",
                "NOT_BUILT": "notbuilt"}

CSS = """
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1d21;background:#f6f7f9}
a{color:#0b5cad;text-decoration:none}a:hover{text-decoration:underline}
header{display:flex;align-items:center;gap:1em;padding:.55em 1.2em;background:#1f2733;color:#fff}
header .brand{color:#fff;font-weight:600;font-size:1.1em}header .who{margin-left:auto;display:flex;gap:.8em;align-items:center}
header a,header button{color:#dbe6f5}header form{margin:0}
header button{background:none;border:1px solid #6d7d93;border-radius:4px;padding:.15em .7em;cursor:pointer;font:inherit}
.banner{margin:0;padding:.55em 1.2em;background:#fff4d6;border-bottom:1px solid #e8d18f;font-size:.9em}
nav.crumbs{padding:.5em 1.2em;font-size:.92em;border-bottom:1px solid #e3e6ea;background:#fff}
nav.crumbs span.sep{color:#8a929c;margin:0 .4em}
main{padding:1em 1.2em 3em;max-width:1200px}
h1{font-size:1.5em;margin:.2em 0 .6em;display:flex;align-items:center;gap:.45em}
h2{font-size:1.15em;margin:1.4em 0 .5em}
.tabs{display:flex;gap:.25em;border-bottom:1px solid #cfd5dc;margin-bottom:.8em}
.tabs a{padding:.35em .9em;border:1px solid transparent;border-bottom:none;border-radius:5px 5px 0 0;color:#333}
.tabs a.active{background:#fff;border-color:#cfd5dc;margin-bottom:-1px;font-weight:600}
table.list{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde1e6}
table.list th,table.list td{padding:.45em .7em;border-bottom:1px solid #eceef1;text-align:left;vertical-align:middle}
table.list th{background:#f0f2f5;font-weight:600;font-size:.9em}
.ball{display:inline-block;width:.95em;height:.95em;border-radius:50%;vertical-align:-.12em;background:#b7bec7;border:1px solid rgba(0,0,0,.15)}
.c-blue{background:#2e9e4f}.c-red{background:#d2322d}.c-yellow{background:#e8b10b}.c-aborted{background:#7c8590}
.c-notbuilt{background:#fff;border:2px solid #9aa3ad}.c-disabled{background:#d8dce0}
.anime{animation:pulse 1.1s ease-in-out infinite}
@keyframes pulse{50%{opacity:.3}}
.folder{display:inline-block;width:1.05em;height:.8em;background:#d9a640;border-radius:2px;vertical-align:-.05em;position:relative}
.folder:before{content:"";position:absolute;left:0;top:-.18em;width:.45em;height:.25em;background:#d9a640;border-radius:2px 2px 0 0}
.desc{white-space:pre-wrap;background:#fff;border:1px solid #e3e6ea;padding:.6em .8em;border-radius:4px}
.muted{color:#6b737d}
.result{font-weight:600}
.actions{display:flex;gap:.6em;align-items:center;margin:.6em 0 1em}
button.primary,a.button{background:#0b5cad;color:#fff;border:none;border-radius:4px;padding:.4em 1em;font:inherit;cursor:pointer;display:inline-block}
button.danger{background:#c0392b;color:#fff;border:none;border-radius:4px;padding:.3em .9em;font:inherit;cursor:pointer}
table.list form{margin:0}table.list button{font-size:.85em;padding:.2em .7em}
form.params label{display:block;font-weight:600;margin-top:.8em}
form.params .help{color:#6b737d;font-size:.9em;margin:.1em 0 .3em}
form.params input[type=text],form.params input[type=password],form.params textarea,form.params select{width:100%;max-width:42em;padding:.35em;font:inherit}
form.params textarea{font-family:ui-monospace,monospace;min-height:6em}
pre.console{background:#14171c;color:#e6e6e6;padding:.8em 1em;border-radius:4px;overflow-x:auto;white-space:pre-wrap;word-break:break-all;font:13px/1.4 ui-monospace,"DejaVu Sans Mono",monospace}
pre.console mark.evidence{background:#2f5d2f;color:#d9ffd0;font-weight:700;display:inline-block;width:100%;border-left:4px solid #7ee07e;padding-left:.3em}
.following{color:#6b737d;font-style:italic}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.25em 1.2em;background:#fff;border:1px solid #e3e6ea;padding:.7em 1em;border-radius:4px}
dl.facts dt{font-weight:600}dl.facts dd{margin:0}
.login{max-width:24em;margin:2em auto;background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:1.3em 1.5em}
.login label{display:block;margin-top:.7em;font-weight:600}.login input[type=text],.login input[type=password]{width:100%;padding:.45em;font:inherit}
.login button{margin-top:1.1em;width:100%}
.error{background:#fde8e7;border:1px solid #f1b3ae;color:#8a1f17;padding:.5em .8em;border-radius:4px}
"""


def esc(value: object) -> str:
    """HTML-escape anything shown (quotes too, so it is safe in attribute values)."""
    return escape("" if value is None else str(value), quote=True)


def ball(color: str) -> str:
    """A status ball for a Jenkins color (``blue``, ``red_anime`` …)."""
    base = color.removesuffix("_anime")
    label = COLORS.get(base, base) + (" (building)" if color.endswith("_anime") else "")
    anime = " anime" if color.endswith("_anime") else ""
    return f'<span class="ball c-{esc(base)}{anime}" title="{esc(label)}" role="img" aria-label="{esc(label)}"></span>'


def run_ball(run) -> str:
    if run.in_progress:
        return ball("notbuilt_anime")
    return ball(RESULT_COLOR.get(run.result or "", "notbuilt"))


def folder_icon() -> str:
    return '<span class="folder" title="Folder" role="img" aria-label="Folder"></span>'


def ago(timestamp_ms: int) -> str:
    return timespan(max(0.0, time.time() - timestamp_ms / 1000))


def when(timestamp_ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp_ms / 1000))


def link(path: str, text: str) -> str:
    """``path`` is a URL path from the root (already URL-encoded); ``text`` is escaped."""
    return f'<a href="/{esc(path)}">{esc(text)}</a>'


def crumbs(parts: Iterable[tuple[str, str]]) -> str:
    """Breadcrumbs: (root-relative path, label) pairs after "Dashboard"."""
    items = [link("", "Dashboard")] + [link(p, label) for p, label in parts]
    return '<nav class="crumbs">' + '<span class="sep">\u203a</span>'.join(items) + "</nav>"


def tabs(entries: Iterable[tuple[str, str, bool]]) -> str:
    """List-view tabs: (root-relative path, name, active)."""
    out = []
    for path, name, active in entries:
        cls = ' class="active"' if active else ""
        out.append(f'<a href="/{esc(path)}"{cls}>{esc(name)}</a>')
    return '<div class="tabs">' + "".join(out) + "</div>"


def hidden(name: str, value: str) -> str:
    return f'<input type="hidden" name="{esc(name)}" value="{esc(value)}">'


class Page:
    """One HTML page under construction: who is looking, their crumb, the nonce."""

    def __init__(self, user: str | None, crumb_field: str | None, crumb: str | None) -> None:
        self.user = user  # None: anonymous
        self.crumb_field = crumb_field  # None: CSRF protection is off
        self.crumb = crumb
        self.nonce = secrets.token_urlsafe(18)
        self.script = ""

    def crumb_input(self) -> str:
        """The hidden crumb field every state-changing form carries."""
        if self.crumb_field is None or self.crumb is None:
            return ""
        return hidden(self.crumb_field, self.crumb)

    def post_button(self, action: str, label: str, css: str = "primary", extra: str = "") -> str:
        """A form that POSTs to ``action`` (root-relative path, may carry a query) with the crumb."""
        return (f'<form method="post" action="/{esc(action)}">{self.crumb_input()}{extra}'
                f'<button type="submit" class="{esc(css)}">{esc(label)}</button></form>')

    def render(self, title: str, body: str, nav: str = "", status: int = 200,
               headers: list[tuple[str, str]] | None = None) -> Response:
        if self.user:
            who = (f'<span class="who"><span>{esc(self.user)}</span>'
                   f'{self.post_button("logout", "log out", css="")}</span>')
        else:
            who = '<span class="who"><a href="/login">log in</a></span>'
        script = f'<script nonce="{self.nonce}">{self.script}</script>' if self.script else ""
        doc = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
               "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
               f"<title>{esc(title)} [dindjobs stand-in]</title>"
               f"<style nonce=\"{self.nonce}\">{CSS}</style></head><body>"
               f'<header><a class="brand" href="/">dindjobs stand-in</a>{who}</header>'
               f'<p class="banner" role="note">{BANNER}</p>{nav}<main>{body}</main>{script}</body></html>\n')
        csp = (f"default-src 'none'; style-src 'nonce-{self.nonce}'; script-src 'nonce-{self.nonce}'; "
               "connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'self'")
        extra = [("Content-Security-Policy", csp), ("Cache-Control", "no-cache,no-store,must-revalidate"),
                 ("Referrer-Policy", "same-origin")]
        return Response(status, doc.encode("utf-8"), HTML, extra + (headers or []), kind="page")


def new_page(app, model, req) -> Page:
    """A page for this request: it gets an HTTP session (as Jenkins' layout does) and its crumb."""
    app.ensure_session(req)
    user = None if req.auth.anonymous else req.auth.name
    if not model.use_crumbs:
        return Page(user, None, None)
    return Page(user, CRUMB_FIELD, model.sessions.crumb(req.auth.name, req.client_ip, req.session_id))
