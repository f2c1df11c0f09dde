"""The admin listener: health, readiness, metrics, JSON APIs and the UI.

``/healthz``, ``/readyz`` and ``/metrics`` answer anyone who can reach the listener (it
binds loopback by default). The UI and ``/api/*`` answer loopback peers only, unless the
operator sets ``--allow-remote-ui``.
"""

import base64
import errno
import hmac
import json
import os
import socket
import socketserver
import stat
import threading
import time
from typing import Optional
from urllib.parse import parse_qs, urlsplit

from tunnel_client import wire
from tunnel_client.admin import api
from tunnel_client.errors import StartupError
from tunnel_client.files import write_private
from tunnel_client.httpd import (BadBody, ConnectionCap, Handler, Server, is_loopback_host,
                                 serve_in_thread, split_hostport, stop_quietly)
from tunnel_client.observe.logs import get_logger

log = get_logger("health")

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
_STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
LOOPBACK_ONLY = ("admin UI is restricted to loopback; set --allow-remote-ui to override")
BAD_HOST = ("admin UI answers only loopback host names (DNS rebinding protection); browse to "
            "127.0.0.1 or localhost, or set --allow-remote-ui")
# Sent with every UI and API answer: no framing (clickjacking of the level buttons), no
# content sniffing, and the page's own policy enforced by the server too.
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self'; connect-src 'self'; base-uri 'none'; "
                               "form-action 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}
NEED_TOKEN = ("the admin UI on a non-loopback address requires the admin UI token: browse to "
              "/ui?token=TOKEN or send Authorization: Bearer TOKEN")
TOKEN_COOKIE = "tunnel_client_ui"
SSE_PING_INTERVAL = 15.0
MAX_CONNECTIONS = 32  # threads; idle connections give way to new ones (httpd.ConnectionCap)


