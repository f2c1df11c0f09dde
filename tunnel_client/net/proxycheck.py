"""Proxy health: can we still open a CONNECT tunnel through each proxied route?

The same CONNECT exchange serves ``doctor`` (naming the failing hop) and the periodic
check whose state shows in /api/status and /metrics. It never gates readiness: the poll
outcome already does, and a proxy that refuses one probe may still serve real traffic.
"""

import base64
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional
from urllib.parse import unquote, urlsplit

from tunnel_client.config.values import redact_url

_HISTORY = 10


@dataclass
class ProxyCheck:
    ok: bool
    phase: str  # "tcp" | "tls" | "connect" | "" when ok
    reason: str
    status: Optional[int] = None
    tcp_ms: float = 0.0
    connect_ms: float = 0.0
    at: float = field(default_factory=time.time)


def connect_status(sock, proxy_url: str, host: str, port: int, timeout: float):
    """Send CONNECT host:port (with Basic credentials from the proxy URL); return
    (status code, status line)."""
    status, line, _ = connect_response(sock, proxy_url, host, port, timeout)
    return status, line


def connect_response(sock, proxy_url: str, host: str, port: int, timeout: float):
    """Like ``connect_status``, plus the response headers as (lower-case name, value)
    pairs (``Proxy-Authenticate`` says which schemes a proxy wants)."""
    proxy = urlsplit(proxy_url)
    request = "CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n" % (host, port, host, port)
    if proxy.username:
        token = base64.b64encode(("%s:%s" % (unquote(proxy.username),
                                             unquote(proxy.password or ""))).encode())
        request += "Proxy-Authorization: Basic %s\r\n" % token.decode()
    sock.settimeout(timeout)
    sock.sendall((request + "\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 16384:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1", "replace").split("\r\n")
    line = lines[0]
    parts = line.split(" ", 2)
    headers = [(name.strip().lower(), value.strip()) for name, sep, value in
               (h.partition(":") for h in lines[1:]) if sep]
    return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0), line, headers


def auth_schemes(headers) -> List[str]:
    """The schemes a 407 offers, e.g. ["Negotiate", "NTLM"]."""
    found = []
    for name, value in headers:
        if name == "proxy-authenticate" and value:
            scheme = value.split(None, 1)[0].rstrip(",")
            if scheme not in found:
                found.append(scheme)
    return found


def dial_proxy(proxy_url: str, timeout: float):
    proxy = urlsplit(proxy_url)
    sock = socket.create_connection((proxy.hostname, proxy.port or (
        443 if proxy.scheme == "https" else 80)), timeout=timeout)
    if proxy.scheme == "https":
        sock = ssl.create_default_context().wrap_socket(sock, server_hostname=proxy.hostname)
    return sock


def check(proxy_url: str, target: str, timeout: float = 5.0) -> ProxyCheck:
    parts = urlsplit(target)
    host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    started = time.monotonic()
    try:
        sock = dial_proxy(proxy_url, timeout)
    except ssl.SSLError as exc:
        return ProxyCheck(False, "tls", "TLS to the proxy failed: %s" % exc.reason)
    except OSError as exc:
        return ProxyCheck(False, "tcp", "cannot reach the proxy: %s" % (exc.strerror or exc))
    tcp_ms = (time.monotonic() - started) * 1000
    try:
        status, line = connect_status(sock, proxy_url, host, port, timeout)
    except OSError as exc:
        return ProxyCheck(False, "connect", "CONNECT failed: %s" % (exc.strerror or exc),
                          tcp_ms=tcp_ms)
    finally:
        sock.close()
    connect_ms = (time.monotonic() - started) * 1000 - tcp_ms
    if 200 <= status < 300:
        return ProxyCheck(True, "", "CONNECT %s:%d -> %d" % (host, port, status), status,
                          tcp_ms, connect_ms)
    reason = "proxy requires credentials (407)" if status == 407 else \
        "proxy refused CONNECT to %s:%d: %s" % (host, port, line or "no answer")
    return ProxyCheck(False, "connect", reason, status, tcp_ms, connect_ms)


class ProxyHealth:
    """Periodic CONNECT checks for every route that goes through a proxy."""

    def __init__(self, routes, registry=None):
        self.routes = [r for r in routes if r.proxy]
        self._lock = threading.Lock()
        self.history: Dict[str, List[ProxyCheck]] = {r.name: [] for r in self.routes}
        self.last_success: Dict[str, float] = {}
        self._metrics = None
        if registry is not None and self.routes:
            labels = ("route", "proxy")
            self._metrics = (
                registry.gauge("proxy_health_state", "1 when the last CONNECT check "
                               "through the route's proxy succeeded.", labels),
                registry.gauge("proxy_last_check_timestamp", "Unix time of the last proxy "
                               "check.", labels),
                registry.gauge("proxy_last_success_timestamp", "Unix time of the last "
                               "successful proxy check.", labels),
                registry.counter("proxy_check_failures_total", "Failed proxy checks.",
                                 labels + ("phase",)))

    def run_once(self, timeout: float = 5.0):
        for route in self.routes:
            result = check(route.proxy, route.target, timeout)
            labels = {"route": route.name, "proxy": redact_url(route.proxy)}
            with self._lock:
                entries = self.history[route.name]
                entries.append(result)
                del entries[:-_HISTORY]
                if result.ok:
                    self.last_success[route.name] = result.at
            if self._metrics:
                state, checked, succeeded, failures = self._metrics
                state.set(1 if result.ok else 0, **labels)
                checked.set(result.at, **labels)
                if result.ok:
                    succeeded.set(result.at, **labels)
                else:
                    failures.inc(phase=result.phase, **labels)

    def snapshot(self) -> List[dict]:
        with self._lock:
            out = []
            for route in self.routes:
                entries = self.history[route.name]
                last = entries[-1] if entries else None
                out.append({"route": route.name, "proxy": redact_url(route.proxy),
                            "state": "unknown" if last is None else (
                                "healthy" if last.ok else "unhealthy"),
                            "last_error": None if last is None or last.ok else last.reason,
                            "last_check": last.at if last else None,
                            "last_success": self.last_success.get(route.name),
                            "history": [vars(e) for e in entries]})
            return out
