"""The Streamable HTTP binding: POST each command to the private MCP server.

The command's headers are applied over the operator's static ones (the connector's
``Authorization``, ``Mcp-Session-Id``, ``Mcp-Protocol-Version``, ``Mcp-Method``...), Host
is the target's own. Replies are JSON or SSE; notifications become ``jsonrpc_notify``, the
matching response the terminal ``jsonrpc_response`` with the real status, the target's own
JSON-RPC errors pass through byte for byte (one sent with ``"id": null`` gets the caller's
id, everything else in it intact), and everything else is a synthesized ``-32603`` with
provenance. Every call has connect and read timeouts, even without a ``response_timeout``.
"""

import threading
import time
from typing import Iterator, Optional
from urllib.parse import urlsplit

import requests
from requests.structures import CaseInsensitiveDict

from tunnel_client import wire
from tunnel_client.config.values import BindingSpec, HeaderList, redact_url
from tunnel_client.errors import brief
from tunnel_client.mcp.binding import Binding
from tunnel_client.mcp.protocol import default_initialize_params
from tunnel_client.sse import EventTooLarge, SseParser
from tunnel_client.net import (Route, SessionPool, describe_failure, header_pairs,
                               heads_within, iter_body, read_limited)
from tunnel_client.observe.health import Check
from tunnel_client.observe.logs import RawHttp, get_logger

log = get_logger("mcpclient")

ERROR_BODY_LIMIT = 100 * 1024
MAX_BODY = 64 << 20
DEFAULT_ACCEPT = "application/json, text/event-stream"
# Resuming a stream the server ended early: the delay when it sent no ``retry:`` (the SDKs'
# default), and how many resumed streams in a row may end with no new event before we stop.
DEFAULT_RETRY = 1.0
MAX_FRUITLESS_RESUMES = 3
# Never copied from a command: hop-by-hop headers and what requests computes itself.
_NOT_FORWARDED = frozenset((
    "host", "content-length", "content-type", "connection", "keep-alive", "transfer-encoding",
    "te", "trailer", "upgrade", "proxy-authorization", "proxy-authenticate",
    "proxy-connection", "accept-encoding"))


