"""Standard-library HTTP serving shared by the admin listener and the dev tools.

Keep-alive HTTP/1.1, Nagle off, headers and body in one write (a split write meets the
client's delayed ACK and adds ~40 ms per small reply), chunked streaming for SSE, bounded
request bodies.
"""

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Optional, Tuple


class BadBody(ValueError):
    """A request body that cannot be read as framed; ``status`` is the answer it deserves."""

    status = 400


class LengthRequired(BadBody):
    status = 411


class BodyTooLarge(BadBody):
    status = 413


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "tunnel-client"
    sys_version = ""
    timeout = 120  # an idle keep-alive connection is closed after this long

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's name
        """Quiet by default; servers log what matters themselves."""

    def handle(self):
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the peer left mid-answer: nothing to tell it

    def handle_one_request(self):
        self._connection_state(idle=True)  # waiting for the next request
        super().handle_one_request()

    def parse_request(self):
        self._connection_state(idle=False)  # a request line came
        return super().parse_request()

    def _connection_state(self, idle: bool):
        state = getattr(self.server, "connection_state", None)
        if state is not None:
            state(self.connection, idle)

    def send_body(self, status: int, body: bytes = b"", content_type: str = "application/json",
                  headers=None):
        self.send_response(status)
        if body or status not in (204, 304):
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            for item in (value if isinstance(value, (list, tuple)) else [value]):
                self.send_header(name, item)
        self.end_headers_with(body)

    def end_headers_with(self, body: bytes):
        """end_headers() and the body in one write (see the module docstring)."""
        self._pending_body = body
        self.end_headers()

    def flush_headers(self):
        body = getattr(self, "_pending_body", b"")
        if body:
            self._headers_buffer.append(body)
            self._pending_body = b""
        super().flush_headers()

    def send_json(self, status: int, obj, headers=None):
        self.send_body(status, json.dumps(obj, separators=(",", ":")).encode("utf-8"),
                       "application/json", headers)

    def send_text(self, status: int, text: str, headers=None):
        self.send_body(status, text.encode("utf-8"), "text/plain; charset=utf-8", headers)

    def read_body(self, limit: int, required: bool = False) -> bytes:
        """The request body, at most ``limit`` bytes; BadBody (400/411/413) when it is framed
        badly, missing although ``required``, or too large, decided before reading it."""
        encoding = self.headers.get("Transfer-Encoding")
        lengths = self.headers.get_all("Content-Length") or []
        if encoding is not None:
            if encoding.strip().lower() != "chunked" or lengths:
                return self._bad(BadBody("unsupported Transfer-Encoding framing"))
            return self._read_chunked(limit)
        if not lengths:
            if required:
                return self._bad(LengthRequired("a request body needs a Content-Length"))
            return b""
        if len(set(lengths)) > 1 or not lengths[0].strip().isdigit():
            return self._bad(BadBody("Content-Length must be one non-negative integer"))
        length = int(lengths[0].strip())
        if length > limit:
            return self._bad(BodyTooLarge("request body of %d bytes exceeds %d" % (length, limit)))
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            return self._bad(BadBody("request body ended early"))
        return body

    def _bad(self, error: BadBody):
        self.close_connection = True  # the rest of the stream cannot be trusted
        raise error

    def _read_chunked(self, limit: int) -> bytes:
        parts, size = [], 0
        while True:
            line = self.rfile.readline(1024)
            digits = line.split(b";")[0].strip()
            if not digits or len(digits) > 8 or \
                    digits.strip(b"0123456789abcdefABCDEF") or not line.endswith(b"\n"):
                return self._bad(BadBody("malformed chunked request body"))
            chunk = int(digits, 16)
            if chunk == 0:
                for _ in range(64):  # trailers, bounded
                    if self.rfile.readline(1024) in (b"\r\n", b"\n", b""):
                        return b"".join(parts)
                return self._bad(BadBody("malformed chunked request body"))
            size += chunk
            if size > limit:
                return self._bad(BodyTooLarge("request body exceeds %d bytes" % limit))
            data = self.rfile.read(chunk)
            if len(data) < chunk or self.rfile.readline(8) not in (b"\r\n", b"\n"):
                return self._bad(BadBody("malformed chunked request body"))
            parts.append(data)

    # --- chunked streaming (SSE) ---------------------------------------------------------

    def start_stream(self, status: int, content_type: str, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in (headers or {}).items():
            for item in (value if isinstance(value, (list, tuple)) else [value]):
                self.send_header(name, item)
        self.end_headers()

    def write_chunk(self, data: bytes):
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class ConnectionCap:
    """A socketserver mixin: at most ``max_connections`` connections (threads) at once.

    At the cap a new connection takes the place of the longest-idle one (a keep-alive
    connection waiting for its next request, or one that never sent a request line), so
    idle connections cannot starve a health check; when every connection is busy the new
    one gets a prompt 503.
    """

    max_connections: Optional[int] = None
    _connections: Optional[Dict[object, Tuple[bool, float]]] = None
    _connections_lock = threading.Lock()  # class-wide: admission is rare and quick

    def process_request(self, request, client_address):
        if self.max_connections is not None and not self._admit(request):
            try:
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                b"Connection: close\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def _admit(self, request) -> bool:
        with self._connections_lock:
            if self._connections is None:
                self._connections = {}
            if len(self._connections) >= self.max_connections:
                idle = [(since, id(conn), conn) for conn, (waiting, since)
                        in self._connections.items() if waiting]
                if not idle:
                    return False
                victim = min(idle)[2]
                del self._connections[victim]
                try:
                    victim.shutdown(socket.SHUT_RDWR)  # its thread sees EOF and ends
                except OSError:
                    pass
            self._connections[request] = (True, time.monotonic())
        return True

    def connection_state(self, request, idle: bool):
        if self.max_connections is None:
            return
        with self._connections_lock:
            if self._connections and request in self._connections:
                self._connections[request] = (idle, time.monotonic())

    def handle_error(self, request, client_address):
        """Through the logger (and its redaction), never a bare traceback on stderr."""
        logging.getLogger("tunnel_client.httpd").warning(
            "HTTP connection failed", exc_info=True)

    def shutdown_request(self, request):
        if self.max_connections is not None:
            with self._connections_lock:
                if self._connections:
                    self._connections.pop(request, None)
        super().shutdown_request(request)


class Server(ConnectionCap, ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, handler, **context):
        self.context = context
        super().__init__(address, handler)

    @property
    def port(self) -> int:
        return self.server_address[1]


def serve_in_thread(server, name: str, poll_interval: float = 0.5) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever,
                              kwargs={"poll_interval": poll_interval}, name=name, daemon=True)
    thread.start()
    return thread


