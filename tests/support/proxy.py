"""A small forward proxy for tests: CONNECT tunnels and absolute-URI requests, optional
Basic auth, a switch to refuse CONNECT, and a log of what it was asked."""

import base64
import select
import socket
import socketserver
import threading
from urllib.parse import urlsplit


class ForwardProxy:
    def __init__(self, refuse_connect=False, credentials=None, offer=("Basic",)):
        self.refuse_connect = refuse_connect
        self.offer = offer  # the schemes a 407 names in Proxy-Authenticate
        self.credentials = credentials  # (user, password) or None
        self.log = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = self.connection.recv(4096)
                    if not chunk:
                        return
                    head += chunk
                header_text, _, rest = head.partition(b"\r\n\r\n")
                lines = header_text.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
                outer.log.append((method, target))
                if outer.credentials and not outer._authorized(headers):
                    return self._reply(407, "".join(
                        "Proxy-Authenticate: %s\r\n" % (
                            'Basic realm="test"' if scheme == "Basic" else scheme)
                        for scheme in outer.offer))
                if method == "CONNECT":
                    if outer.refuse_connect:
                        return self._reply(403)
                    host, port = target.rsplit(":", 1)
                    upstream = socket.create_connection((host, int(port)), timeout=10)
                    self.connection.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    return _pipe(self.connection, upstream, rest)
                parts = urlsplit(target)
                upstream = socket.create_connection((parts.hostname, parts.port or 80),
                                                    timeout=10)
                path = parts.path + ("?" + parts.query if parts.query else "")
                kept = [l for l in lines[1:] if not l.lower().startswith(
                    ("proxy-authorization", "proxy-connection"))]
                request = "%s %s HTTP/1.1\r\n%s\r\n\r\n" % (method, path, "\r\n".join(kept))
                upstream.sendall(request.encode("latin-1") + rest)
                _pipe(self.connection, upstream, b"")

            def _reply(self, status, extra=""):
                self.connection.sendall(("HTTP/1.1 %d Proxy says no\r\n%sContent-Length: 0"
                                         "\r\nConnection: close\r\n\r\n" % (status, extra))
                                        .encode())

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]

    def _authorized(self, headers) -> bool:
        value = headers.get("Proxy-Authorization", "")
        expected = base64.b64encode(("%s:%s" % self.credentials).encode()).decode()
        return value == "Basic " + expected

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _pipe(client, upstream, pending: bytes):
    if pending:
        upstream.sendall(pending)
    sockets = [client, upstream]
    try:
        while True:
            readable, _, _ = select.select(sockets, [], [], 30)
            if not readable:
                return
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                (upstream if sock is client else client).sendall(data)
    except OSError:
        return
    finally:
        upstream.close()
