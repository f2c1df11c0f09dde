"""Harpoon: a built-in MCP server on the reserved ``harpoon`` channel that calls internal
HTTP endpoints the operator registered by label (and that OAuth discovery registered).

Not a proxy: ``call_target`` reaches exactly the registered URL, follows redirects only to
other registered URLs, bounds time and size, refuses (never truncates) oversized answers,
and strips headers that could impersonate the edge. Its traffic uses the Harpoon route's
proxy and CA settings and never touches the customer's MCP server.
"""

import base64
import collections
import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional
from urllib.parse import urljoin, urlsplit

import requests

from tunnel_client import USER_AGENT, __version__, wire
from tunnel_client.config.values import has_dot_segments, redact_target_url, redact_url
from tunnel_client.mcp import protocol as mcp
from tunnel_client.mcp.binding import Binding
from tunnel_client.mcp.targets import ALLOWED_METHODS, Registry, Target, label_for, rewrite_json
from tunnel_client.net import (BodyDeadline, SessionPool, header_pairs, heads_within,
                               read_limited, resolve_route)
from tunnel_client.observe.health import Check
from tunnel_client.observe.logs import REDACTOR, get_logger

log = get_logger("harpoon")

TIMEOUT_DEFAULT_MS, TIMEOUT_MIN_MS, TIMEOUT_MAX_MS = 30000, 100, 120000
HISTORY = 100
INSTRUCTIONS = ("Harpoon calls internal HTTP endpoints that the tunnel operator registered by "
                "label. list_targets shows what exists; call_target calls one exact URL.")
BLOCKED_HEADERS = frozenset((
    "accept-encoding", "cf-connecting-ip", "connection", "content-length", "cookie",
    "forwarded", "host", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "proxy-connection", "te", "trailer", "transfer-encoding", "true-client-ip", "upgrade",
    "user-agent", "via", "x-client-ip", "x-cluster-client-ip", "x-custom-cf-witness-actor",
    "x-custom-cf-witness-authorization", "x-envoy-external-address", "x-forwarded-for",
    "x-forwarded-host", "x-forwarded-port", "x-forwarded-proto", "x-openai-actor-authorization",
    "x-openai-authorization", "x-openai-authorization-error", "x-openai-internal-caller",
    "x-openai-skip-auth", "x-original-forwarded-for", "x-real-ip", "x-tunnel-traffic-source"))
_HOP_BY_HOP = frozenset(("connection", "keep-alive", "transfer-encoding", "te", "trailer",
                         "upgrade", "proxy-authenticate", "proxy-connection", "content-length"))

TOOLS = [
    {"name": "list_targets", "title": "List targets",
     "description": "List the registered targets (labels, descriptions, tags; never URLs). "
                    "Filters: categories (any), sources (any), tags (all).",
     "inputSchema": {"type": "object", "properties": {
         "categories": {"type": "array", "items": {"type": "string"}},
         "sources": {"type": "array", "items": {"type": "string"}},
         "tags": {"type": "array", "items": {"type": "string"}}}},
     "annotations": {"readOnlyHint": True, "idempotentHint": True, "openWorldHint": False}},
    {"name": "call_target", "title": "Call a target",
     "description": "Send one HTTP request to the exact URL registered under a label.",
     "inputSchema": {"type": "object", "required": ["label"], "properties": {
         "label": {"type": "string"}, "method": {"type": "string", "enum": list(ALLOWED_METHODS)},
         "headers": {"type": "object", "additionalProperties": {"type": "string"}},
         "body": {"type": "string"},
         "timeout_ms": {"type": "integer", "minimum": TIMEOUT_MIN_MS,
                        "maximum": TIMEOUT_MAX_MS},
         "max_response_bytes": {"type": "integer", "minimum": 1},
         "follow_redirects": {"type": "boolean"},
         "max_redirects": {"type": "integer", "minimum": 0}}},
     "annotations": {"openWorldHint": True}},
    {"name": "get_oauth_target_audience", "title": "OAuth token audience",
     "description": "The exact token endpoint URL behind an OAuth token-endpoint target, for "
                    "use as a private_key_jwt audience.",
     "inputSchema": {"type": "object", "required": ["label"],
                     "properties": {"label": {"type": "string"}}},
     "annotations": {"readOnlyHint": True, "idempotentHint": True, "openWorldHint": False}},
]


