"""Harpoon targets: the registry of internal URLs the tunnel may call by label, the host
classifier OAuth auto-registration uses, and the rewriting of registered URLs to
``harpoon://<label>`` in responses.

Harpoon is not a proxy: a target is one exact URL. The registry is the whole allowlist.
"""

import ipaddress
import re
import threading
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple
from urllib.parse import urlsplit, urlunsplit

from tunnel_client.config.values import redact_target_url

MAX_TARGETS = 10000
ALLOWED_METHODS = ("GET", "POST", "PUT")


def normalize_url(url: str) -> str:
    """Scheme and host compare case-insensitively; the rest exactly; default ports drop."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = "[%s]" % host
    port = parts.port
    if port and not ((parts.scheme == "https" and port == 443) or
                     (parts.scheme == "http" and port == 80)):
        host = "%s:%d" % (host, port)
    return urlunsplit((parts.scheme.lower(), host, parts.path or "/", parts.query, ""))


def origin(url: str) -> str:
    parts = urlsplit(normalize_url(url))
    return "%s://%s" % (parts.scheme, parts.netloc)


@dataclass(frozen=True)
class Target:
    label: str
    url: str
    description: str = ""
    category: str = "config"
    source: str = "config"
    tags: Tuple[str, ...] = ()
    unix_socket: Optional[str] = None
    inclusion_reason: str = "configured"

    def listing(self) -> dict:
        """What list_targets shows: never the URL."""
        return {"label": self.label, "description": self.description,
                "category": self.category, "source": self.source, "tags": list(self.tags),
                "allowed_methods": list(ALLOWED_METHODS)}

    def as_dict(self) -> dict:
        return dict(self.listing(), url=redact_target_url(self.url),
                    unix_socket=self.unix_socket,
                    inclusion_reason=self.inclusion_reason)


class RegistryError(ValueError):
    pass


class Registry:
    def __init__(self):
        self._lock = threading.Lock()
        self._targets: Dict[str, Target] = {}
        self._listeners: List[Callable[[], None]] = []

    def on_change(self, listener: Callable[[], None]):
        self._listeners.append(listener)

    def add(self, target: Target, replace: bool = False) -> Target:
        with self._lock:
            if target.label in self._targets and not replace:
                raise RegistryError('harpoon target label "%s" is already registered'
                                    % target.label)
            if len(self._targets) >= MAX_TARGETS:
                raise RegistryError("harpoon registry is full (%d targets)" % MAX_TARGETS)
            key = normalize_url(target.url)
            for other in self._targets.values():
                if other.label != target.label and normalize_url(other.url) == key and \
                        other.unix_socket != target.unix_socket:
                    raise RegistryError("targets %s and %s share a URL but not a transport"
                                        % (other.label, target.label))
            self._targets[target.label] = target
        for listener in self._listeners:
            listener()
        return target

    def free_label(self, base: str) -> str:
        with self._lock:
            if base not in self._targets:
                return base
            n = 1
            while "%s-%d" % (base, n) in self._targets:
                n += 1
            return "%s-%d" % (base, n)

    def get(self, label: str) -> Optional[Target]:
        with self._lock:
            return self._targets.get(label)

    def by_url(self, url: str) -> List[Target]:
        key = normalize_url(url)
        with self._lock:
            return [t for t in self._targets.values() if normalize_url(t.url) == key]

    def all(self) -> List[Target]:
        with self._lock:
            return list(self._targets.values())

    def __len__(self):
        with self._lock:
            return len(self._targets)

    def find(self, categories=(), sources=(), tags=()) -> List[Target]:
        """categories OR, sources OR, tags ALL; the three fields AND; case-insensitive."""
        categories = {c.lower() for c in categories or ()}
        sources = {s.lower() for s in sources or ()}
        tags = {t.lower() for t in tags or ()}
        found = []
        for target in sorted(self.all(), key=lambda t: t.label):
            if categories and target.category.lower() not in categories:
                continue
            if sources and target.source.lower() not in sources:
                continue
            if tags and not tags <= {t.lower() for t in target.tags}:
                continue
            found.append(target)
        return found


# --- which hosts count as private (behind the tunnel) ------------------------------------


@dataclass(frozen=True)
class HostPolicy:
    include_loopback: bool = True
    include_private: bool = True
    suffixes: Sequence[str] = ()
    patterns: Sequence[str] = ()
    _compiled: tuple = field(default=(), compare=False)

    def is_private(self, host: str) -> Tuple[bool, str]:
        host = (host or "").lower().strip("[]").rstrip(".")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None:
            if address.is_loopback:
                return self.include_loopback, "loopback address"
            if address.is_private or (address.version == 6 and address in
                                      ipaddress.ip_network("fc00::/7")):
                return self.include_private, "private address"
        elif host == "localhost" or host.endswith(".localhost"):
            return self.include_loopback, "localhost"
        for suffix in self.suffixes:
            suffix = suffix.lower().lstrip(".")
            if host == suffix or host.endswith("." + suffix):
                return True, "suffix %s" % suffix
        for pattern in self.patterns:
            if re.search("(?i:%s)" % pattern, host):
                return True, "pattern %s" % pattern
        return False, "public host"


# --- harpoon:// rewriting ----------------------------------------------------------------

_KEY_ROLES = {"token_endpoint": "token-endpoint", "registration_endpoint": "registration-endpoint",
              "revocation_endpoint": "revocation-endpoint", "issuer": "issuer",
              "jwks_uri": "jwks-uri", "introspection_endpoint": "introspection-endpoint",
              "authorization_servers": "authorization-server"}


def rewrite_json(value, registry: Registry, key: Optional[str] = None):
    """Replace registered target URLs in a JSON document by harpoon://<label>. The JSON key
    hints which target to prefer; a PRMD ``resource`` is never rewritten."""
    if isinstance(value, dict):
        return {k: (v if k == "resource" else rewrite_json(v, registry, k))
                for k, v in value.items()}
    if isinstance(value, list):
        return [rewrite_json(v, registry, key) for v in value]
    if isinstance(value, str) and value.lower().startswith(("http://", "https://")):
        label = label_for(value, registry, key)
        return "harpoon://%s" % label if label else value
    return value


def label_for(url: str, registry: Registry, key: Optional[str] = None) -> Optional[str]:
    try:
        matches = registry.by_url(url)
    except ValueError:
        return None
    if not matches:
        return None
    role = _KEY_ROLES.get(key or "")
    for target in matches:
        if role and role in target.tags:
            return target.label
    return sorted(matches, key=lambda t: t.label)[0].label
