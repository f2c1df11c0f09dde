"""HTTP plumbing shared by every outbound route.

Each route (the control plane, each HTTP MCP binding) gets its proxy, CA trust and client
certificate resolved once at startup. Sessions use ``trust_env=False`` and every request
passes ``proxies=``, ``verify=`` and ``cert=`` explicitly, because requests otherwise lets
``HTTPS_PROXY`` and ``REQUESTS_CA_BUNDLE`` silently override session settings
(DESIGN.md section 5). Retry-After parsing and the backoff policy live here too.
"""

import atexit
import email.utils
import ipaddress
import os
import random
import shutil
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Iterator, Mapping, Optional, Sequence, Tuple
from urllib.parse import urlsplit

import requests

from tunnel_client import USER_AGENT
from tunnel_client.config.values import ProxySetting, redact_url

# --- Retry-After and backoff ------------------------------------------------------------

RETRY_AFTER_CAP = 60.0


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait from delta-seconds or an HTTP-date; None when absent or invalid.

    Values are capped at 60 s; a date in the past or a non-positive value is ignored.
    """
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        seconds = float(text) if len(text) < 12 else RETRY_AFTER_CAP
        return min(seconds, RETRY_AFTER_CAP) if seconds > 0 else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    delay = when.timestamp() - (time.time() if now is None else now)
    return min(delay, RETRY_AFTER_CAP) if delay > 0 else None


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter on the top ``jitter`` fraction of each step."""

    initial: float = 0.2
    maximum: float = 10.0
    factor: float = 2.0
    jitter: float = 0.2

    def delay(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based)."""
        base = min(self.maximum, self.initial * (self.factor ** max(0, attempt - 1)))
        return base * (1.0 - self.jitter * random.random())


# --- trust (CA bundles) ------------------------------------------------------------------


def system_ca_files() -> Sequence[str]:
    """The CA files the platform trusts: requests' default (distros point it at the system
    store) and OpenSSL's default file."""
    files = []
    try:
        from requests.utils import DEFAULT_CA_BUNDLE_PATH
        files.append(DEFAULT_CA_BUNDLE_PATH)
    except ImportError:  # very old requests; OpenSSL's default is still there
        pass
    files.append(ssl.get_default_verify_paths().cafile)
    seen, result = set(), []
    for path in files:
        if path and os.path.isfile(path):
            real = os.path.realpath(path)
            if real not in seen:
                seen.add(real)
                result.append(path)
    return result


class TrustStore:
    """What ``verify=`` gets: True for the system trust, or a combined bundle file.

    A configured CA bundle is additive: it is concatenated after the system CAs into a
    private file, so an enterprise root does not replace public roots.
    """

    def __init__(self, extra_bundle: Optional[str] = None):
        self.extra_bundle = extra_bundle
        self.system_files = system_ca_files()
        self._dir = None
        self.verify = True
        if extra_bundle:
            self._dir = tempfile.mkdtemp(prefix="tunnel-client-ca-")
            combined = os.path.join(self._dir, "ca-bundle.pem")
            with open(combined, "wb") as out:
                for path in list(self.system_files) + [extra_bundle]:
                    with open(path, "rb") as handle:
                        out.write(handle.read().rstrip(b"\n") + b"\n")
            self.verify = combined
            atexit.register(self.close)

    def close(self):
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def describe(self) -> dict:
        return {"system": list(self.system_files), "extra_bundle": self.extra_bundle}


# --- proxies -----------------------------------------------------------------------------


def _env_proxy(environ: Mapping[str, str], scheme: str) -> Tuple[Optional[str], str]:
    for name in ("%s_proxy" % scheme, "%s_PROXY" % scheme.upper(), "all_proxy", "ALL_PROXY"):
        value = environ.get(name, "").strip()
        if value:
            if "://" not in value:
                value = "http://" + value
            return value, name
    return None, ""


def no_proxy_matches(host: str, port: Optional[int], no_proxy: str) -> bool:
    """curl/requests semantics: ``*``, host suffixes (with or without a dot), IPs, CIDRs."""
    host = (host or "").lower().strip("[]")
    for entry in (e.strip().lower() for e in no_proxy.replace(";", ",").split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        entry_host, entry_port = entry, None
        if entry.count(":") == 1 and entry.rsplit(":", 1)[1].isdigit():
            entry_host, entry_port = entry.rsplit(":", 1)[0], int(entry.rsplit(":", 1)[1])
        if entry_port is not None and entry_port != port:
            continue
        try:
            if "/" in entry_host:
                if ipaddress.ip_address(host) in ipaddress.ip_network(entry_host, strict=False):
                    return True
                continue
            if ipaddress.ip_address(host) == ipaddress.ip_address(entry_host.strip("[]")):
                return True
            continue
        except ValueError:
            pass
        suffix = entry_host.lstrip(".")
        if host == suffix or host.endswith("." + suffix):
            return True
    return False


@dataclass(frozen=True)
class Route:
    """How one outbound target is reached. ``proxy`` may hold credentials: never log it."""

    name: str
    target: str
    proxy: Optional[str]
    proxy_source: str
    verify: object = True
    cert: Optional[Tuple[str, str]] = None

    @property
    def proxies(self) -> dict:
        # An explicit mapping (even empty) plus trust_env=False means exactly this route.
        return {"http": self.proxy, "https": self.proxy} if self.proxy else {}

    def request_kwargs(self) -> dict:
        return {"proxies": self.proxies, "verify": self.verify, "cert": self.cert}

    def describe(self) -> str:
        if self.proxy:
            return "via proxy %s (from %s)" % (redact_url(self.proxy), self.proxy_source)
        return "direct (%s)" % self.proxy_source

    def as_dict(self) -> dict:
        return {"name": self.name, "target": redact_url(self.target),
                "route_mode": "proxy" if self.proxy else "direct",
                "proxy_source": self.proxy_source,
                "proxy_url": redact_url(self.proxy) if self.proxy else None}


def resolve_route(name: str, target: str, explicit: Sequence[Optional[ProxySetting]],
                  environ: Mapping[str, str], trust: TrustStore,
                  cert: Optional[Tuple[str, str]] = None) -> Route:
    """Proxy precedence: the first explicit setting (binding > route > global), else the
    environment with NO_PROXY. An explicit proxy ignores NO_PROXY, like the Go client."""
    for setting in explicit:
        if setting is not None:
            return Route(name, target, setting.url, setting.source, trust.verify, cert)
    parts = urlsplit(target)
    proxy, source = _env_proxy(environ, parts.scheme or "https")
    if proxy:
        no_proxy = environ.get("no_proxy", environ.get("NO_PROXY", ""))
        if no_proxy and no_proxy_matches(parts.hostname or "", parts.port or (
                443 if parts.scheme == "https" else 80), no_proxy):
            return Route(name, target, None, "NO_PROXY", trust.verify, cert)
        return Route(name, target, proxy, source, trust.verify, cert)
    return Route(name, target, None, "no proxy configured", trust.verify, cert)


# --- sessions ----------------------------------------------------------------------------


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
