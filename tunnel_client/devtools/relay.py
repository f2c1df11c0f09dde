"""The local control plane: a faithful, single-process stand-in for the tunnel service.

Service side (tests/contract/wire.schema.json): ``GET /v1/tunnels/{id}``, ``GET .../poll``,
``POST .../response`` with bearer auth and the contract's error bodies. Caller side:
``POST /v1/mcp/{id}[/{channel}]`` takes MCP Streamable HTTP from any MCP client and turns
each message into a command; ``DELETE`` becomes ``session_termination``. Replies are JSON,
or an SSE stream of the notifications followed by the final message.

It follows the contract, not this client's habits: it is how compatibility is proven. A
fault injector (off by default) makes it misbehave on purpose for reliability tests.
"""

import collections
import datetime
import itertools
import json
import random
import re
import secrets
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Deque, Dict, List, Optional
from urllib.parse import parse_qs, urlsplit

from tunnel_client import wire
from tunnel_client.httpd import BodyTooLarge, Handler, Server, is_loopback_host

DEFAULT_TUNNEL_ID = "tunnel_22222222222222222222222222222222"
MAX_POLL_WAIT = 30.0
MAX_CALLER_BODY = 16 << 20
MAX_RESPONSE_BODY = 32 << 20
NOTIFY_BUFFER = 1024
HELD_BODY_LIMIT = 60.0  # a held poll body (Faults.release) is sent after this at the latest
_TUNNEL_ID_RE = re.compile(r"^tunnel_[a-z0-9]{32}$")
_PATH_RE = re.compile(r"^/v1/tunnels/([^/]+)(/poll|/response)?$")
_MCP_RE = re.compile(r"^/v1/mcp/([^/]+)(?:/([^/]+))?/?$")

# Caller headers that never become command headers (hop-by-hop, proxy, identity of the
# edge); the same spirit as the hosted service's blocklist.
_BLOCKED_CALLER_HEADERS = frozenset((
    "accept-encoding", "connection", "content-length", "content-type", "cookie", "forwarded",
    "host", "keep-alive", "openai-organization", "proxy-authenticate", "proxy-authorization",
    "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "via",
    "x-real-ip", "true-client-ip", "x-client-ip", "x-cluster-client-ip", "cf-connecting-ip",
    "x-original-forwarded-for", "x-tunnel-traffic-source", "origin"))
_BLOCKED_PREFIXES = ("x-forwarded-", "x-openai-", "x-envoy-", "x-custom-cf-witness-")
_HOP_BY_HOP = frozenset(("connection", "keep-alive", "transfer-encoding", "te", "trailer",
                         "upgrade", "content-length"))

# The contract's ResponsePayloadType; oauth_discovery_response only answers an
# oauth_discovery command (an extension the contract does not list).
_RESP_TYPES = ("jsonrpc_response", "jsonrpc_notify", "notify_ack",
               "session_termination_response")
_EXTENSION_RESP_TYPES = {"oauth_discovery": "oauth_discovery_response"}
_RESPONSE_FIELDS = {"request_id", "channel", "resp_json", "resp_headers", "resp_code",
                    "resp_type"}


