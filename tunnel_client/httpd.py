"""Standard-library HTTP serving shared by the admin listener and the dev tools.

Keep-alive HTTP/1.1, Nagle off, headers and body in one write (a split write meets the
client's delayed ACK and adds ~40 ms per small reply), chunked streaming for SSE, bounded
request bodies.
"""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class BodyTooLarge(ValueError):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "tunnel-client"
    sys_version = ""
    timeout = 120  # an idle keep-alive connection is closed after this long

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's name
        """Quiet by default; servers log what matters themselves."""

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

    def read_body(self, limit: int) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked(limit)
        length = int(self.headers.get("Content-Length") or 0)
        if length > limit:
            self.close_connection = True
            raise BodyTooLarge("request body of %d bytes exceeds %d" % (length, limit))
        return self.rfile.read(length) if length else b""

    def _read_chunked(self, limit: int) -> bytes:
        parts, size = [], 0
        while True:
            line = self.rfile.readline(1024)
            chunk = int(line.split(b";")[0].strip() or b"0", 16)
            if chunk == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            size += chunk
            if size > limit:
                self.close_connection = True
                raise BodyTooLarge("request body exceeds %d bytes" % limit)
            parts.append(self.rfile.read(chunk))
            self.rfile.readline(8)

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


class Server(ThreadingHTTPServer):
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


def is_loopback_host(host: str) -> bool:
    host = (host or "").split(":")[0] if host.count(":") == 1 else (host or "")
    host = host.strip("[]").lower()
    if host in ("localhost", "::1") or host.endswith(".localhost"):
        return True
    try:
        return socket.inet_aton(host)[0] == 127 if host.count(".") == 3 else False
    except OSError:
        return False
