"""OAuth discovery for an OAuth-protected HTTP MCP server, from inside the network.

1. Protected Resource Metadata (RFC 9728): the ``WWW-Authenticate`` probe, then the
   path-specific and the root well-known URLs; redirects only within a candidate's origin;
   bounded size and time. 404 everywhere means "not advertised", which is fine.
2. Authorization-server metadata for ``authorization_servers[0]`` (the source of truth):
   both documents, both path styles; an issuer mismatch is accepted with a warning.
3. Private endpoints the tunnel service must reach (registration, token, revocation,
   metadata...) become Harpoon targets, under a conservative policy: the host must be
   private *and* be the MCP server's own host or a subdomain of it. A poisoned document
   pointing at some other internal host registers nothing.
"""

import hashlib
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple
from urllib.parse import urljoin, urlsplit

import requests

from tunnel_client import USER_AGENT, wire
from tunnel_client.config.values import redact_url
from tunnel_client.mcp.targets import HostPolicy, Registry, RegistryError, Target, origin
from tunnel_client.observe.logs import get_logger

log = get_logger("oauth")

BODY_LIMIT = 1 << 20
NOT_ADVERTISED = (404, 405, 410)  # "no such document", which is fine
MAX_REDIRECTS = 10
PRMD = "oauth-protected-resource"
AS_DOCUMENTS = ("oauth-authorization-server", "openid-configuration")
AS_FIELDS = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri",
             "introspection_endpoint", "registration_endpoint", "revocation_endpoint")
_REGISTERED_ROLES = ("issuer", "token-endpoint", "jwks-uri", "introspection-endpoint",
                     "registration-endpoint", "revocation-endpoint")
_ROLE_TAGS = {"prmd-resource": ["protected-resource-metadata", "resource"],
              "prmd-auth-server": ["protected-resource-metadata", "authorization-server"],
              "prmd-source": ["protected-resource-metadata", "source-url"],
              "auth-server-metadata": ["auth-server-metadata"]}


@dataclass
class Attempt:
    url: str
    source: str
    status_code: Optional[int] = None
    error: Optional[str] = None
    selected: bool = False


@dataclass
class Discovery:
    """The outcome one operator reads in /api/oauth and doctor."""

    state: str = "pending"  # pending | ok | not_advertised | failed | disabled
    metadata_source: Optional[str] = None  # www_authenticate | well_known_path | ...
    url: Optional[str] = None
    status_code: Optional[int] = None
    headers: Dict[str, List[str]] = field(default_factory=dict)
    body: Optional[bytes] = None
    document: Optional[dict] = None
    error: Optional[str] = None
    attempts: List[Attempt] = field(default_factory=list)
    auth_server: Optional[dict] = None
    auth_server_attempts: List[dict] = field(default_factory=list)
    registered: List[str] = field(default_factory=list)
    rejected: List[str] = field(default_factory=list)
    fetched_at: Optional[float] = None

    def as_dict(self) -> dict:
        return {"state": self.state, "metadata_source": self.metadata_source,
                "url": self.url, "status_code": self.status_code, "error": self.error,
                "fetched_at": self.fetched_at, "document": self.document,
                "attempts": [vars(a) for a in self.attempts],
                "auth_server_metadata": self.auth_server,
                "auth_server_attempts": self.auth_server_attempts,
                "registered_targets": self.registered, "rejected_endpoints": self.rejected,
                "auth_server_metadata_mode": "authorization_servers[0] only (source of truth)"}


def parse_resource_metadata(challenges: str) -> Optional[str]:
    """``resource_metadata`` of a Bearer challenge (quoted or token form)."""
    for match in re.finditer(r'(?i)\bresource_metadata\s*=\s*(?:"([^"]*)"|([^\s,]+))',
                             challenges or ""):
        value = match.group(1) if match.group(1) is not None else match.group(2)
        if value.lower().startswith(("http://", "https://")):
            return value
    return None


def candidates(mcp_url: str) -> List[Tuple[str, str]]:
    parts = urlsplit(mcp_url)
    root = "%s://%s" % (parts.scheme, parts.netloc)
    path = parts.path.strip("/")
    found = []
    if path.startswith(".well-known/" + PRMD):
        found.append(("%s/%s" % (root, path), "well_known_path"))
    elif path:
        found.append(("%s/.well-known/%s/%s" % (root, PRMD, path), "well_known_path"))
    found.append(("%s/.well-known/%s" % (root, PRMD), "well_known_root"))
    return found