class HttpBinding(Binding):
    transport = "http-streamable"
    proc_affinity = False

    def __init__(self, spec: BindingSpec, route: Route, static_headers: HeaderList = HeaderList(),
                 connect_timeout: float = 10.0, read_timeout: float = 300.0,
                 ttl: float = 600.0, pool_size: int = 2, probe_interval: float = 30.0,
                 discovery_headers: HeaderList = HeaderList()):
        self.channel = spec.channel
        self.url = spec.url
        self.route = route
        self.static_headers = static_headers or HeaderList()
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.ttl = ttl
        self.sessions = SessionPool(route, pool_size, max_age=ttl)
        self.probe_interval = probe_interval
        self.discovery_headers = discovery_headers or HeaderList()
        self._kwargs = route.request_kwargs()
        self._fields = {"channel": self.channel}
        self._lock = threading.Lock()
        self.probe_status = "pending"  # pending | ok | auth-required | timeout | failed
        self.probe_error = ""
        self.probe_detail = ""  # the full one-line description of the last probe failure
        self.probe_since = time.time()
        self._last_reply = 0.0
        self._stopped = False
        self._stop = threading.Event()  # ends a wait before resuming a stream
        self.discoverer = None  # set by the service for the main channel

    def start(self, housekeeping):
        housekeeping.call_later(0, self._probe_job, "mcp-probe-" + self.channel)

    def stop(self):
        self._stopped = True
        self._stop.set()
        self.sessions.close()

    # --- health --------------------------------------------------------------------------

    def health(self) -> Check:
        with self._lock:
            status, error, since = self.probe_status, self.probe_error, self.probe_since
        target = redact_url(self.url)
        if status == "ok":
            return Check(True, "http-streamable %s reachable" % target, since)
        if status == "auth-required":
            return Check(True, "ready (mcp initialize requires auth: %s)" % error, since)
        if status == "timeout":
            return Check(True, "ready (mcp startup probe timed out: %s)" % error, since)
        if status == "pending":
            return Check(False, "mcp startup probe pending", since)
        return Check(False, "channel %s: MCP server %s unreachable: %s" % (
            self.channel, target, error), since)

    def _set_probe(self, status: str, error: str = ""):
        with self._lock:
            changed = status != self.probe_status
            if changed:
                self.probe_since = time.time()
            self.probe_status, self.probe_error = status, error
        if changed and status != "pending":
            level = log.info if status in ("ok", "auth-required") else log.warning
            level("MCP server probe: %s" % status,
                  extra=dict(self._fields, probe_error=error, url=redact_url(self.url)))

    def _probe_job(self):
        if self._stopped:
            return None
        idle = time.monotonic() - self._last_reply
        if self.probe_status != "ok" or idle >= self.probe_interval:
            self.probe(initialize=self.probe_status == "pending")
        return self.probe_interval or None

    def probe(self, initialize: bool = True, timeout: float = 2.0) -> str:
        """Is the server there? At start an MCP initialize (to tell "requires auth" from
        "broken"), later a session-less ping. Any HTTP answer below 500 means reachable:
        a modern server rejecting initialize is alive, not broken."""
        body = {"jsonrpc": "2.0", "id": "tunnel-client-probe",
                "method": "initialize" if initialize else "ping"}
        if initialize:
            body["params"] = default_initialize_params()
        headers = CaseInsensitiveDict()
        for name, value in self.static_headers.items + self.discovery_headers.items:
            headers[name] = value
        headers.update({"Content-Type": "application/json", "Accept": DEFAULT_ACCEPT})
        resp, cause = self._probe_post(wire.dumps(body), headers, timeout)
        if resp is None:
            first = self.probe_status == "pending"
            self._set_probe("timeout" if cause.source == "timeout" and first else "failed",
                            "%s (%s)" % (cause.transport_error_kind, cause.source))
            return self.probe_status
        with resp:
            session = resp.headers.get("Mcp-Session-Id")
            if resp.status_code == 401:
                self._set_probe("auth-required", "HTTP 401")
            elif resp.status_code >= 500:
                self._set_probe("failed", "HTTP %d" % resp.status_code)
            else:
                self._set_probe("ok")
        if session:
            self._end_probe_session(session, headers, timeout)
        return self.probe_status

    def _probe_post(self, body: bytes, headers, timeout: float):
        """(response, None) or (None, failure). A pooled connection the server dropped says
        nothing about the server, so that case is asked again on a fresh connection."""
        for attempt in (1, 2):
            try:
                return self.sessions.get().post(
                    self.url, data=body, headers=headers, timeout=(timeout, timeout),
                    stream=True, allow_redirects=False, **self._kwargs), None
            except requests.RequestException as exc:
                cause = wire.classify_exception(exc)
                if attempt == 2 or cause.source != "transport_closed":
                    self.probe_detail = describe_failure(exc, self.route)
                    return None, cause
                self.sessions.reset()

    def wait_until_listening(self, timeout: float, stop) -> Optional[str]:
        """Probe until the server answers anything, retrying only "nothing listens yet"
        (connection refused, or a unix socket that does not exist yet). None on success,
        else why the wait ended."""
        deadline = wire.Deadline.after(timeout)
        delay = 0.05
        while True:
            status = self.probe(initialize=True, timeout=min(2.0, max(0.1, timeout)))
            if status != "failed" or not ("connection_refused" in self.probe_error or
                                          "No such file" in self.probe_detail):
                return None if status in ("ok", "auth-required") else self.probe_error
            if deadline.expired():
                return "%s after waiting %gs" % (self.probe_error, timeout)
            if stop.wait(min(delay, deadline.remaining())):
                return "stopping"
            delay = min(delay * 2, 1.0)

    def _end_probe_session(self, session: str, headers, timeout: float):
        headers = CaseInsensitiveDict(headers)
        headers["Mcp-Session-Id"] = session
        del headers["Content-Type"]
        try:
            self.sessions.get().delete(self.url, headers=headers, timeout=(timeout, timeout),
                                       **self._kwargs).close()
        except requests.RequestException:
            pass

    def _observed(self, reachable: bool, error: str = ""):
        """Real traffic is the best probe: a reply proves the server is there."""
        if reachable:
            self._last_reply = time.monotonic()
            if self.probe_status != "ok":
                self._set_probe("ok")
        elif self.probe_status != "failed":
            self._set_probe("failed", error)

    def describe(self) -> dict:
        return {"name": self.channel, "transport_kind": self.transport,
                "url": redact_url(self.url) + _path(self.url), "route": self.route.describe(),
                "probe_status": self.probe_status, "probe_error": self.probe_error}

    # --- requests ------------------------------------------------------------------------

    def _headers(self, cmd: wire.Command) -> CaseInsensitiveDict:
        headers = CaseInsensitiveDict()
        for name, value in self.static_headers.items:
            headers[name] = value
        for name, values in cmd.headers.items():
            if name.lower() not in _NOT_FORWARDED:
                headers[name] = ", ".join(values)
        headers["Content-Type"] = "application/json"
        headers["Accept-Encoding"] = "identity"  # stream events as they arrive, uncompressed
        if "Accept" not in headers:
            headers["Accept"] = DEFAULT_ACCEPT
        return headers

    def _timeout(self, deadline: wire.Deadline):
        read = deadline.remaining(cap=self.read_timeout)
        return (self.connect_timeout if not deadline.bounded
                else max(0.001, min(self.connect_timeout, read)), max(0.001, read))

    def handle(self, cmd: wire.Command, deadline: wire.Deadline) -> Iterator[wire.Reply]:
        if cmd.command_type == wire.CMD_SESSION_TERMINATION:
            yield self._terminate(cmd, deadline)
            return
        if cmd.command_type == wire.CMD_OAUTH_DISCOVERY:
            yield self._oauth_discovery(deadline)
            return
        if cmd.command_type != wire.CMD_JSONRPC:
            return
        msg = cmd.message
        kind = wire.rpc_kind(msg)
        rpc_id = msg.get("id") if kind == "request" else None
        session = self.sessions.get()
        try:
            with heads_within(deadline):
                resp = session.post(self.url, data=wire.dumps(msg), headers=self._headers(cmd),
                                    timeout=self._timeout(deadline), stream=True,
                                    allow_redirects=False, **self._kwargs)
        except requests.RequestException as exc:
            if deadline.expired():
                return
            cause = wire.classify_exception(exc)
            if cause.source in ("connect", "dns", "tls"):
                self._observed(False, "%s (%s)" % (cause.transport_error_kind, cause.source))
            log.warning("MCP request failed: %s" % describe_failure(exc, self.route), extra=dict(
                self._fields, request_id=cmd.request_id, failure_source=cause.source,
                transport_error_kind=cause.transport_error_kind))
            yield wire.notify_ack(502) if rpc_id is None else wire.failure(rpc_id, cause)
            return
        self._observed(resp.status_code < 500, "HTTP %d" % resp.status_code)
        RawHttp.exchange("mcp:" + self.channel, "POST", self.url, resp.status_code,
                         resp.request.headers, resp.request.body, resp.headers, None)
        try:
            status = resp.status_code
            headers = wire.sanitize_response_headers(header_pairs(resp))
            if rpc_id is None:
                # A notification or a response from the caller: the server's status is the
                # whole answer (202 Accepted when all is well).
                _discard(resp, *self._reader(deadline))
                yield wire.notify_ack(status, headers)
                return
            if status >= 400:
                yield self._error_reply(resp, rpc_id, status, headers, deadline)
                return
            media = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if media == "text/event-stream":
                yield from self._stream(resp, rpc_id, status, headers, deadline, cmd)
            else:
                yield self._single(resp, rpc_id, status, headers, deadline)
        except (requests.RequestException, OSError, EventTooLarge) as exc:
            if deadline.expired():
                log.info("command response deadline reached; dropping without posting a "
                         "response", extra=dict(self._fields, request_id=cmd.request_id))
                return
            cause = wire.classify_exception(exc, upstream_response_received=True)
            if isinstance(exc, EventTooLarge):
                cause = wire.TunnelFailure("protocol", "response_body_too_large", True)
            log.warning("MCP response failed", extra=dict(
                self._fields, request_id=cmd.request_id, failure_source=cause.source,
                transport_error_kind=cause.transport_error_kind, error=brief(exc)))
            yield wire.failure(rpc_id, cause)
        finally:
            resp.close()

    def _reader(self, deadline: wire.Deadline):
        """(overall deadline, idle timeout per read) for reading one body: the command's
        deadline, never past the connection's lifetime; ``read_timeout`` between bytes."""
        return deadline.sooner(self.ttl), self.read_timeout

    def _error_reply(self, resp, rpc_id, status, headers, deadline) -> wire.Reply:
        try:
            body, cut = read_limited(resp, ERROR_BODY_LIMIT, *self._reader(deadline))
        except (requests.RequestException, OSError):
            return wire.failure(rpc_id, wire.TunnelFailure(
                "target_http", "response_body_unreadable", True, status), headers)
        if not cut:
            kept = body if wire.preservable_error(body, rpc_id) else _claim_error(body, rpc_id)
            if kept is not None:
                return wire.Reply(wire.RESP_JSONRPC, status, kept,
                                  dict(headers, **{"Content-Type": ["application/json"]}))
        cause = wire.TunnelFailure("target_http", "response_body_too_large", True, status) \
            if cut else wire.target_http_failure(status, body)
        return wire.failure(rpc_id, cause, headers)

    def _single(self, resp, rpc_id, status, headers, deadline) -> wire.Reply:
        body, cut = read_limited(resp, MAX_BODY, *self._reader(deadline))
        if cut:
            return wire.failure(rpc_id, wire.TunnelFailure("protocol", "response_body_too_large",
                                                           True), headers)
        if not body.strip():
            return wire.failure(rpc_id, wire.protocol_failure("response_body_missing"), headers)
        try:
            msg = wire.loads(body)
        except ValueError:
            return wire.failure(rpc_id, wire.protocol_failure("malformed_json"), headers)
        if wire.rpc_kind(msg) != "response" or msg.get("id") != rpc_id or \
                type(msg.get("id")) is not type(rpc_id):
            claimed = _claim_error(body, rpc_id)
            if claimed is None:
                return wire.failure(rpc_id, wire.protocol_failure(), headers)
            return wire.response(claimed, status, headers)
        return wire.response(_as_utf8(body, msg), status, headers)

    def _stream(self, resp, rpc_id, status, headers, deadline, cmd) -> Iterator[wire.Reply]:
        """Events of the POST's stream, then of resumed streams while the server ends one
        early after giving it an event id (it may, to make the client poll: GET with
        ``Last-Event-ID`` after its ``retry:`` delay)."""
        parser = SseParser()
        window = deadline.sooner(self.ttl)  # resuming ends there, whatever the server says
        stream, fruitless = resp, 0  # fruitless: resumed streams in a row with no new id
        while True:
            seen = parser.last_event_id
            try:
                done = yield from self._events(stream, parser, rpc_id, status, headers,
                                               deadline)
            finally:
                if stream is not resp:
                    stream.close()
            if done:
                return
            fruitless = fruitless + 1 if stream is not resp and \
                parser.last_event_id == seen else 0
            if fruitless >= MAX_FRUITLESS_RESUMES:
                break
            stream = self._resume(parser, cmd, window)
            if stream is None:
                break
            parser.new_stream()
        log.warning("MCP stream ended before the response", extra=dict(
            self._fields, request_id=cmd.request_id))
        yield wire.failure(rpc_id, wire.TunnelFailure("transport_closed", "unexpected_eof", True),
                           headers)

    def _events(self, resp, parser, rpc_id, status, headers, deadline):
        """Yield the replies one stream carries; True once the terminal one was yielded,
        False when the stream ended before it."""
        for chunk in iter_body(resp, *self._reader(deadline)):
            for event in parser.feed(chunk):
                try:
                    msg = wire.loads(event.data)
                except ValueError:
                    yield wire.failure(rpc_id, wire.protocol_failure("malformed_json"), headers)
                    return True
                kind = wire.rpc_kind(msg)
                if kind in ("notification", "request"):
                    # Server-to-client requests travel like notifications: the caller sees
                    # them in its stream, as it would when talking to the server directly.
                    yield wire.notify(event.data.encode("utf-8"), status, headers)
                    continue
                if kind == "response" and msg.get("id") == rpc_id and \
                        type(msg.get("id")) is type(rpc_id):
                    yield wire.response(event.data.encode("utf-8"), status, headers, sse=True)
                    return True
                claimed = _claim_error(event.data.encode("utf-8"), rpc_id)
                yield wire.failure(rpc_id, wire.protocol_failure(), headers) \
                    if claimed is None else wire.response(claimed, status, headers, sse=True)
                return True
        return False

    def _resume(self, parser, cmd: wire.Command, window: wire.Deadline):
        """The resumed stream (a GET with ``Last-Event-ID`` after the server's ``retry:``
        delay), or None when there is nothing to resume or no time or no stream for it."""
        last_id = parser.last_event_id
        delay = DEFAULT_RETRY if parser.retry_ms is None else parser.retry_ms / 1000.0
        left = window.remaining()
        if not last_id or (left is not None and left <= delay):
            return None
        if self._stop.wait(delay):
            return None
        headers = self._headers(cmd)
        for name in ("Content-Type", "Mcp-Method", "Mcp-Name"):
            headers.pop(name, None)  # a GET has no body to describe
        headers.update({"Accept": "text/event-stream", "Last-Event-ID": last_id})
        try:
            resp = self.sessions.get().get(self.url, headers=headers, stream=True,
                                           timeout=self._timeout(window),
                                           allow_redirects=False, **self._kwargs)
        except requests.RequestException as exc:
            log.warning("MCP stream resumption failed: %s" % describe_failure(exc, self.route),
                        extra=dict(self._fields, request_id=cmd.request_id))
            return None
        RawHttp.exchange("mcp:" + self.channel, "GET", self.url, resp.status_code,
                         resp.request.headers, None, resp.headers, None)
        media = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if resp.status_code != 200 or media != "text/event-stream":
            log.warning("MCP stream resumption refused: HTTP %d %s" % (resp.status_code, media),
                        extra=dict(self._fields, request_id=cmd.request_id))
            resp.close()
            return None
        return resp

    def _oauth_discovery(self, deadline: wire.Deadline) -> wire.Reply:
        """Run discovery now; answer with the raw PRMD document and the upstream status."""
        if self.discoverer is None:
            return _oauth_error(404, "oauth discovery runs only for the main HTTP channel")
        result = self.discoverer.run(budget=deadline.remaining(cap=5.0))
        if result.state == "ok":
            return wire.Reply(wire.RESP_OAUTH_DISCOVERY, result.status_code or 200,
                              result.body.strip(), result.headers)
        if result.state == "not_advertised":
            return _oauth_error(404, "OAuth protected resource metadata is not advertised")
        return _oauth_error(502, "oauth discovery failed: %s" % (result.error or "unknown"))

    def _terminate(self, cmd: wire.Command, deadline: wire.Deadline) -> wire.Reply:
        session = self.sessions.get()
        headers = self._headers(cmd)
        del headers["Content-Type"]
        try:
            resp = session.delete(self.url, headers=headers, timeout=self._timeout(deadline),
                                  allow_redirects=False, **self._kwargs)
        except requests.RequestException as exc:
            log.warning("MCP session termination failed",
                        extra=dict(self._fields, request_id=cmd.request_id, error=brief(exc)))
            return wire.session_terminated(502)
        with resp:
            return wire.session_terminated(resp.status_code,
                                           wire.sanitize_response_headers(header_pairs(resp)))


