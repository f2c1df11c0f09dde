"""Reach a running daemon's admin listener (for `health` and `doctor`), standard library
only so monitoring commands start fast. Handles ``http://`` and ``http+unix://<base64>``."""

import base64
import http.client
import socket
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

BODY_LIMIT = 4096


@dataclass
class Answer:
    url: str
    status: Optional[int] = None
    body: str = ""
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def unix_socket_path(base_url: str) -> Optional[str]:
    if not base_url.startswith("http+unix://"):
        return None
    token = base_url[len("http+unix://"):].split("/")[0]
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()


def get(base_url: str, path: str, timeout: float = 0.5, limit: int = BODY_LIMIT) -> Answer:
    url = base_url.rstrip("/") + path
    socket_path = unix_socket_path(base_url)
    try:
        if socket_path:
            conn = _UnixConnection(socket_path, timeout)
        else:
            parts = urlsplit(base_url)
            conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Accept": "*/*"})
            resp = conn.getresponse()
            body = resp.read(limit).decode("utf-8", "replace")
            return Answer(url, resp.status, body.strip())
        finally:
            conn.close()
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return Answer(url, error=_describe(exc))


def _describe(exc: Exception) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the daemon running?)"
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, FileNotFoundError):
        return "socket not found (is the daemon running?)"
    return str(exc) or type(exc).__name__


def metric_value(metrics_text: str, name: str) -> Optional[float]:
    for line in metrics_text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            try:
                return float(line.rsplit(" ", 1)[1])
            except ValueError:
                return None
    return None
