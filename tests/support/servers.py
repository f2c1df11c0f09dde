"""Loopback HTTP servers scripted per test."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Scripted:
    """An HTTP server whose every request is answered by ``handler(request) -> response``.

    ``request`` is a dict (method, path, headers, body, json); the response is
    (status, headers, body) where body may be bytes or a list of SSE chunks to stream.
    Every request is recorded in ``requests``.
    """

    def __init__(self, handler):
        self.handler = handler
        self.requests = []
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def _do(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = {"method": self.command, "path": self.path,
                           "headers": {k.lower(): v for k, v in self.headers.items()},
                           "body": body, "received": time.monotonic()}
                try:
                    request["json"] = json.loads(body) if body else None
                except ValueError:
                    request["json"] = None
                outer.requests.append(request)
                status, headers, payload = outer.handler(request)
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                if isinstance(payload, list):
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for chunk in payload:
                        if callable(chunk):
                            chunk()
                            continue
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.send_header("Content-Length", str(len(payload or b"")))
                    self.end_headers()
                    self.wfile.write(payload or b"")

            do_GET = do_POST = do_DELETE = _do

        class Quiet(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # clients hanging up mid-reply are part of several tests

        self.server = Quiet(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        # A short poll interval: close() waits for one, tests open many servers, and the
        # mutation check runs each test hundreds of times.
        threading.Thread(target=self.server.serve_forever, args=(0.005,), daemon=True).start()
        self.url = "http://127.0.0.1:%d/mcp" % self.server.server_address[1]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def sse(*messages) -> list:
    return [b"event: message\ndata: " + json.dumps(m).encode() + b"\n\n" for m in messages]


def result(request, value):
    return {"jsonrpc": "2.0", "id": request["json"]["id"], "result": value}


def black_hole():
    """(port, sockets): a listener that never accepts, its queue full, so a connect to it
    waits for its timeout, like a firewall dropping packets."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    held = [listener]
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(listener.getsockname())
        except BlockingIOError:
            pass
        held.append(filler)
    return listener.getsockname()[1], held