class _AdminHandler(Handler):
    server_version = "tunnel-client-admin"

    def end_headers(self):
        if urlsplit(self.path).path not in ("/healthz", "/readyz", "/metrics"):
            for name, value in SECURITY_HEADERS.items():
                self.send_header(name, value)
        super().end_headers()

    @property
    def admin(self) -> "AdminServer":
        return self.server.context["admin"]

    def _loopback(self) -> bool:
        peer = self.client_address[0] if isinstance(self.client_address, tuple) else ""
        return not peer or peer.startswith("127.") or peer in ("::1", "::ffff:127.0.0.1") \
            or peer.startswith("::ffff:127.")

    def do_GET(self):
        self._route("GET")

    def do_PUT(self):
        self._route("PUT")

    def do_POST(self):
        self._route("POST")

    def do_HEAD(self):
        self._route("GET")

    def _route(self, method: str):
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        admin = self.admin
        try:
            if path == "/healthz" and method == "GET":
                return self.send_text(200, "live")
            if path == "/readyz" and method == "GET":
                check = admin.service.ready()
                return self.send_text(200 if check.ok else 503, check.reason)
            if path == "/metrics" and method == "GET":
                return self.send_body(200, admin.metrics_text().encode("utf-8"),
                                      "text/plain; version=0.0.4; charset=utf-8")
            local = self._loopback() and is_loopback_host(self.headers.get("Host", "localhost"))
            if not admin.allow_remote:
                if not self._loopback():
                    return self.send_text(403, LOOPBACK_ONLY)
                if not local:
                    return self.send_text(403, BAD_HOST)
            elif not local:
                token = self._presented_token(query)
                if token is None or not hmac.compare_digest(token.encode(),
                                                            admin.token.encode()):
                    return self.send_text(401, NEED_TOKEN, {"WWW-Authenticate": "Bearer"})
                if query.get("token"):
                    # Trade the token in the address bar for a cookie, then drop it from
                    # the URL (history, screenshots, Referer).
                    return self.send_body(303, b"", headers={
                        "Location": parts.path or "/ui",
                        "Set-Cookie": "%s=%s; Path=/; HttpOnly; SameSite=Strict"
                                      % (TOKEN_COOKIE, token)})
            if method in ("PUT", "POST", "DELETE"):
                refusal = self._cross_site()
                if refusal:
                    return self.send_json(403 if "Content-Type" not in refusal else 415,
                                          {"error": refusal})
            return self._guarded(method, path, query)
        except BadBody as exc:
            return self.send_json(exc.status, {"error": str(exc)})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:  # logged (and so redacted) here, never a traceback on stderr
            log.exception("admin request failed", extra={"path": path, "method": method})
            self.close_connection = True
            try:
                self.send_json(500, {"error": "internal error; see the daemon log"})
            except OSError:
                pass

    def _presented_token(self, query) -> Optional[str]:
        auth = self.headers.get("Authorization") or ""
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        if query.get("token"):
            return query["token"][0]
        for item in (self.headers.get("Cookie") or "").split(";"):
            name, _, value = item.strip().partition("=")
            if name == TOKEN_COOKIE:
                return value
        return None

    def _cross_site(self) -> Optional[str]:
        """Why a state-changing request must be refused as possibly forged by a web page,
        or None. A page can send a "simple" cross-site POST (text/plain, form data) without
        a preflight; JSON and the browser's own Origin/Sec-Fetch-Site labels tell it apart."""
        media = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if media != "application/json":
            return "Content-Type must be application/json"
        if (self.headers.get("Sec-Fetch-Site") or "").strip().lower() in ("cross-site",
                                                                         "same-site"):
            return "cross-site requests are refused"
        origin = self.headers.get("Origin")
        if origin is not None and not same_origin(origin, self.headers.get("Host") or ""):
            return "requests from another origin are refused"
        return None

    def _guarded(self, method, path, query):
        admin = self.admin
        if path == "/harpoon/mcp" and admin.service.cfg.harpoon.additional_transports:
            return self._harpoon_mcp(method)
        if path == "/favicon.ico":
            return self.send_body(204)
        if path in ("/", "/ui", "/ui/"):
            return self._static("index.html")
        if path.startswith("/assets/"):
            return self._static(path[len("/assets/"):])
        if path == "/api/log-level":
            if method == "GET":
                return self.send_json(200, api.log_level(admin.service))
            if method == "PUT":
                status, body = api.set_log_level(admin.service,
                                                 self.read_body(4096, required=True))
                return self.send_json(status, body)
            return self.send_json(405, {"error": "method not allowed"}, {"Allow": "GET, PUT"})
        if method != "GET":
            return self.send_json(405, {"error": "method not allowed"}, {"Allow": "GET"})
        if path == "/api/status":
            return self.send_json(200, api.status(admin.service, admin))
        if path == "/api/system":
            return self.send_json(200, api.system(admin.service))
        if path == "/api/oauth":
            return self.send_json(200, api.oauth(admin.service))
        if path == "/api/audit":
            return self.send_json(200, api.audit(admin.service, _int(query, "limit", 50)))
        if path == "/api/harpoon/status":
            return self.send_json(200, api.harpoon_status(admin.service))
        if path == "/api/harpoon/targets":
            return self.send_json(200, api.harpoon_targets(admin.service))
        if path == "/api/harpoon/calls":
            return self.send_json(200, api.harpoon_calls(
                admin.service, query.get("label", [None])[0], _int(query, "limit", 100)))
        if path == "/api/logs":
            return self.send_json(200, api.logs(admin.service, _int(query, "limit", 200),
                                                _int(query, "since", 0)))
        if path == "/api/logs/stream":
            return self._stream_logs(_int(query, "since", 0))
        if path == "/api/logs/export":
            from tunnel_client.admin import bundle
            name, data = bundle.build(admin.service, admin, _int(query, "minutes", 30))
            return self.send_body(200, data, "application/gzip", {
                "Content-Disposition": 'attachment; filename="%s"' % name,
                "Cache-Control": "no-store"})
        return self.send_json(404, {"error": "not found: %s" % path})

    def _harpoon_mcp(self, method: str):
        """Harpoon as Streamable HTTP for local tools; loopback only, whatever
        --allow-remote-ui says (it can call internal endpoints)."""
        if not self._loopback():
            return self.send_text(403, LOOPBACK_ONLY)
        if method != "POST":
            return self.send_json(405, {"error": "POST JSON-RPC messages"}, {"Allow": "POST"})
        import time as _time
        try:
            message = wire.loads(self.read_body(1 << 20, required=True))
        except ValueError:
            return self.send_json(400, {"jsonrpc": "2.0", "id": None,
                                        "error": {"code": -32700, "message": "Parse error"}})
        cmd = wire.parse_command({"request_id": "local", "shard_token": "local",
                                  "command_type": "jsonrpc", "channel": "harpoon",
                                  "jsonrpc": message}, _time.monotonic())
        if not isinstance(cmd, wire.Command) or cmd.problem:
            return self.send_json(400, {"jsonrpc": "2.0", "id": None, "error": {
                "code": -32600, "message": "Invalid Request"}})
        replies = list(self.admin.service.harpoon.handle(cmd, wire.NO_DEADLINE))
        final = replies[-1] if replies else None
        if final is None or final.body is None:
            return self.send_body(202)
        self.send_body(200, final.body, "application/json")

    def _static(self, name: str):
        name = os.path.normpath(name).lstrip("/")
        path = os.path.join(STATIC_DIR, name)
        if name.startswith("..") or not os.path.isfile(path):
            return self.send_json(404, {"error": "not found"})
        with open(path, "rb") as handle:
            data = handle.read()
        kind = _STATIC_TYPES.get(os.path.splitext(name)[1], "application/octet-stream")
        self.send_body(200, data, kind, {"Cache-Control": "no-cache"})

    def _stream_logs(self, since: int):
        ring = self.admin.service.log_setup.ring if self.admin.service.log_setup else None
        if ring is None:
            return self.send_json(404, {"error": "no log buffer"})
        self.start_stream(200, "text/event-stream")
        seq = since
        last_write = time.monotonic()
        while not self.admin.closing.is_set():
            events = ring.wait(seq, 1.0)
            for event in events:
                seq = event["seq"]
                self.write_chunk(b"event: log\nid: %d\ndata: %s\n\n" % (
                    seq, json.dumps(event, separators=(",", ":")).encode("utf-8")))
                last_write = time.monotonic()
            if time.monotonic() - last_write >= SSE_PING_INTERVAL:
                self.write_chunk(b": ping\n\n")
                last_write = time.monotonic()
        self.end_stream()


