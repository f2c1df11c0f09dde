"""Routes: how each outbound target is reached (proxy, CA trust, client certificate),
resolved once at startup and logged once.

Sessions use ``trust_env=False`` and every request passes ``proxies=``, ``verify=`` and
``cert=`` explicitly, because requests otherwise lets ``HTTPS_PROXY`` and
``REQUESTS_CA_BUNDLE`` silently override session settings.
"""

import atexit
import ipaddress
import os
import shutil
import ssl
import tempfile
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from tunnel_client.config.values import ProxySetting, redact_url

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
    unix_socket: Optional[str] = None

    @property
    def proxies(self) -> dict:
        # An explicit mapping (even empty) plus trust_env=False means exactly this route.
        return {"http": self.proxy, "https": self.proxy} if self.proxy else {}

    def request_kwargs(self) -> dict:
        return {"proxies": self.proxies, "verify": self.verify, "cert": self.cert}

    def describe(self) -> str:
        if self.unix_socket:
            return "over unix socket %s" % self.unix_socket
        if self.proxy:
            return "via proxy %s (from %s)" % (redact_url(self.proxy), self.proxy_source)
        return "direct (%s)" % self.proxy_source

    def as_dict(self) -> dict:
        return {"name": self.name, "target": redact_url(self.target),
                "route_mode": "unix" if self.unix_socket else (
                    "proxy" if self.proxy else "direct"),
                "proxy_source": self.proxy_source,
                "proxy_url": redact_url(self.proxy) if self.proxy else None}


def resolve_route(name: str, target: str, explicit: Sequence[Optional[ProxySetting]],
                  environ: Mapping[str, str], trust: TrustStore,
                  cert: Optional[Tuple[str, str]] = None,
                  unix_socket: Optional[str] = None) -> Route:
    """Proxy precedence: the first explicit setting (binding > route > global), else the
    environment with NO_PROXY. An explicit proxy ignores NO_PROXY, like the Go client.
    A unix socket is dialled directly: no proxy ever applies."""
    if unix_socket:
        return Route(name, target, None, "unix socket", trust.verify, cert, unix_socket)
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
