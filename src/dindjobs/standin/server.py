"""HTTP plumbing: the threaded server, the parsed request, and how answers are written.

Paths are split the way Stapler splits them: on ``/`` (and ``\\``), empty segments dropped, each
segment percent-decoded on its own. Query strings are form-decoded (``+`` is a space).
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from dindjobs.standin.responses import REASONS, Response
from dindjobs.standin.security import Auth

log = logging.getLogger("dindjobs.standin")
MAX_BODY = 64 * 1024 * 1024


@dataclasses.dataclass
class Request:
    """One parsed request."""

    method: str
    raw_path: str  # as sent, without the query string
    query_string: str
    headers: Any  # http.client.HTTPMessage (case-insensitive)
    body: bytes
    client_ip: str
    host: str
    auth: Auth = dataclasses.field(default_factory=Auth)
    session_id: str | None = None  # from the cookie; may be stale
    new_session: bool = False

    def __post_init__(self) -> None:
        parts = self.raw_path.replace("\\", "/").split("/")
        self.segments = [unquote(p) for p in parts if p]
        self.trailing_slash = self.raw_path.endswith("/")
        self.query = parse_qs(self.query_string, keep_blank_values=True)
        self._form: dict[str, list[str]] | None = None

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type") or None

    @property
    def form(self) -> dict[str, list[str]]:
        """Form fields of a urlencoded body (empty for other bodies)."""
        if self._form is None:
            ct = (self.content_type or "").lower()
            if ct.startswith("application/x-www-form-urlencoded"):
                self._form = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
            else:
                self._form = {}
        return self._form

    def param(self, name: str) -> str | None:
        """A request parameter: query string first, then the form body (as a servlet does)."""
        if name in self.query:
            return self.query[name][0]
        if name in self.form:
            return self.form[name][0]
        return None

    def params(self) -> dict[str, list[str]]:
        merged = {k: list(v) for k, v in self.form.items()}
        for k, v in self.query.items():
            merged[k] = list(v) + merged.get(k, [])
        return merged

    def charset(self, default: str = "iso-8859-1") -> str:
        for part in (self.content_type or "").split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                return value.strip('"')
        return default

    @property
    def root_url(self) -> str:
        """``http://<Host>/``: Jenkins builds absolute URLs from the request when no root URL is set."""
        return f"http://{self.host}/"

    def cookie(self, name: str) -> str | None:
        raw = self.headers.get("Cookie")
        if not raw:
            return None
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw)
        except CookieError:
            return None
        morsel = jar.get(name)
        return morsel.value if morsel else None


class Server(ThreadingHTTPServer):
    """A ThreadingHTTPServer that can drop every open connection (a restart does that)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], app: Any) -> None:
        self.app = app
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, Handler)

    def process_request_thread(self, request, client_address):  # noqa: D401 - stdlib hook
        with self._conns_lock:
            self._conns.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._conns_lock:
                self._conns.discard(request)

    def drop_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Handler(BaseHTTPRequestHandler):
    """Reads a request, hands it to the app, writes the answer (HTTP/1.1, keep-alive)."""

    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections are closed, as Jetty's idle timeout does
    server_version = "Jetty(10.0.24)"
    sys_version = ""
    # Without TCP_NODELAY, a small answer waits on the client's delayed ACK: ~40 ms a request.
    disable_nagle_algorithm = True
    server: Server

    def _handle(self) -> None:
        try:
            body = self._read_body()
        except ValueError as exc:
            self._write(Response(400, str(exc).encode(), "text/plain"), head=False)
            self.close_connection = True
            return
        split = urlsplit(self.path)
        peer = self.client_address[0]
        forwarded = self.headers.get("X-Forwarded-For")
        client_ip = forwarded.split(",")[0].strip() if forwarded else peer
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        req = Request(self.command, split.path or "/", split.query, self.headers, body, client_ip, host)
        response = self.server.app.handle(req)
        self._write(response, head=self.command == "HEAD")

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _handle

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("request body too large")
        return self.rfile.read(length) if length > 0 else b""

    def _write(self, r: Response, head: bool) -> None:
        self.send_response_only(r.status, REASONS.get(r.status, ""))
        self.send_header("Date", self.date_time_string())
        self.send_header("Server", self.server_version)
        for name, value in r.headers:
            self._header(name, value)
        if r.content_type:
            self.send_header("Content-Type", r.content_type)
        self.send_header("Content-Length", str(len(r.body)))
        # Headers and body leave in one write, as one segment when small.
        self._headers_buffer.append(b"\r\n")
        if not head and r.body:
            self._headers_buffer.append(r.body)
        self.flush_headers()

    def _header(self, name: str, value: str) -> None:
        # Header values with non-Latin-1 text (Jenkins' typographic quotes) go out as UTF-8 bytes.
        line = f"{name}: {value}\r\n".encode()
        if not hasattr(self, "_headers_buffer"):
            self._headers_buffer = []
        self._headers_buffer.append(line)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)
