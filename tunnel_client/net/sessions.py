"""Sessions and streaming bodies: one requests session per thread and route."""

import threading
import time
from typing import Iterator, Optional, Tuple
from urllib.parse import urlsplit

import requests

from tunnel_client import USER_AGENT
from tunnel_client.net.routes import Route

def new_session(route: Route, pool_size: int = 10) -> requests.Session:
    """A session that only ever does what the route says (no environment, no cookies)."""
    session = requests.Session()
    session.trust_env = False
    session.proxies = route.proxies
    session.verify = route.verify
    session.cert = route.cert
    session.cookies.set_policy(_NoCookies())
    session.headers.clear()
    session.headers["User-Agent"] = USER_AGENT
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool_size,
                                            max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if route.unix_socket:
        from tunnel_client.net.unix import UnixSocketAdapter
        parts = urlsplit(route.target)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        session.mount("%s://%s" % (parts.scheme, parts.netloc), UnixSocketAdapter(
            route.unix_socket, parts.scheme, parts.hostname, port,
            ca_certs=route.verify if isinstance(route.verify, str) else None,
            cert=route.cert, pool_size=pool_size))
    return session


class _NoCookies:
    """Cookie policy that stores nothing: one connector's cookies must never reach another."""

    netscape = True
    rfc2965 = False
    hide_cookie2 = False

    def set_ok(self, cookie, request):
        return False

    def return_ok(self, cookie, request):
        return False

    def domain_return_ok(self, domain, request):
        return False

    def path_return_ok(self, path, request):
        return False


class SessionPool:
    """One session per thread for a route: requests sessions are not thread-safe, and a
    keep-alive connection per worker is what the hot path wants anyway. Sessions older
    than ``max_age`` are replaced, which recycles their pooled connections."""

    def __init__(self, route: Route, pool_size: int = 2, max_age: Optional[float] = None):
        self.route = route
        self.pool_size = pool_size
        self.max_age = max_age
        self._local = threading.local()
        self._all = []
        self._lock = threading.Lock()

    def get(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is not None and self.max_age is not None and \
                time.monotonic() - self._local.born > self.max_age:
            self._discard(session)
            session = None
        if session is None:
            session = new_session(self.route, self.pool_size)
            self._local.session = session
            self._local.born = time.monotonic()
            with self._lock:
                self._all.append(session)
        return session

    def reset(self):
        """Drop this thread's session (and its pooled connections)."""
        session = getattr(self._local, "session", None)
        if session is not None:
            self._local.session = None
            self._discard(session)

    def _discard(self, session):
        with self._lock:
            if session in self._all:
                self._all.remove(session)
        session.close()

    def close(self):
        with self._lock:
            sessions, self._all = self._all, []
        for session in sessions:
            session.close()


# --- streaming bodies --------------------------------------------------------------------


def response_socket(resp: requests.Response):
    conn = getattr(resp.raw, "connection", None) or getattr(resp.raw, "_connection", None)
    return getattr(conn, "sock", None)


def iter_body(resp: requests.Response, timeout_for_next_read) -> Iterator[bytes]:
    """Yield body bytes as they arrive, with a fresh socket timeout before every read.

    ``timeout_for_next_read()`` returns seconds; a deadline or TTL is enforced by shrinking
    it. Chunked responses (every streaming MCP server) yield each chunk as it arrives;
    reading through requests keeps the connection reusable once the body is consumed.
    """
    sock = response_socket(resp)
    chunks = resp.iter_content(chunk_size=None)
    while True:
        if sock is not None:
            sock.settimeout(max(0.001, timeout_for_next_read()))
        try:
            data = next(chunks)
        except StopIteration:
            return
        if data:
            yield data


def read_limited(resp: requests.Response, limit: int, timeout_for_next_read
                 ) -> Tuple[bytes, bool]:
    """Up to ``limit`` bytes of the body and whether there was more."""
    parts, size = [], 0
    for data in iter_body(resp, timeout_for_next_read):
        parts.append(data)
        size += len(data)
        if size > limit:
            return b"".join(parts)[:limit], True
    return b"".join(parts), False


def header_pairs(resp: requests.Response):
    """Every (name, value) the server sent, repeated headers kept apart."""
    raw = getattr(resp.raw, "headers", None)
    if raw is not None and hasattr(raw, "getlist"):
        seen = []
        for name in raw.keys():
            if name.lower() not in seen:
                seen.append(name.lower())
                for value in raw.getlist(name):
                    yield name, value
        return
    for name, value in resp.headers.items():
        yield name, value