def api_error(message: str, code: Optional[str], kind: str = "invalid_request_error",
              param: Optional[str] = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


@dataclass
class Faults:
    """Misbehaviour on purpose. Rates are probabilities per request; ``script`` holds exact
    actions for the next requests to an endpoint ("poll", "response", "metadata"), each
    "status:503", "status:429:2" (with Retry-After 2), "drop" or "delay:0.5"."""

    rates: Dict[str, float] = field(default_factory=dict)
    retry_after: int = 1
    seed: Optional[int] = None
    script: Dict[str, Deque[str]] = field(default_factory=dict)
    # When set to an Event: a poll answer that carries commands sends its headers, sets
    # ``held``, and sends its body only once ``release`` is set, so a test can act while a
    # client has received the headers of a command-bearing poll but not yet its commands.
    release: Optional[threading.Event] = None

    def __post_init__(self):
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self.held = threading.Event()

    def push(self, endpoint: str, *actions: str):
        with self._lock:
            self.script.setdefault(endpoint, collections.deque()).extend(actions)

    def pending(self, endpoint: str) -> int:
        """Scripted actions not yet used by requests to ``endpoint``."""
        with self._lock:
            return len(self.script.get(endpoint) or ())

    def next_action(self, endpoint: str) -> Optional[str]:
        with self._lock:
            queue = self.script.get(endpoint)
            if queue:
                return queue.popleft()
            for name in ("503", "429", "drop", "404", "delay"):
                rate = self.rates.get("%s-%s" % (endpoint, name), 0.0)
                if rate and self._rng.random() < rate:
                    if name == "429":
                        return "status:429:%d" % self.retry_after
                    if name == "delay":
                        return "delay:%g" % self.rates.get("%s-delay-seconds" % endpoint, 1.0)
                    return "drop" if name == "drop" else "status:%s" % name
            return None

    def redeliver(self) -> bool:
        rate = self.rates.get("redeliver", 0.0)
        with self._lock:
            return bool(rate) and self._rng.random() < rate


class Call:
    """One caller request waiting for the tunnel client's replies."""

    def __init__(self, command: dict):
        self.command = command
        self.request_id = command["request_id"]
        self.shard_token = command["shard_token"]
        self.payloads: Deque[dict] = collections.deque()
        self.cond = threading.Condition()
        self.done = False
        self.deliveries = 0
        self.answers = 0

    def put(self, payload: dict, final: bool):
        with self.cond:
            if not final and len(self.payloads) >= NOTIFY_BUFFER:
                return
            self.payloads.append(payload)
            self.done = self.done or final
            self.cond.notify_all()

    def take(self, timeout: float) -> Optional[dict]:
        end = time.monotonic() + timeout
        with self.cond:
            while not self.payloads:
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
            return self.payloads.popleft()


class Relay:
    """The local control plane. ``start()`` binds; ``stop()`` releases waiting callers."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 tunnel_id: str = DEFAULT_TUNNEL_ID, api_key: Optional[str] = None,
                 response_timeout: Optional[str] = "30s", caller_timeout: Optional[float] = None,
                 faults: Optional[Faults] = None, allow_remote: bool = False,
                 name: str = "local tunnel-client relay", record: int = 10000,
                 max_poll_wait: float = MAX_POLL_WAIT,
                 max_response_body: int = MAX_RESPONSE_BODY):
        self.tunnel_id = tunnel_id
        self.api_key = api_key or "tcdev_" + secrets.token_urlsafe(24).replace("-", "_")
        self.keys: Dict[str, bool] = {self.api_key: True}  # key -> may use this tunnel
        self.response_timeout = response_timeout
        seconds = wire.parse_response_timeout(response_timeout)
        self.caller_timeout = caller_timeout or ((seconds or 30.0) + 5.0)
        self.faults = faults or Faults()
        self.allow_remote = allow_remote
        self.name = name
        self.max_poll_wait = max_poll_wait
        self.max_response_body = max_response_body
        self._queue: Deque[dict] = collections.deque()
        self._queue_cond = threading.Condition()
        self._filtered_waiters = 0
        self._calls: Dict[str, Call] = {}
        self._calls_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._closing = threading.Event()
        self.polls: Deque[dict] = collections.deque(maxlen=record)  # what pollers sent
        self.responses: Deque[dict] = collections.deque(maxlen=record)  # response POSTs
        self.commands: Deque[dict] = collections.deque(maxlen=record)  # commands issued
        self.last_poll = 0.0
        self.server: Optional[Server] = None
        self._address = (host, port)

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> "Relay":
        self.server = Server(self._address, _RelayHandler, relay=self)
        # A short poll interval so stop() returns at once (tests start and stop hundreds).
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         name="relay", daemon=True).start()
        return self

    def stop(self):
        self._closing.set()
        with self._queue_cond:
            self._queue_cond.notify_all()
        with self._calls_lock:
            calls = list(self._calls.values())
        for call in calls:
            with call.cond:
                call.cond.notify_all()
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return "http://%s:%d" % (host if ":" not in host else "[%s]" % host, port)

    @property
    def mcp_url(self) -> str:
        return "%s/v1/mcp/%s" % (self.base_url, self.tunnel_id)

    def describe(self) -> dict:
        return {"tunnel_id": self.tunnel_id, "control_plane_base_url": self.base_url,
                "mcp_url": self.mcp_url, "api_key": self.api_key,
                "response_timeout": self.response_timeout}

    def add_key(self, key: str, may_use_tunnel: bool):
        self.keys[key] = may_use_tunnel

    # --- the caller side -----------------------------------------------------------------

    def submit(self, message, channel: str = "main", headers: Optional[dict] = None,
               command_type: str = "jsonrpc", response_timeout: Optional[str] = "default"
               ) -> Call:
        """Queue a command as the hosted service would, and return its pending call."""
        n = next(self._ids)
        command = {
            "request_id": "req_%06d_%s" % (n, secrets.token_hex(4)),
            "shard_token": "shard_" + secrets.token_hex(8),
            "command_type": command_type,
            "channel": channel,
            "created_at": datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"),
            "headers": {k: (v if isinstance(v, list) else [v]) for k, v in (headers or {}).items()},
        }
        timeout = self.response_timeout if response_timeout == "default" else response_timeout
        if timeout is not None:
            command["response_timeout"] = timeout
        if command_type == "jsonrpc":
            command["jsonrpc"] = message
        call = Call(command)
        with self._calls_lock:
            self._calls[call.request_id] = call
        self.commands.append(command)
        with self._queue_cond:
            self._queue.append(command)
            self._wake_pollers(1)
        return call

    def _wake_pollers(self, count: int):
        """With the queue lock held: one new command needs one poller. Pollers filtering by
        channel might not want it, so then everyone looks."""
        if self._filtered_waiters:
            self._queue_cond.notify_all()
        else:
            self._queue_cond.notify(count)

    def forget(self, call: Call):
        with self._calls_lock:
            self._calls.pop(call.request_id, None)

    def call_count(self) -> int:
        with self._calls_lock:
            return len(self._calls)

    # --- the service side ----------------------------------------------------------------

    def take_commands(self, limit: int, wait: float, channels: List[str],
                      alive: Optional[Callable[[], bool]] = None) -> List[dict]:
        """Up to ``limit`` queued commands, waiting up to ``wait`` seconds for one. ``alive``
        says whether the poller is still there: a poller that hung up gets nothing, so no
        command is handed to a connection nobody reads."""
        end = time.monotonic() + wait
        with self._queue_cond:
            while True:
                taken = []
                if alive is not None and any(
                        not channels or c["channel"] in channels for c in self._queue) \
                        and not alive():
                    self._wake_pollers(1)  # pass the command on to a poller still there
                    return []
                for command in list(self._queue):
                    if channels and command["channel"] not in channels:
                        continue
                    self._queue.remove(command)
                    taken.append(command)
                    if len(taken) == limit:
                        break
                left = end - time.monotonic()
                if taken or left <= 0 or self._closing.is_set():
                    break
                self._filtered_waiters += 1 if channels else 0
                try:
                    self._queue_cond.wait(left)
                finally:
                    self._filtered_waiters -= 1 if channels else 0
        for command in taken:
            call = self._calls.get(command["request_id"])
            if call is not None:
                call.deliveries += 1
            if self.faults.redeliver():
                with self._queue_cond:
                    self._queue.append(command)
        return taken

    def requeue(self, commands: List[dict]):
        """Put commands a poller never received back at the head of the queue."""
        with self._queue_cond:
            self._queue.extendleft(reversed(commands))
            self._wake_pollers(len(commands))
        for command in commands:
            call = self._calls.get(command["request_id"])
            if call is not None:
                call.deliveries -= 1

    def accept_response(self, payload: dict, shard_token: Optional[str]):
        """Returns (status, body) as the service would answer the POST."""
        if not shard_token:
            return 400, api_error("the X-Tunnel-Shard-Token header is required: echo the "
                                  "shard_token of the polled command", None,
                                  param="X-Tunnel-Shard-Token")
        extension = payload.get("resp_type") in _EXTENSION_RESP_TYPES.values() \
            if isinstance(payload, dict) else False
        problem = validate_response_payload(payload, allow_extensions=extension)
        if problem:
            return 400, api_error("invalid response payload: %s" % problem, None)
        channel = payload.get("channel")
        if channel is not None and wire.normalize_channel(channel) != channel:
            return 400, api_error("invalid channel name %r" % channel, "invalid_channel_format",
                                  param="channel")
        with self._calls_lock:
            call = self._calls.get(payload["request_id"])
            # A wrong shard token names a shard that holds no such request.
            if call is None or call.done or shard_token != call.shard_token:
                return 404, api_error("pending request not found: it was already answered, "
                                      "expired, or never existed on this shard",
                                      "pending_request_not_found")
            if extension and _EXTENSION_RESP_TYPES.get(
                    call.command["command_type"]) != payload["resp_type"]:
                return 400, api_error("resp_type %s does not answer a %s command" % (
                    payload["resp_type"], call.command["command_type"]), None,
                    param="resp_type")
            final = payload.get("resp_type", "jsonrpc_response") != "jsonrpc_notify"
            call.answers += 1
            if final:
                del self._calls[call.request_id]
        call.put(payload, final)
        return 200, {"status": "ok"}


def validate_response_payload(payload, allow_extensions: bool = False) -> Optional[str]:
    """The response_payload rules (tests/contract/wire.schema.json), by hand: no schema
    file at runtime."""
    if not isinstance(payload, dict):
        return "body must be a JSON object"
    extra = set(payload) - _RESPONSE_FIELDS
    if extra:
        return "unknown fields: %s" % ", ".join(sorted(extra))
    if not isinstance(payload.get("request_id"), str):
        return "request_id must be a string"
    if not isinstance(payload.get("resp_code"), int) or isinstance(payload["resp_code"], bool):
        return "resp_code must be an integer"
    types = _RESP_TYPES + (tuple(_EXTENSION_RESP_TYPES.values()) if allow_extensions else ())
    if payload.get("resp_type", "jsonrpc_response") not in types:
        return "resp_type %r is not one of %s" % (payload.get("resp_type"), ", ".join(types))
    if payload.get("channel") is not None and not isinstance(payload["channel"], str):
        return "channel must be a string or null"
    if payload.get("resp_json") is not None and not isinstance(payload["resp_json"], dict):
        return "resp_json must be an object or null"
    headers = payload.get("resp_headers")
    if headers is not None and not (isinstance(headers, dict) and all(
            isinstance(v, list) and all(isinstance(i, str) for i in v) for v in headers.values())):
        return "resp_headers must map names to lists of strings"
    return None


class _RelayHandler(Handler):
    server_version = "tunnel-client-relay"

    @property
    def relay(self) -> Relay:
        return self.server.context["relay"]

    _status: Optional[int] = None

    def send_response(self, code, message=None):
        self._status = code
        super().send_response(code, message)

    def handle(self):
        try:
            super().handle()
        except (ConnectionResetError, BrokenPipeError):
            pass  # the peer hung up on a keep-alive connection: nothing to answer

    def _read_body(self, limit: int) -> bytes:
        """The request body; a malformed Content-Length is the caller's error, not ours."""
        self._body_read = True
        length = self.headers.get("Content-Length")
        if length is not None and not length.strip().isdigit():
            self.close_connection = True
            raise _BadRequest("Content-Length must be a non-negative integer")
        try:
            return self.read_body(limit)
        except ValueError as exc:  # a broken chunked encoding
            if isinstance(exc, BodyTooLarge):
                raise
            self.close_connection = True
            raise _BadRequest("malformed request body: %s" % exc) from None

    # --- dispatch ------------------------------------------------------------------------

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_PUT(self):
        self._dispatch("PUT")

    def _dispatch(self, method: str):
        path = urlsplit(self.path).path
        try:
            match = _MCP_RE.match(path)
            if match:
                self._body_read = False
                try:
                    return self._caller(method, match.group(1), match.group(2) or "main")
                finally:
                    if not self._body_read and _has_body(self.headers):
                        # Refused before reading it: the body must not be parsed as the
                        # next request on this connection.
                        self.close_connection = True
            match = _PATH_RE.match(path)
            if match:
                self._record = None
                try:
                    return self._service(method, match.group(1), match.group(2) or "")
                finally:
                    if self._record is not None:  # what the poller or responder was told
                        self._record["status"] = self._status
                        self._record["answered"] = time.time()
            if path in ("/readyz", "/healthz") and method == "GET":
                return self.send_json(200, {"status": "ok"})
            self.send_json(404, api_error("no such route: %s %s" % (method, path), None))
        except BodyTooLarge as exc:
            self.send_json(413, api_error(str(exc), "request_body_too_large"))
        except _BadRequest as exc:
            self.send_json(400, api_error(str(exc), None))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # --- service side --------------------------------------------------------------------

    def _authorize(self, tunnel_id: str, endpoint: str) -> bool:
        relay = self.relay
        if not _TUNNEL_ID_RE.match(tunnel_id):
            self.send_json(400, api_error("invalid tunnel id format", "invalid_tunnel_id_format"))
            return False
        auth = self.headers.get("Authorization", "")
        key = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        if key not in relay.keys:
            self.send_json(401, api_error("Incorrect API key provided", "invalid_api_key"))
            return False
        if not relay.keys[key] or tunnel_id != relay.tunnel_id:
            # An unknown tunnel looks the same as a forbidden one: the contract lists no
            # 404 here, and existence is not disclosed to keys that may not use it.
            status = 403 if endpoint == "metadata" else 401
            self.send_json(status, api_error("the caller does not have tunnel use permission "
                                             "for tunnel %s" % tunnel_id,
                                             "tunnel_use_forbidden"))
            return False
        return True

    def _fault(self, endpoint: str) -> bool:
        action = self.relay.faults.next_action(endpoint)
        if action is None:
            return False
        if action.startswith("delay:"):
            time.sleep(float(action.split(":")[1]))  # injected latency, on purpose
            return False
        if action == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return True
        parts = action.split(":")
        status = int(parts[1])
        headers = {"Retry-After": parts[2]} if len(parts) > 2 else None
        codes = {429: "rate_limit_exceeded", 503: "tunnel_transport_unavailable",
                 404: "pending_request_not_found"}
        self.send_json(status, api_error("injected fault", codes.get(status), "server_error"
                                         if status >= 500 else "invalid_request_error"),
                       headers)
        return True

    def _service(self, method: str, tunnel_id: str, tail: str):
        relay = self.relay
        endpoint = {"": "metadata", "/poll": "poll", "/response": "response"}[tail]
        expected = "POST" if endpoint == "response" else "GET"
        if method != expected:
            return self.send_json(405, api_error("method not allowed", None),
                                  {"Allow": expected})
        if endpoint == "response":
            body = self._read_body(relay.max_response_body)
        record = {"time": time.time(), "headers": dict(self.headers.items()), "path": self.path}
        self._record = record
        if endpoint == "poll":
            relay.polls.append(record)  # every attempt, authorized or not
        if not self._authorize(tunnel_id, endpoint):
            return
        if endpoint == "metadata":
            if self._fault("metadata"):
                return
            return self.send_json(200, {"id": relay.tunnel_id, "name": relay.name,
                                        "description": "Local control plane for trying "
                                                       "tunnel-client on one machine"})
        if endpoint == "poll":
            relay.last_poll = time.time()
            query = parse_qs(urlsplit(self.path).query, keep_blank_values=True)
            limit = _query_int(query, "limit", 1, 1, wire.MAX_POLL_LIMIT)
            timeout_ms = _query_int(query, "timeout_ms", 500, 1, None)
            for name, value in (("limit", limit), ("timeout_ms", timeout_ms)):
                if isinstance(value, str):
                    return self.send_json(400, api_error(value, None, param=name))
            if self._fault("poll"):
                return
            commands = relay.take_commands(limit, min(timeout_ms / 1000.0, relay.max_poll_wait),
                                           query.get("channel", []), self._peer_connected)
            request_id = {"X-Request-Id": "poll_" + secrets.token_hex(6)}
            if not commands:
                return self.send_body(204, b"", headers=request_id)
            try:
                if relay.faults.release is not None:
                    return self._send_held(json.dumps({"commands": commands}).encode(),
                                           request_id)
                return self.send_json(200, {"commands": commands}, request_id)
            except OSError:
                relay.requeue(commands)
                raise
        record["body"] = body
        relay.responses.append(record)
        if self._fault("response"):
            return
        try:
            payload = json.loads(body)
        except ValueError:
            return self.send_json(400, api_error("body is not JSON", "invalid_json_payload"))
        status, answer = relay.accept_response(payload,
                                               self.headers.get("X-Tunnel-Shard-Token"))
        self.send_json(status, answer)

    def _send_held(self, body: bytes, headers: dict):
        """Headers now, the body once the test releases it (Faults.release)."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers_with(b"")
        self.wfile.flush()
        faults = self.relay.faults
        faults.held.set()
        faults.release.wait(HELD_BODY_LIMIT)
        self.wfile.write(body)
        self.wfile.flush()

    def _peer_connected(self) -> bool:
        """False once the peer closed its end (readable with nothing to read)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return not readable or self.connection.recv(1, socket.MSG_PEEK) != b""
        except OSError:
            return False

    # --- caller side ---------------------------------------------------------------------

    def _caller_allowed(self) -> bool:
        if self.relay.allow_remote:
            return True
        origin = self.headers.get("Origin")
        host = self.headers.get("Host", "")
        if not is_loopback_host(host) or (origin and not is_loopback_host(
                urlsplit(origin).hostname or "")):
            self.send_json(403, api_error("Host and Origin must be loopback (DNS rebinding "
                                          "protection); start the relay with --allow-remote "
                                          "to accept other names", None))
            return False
        return True

    def _caller(self, method: str, tunnel_id: str, channel: str):
        relay = self.relay
        if not self._caller_allowed():
            return
        if tunnel_id != relay.tunnel_id:
            return self.send_json(404, api_error("tunnel %s not found" % tunnel_id,
                                                 "tunnel_not_found"))
        if wire.normalize_channel(channel) != channel:
            return self.send_json(400, api_error("invalid channel name", "invalid_channel_format"))
        if method == "GET":
            return self.send_json(405, api_error(
                "this control plane does not offer the standalone SSE stream; send MCP "
                "messages with POST", None), {"Allow": "POST, DELETE"})
        if method not in ("POST", "DELETE"):
            return self.send_json(405, api_error("method not allowed", None),
                                  {"Allow": "POST, DELETE"})
        headers = forwardable_headers(self.headers)
        if method == "DELETE":
            if not any(k.lower() == "mcp-session-id" for k in headers):
                return self.send_json(400, api_error("session termination needs an "
                                                     "Mcp-Session-Id header",
                                                     "missing_mcp_session_id"))
            call = relay.submit(None, channel, headers, "session_termination")
            return self._answer(call, sse=False, notification=True)
        body = self._read_body(MAX_CALLER_BODY)
        try:
            message = json.loads(body)
        except ValueError:
            return self.send_json(400, {"jsonrpc": "2.0", "id": None,
                                        "error": {"code": -32700, "message": "Parse error"}})
        if not isinstance(message, dict):
            return self.send_json(400, {"jsonrpc": "2.0", "id": None, "error": {
                "code": -32600, "message": "Invalid Request: send one JSON-RPC object"}})
        kind = wire.rpc_kind(message)
        accept = self.headers.get("Accept", "")
        call = relay.submit(message, channel, headers)
        self._answer(call, sse="text/event-stream" in accept,
                     notification=kind in ("notification", "response"))

    def _answer(self, call: Call, sse: bool, notification: bool):
        relay = self.relay
        streaming = False
        try:
            end = time.monotonic() + relay.caller_timeout
            while True:
                left = end - time.monotonic()
                payload = call.take(max(0.0, left)) if not relay._closing.is_set() else None
                if payload is None:
                    return self._timeout(call, streaming)
                final = payload.get("resp_type", "jsonrpc_response") != "jsonrpc_notify"
                headers = _reply_headers(payload)
                body = json.dumps(payload["resp_json"], separators=(",", ":")).encode() \
                    if payload.get("resp_json") is not None else b""
                if not final:
                    if not sse or notification:
                        continue  # a JSON-only caller cannot receive notifications
                    if not streaming:
                        self.start_stream(200, "text/event-stream", _without_type(headers))
                        streaming = True
                    self.write_chunk(b"event: message\ndata: " + body + b"\n\n")
                    continue
                if streaming:
                    self.write_chunk(b"event: message\ndata: " + body + b"\n\n")
                    self.end_stream()
                    return
                upstream_sse = any("text/event-stream" in v for v in
                                   headers.get("Content-Type", []))
                if sse and upstream_sse and body:
                    self.start_stream(payload["resp_code"], "text/event-stream",
                                      _without_type(headers))
                    self.write_chunk(b"event: message\ndata: " + body + b"\n\n")
                    self.end_stream()
                    return
                if not body:
                    return self.send_body(payload["resp_code"], b"",
                                          headers=_without_type(headers))
                return self.send_body(payload["resp_code"], body, "application/json",
                                      _without_type(headers))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            relay.forget(call)

    def _timeout(self, call: Call, streaming: bool):
        message = {"jsonrpc": "2.0", "id": (call.command.get("jsonrpc") or {}).get("id"),
                   "error": {"code": -32001, "message": "timed out waiting for tunnel-client "
                                                        "response"}}
        if streaming:
            self.write_chunk(b"event: message\ndata: " + json.dumps(message).encode() + b"\n\n")
            self.end_stream()
        else:
            self.send_json(504, message)


class _BadRequest(ValueError):
    pass


def _has_body(headers) -> bool:
    return headers.get("Content-Length", "0").strip() not in ("", "0") or \
        "Transfer-Encoding" in headers


def _query_int(query, name: str, default: int, low: int, high: Optional[int]):
    """The integer value of a query parameter, or a message saying what is wrong with it."""
    values = query.get(name)
    if not values or values[-1] in ("", "null"):
        return default
    text = values[-1].strip()
    if not text.lstrip("-").isdigit():
        return "%s must be an integer, got %r" % (name, values[-1][:40])
    value = int(text)
    if value < low or (high is not None and value > high):
        return "%s must be %s, got %d" % (
            name, ">= %d" % low if high is None else "between %d and %d" % (low, high), value)
    return value


def forwardable_headers(headers) -> Dict[str, List[str]]:
    nominated = {t.strip().lower() for t in headers.get("Connection", "").split(",")}
    result: Dict[str, List[str]] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in _BLOCKED_CALLER_HEADERS or lower in nominated or \
                lower.startswith(_BLOCKED_PREFIXES):
            continue
        result.setdefault(name, []).append(value)
    return result


def _reply_headers(payload: dict) -> Dict[str, List[str]]:
    return {k: v for k, v in (payload.get("resp_headers") or {}).items()
            if k.lower() not in _HOP_BY_HOP}


def _without_type(headers: Dict[str, List[str]]) -> Dict[str, List[str]]:
    return {k: v for k, v in headers.items() if k.lower() != "content-type"}