def _oauth_error(status: int, message: str) -> wire.Reply:
    return wire.Reply(wire.RESP_OAUTH_DISCOVERY, status, wire.dumps({"error": {
        "message": message, "type": "invalid_request_error", "code": "oauth_discovery"}}))


def _discard(resp, deadline: wire.Deadline, idle: float, limit: int = 64 * 1024):
    try:
        read_limited(resp, limit, deadline, idle)
    except (requests.RequestException, OSError):
        pass


def _claim_error(body, rpc_id) -> Optional[bytes]:
    """A well-formed JSON-RPC error the target sent with ``"id": null`` (it answers before
    reading the request, e.g. "Server not initialized"), re-addressed to the caller's id
    with its code, message and data intact; None for anything else."""
    try:
        msg = wire.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(msg, dict) or "id" not in msg or msg["id"] is not None:
        return None
    claimed = wire.dumps(dict(msg, id=rpc_id))
    return claimed if wire.preservable_error(claimed, rpc_id) else None


def _as_utf8(body: bytes, msg) -> bytes:
    """The body as sent when it is plain UTF-8 JSON (it is spliced into our envelope),
    else re-encoded."""
    body = body.strip()
    if body[:3] != b"\xef\xbb\xbf":
        try:
            body.decode("utf-8")
            return body
        except UnicodeDecodeError:
            pass
    return wire.dumps(msg)


def _path(url: str) -> str:
    return urlsplit(url).path
