"""Sessions and streaming bodies: one requests session per thread and route."""

import contextlib
import socket
import threading
import time
from typing import Callable, Iterator, Optional, Tuple
from urllib.parse import urlsplit

import requests
from urllib3 import connection, connectionpool

from tunnel_client import USER_AGENT, wire
from tunnel_client.net.routes import Route
from tunnel_client.net.watchdog import WATCHDOG

# --- connection observers ----------------------------------------------------------------
#
# A long poll is interrupted by shutting down its socket, so the interrupter must know the
# socket the poll is actually waiting on. urllib3 opens it inside ``send`` (a first request,
# a replaced dropped connection, a new one after an error), after the caller last looked.
# Connections opened by our sessions report to an observer the calling thread installs
# around one request: as they start opening (name resolution, TCP, proxy CONNECT, TLS: no
# request has left yet) and as soon as they are up.

_observer = threading.local()


class ConnectObserver:
    """What ``connects_observed`` calls; both methods run on the requesting thread."""

    def connecting(self, conn: connection.HTTPConnection):
        """``conn`` starts opening."""

    def connected(self, conn: Optional[connection.HTTPConnection]):
        """``conn`` is up; None when opening it failed."""


@contextlib.contextmanager
def connects_observed(observer: ConnectObserver):
    """Report every connection this thread opens inside the block to ``observer``."""
    _observer.current = observer
    try:
        yield
    finally:
        _observer.current = None


def _connect(conn, connect: Callable[[], None]):
    observer = getattr(_observer, "current", None)
    if observer is None:
        return connect()
    observer.connecting(conn)
    try:
        connect()
    except BaseException:
        observer.connected(None)
        raise
    observer.connected(conn)


# --- response heads within a deadline ----------------------------------------------------
#
# A socket timeout bounds each read, not the wait for a whole response head: a server can
# drip header bytes. Inside ``heads_within(deadline)`` our connections shut their socket
# down when the deadline passes while they wait for the head.

_head_deadline = threading.local()


@contextlib.contextmanager
def heads_within(deadline: wire.Deadline):
    """Bound, in wall time, every response head this thread waits for inside the block."""
    _head_deadline.value = deadline
    try:
        yield
    finally:
        _head_deadline.value = None


class _BoundedHead:
    def getresponse(self, *args, **kwargs):
        deadline = getattr(_head_deadline, "value", None)
        sock = getattr(self, "sock", None)
        if deadline is None or not deadline.bounded or sock is None:
            return super().getresponse(*args, **kwargs)
        alarm = WATCHDOG.arm(deadline.at, lambda: _shut(sock))
        try:
            return super().getresponse(*args, **kwargs)
        finally:
            WATCHDOG.cancel(alarm)


# urllib3's names on purpose: error messages quote the pool's class name to the operator.

class HTTPConnection(_BoundedHead, connection.HTTPConnection):
    def connect(self):
        _connect(self, super().connect)


class HTTPSConnection(_BoundedHead, connection.HTTPSConnection):
    def connect(self):
        _connect(self, super().connect)


class HTTPConnectionPool(connectionpool.HTTPConnectionPool):
    ConnectionCls = HTTPConnection


class HTTPSConnectionPool(connectionpool.HTTPSConnectionPool):
    ConnectionCls = HTTPSConnection


_OBSERVED_POOLS = {"http": HTTPConnectionPool, "https": HTTPSConnectionPool}


class _Adapter(requests.adapters.HTTPAdapter):
    """requests' adapter with connections that report to ``connects_observed``."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _OBSERVED_POOLS

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if proxy.lower().startswith(("http://", "https://")):  # not SOCKS: its own pools
            manager.pool_classes_by_scheme = _OBSERVED_POOLS
        return manager


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
    adapter = _Adapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
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


class BodyDeadline(requests.exceptions.ReadTimeout):
    """The overall deadline for reading a body passed (however fast each read was)."""


CHUNK = 16 * 1024  # bounded reads: memory per read, and a deadline check between reads


def iter_body(resp: requests.Response, deadline: wire.Deadline,
              idle: Optional[float] = None) -> Iterator[bytes]:
    """Yield body bytes as they arrive, within ``deadline`` overall.

    ``idle`` bounds the wait for each read (a socket timeout); the overall deadline is
    enforced by shutting the socket down when it passes, which ends a read that a server
    keeps alive by dripping bytes. Chunked responses (every streaming MCP server) yield each
    chunk as it arrives; reading through requests keeps the connection reusable once the
    body is consumed.
    """
    sock = response_socket(resp)
    alarm = None
    if sock is not None and deadline.bounded:
        alarm = WATCHDOG.arm(deadline.at, lambda: _shut(sock))
    try:
        chunks = resp.iter_content(chunk_size=CHUNK)
        while True:
            if deadline.expired() or (alarm is not None and alarm.fired):
                raise BodyDeadline("body read deadline passed")
            wait = deadline.remaining(cap=idle)
            if sock is not None and wait is not None:
                sock.settimeout(max(0.001, wait))
            try:
                data = next(chunks)
            except StopIteration:
                break
            except (requests.RequestException, OSError):
                if alarm is not None and alarm.fired:
                    raise BodyDeadline("body read deadline passed") from None
                raise
            if data:
                yield data
        if alarm is not None and alarm.fired:
            # A socket shut down at the deadline can look like the end of a body that is
            # delimited by the connection closing: never take that for a whole body.
            raise BodyDeadline("body read deadline passed")
    finally:
        if alarm is not None:
            WATCHDOG.cancel(alarm)


def _shut(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def declared_length(resp: requests.Response) -> Optional[int]:
    """The Content-Length the server declared, when it is one number."""
    value = resp.headers.get("Content-Length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value.strip())


def read_limited(resp: requests.Response, limit: int, deadline: wire.Deadline,
                 idle: Optional[float] = None) -> Tuple[bytes, bool]:
    """Up to ``limit`` bytes of the body and whether there was more.

    A body whose declared length passes the limit is refused before any of it is read, and
    reading stops as soon as the received size passes it; ``deadline`` bounds the whole read.
    """
    declared = declared_length(resp)
    if declared is not None and declared > limit:
        return b"", True
    parts, size = [], 0
    for data in iter_body(resp, deadline, idle):
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