def same_origin(origin: str, host: str) -> bool:
    """Whether a browser's Origin names this listener as the request's Host header does."""
    parts = urlsplit(origin.strip())
    return parts.scheme in ("http", "https") and bool(parts.netloc) and \
        parts.netloc.lower() == host.strip().lower()


def _int(query, name, default):
    try:
        return int(query.get(name, [default])[0])
    except (TypeError, ValueError):
        return default


class _UnixServer(ConnectionCap, socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    max_connections = MAX_CONNECTIONS

    def __init__(self, path, handler, **context):
        self.context = context
        super().__init__(path, handler)


class AdminServer:
    def __init__(self, service, listen_addr: Optional[str], unix_socket: Optional[str] = None,
                 url_file: Optional[str] = None, allow_remote: bool = False,
                 token: Optional[str] = None):
        self.service = service
        self.listen_addr = listen_addr
        self.unix_socket = unix_socket
        self.url_file = url_file
        self.allow_remote = allow_remote
        if allow_remote and not token:
            raise StartupError("a remote admin UI needs admin_ui.token")
        self.token = token or ""
        self.public_url: Optional[str] = None  # what another host browses to
        self.closing = threading.Event()
        self.server = None
        self.url: Optional[str] = None
        self._url_written = False

    @property
    def enabled(self) -> bool:
        return bool(self.listen_addr or self.unix_socket)

    def start(self):
        if not self.enabled:
            return
        if self.unix_socket:
            self._bind_unix()
        else:
            self._bind_tcp()
        # An idle daemon should not wake up twice a second for nothing: the loop polls
        # rarely and stop() wakes it with a connection.
        serve_in_thread(self.server, "admin", poll_interval=3600)
        if self.url_file:
            self._write_url_file()
        log.info("health server listening", extra={"url": self.url})
        if self.allow_remote:
            log.warning("the admin UI and API answer other hosts (admin_ui.allow_remote); they "
                        "require the admin UI token", extra={"ui_url": self.ui_url})

    @property
    def ui_url(self) -> Optional[str]:
        base = self.public_url or self.url
        return base + "/ui" if base else None

    def _bind_tcp(self):
        host, port = split_hostport(self.listen_addr)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET

        class _Server(Server):
            address_family = family
            max_connections = MAX_CONNECTIONS

        try:
            self.server = _Server((host, port), _AdminHandler, admin=self)
        except OSError as exc:
            hint = ""
            if exc.errno == errno.EADDRINUSE:
                from tunnel_client.admin.holder import port_holder
                holder = port_holder(port)
                hint = "%s; set health.listen_addr (--health.listen-addr, HEALTH_LISTEN_ADDR) " \
                    "to a free port, e.g. 127.0.0.1:8099" % (
                        " (held by %s)" % holder if holder else
                        " (`ss -ltnp 'sport = :%d'` shows by whom)" % port)
            raise StartupError("health listener %s: %s%s" % (
                self.listen_addr, exc.strerror or exc, hint)) from None
        bound_host, bound_port = self.server.server_address[:2]
        wildcard = bound_host in ("0.0.0.0", "::", "")
        if wildcard:
            bound_host = "127.0.0.1" if family == socket.AF_INET else "::1"
        self.url = "http://%s:%d" % ("[%s]" % bound_host if ":" in bound_host else bound_host,
                                     bound_port)
        # Local tools use the loopback URL; another host needs the machine's own name.
        if self.allow_remote and wildcard:
            self.public_url = "http://%s:%d" % (socket.getfqdn() or socket.gethostname(),
                                                bound_port)
        elif self.allow_remote:
            self.public_url = self.url

    def _bind_unix(self):
        path = self.unix_socket
        if os.path.exists(path):
            if not stat.S_ISSOCK(os.stat(path).st_mode):
                raise StartupError("health unix socket %s exists and is not a socket; remove it "
                                   "or choose another path" % path)
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(path)
                raise StartupError("health unix socket %s is in use by a running process"
                                   % path)
            except (ConnectionRefusedError, FileNotFoundError):
                os.unlink(path)  # stale socket from a process that is gone
            finally:
                probe.close()
        try:
            self.server = _UnixServer(path, _AdminHandler, admin=self)
        except OSError as exc:
            raise StartupError("health unix socket %s: %s" % (path, exc.strerror or exc)) from None
        os.chmod(path, 0o660)
        self.url = "http+unix://" + base64.urlsafe_b64encode(path.encode()).decode().rstrip("=")

    def _write_url_file(self):
        try:
            write_private(self.url_file, self.url + "\n", prefix=".health-url-")
        except OSError as exc:
            raise StartupError("cannot write health URL file %s: %s" % (self.url_file, exc))
        self._url_written = True

    def metrics_text(self) -> str:
        return api.metrics_text(self.service)

    def stop(self):
        self.closing.set()
        if self.server is not None:
            stop_quietly(self.server)
            if self.unix_socket:
                try:
                    os.unlink(self.unix_socket)
                except OSError:
                    pass
        if self._url_written:
            try:
                os.unlink(self.url_file)
            except OSError:
                pass