def stop_quietly(server):
    """shutdown() for a server whose loop sleeps long between polls: throwaway connections
    wake its selector until the loop has seen the request, then the socket closes. (One
    poke is not enough: it can arrive before shutdown() has asked, and be served as a
    request, leaving the loop asleep again.)"""
    stopper = threading.Thread(target=server.shutdown, daemon=True)
    stopper.start()
    end = time.monotonic() + 5.0
    while stopper.is_alive() and time.monotonic() < end:
        _poke(server)
        stopper.join(0.05)
    server.server_close()


def _poke(server):
    try:
        if server.socket.family == socket.AF_UNIX:
            poke = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            poke = socket.socket(server.socket.family, socket.SOCK_STREAM)
        poke.settimeout(1.0)
        address = server.server_address
        if server.socket.family != socket.AF_UNIX and address[0] in ("0.0.0.0", "::"):
            address = ("127.0.0.1" if address[0] == "0.0.0.0" else "::1",) + tuple(address[1:])
        try:
            poke.connect(address)
        finally:
            poke.close()
    except OSError:
        pass


def split_hostport(addr: str):
    host, _, port = addr.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def host_name(host: str) -> str:
    """The name in a Host header: ``[::1]:8080`` -> ``::1``, ``localhost:80`` -> ``localhost``."""
    host = (host or "").strip()
    if host.startswith("["):
        return host[1:].split("]", 1)[0].lower()
    if host.count(":") == 1:
        host = host.split(":")[0]
    return host.lower()


def is_loopback_host(host: str) -> bool:
    host = host_name(host)
    if host in ("localhost", "::1") or host.endswith(".localhost"):
        return True
    try:
        return socket.inet_aton(host)[0] == 127 if host.count(".") == 3 else False
    except OSError:
        return False
