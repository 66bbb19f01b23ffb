"""Answers the stand-in gives, and the error pages Jenkins and Jetty render.

Handlers return a :class:`Response` or raise one of the :class:`HttpError` subclasses; each
subclass renders the body Jenkins would (``Failure`` with ``X-Error``, the "Oops!" page without
the exception message, Jetty's ``HTTP ERROR`` page, the "Authentication required" page).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from html import escape
from typing import Any

HTML = "text/html;charset=utf-8"
TEXT = "text/plain;charset=utf-8"
JSON = "application/json;charset=utf-8"
XML = "application/xml"

REASONS = {
    200: "OK", 201: "Created", 204: "No Content", 302: "Found", 303: "See Other",
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 409: "Conflict", 422: "Unprocessable Entity",
    500: "Server Error", 501: "Not Implemented", 503: "Service Unavailable",
}


@dataclasses.dataclass
class Response:
    """Status, body and headers of one answer."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = None
    headers: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    # Which Jenkins headers to add: "api" (X-Jenkins, session, nosniff), "page" (also X-Hudson),
    # "plain" (X-Jenkins and session only) or "none" (container-level answers).
    kind: str = "plain"
    set_session: bool = False  # create an HTTP session and send its cookie


def json_response(data: Any, *, status: int = 200) -> Response:
    """An API answer: compact JSON, Jenkins' API headers."""
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Response(status, body, JSON, kind="api")


def text_response(text: str, *, status: int = 200, content_type: str = TEXT) -> Response:
    return Response(status, text.encode("utf-8"), content_type)


def page(title: str, body_html: str, *, status: int = 200) -> Response:
    """A layout-rendered HTML page (carries X-Hudson and X-Jenkins)."""
    doc = (f"<!DOCTYPE html><html><head><title>{escape(title)} [Jenkins]</title></head>"
           f"<body>{body_html}</body></html>\n")
    return Response(status, doc.encode("utf-8"), HTML, kind="page")


def redirect(location: str, status: int = 302) -> Response:
    return Response(status, b"", None, [("Location", location)])


class HttpError(Exception):
    """An error answer; ``response()`` renders it."""

    status = 500

    def response(self) -> Response:
        raise NotImplementedError


class Failure(HttpError):
    """Bad user input: 400, ``<h1>Error</h1>`` page and ``X-Error: <message>``."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def response(self) -> Response:
        r = page("Error", f"<h1>Error</h1><p>{escape(self.message)}</p>", status=400)
        r.headers.append(("X-Error", self.message))
        return r


class Oops(HttpError):
    """An uncaught exception (500) or ``HttpResponses.error(code, ...)``: no message in the body."""

    def __init__(self, detail: str = "", status: int = 500) -> None:
        super().__init__(detail)
        self.status = status

    def response(self) -> Response:
        body = ("<h1>Oops!</h1><p>A problem occurred while processing the request.</p>"
                f"<p>Logging ID={uuid.uuid4()}</p>")
        return page("Jenkins", body, status=self.status)


class NotFound(HttpError):
    """404 with Jenkins' not-found page."""

    status = 404

    def response(self) -> Response:
        return page("Not Found", "<h2>Not Found</h2><p>This page may not exist, or you may not "
                    "have permission to see it.</p>", status=404)


class JettyError(HttpError):
    """A container ``sendError``: Jetty's page, standard reason phrase, no Jenkins headers."""

    def __init__(self, status: int, message: str, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = headers or []
        self.uri = "/"

    def response(self) -> Response:
        m = escape(self.message)
        doc = (f"<html>\n<head>\n<meta http-equiv=\"Content-Type\" content=\"text/html;charset=utf-8\"/>\n"
               f"<title>Error {self.status} {m}</title>\n</head>\n<body><h2>HTTP ERROR {self.status} {m}</h2>\n"
               f"<table>\n<tr><th>URI:</th><td>{escape(self.uri)}</td></tr>\n<tr><th>STATUS:</th><td>{self.status}</td></tr>\n"
               f"<tr><th>MESSAGE:</th><td>{m}</td></tr>\n</table>\n</body>\n</html>\n")
        return Response(self.status, doc.encode("utf-8"), HTML, list(self.extra), kind="none")


class AccessDenied(HttpError):
    """403 for a missing permission: "Authentication required" for anonymous, else access denied."""

    status = 403

    def __init__(self, user: str, permission_id: str, short: str, path: str = "/",
                 message: str | None = None) -> None:
        super().__init__(message or f"{user} is missing the {short} permission")
        self.user = user
        self.permission_id = permission_id
        self.short = short
        self.path = path

    def response(self) -> Response:
        headers = [("X-You-Are-Authenticated-As", self.user),
                   ("X-You-Are-In-Group-Disabled", "JENKINS-39402: use -Dhudson.security.AccessDeniedException2"
                    ".REPORT_GROUP_HEADERS=true or use /whoAmI to diagnose"),
                   ("X-Required-Permission", self.permission_id),
                   ("X-Permission-Implied-By", "hudson.security.Permission.GenericRead"),
                   ("X-Permission-Implied-By", "hudson.model.Hudson.Administer")]
        if self.user == "anonymous":
            body = (f'<meta http-equiv="refresh" content="1;url=/login?from={escape(self.path)}"/>'
                    "<p>Authentication required</p>"
                    f"<!-- {escape(str(self))} -->")
            r = page("Authentication required", body, status=403)
        else:
            r = page("Access Denied", f"<h1>Access Denied</h1><p>{escape(str(self))}</p>", status=403)
        r.headers.extend(headers)
        return r


class RequirePost(HttpError):
    """405 for a GET or HEAD on a ``@RequirePOST`` method, with the "requires POST" page."""

    status = 405

    def response(self) -> Response:
        r = page("This URL requires POST", "<h1>This URL requires POST</h1><p>The URL you're trying "
                 "to access requires that requests be sent using POST (like when submitting a form). "
                 "</p><form method='POST'><input type='submit' value='Try POSTing'/></form>", status=405)
        r.headers.append(("Allow", "POST"))
        return r


def loading_page() -> Response:
    """503 while Jenkins starts: no X-Jenkins header."""
    body = ('<!DOCTYPE html><html><head><title>Starting Jenkins</title>'
            '<meta http-equiv="refresh" content="10"></head><body><div>'
            "<h1>Jenkins is getting ready to work</h1><p>Your browser will reload automatically "
            "when Jenkins is ready.</p></div></body></html>\n")
    return _unready(body)


def restarting_page() -> Response:
    """503 while Jenkins restarts."""
    body = ('<!DOCTYPE html><html><head><title>Restarting Jenkins</title>'
            '<meta http-equiv="refresh" content="5"></head><body><div>'
            "<h1>Please wait while Jenkins is restarting</h1><p>Jenkins is restarting. Your browser "
            "will reload automatically when Jenkins is ready.</p></div></body></html>\n")
    return _unready(body)


def boot_failure_page(reason: str) -> Response:
    """500 forever after a failed boot."""
    body = (f"<!DOCTYPE html><html><head><title>Jenkins</title></head><body><h1>Error</h1>"
            f"<p>Jenkins failed to start:</p><pre>{escape(reason)}</pre></body></html>\n")
    return Response(500, body.encode("utf-8"), HTML, [("Cache-Control", "no-cache,no-store,must-revalidate")],
                    kind="none")


def _unready(body: str) -> Response:
    return Response(503, body.encode("utf-8"), HTML,
                    [("Expires", "0"), ("Cache-Control", "no-cache,no-store,must-revalidate")], kind="none")