class ToolError(Exception):
    def __init__(self, label: str, message: str, outcome: str = "invalid_input"):
        super().__init__(message)
        self.label, self.outcome = label, outcome


@dataclass(frozen=True)
class HarpoonOptions:
    allow_plaintext_http: bool = False
    max_response_bytes: int = 102400
    max_redirects: int = 5
    capture_payloads: bool = False


class HarpoonBinding(Binding):
    channel = wire.HARPOON_CHANNEL
    transport = "in-memory"
    proc_affinity = True

    def __init__(self, registry: Registry, options: HarpoonOptions, route_settings,
                 instruments=None):
        self.registry = registry
        self.options = options
        self._route_settings = route_settings  # (proxies, environ, trust) for resolve_route
        self._pools: Dict[Optional[str], SessionPool] = {}
        self._lock = threading.Lock()
        self.history = collections.deque(maxlen=HISTORY)
        self.metrics = None
        if instruments is not None:
            r = instruments.registry
            self.metrics = (
                r.counter("harpoon_call_total", "Harpoon calls.",
                          ("label", "status_class", "outcome")),
                r.histogram("harpoon_call_latency_milliseconds", "Harpoon call latency.",
                            ("label",)),
                r.histogram("harpoon_response_size_bytes", "Harpoon response sizes.",
                            ("label",), buckets=(256, 1024, 4096, 16384, 65536, 102400)))

    # --- binding -------------------------------------------------------------------------

    @property
    def routable(self) -> bool:
        return len(self.registry) > 0

    def health(self) -> Check:
        return Check(True, "%d harpoon targets" % len(self.registry))

    def describe(self) -> dict:
        return {"name": self.channel, "transport_kind": self.transport,
                "targets": len(self.registry), "server_kind": "builtin"}

    def stop(self):
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()

    def handle(self, cmd: wire.Command, deadline: wire.Deadline) -> Iterator[wire.Reply]:
        if cmd.command_type == wire.CMD_SESSION_TERMINATION:
            yield wire.session_terminated(405)
            return
        if cmd.command_type != wire.CMD_JSONRPC or wire.rpc_kind(cmd.message) != "request":
            yield wire.notify_ack(202)
            return
        msg = cmd.message
        try:
            result = self._dispatch(msg, deadline)
        except _RpcError as exc:
            yield wire.rpc_error(msg["id"], exc.code, exc.message, 200)
            return
        if result is None:
            return  # the deadline passed mid-call: nothing may be posted
        if mcp.is_modern(msg):
            result = dict(result, resultType="complete")
        yield wire.response(wire.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}),
                            200)

    def _dispatch(self, msg, deadline):
        method = msg["method"]
        params = msg.get("params") if isinstance(msg.get("params"), dict) else {}
        if method == mcp.INITIALIZE:
            requested = params.get("protocolVersion")
            return {"protocolVersion": requested if isinstance(requested, str) and
                    requested.startswith("20") else mcp.LATEST_LEGACY_VERSION,
                    "capabilities": {"tools": {"listChanged": False}},
                    "serverInfo": {"name": "harpoon", "title": "Harpoon (Constrained HTTP "
                                   "Client)", "version": __version__},
                    "instructions": INSTRUCTIONS}
        if method == mcp.DISCOVER:
            return {"supportedVersions": ["2026-07-28"],
                    "capabilities": {"tools": {"listChanged": False}},
                    "instructions": INSTRUCTIONS, "cacheScope": "private", "ttlMs": 0}
        if method == mcp.PING:
            return {}
        if method == "tools/list":
            return {"tools": TOOLS}
        if method == "tools/call":
            return self._tool(params.get("name"), params.get("arguments") or {}, deadline)
        raise _RpcError(-32601, "Method not found: %s" % method)

    def _tool(self, name, args, deadline):
        if not isinstance(args, dict):
            raise _RpcError(-32602, "Invalid params: arguments must be an object")
        try:
            if name == "list_targets":
                for field_name in ("categories", "sources", "tags"):
                    _check(args, field_name, _is_string_list, "a list of strings")
                targets = self.registry.find(args.get("categories"), args.get("sources"),
                                             args.get("tags"))
                return _json_result({"targets": [t.listing() for t in targets]})
            if name == "call_target":
                return self._call_target(args, deadline)
            if name == "get_oauth_target_audience":
                return _json_result({"audience": self._audience(args.get("label"))})
        except ToolError as exc:
            return _error_result(exc.label, str(exc))
        raise _RpcError(-32602, "Unknown tool: %s" % name)

    def _audience(self, label) -> str:
        target = self._target(label)
        if target.category != "oauth" or not {"auth-server-metadata", "token-endpoint"} <= \
                set(target.tags):
            raise ToolError(target.label, "not an OAuth token endpoint target")
        parts = urlsplit(target.url)
        if parts.scheme not in ("http", "https") or parts.username or parts.fragment:
            raise ToolError(target.label, "target URL cannot be an audience")
        return target.url

    def _target(self, label) -> Target:
        if not isinstance(label, str) or not label:
            raise ToolError("", "label is required")
        target = self.registry.get(label)
        if target is None:
            raise ToolError(label, "unknown target")
        return target

    # --- call_target ---------------------------------------------------------------------

    def _call_target(self, args, deadline):
        _check_call_arguments(args)
        target = self._target(args.get("label"))
        label = target.label
        started = time.monotonic()
        record = {"timestamp": time.time(), "label": label,
                  "url": redact_target_url(target.url),
                  "method": args.get("method") or "GET", "status": None, "error": None}
        try:
            result, outcome, status = self._perform(target, args, deadline, record)
        except ToolError as exc:
            record["error"] = str(exc)
            self._observe(label, None, exc.outcome, started, 0, record)
            raise
        self._observe(label, status, outcome, started, result.get("body_size_bytes", 0), record)
        return _json_result(result)

    def _perform(self, target: Target, args, deadline, record):
        label = target.label
        method = (args.get("method") or "GET").upper()
        if method not in ALLOWED_METHODS:
            raise ToolError(label, "invalid method")
        timeout_ms = args.get("timeout_ms", TIMEOUT_DEFAULT_MS)
        if timeout_ms < TIMEOUT_MIN_MS:
            raise ToolError(label, "timeout must be at least %dms" % TIMEOUT_MIN_MS)
        limit = args.get("max_response_bytes", self.options.max_response_bytes)
        if limit < 1:
            raise ToolError(label, "max_response_bytes must be at least 1")
        if limit > self.options.max_response_bytes:
            raise ToolError(label, "max_response_bytes must be less than or equal to %d"
                            % self.options.max_response_bytes)
        body = args.get("body")
        data = body.encode("utf-8") if body else None
        if data and len(data) > self.options.max_response_bytes:
            raise ToolError(label, "request body exceeds size limit")
        max_redirects = max(0, min(args.get("max_redirects", self.options.max_redirects),
                                   self.options.max_redirects))
        follow = args.get("follow_redirects", True) is not False
        headers = self._headers(args.get("headers"), label)
        call_deadline = deadline.sooner(min(timeout_ms, TIMEOUT_MAX_MS) / 1000.0)
        record["req_bytes"] = len(data or b"")
        if self.options.capture_payloads and body:
            record["request_body"] = REDACTOR.text(body)
        current, hops = target, 0
        while True:
            self._check_scheme(current, label)
            resp = self._send(current, method, headers, data, call_deadline, label)
            location = resp.headers.get("Location")
            if follow and resp.status_code in (301, 302, 303, 307, 308) and location:
                resp.close()
                hops += 1
                if hops > max_redirects:
                    raise ToolError(label, "redirect limit exceeded", "request_error")
                current = self._redirect_target(current, urljoin(current.url, location), label)
                if resp.status_code == 303 or (resp.status_code in (301, 302) and
                                               method == "POST"):
                    method, data = "GET", None
                continue
            break
        try:
            raw, cut = read_limited(resp, limit, call_deadline.sooner(TIMEOUT_MAX_MS / 1000.0))
        except BodyDeadline:
            raise ToolError(label, "response read timed out", "response_read_error") from None
        except (requests.RequestException, OSError):
            raise ToolError(label, "response read failed", "response_read_error") from None
        finally:
            resp.close()
        if cut:
            raise ToolError(label, "response exceeds size limit", "response_too_large")
        record.update(status=resp.status_code, resp_bytes=len(raw),
                      response_content_type=resp.headers.get("Content-Type"))
        out_headers = self._response_headers(resp)
        body_out = self._rewrite_body(raw, resp.headers.get("Content-Type", ""))
        if self.options.capture_payloads:
            record["response_body"] = REDACTOR.text(raw.decode("utf-8", "replace"))
            if body_out != raw:
                record["response_body_transformed"] = REDACTOR.text(
                    body_out.decode("utf-8", "replace"))
        return ({"status_code": resp.status_code, "headers": out_headers,
                 "body_base64": base64.b64encode(body_out).decode("ascii"),
                 "body_size_bytes": len(raw), "truncated": False},
                "success", resp.status_code)

    def _check_scheme(self, target: Target, label: str):
        if target.url.lower().startswith("http://") and not self.options.allow_plaintext_http:
            raise ToolError(label, "https is required (set harpoon.allow_plaintext_http)")

    def _redirect_target(self, current: Target, url: str, label: str) -> Target:
        parts = urlsplit(url)
        if has_dot_segments(parts.path):
            raise ToolError(label, "redirect blocked", "request_error")
        if current.url.lower().startswith("https://") and parts.scheme == "http":
            raise ToolError(label, "redirect blocked: scheme mismatch (allowlisted https, "
                            "redirected to http)", "request_error")
        matches = self.registry.by_url(url)
        if not matches:
            raise ToolError(label, "redirect blocked", "request_error")
        return matches[0]

    def _headers(self, given, label) -> Dict[str, str]:
        # Names and values were checked by _check_call_arguments: names are RFC 9110 tokens
        # (no "Host " with a trailing space slipping past the block-list), so the lower-case
        # name is the canonical one to compare.
        given = given or {}
        nominated = set()
        for name, value in given.items():
            if name.lower() == "connection":
                nominated.update(t.strip().lower() for t in value.split(","))
        headers = {}
        for name, value in given.items():
            lower = name.lower()
            if lower in BLOCKED_HEADERS or lower in nominated:
                log.info("harpoon dropped a request header",
                         extra={"label": label, "classification": "not-forwardable"
                                if lower in _HOP_BY_HOP else "sensitive-name"})
                continue
            headers[name] = ", ".join(value) if isinstance(value, list) else value
        headers["User-Agent"] = USER_AGENT
        headers["Accept-Encoding"] = "identity"
        return headers

    def _send(self, target: Target, method, headers, data, deadline, label):
        pool = self._pool(target)
        timeout = max(0.001, deadline.remaining(cap=TIMEOUT_MAX_MS / 1000.0))
        try:
            with heads_within(deadline):
                return pool.get().request(method, target.url, headers=headers, data=data,
                                          timeout=(min(10.0, timeout), timeout), stream=True,
                                          allow_redirects=False, **pool.route.request_kwargs())
        except requests.RequestException as exc:
            failure = wire.classify_exception(exc)
            log.warning("harpoon call failed", extra={"label": label, "url": redact_url(
                target.url), "failure_source": failure.source,
                "transport_error_kind": failure.transport_error_kind})
            raise ToolError(label, "request failed", "request_error") from None

    def _pool(self, target: Target) -> SessionPool:
        key = target.unix_socket or origin_key(target.url)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                proxies, environ, trust = self._route_settings
                route = resolve_route("harpoon:" + target.label, target.url, proxies, environ,
                                      trust, unix_socket=target.unix_socket)
                pool = self._pools[key] = SessionPool(route, pool_size=2)
            return pool

    def _response_headers(self, resp) -> Dict[str, List[str]]:
        headers: Dict[str, List[str]] = {}
        for name, value in header_pairs(resp):
            if name.lower() in _HOP_BY_HOP or name.lower() == "set-cookie":
                continue
            if name.lower() in ("location", "content-location") and value.lower().startswith(
                    ("http://", "https://")):
                label = label_for(value, self.registry)
                value = "harpoon://%s" % label if label else value
            headers.setdefault(wire.canonical_header(name), []).append(value)
        return headers

    def _rewrite_body(self, raw: bytes, content_type: str) -> bytes:
        if "json" not in content_type.lower() or not raw:
            return raw
        try:
            document = wire.loads(raw)
        except ValueError:
            return raw
        rewritten = rewrite_json(document, self.registry)
        return raw if rewritten == document else wire.dumps(rewritten)

    def _observe(self, label, status, outcome, started, size, record):
        latency = (time.monotonic() - started) * 1000
        record["latency_ms"] = round(latency, 1)
        record["outcome"] = outcome
        self.history.append(record)
        if self.metrics:
            calls, latency_hist, sizes = self.metrics
            status_class = "%dxx" % (status // 100) if status else "none"
            calls.inc(label=label, status_class=status_class, outcome=outcome)
            latency_hist.observe(latency, label=label)
            if size:
                sizes.observe(size, label=label)

    def calls(self, label: Optional[str] = None, limit: int = HISTORY) -> List[dict]:
        items = [c for c in list(self.history) if label is None or c["label"] == label]
        return items[-max(1, min(limit, HISTORY)):]


def origin_key(url: str) -> str:
    parts = urlsplit(url)
    return "%s://%s" % (parts.scheme.lower(), parts.netloc.lower())


_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")  # RFC 9110 field name
_FIELD_VALUE = re.compile(r"^[\t\x20-\x7e\x80-\xff]*$")  # visible Latin-1, spaces, tabs


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_string_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _check(args, name: str, valid, expected: str):
    """A present argument of the wrong type is an invalid parameter (-32602), named."""
    if name in args and not valid(args[name]):
        raise _RpcError(-32602, "Invalid params: %s must be %s" % (name, expected))


def _check_call_arguments(args):
    _check(args, "label", lambda v: isinstance(v, str), "a string")
    _check(args, "method", lambda v: isinstance(v, str), "a string")
    _check(args, "body", lambda v: isinstance(v, str), "a string")
    _check(args, "timeout_ms", _is_int, "an integer")
    _check(args, "max_response_bytes", _is_int, "an integer")
    _check(args, "max_redirects", _is_int, "an integer")
    _check(args, "follow_redirects", lambda v: isinstance(v, bool), "a boolean")
    _check(args, "headers", lambda v: isinstance(v, dict), "an object of strings")
    for name, value in (args.get("headers") or {}).items():
        if not _TOKEN.match(name):
            raise _RpcError(-32602, "Invalid params: headers: %s is not a valid header name"
                            % json.dumps(name))
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            value = ", ".join(value)  # repeated values, joined as HTTP does
        if not isinstance(value, str) or not _FIELD_VALUE.match(value):
            raise _RpcError(-32602, "Invalid params: headers: the value of %s must be a string "
                            "of visible Latin-1 characters" % name)


class _RpcError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


def _json_result(data) -> dict:
    return {"content": [{"type": "text", "text": json.dumps(data)}], "structuredContent": data}


def _error_result(label: str, message: str) -> dict:
    return {"content": [{"type": "text", "text": "label %s: %s" % (label, message)}],
            "isError": True}