def as_metadata_candidates(issuer: str) -> List[Tuple[str, str, str]]:
    parts = urlsplit(issuer)
    root = "%s://%s" % (parts.scheme, parts.netloc)
    path = parts.path.strip("/")
    found = []
    for document in AS_DOCUMENTS:
        prepend = ("%s/.well-known/%s%s" % (root, document, "/" + path if path else ""),
                   document, "prepend")
        append = ("%s/%s/.well-known/%s" % (root, path, document) if path else prepend[0],
                  document, "append")
        pair = [append, prepend] if path else [prepend, append]
        for candidate in pair:
            if candidate[0] not in [c[0] for c in found]:
                found.append(candidate)
    return found


class Discoverer:
    """Runs discovery with the main binding's session (same proxy, CA, mTLS, socket) and
    the discovery-only static headers; never with a caller's Authorization."""

    def __init__(self, binding, registry: Registry, policy: HostPolicy):
        self.binding = binding
        self.registry = registry
        self.policy = policy
        self.result = Discovery()
        self._lock = threading.Lock()

    def _headers(self) -> Dict[str, str]:
        headers = dict(self.binding.static_headers.items)
        headers.update(self.binding.discovery_headers.items)
        headers.update({"Accept": "application/json", "User-Agent": USER_AGENT})
        return headers

    def _get(self, url: str, deadline: wire.Deadline, method: str = "GET"):
        """GET with same-origin redirects only; returns (response, final url, body)."""
        session = self.binding.sessions.get()
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            timeout = max(0.05, deadline.remaining(cap=5.0))
            resp = session.request(method, current, headers=self._headers(),
                                   timeout=(timeout, timeout), stream=True,
                                   allow_redirects=False, **self.binding.route.request_kwargs())
            location = resp.headers.get("Location")
            if resp.status_code in (301, 302, 303, 307, 308) and location:
                resp.close()
                target = urljoin(current, location)
                if origin(target) != origin(url):
                    raise ValueError("redirect to another origin refused: %s" %
                                     redact_url(target))
                current = target
                continue
            body, cut = _read(resp, deadline)
            if cut:
                raise ValueError("response over %d bytes" % BODY_LIMIT)
            return resp, current, body
        raise ValueError("too many redirects")

    def _probe_www_authenticate(self, deadline) -> Optional[str]:
        for method in ("POST", "GET"):
            try:
                resp, _, _ = self._get(self.binding.url, deadline.sooner(1.0), method)
            except (requests.RequestException, ValueError):
                continue
            if resp.status_code == 401:
                return parse_resource_metadata(resp.headers.get("WWW-Authenticate", ""))
        return None

    def run(self, budget: float = 5.0) -> Discovery:
        deadline = wire.Deadline.after(budget)
        result = Discovery(fetched_at=time.time())
        tried: List[Tuple[str, str]] = []
        announced = self._probe_www_authenticate(deadline)
        if announced:
            tried.append((announced, "www_authenticate"))
        for url, source in candidates(self.binding.url):
            if url not in [u for u, _ in tried]:
                tried.append((url, source))
        found = self._first_document(tried, deadline, result)
        if found is None and all(a.error and "timed out" in a.error for a in result.attempts):
            for pass_timeout in (2.0, 4.0, 8.0):  # a slow server gets a second chance
                found = self._first_document(tried, wire.Deadline.after(pass_timeout), result)
                if found is not None:
                    break
        if found is None:
            result.state = "not_advertised" if all(a.status_code in NOT_ADVERTISED
                                                   for a in result.attempts) else "failed"
            if result.state == "failed":
                result.error = "; ".join("%s: %s" % (a.url, a.error or "HTTP %s" % a.status_code)
                                         for a in result.attempts)[:500]
        else:
            self._enrich(result, deadline)
            self._register(result)
        with self._lock:
            self.result = result
        log.info("oauth discovery finished", extra={
            "state": result.state, "metadata_source": result.metadata_source,
            "registered": result.registered, "rejected": result.rejected})
        return result

    def _first_document(self, tried, deadline, result: Discovery):
        for url, source in tried:
            attempt = Attempt(url, source)
            result.attempts.append(attempt)
            try:
                resp, final_url, body = self._get(url, deadline)
            except (requests.RequestException, ValueError) as exc:
                attempt.error = "timed out" if "timed out" in str(exc).lower() or isinstance(
                    exc, requests.Timeout) else str(exc)[:200]
                continue
            attempt.status_code = resp.status_code
            if resp.status_code != 200 or not body.strip():
                continue
            try:
                document = wire.loads(body)
            except ValueError:
                attempt.error = "not JSON"
                continue
            if not isinstance(document, dict) or not document.get("resource"):
                attempt.error = "no resource in the document"
                continue
            attempt.selected = True
            result.state, result.metadata_source = "ok", source
            result.url, result.status_code, result.body = final_url, 200, body
            result.headers = {k: [v] for k, v in resp.headers.items()}
            result.document = document
            return document
        return None

    def _enrich(self, result: Discovery, deadline):
        servers = result.document.get("authorization_servers") or []
        if not servers or not isinstance(servers[0], str):
            return
        issuer = servers[0]
        mismatched = None
        for url, document, style in as_metadata_candidates(issuer):
            attempt = {"url": url, "document": document, "path_style": style}
            result.auth_server_attempts.append(attempt)
            try:
                resp, _, body = self._get(url, deadline)
            except (requests.RequestException, ValueError) as exc:
                attempt["error"] = str(exc)[:200]
                continue
            attempt["status_code"] = resp.status_code
            if resp.status_code != 200 or "json" not in resp.headers.get("Content-Type", ""):
                continue
            try:
                metadata = wire.loads(body)
            except ValueError:
                attempt["error"] = "not JSON"
                continue
            if not isinstance(metadata, dict):
                continue
            if metadata.get("issuer") == issuer:
                attempt["selected"] = True
                result.auth_server = {"url": url, "issuer_url": issuer, **{
                    k: metadata.get(k) for k in AS_FIELDS if metadata.get(k)}}
                return
            if mismatched is None:
                mismatched = (url, metadata, attempt)
        if mismatched is not None:
            url, metadata, attempt = mismatched
            attempt.update(selected=True, issuer_mismatch=True, expected_issuer_url=issuer,
                           metadata_issuer=metadata.get("issuer"))
            log.warning("oauth auth-server metadata issuer differs from "
                        "authorization_servers[0]", extra={"expected": issuer,
                                                           "metadata_issuer": metadata.get(
                                                               "issuer")})
            result.auth_server = {"url": url, "issuer_url": issuer, **{
                k: metadata.get(k) for k in AS_FIELDS if metadata.get(k)}}

    def _records(self, result: Discovery) -> List[Tuple[str, str, str]]:
        """(role, url, group) for every endpoint the discovery found."""
        records = [("prmd-source", result.url, "")]
        document = result.document
        if isinstance(document.get("resource"), str):
            records.append(("prmd-resource", document["resource"], ""))
        servers = document.get("authorization_servers") or []
        if servers and isinstance(servers[0], str):
            records.append(("prmd-auth-server", servers[0], ""))
        meta = result.auth_server or {}
        group = ""
        if meta:
            group = "auth-server:%s:0" % hashlib.sha256(meta["url"].encode()).hexdigest()[:12]
            records.append(("auth-server-metadata", meta["url"], group))
            for key in AS_FIELDS:
                role = key.replace("_", "-")
                if role in _REGISTERED_ROLES and isinstance(meta.get(key), str):
                    records.append((role, meta[key], group))
        return records

    def _register(self, result: Discovery):
        mcp = urlsplit(self.binding.url)
        mcp_host = (mcp.hostname or "").lower()
        for role, url, group in self._records(result):
            try:
                parts = urlsplit(url)
                port = _effective_port(parts)
            except ValueError:
                continue
            if parts.scheme not in ("http", "https") or not parts.hostname:
                continue
            host = parts.hostname.lower()
            private, why = self.policy.is_private(host)
            if not private:
                continue  # public endpoints are reached by the service directly
            # The MCP server's origin (scheme, host and port) or a subdomain on the same
            # scheme and port: a document naming another port of the same host (a database,
            # a cache) registers nothing.
            if not (host == mcp_host or host.endswith("." + mcp_host)) or \
                    parts.scheme != mcp.scheme or port != _effective_port(mcp):
                result.rejected.append("%s %s: private host off the MCP server's origin" % (
                    role, redact_url(url)))
                continue
            existing = self.registry.by_url(url)
            if existing:
                if existing[0].label not in result.registered:
                    result.registered.append(existing[0].label)
                continue
            tags = list(_ROLE_TAGS.get(role, ["auth-server-metadata", role]))
            if group:
                tags.append("group=%s" % group)
            label = self.registry.free_label("oauth-%s-0" % role)
            try:
                self.registry.add(Target(label, url, "OAuth %s (discovered)" % role, "oauth",
                                         "oauth", tuple(tags), self.binding.route.unix_socket
                                         if host == mcp_host else None,
                                         "oauth discovery: %s" % why))
            except RegistryError as exc:
                result.rejected.append("%s: %s" % (role, exc))
                continue
            result.registered.append(label)


def _effective_port(parts) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def _read(resp, deadline) -> Tuple[bytes, bool]:
    from tunnel_client.net import read_limited
    try:
        return read_limited(resp, BODY_LIMIT, deadline, idle=5.0)
    finally:
        resp.close()
