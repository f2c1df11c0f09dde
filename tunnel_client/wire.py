"""Protocol data and pure functions for the control-plane wire.

Everything here is free of I/O: polled commands, replies, the response envelope, the
``response_timeout`` grammar, deadlines, the response-header allowlist, and synthesized
``-32603`` failures with ``tunnel_failure`` provenance. The messages are described in
tests/contract/wire.schema.json; docs/architecture.md tells the life of a command.
"""

import errno
import json
import re
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

# --- command and reply vocabulary -------------------------------------------------------

CMD_JSONRPC = "jsonrpc"
CMD_SESSION_TERMINATION = "session_termination"
CMD_OAUTH_DISCOVERY = "oauth_discovery"
COMMAND_TYPES = (CMD_JSONRPC, CMD_SESSION_TERMINATION, CMD_OAUTH_DISCOVERY)

RESP_JSONRPC = "jsonrpc_response"
RESP_NOTIFY = "jsonrpc_notify"
RESP_NOTIFY_ACK = "notify_ack"
RESP_SESSION_TERMINATION = "session_termination_response"
RESP_OAUTH_DISCOVERY = "oauth_discovery_response"
_ACK_TYPES = (RESP_NOTIFY_ACK, RESP_SESSION_TERMINATION)

MAIN_CHANNEL = "main"
HARPOON_CHANNEL = "harpoon"
_CHANNEL_RE = re.compile(r"^[a-z0-9_-]{1,64}$")

MAX_POLL_LIMIT = 25
SERVER_INFO_MAX_CHANNELS = 32
SERVER_INFO_MAX_BYTES = 4096

_COMPACT = (",", ":")


_ENCODER = json.JSONEncoder(separators=_COMPACT, ensure_ascii=False)  # built once, not per call
_ASCII_ENCODER = json.JSONEncoder(separators=_COMPACT)


def dumps(obj) -> bytes:
    """Compact UTF-8 JSON, the one encoding used for everything we send."""
    try:
        return _ENCODER.encode(obj).encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (JSON may carry one as an escape, "\ud800") has no UTF-8 form;
        # escaped again, it goes on exactly as it came.
        return _ASCII_ENCODER.encode(obj).encode("ascii")


def _not_a_json_number(name: str) -> None:
    """``NaN``, ``Infinity`` and ``-Infinity`` are not JSON, but Python's json module writes
    them, so a Python MCP server may print them. They are read as null, which is what
    JavaScript's JSON.stringify makes of them: everything we post stays JSON that any
    parser reads, instead of a reply the control plane would refuse."""
    return None


_DECODER = json.JSONDecoder(parse_constant=_not_a_json_number)


def loads(data):
    """json.loads for anything that came from the network: malformed input of every kind,
    a document nested deeper than the interpreter's stack included, is a ValueError."""
    try:
        if isinstance(data, (bytes, bytearray)):
            data = data.decode(json.detect_encoding(data), "surrogatepass")
        return _DECODER.decode(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


# --- deadlines --------------------------------------------------------------------------


class Deadline:
    """A point on the monotonic clock after which a command's work is worthless.

    ``at`` is None for "no deadline". Built once from the poll receipt time and the
    command's ``response_timeout``; passed down to bindings and response POSTs.
    """

    __slots__ = ("at",)

    def __init__(self, at: Optional[float]):
        self.at = at

    @classmethod
    def after(cls, seconds: Optional[float], start: Optional[float] = None) -> "Deadline":
        if seconds is None:
            return cls(None)
        return cls((time.monotonic() if start is None else start) + seconds)

    @property
    def bounded(self) -> bool:
        return self.at is not None

    def expired(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at

    def remaining(self, cap: Optional[float] = None) -> Optional[float]:
        """Seconds left (never negative), at most ``cap``; None when unbounded and no cap."""
        if self.at is None:
            return cap
        left = max(0.0, self.at - time.monotonic())
        return left if cap is None else min(left, cap)

    def sooner(self, seconds: Optional[float]) -> "Deadline":
        """This deadline or ``seconds`` from now, whichever comes first."""
        if seconds is None:
            return self
        other = time.monotonic() + seconds
        return Deadline(other if self.at is None else min(self.at, other))

    def __repr__(self):
        if self.at is None:
            return "Deadline(never)"
        return "Deadline(in %.3fs)" % (self.at - time.monotonic())


NO_DEADLINE = Deadline(None)

_TIMEOUT_RE = re.compile(r"([0-9]+)(ns|us|ms|s|m|h)")  # fullmatch: "$" allows a trailing "\n"
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_UNIT_NANOS = {"ns": 1, "us": 10 ** 3, "ms": 10 ** 6, "s": 10 ** 9, "m": 60 * 10 ** 9,
               "h": 3600 * 10 ** 9}
_MAX_DURATION_NANOS = 2 ** 63 - 1  # the control plane's duration type is int64 nanoseconds


def parse_response_timeout(value: Any) -> Optional[float]:
    """Seconds from the contract grammar ``^[0-9]+(ns|us|ms|s|m|h)$``.

    Anything else (numbers, null, spaces, compound or fractional values, overflow) means
    "no deadline": the contract is fail-open so a malformed value never drops a command.
    ``"0s"`` is a valid zero and means the command has already expired.
    """
    if not isinstance(value, str):
        return None
    match = _TIMEOUT_RE.fullmatch(value)
    if not match:
        return None
    number, unit = int(match.group(1)), match.group(2)
    if number * _UNIT_NANOS[unit] > _MAX_DURATION_NANOS:
        return None
    return number * _UNIT_SECONDS[unit]


# --- channels and JSON-RPC basics --------------------------------------------------------


def normalize_channel(raw: Any) -> Optional[str]:
    """Canonical channel name, ``main`` for empty, None when it cannot be canonical."""
    if raw is None:
        return MAIN_CHANNEL
    if not isinstance(raw, str):
        return None
    name = raw.strip().lower()
    if not name:
        return MAIN_CHANNEL
    return name if _CHANNEL_RE.match(name) else None


def valid_rpc_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def rpc_kind(msg: Any) -> str:
    """One of ``request``, ``notification``, ``response`` or ``invalid``."""
    if not isinstance(msg, dict):
        return "invalid"
    method = msg.get("method")
    if isinstance(method, str):
        if "id" not in msg:
            return "notification"
        return "request" if valid_rpc_id(msg["id"]) else "invalid"
    if ("result" in msg) != ("error" in msg):
        rpc_id = msg.get("id")
        if rpc_id is None or valid_rpc_id(rpc_id):
            return "response"
    return "invalid"


# --- polled commands ---------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """One command from a poll response, with the receipt time its deadline hangs on."""

    request_id: str
    shard_token: str
    command_type: str
    channel: str
    received_at: float
    headers: Mapping[str, Sequence[str]] = field(default_factory=dict)
    message: Optional[Dict[str, Any]] = None  # the JSON-RPC message of a jsonrpc command
    created_at: Optional[str] = None
    response_timeout: Optional[float] = None
    problem: Optional[str] = None  # why the command cannot be executed, if it cannot

    @property
    def deadline(self) -> Deadline:
        return Deadline.after(self.response_timeout, self.received_at)

    @property
    def kind(self) -> str:
        """``call``, ``notification``, ``response``, or the command type for others."""
        if self.command_type != CMD_JSONRPC:
            return self.command_type
        k = rpc_kind(self.message)
        return "call" if k == "request" else k

    @property
    def rpc_id(self):
        return self.message.get("id") if isinstance(self.message, dict) else None

    @property
    def method(self) -> Optional[str]:
        if isinstance(self.message, dict) and isinstance(self.message.get("method"), str):
            return self.message["method"]
        return None

    def header(self, name: str) -> Optional[str]:
        """First value of a command header, case-insensitively."""
        wanted = name.lower()
        for key, values in self.headers.items():
            if key.lower() == wanted and values:
                return values[0]
        return None


@dataclass(frozen=True)
class Skipped:
    """A polled element we could not turn into a command (logged, never answered)."""

    request_id: Optional[str]
    reason: str
    command_type: Optional[str] = None


class ProtocolError(ValueError):
    """The control plane sent something the contract does not allow."""


def _clean_headers(raw: Any) -> Dict[str, List[str]]:
    if not isinstance(raw, dict):
        return {}
    headers = {}
    for key, values in raw.items():
        if not isinstance(key, str):
            continue
        if isinstance(values, str):
            values = [values]
        if isinstance(values, list):
            # Surrounding whitespace (a trailing CRLF) is not part of a value; a value with a
            # control character left cannot be sent, so it is dropped, never echoed.
            kept = [v.strip(" \t\r\n") for v in values if isinstance(v, str)]
            kept = [v for v in kept if not _CONTROL.search(v)]
            if kept and _TOKEN.match(key):
                headers[key] = kept
    return headers


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")  # an RFC 9110 field name


def parse_command(item: Any, received_at: float):
    """Turn one element of ``commands`` into a Command, or a Skipped with the reason."""
    if not isinstance(item, dict):
        return Skipped(None, "command is not a JSON object")
    request_id = item.get("request_id")
    request_id = request_id if isinstance(request_id, str) and request_id else None
    command_type = item.get("command_type")
    if command_type is None:
        return Skipped(request_id, "missing command_type")
    if command_type not in COMMAND_TYPES:
        return Skipped(request_id, "unknown command_type",
                       command_type if isinstance(command_type, str) else repr(command_type))
    shard_token = item.get("shard_token")
    if request_id is None or not isinstance(shard_token, str) or not shard_token:
        return Skipped(request_id, "invalid %s payload: request_id and shard_token are required"
                       % command_type, command_type)
    channel = normalize_channel(item.get("channel"))
    if channel is None:
        return Skipped(request_id, "invalid channel %r" % (item.get("channel"),), command_type)
    headers = _clean_headers(item.get("headers"))
    created_at = item.get("created_at") if isinstance(item.get("created_at"), str) else None
    cmd = dict(request_id=request_id, shard_token=shard_token, command_type=command_type,
               channel=channel, received_at=received_at, headers=headers,
               created_at=created_at,
               response_timeout=parse_response_timeout(item.get("response_timeout")))
    if command_type == CMD_JSONRPC:
        message = item.get("jsonrpc")
        if isinstance(message, list):
            return Command(problem="JSON-RPC batches are not supported", **cmd)
        if rpc_kind(message) == "invalid":
            return Command(problem="jsonrpc is not a valid JSON-RPC message", **cmd)
        return Command(message=message, **cmd)
    if command_type == CMD_SESSION_TERMINATION:
        probe = Command(**cmd)
        if not probe.header("Mcp-Session-Id"):
            return Command(problem="session_termination requires an Mcp-Session-Id header",
                           **cmd)
        return probe
    return Command(**cmd)


def parse_poll_body(body: bytes, received_at: float) -> Tuple[List[Command], List[Skipped]]:
    """Parse a 200 poll body: ``{"commands": [...]}``. Raises ProtocolError if unusable."""
    if not body or not body.strip():
        return [], []
    try:
        envelope = loads(body)
    except ValueError as exc:
        raise ProtocolError("poll response is not valid JSON: %s" % exc) from None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("commands", []), list):
        raise ProtocolError("poll response is not {\"commands\": [...]}")
    commands, skipped = [], []
    for item in envelope.get("commands") or []:
        parsed = parse_command(item, received_at)
        (commands if isinstance(parsed, Command) else skipped).append(parsed)
    return commands, skipped


# --- replies and the response envelope ---------------------------------------------------


@dataclass(frozen=True)
class TunnelFailure:
    """Provenance of a synthesized -32603 (contract: x-tunnel-failure-schema)."""

    source: str
    transport_error_kind: Optional[str] = None
    upstream_response_received: bool = False
    upstream_status: Optional[int] = None

    def as_dict(self) -> Dict[str, Any]:
        data = {"version": 1, "source": self.source}
        if self.transport_error_kind:
            data["transport_error_kind"] = self.transport_error_kind
        data["upstream_response_received"] = self.upstream_response_received
        if self.upstream_status is not None:
            data["upstream_status"] = self.upstream_status
        return data


@dataclass(frozen=True)
class Reply:
    """What a binding yields: notifications first, then exactly one terminal reply.

    ``body`` is the JSON text of ``resp_json``, encoded once (a preserved target error
    keeps the target's exact bytes). Ack types never carry a body.
    """

    resp_type: str
    resp_code: int
    body: Optional[bytes] = None
    headers: Optional[Mapping[str, Sequence[str]]] = None
    failure: Optional[TunnelFailure] = None

    @property
    def terminal(self) -> bool:
        return self.resp_type != RESP_NOTIFY

    def json(self):
        return None if self.body is None else json.loads(self.body)


def notify(message_body: bytes, status: int, headers=None) -> Reply:
    return Reply(RESP_NOTIFY, status, message_body, _with_default_type(headers,
                                                                       "text/event-stream"))


def response(message_body: bytes, status: int, headers=None, sse: bool = False) -> Reply:
    """A terminal JSON-RPC response; Content-Type is JSON unless the upstream was SSE."""
    kept = dict(headers or {})
    kept = {k: v for k, v in kept.items() if k.lower() != "content-type"}
    kept["Content-Type"] = ["text/event-stream" if sse else "application/json"]
    return Reply(RESP_JSONRPC, status, message_body, kept)


def notify_ack(status: int, headers=None) -> Reply:
    return Reply(RESP_NOTIFY_ACK, status, None, headers or None)


def session_terminated(status: int, headers=None) -> Reply:
    return Reply(RESP_SESSION_TERMINATION, status, None, headers or None)


def rpc_error(rpc_id, code: int, message: str, status: int, data=None, headers=None) -> Reply:
    """A JSON-RPC error reply built by the tunnel client itself."""
    error = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    body = dumps({"jsonrpc": "2.0", "id": rpc_id, "error": error})
    return Reply(RESP_JSONRPC, status, body, _with_default_type(headers, "application/json"))


def failure(rpc_id, cause: TunnelFailure, headers=None) -> Reply:
    """Synthesized ``-32603`` whose message is the status text of the posted code.

    ``resp_code`` is the upstream status when the target answered with one, else 502.
    """
    status = cause.upstream_status or 502
    reply = rpc_error(rpc_id, -32603, status_text(status), status,
                      data={"tunnel_failure": cause.as_dict()}, headers=headers)
    return Reply(reply.resp_type, reply.resp_code, reply.body, reply.headers, cause)


def unsupported_channel(cmd: Command) -> Reply:
    """The reference's answer for a channel with no local binding: never fall back to main."""
    if cmd.command_type == CMD_SESSION_TERMINATION:
        return session_terminated(400)
    return rpc_error(cmd.rpc_id, -32603, 'Bad Request: unsupported channel "%s"' % cmd.channel,
                     400)


def _with_default_type(headers, content_type):
    kept = dict(headers or {})
    if not any(k.lower() == "content-type" for k in kept):
        kept["Content-Type"] = [content_type]
    return kept


def encode_response(cmd: Command, reply: Reply) -> bytes:
    """The POST /response body. ``resp_json`` bytes are spliced in, never re-encoded."""
    if reply.resp_type in _ACK_TYPES and reply.body is not None:
        raise ValueError("%s replies never carry resp_json" % reply.resp_type)
    head = {"request_id": cmd.request_id, "channel": cmd.channel,
            "resp_code": reply.resp_code, "resp_type": reply.resp_type}
    if reply.headers:
        head["resp_headers"] = {k: list(v) for k, v in reply.headers.items()}
    encoded = dumps(head)
    if reply.body is None:
        return encoded
    return b"".join((encoded[:-1], b',"resp_json":', reply.body, b"}"))


# --- response header allowlist -----------------------------------------------------------

_ALLOWED_RESPONSE_HEADERS = ("content-type", "mcp-session-id", "mcp-protocol-version",
                             "last-event-id", "access-control-expose-headers",
                             "www-authenticate")


def canonical_header(name: str) -> str:
    """Go's canonical MIME header spelling (``last-event-id`` -> ``Last-Event-Id``)."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def sanitize_response_headers(pairs: Iterable[Tuple[str, str]]) -> Dict[str, List[str]]:
    """Keep only headers a caller may see, dropping Connection and what it nominates."""
    pairs = list(pairs)
    nominated = set()
    for name, value in pairs:
        if name.lower() == "connection":
            nominated.update(t.strip().lower() for t in value.split(",") if t.strip())
    kept: Dict[str, List[str]] = {}
    for name, value in pairs:
        lower = name.lower()
        if lower not in _ALLOWED_RESPONSE_HEADERS or lower in nominated or not value:
            continue
        kept.setdefault(canonical_header(name), []).append(value)
    return kept


# --- target error preservation and failure classification -------------------------------


def preservable_error(body: bytes, rpc_id) -> bool:
    """True when a non-2xx body is the target's own JSON-RPC error for this request.

    Such a body is forwarded byte for byte, as the Go client does.
    """
    if not body or body[:3] == b"\xef\xbb\xbf":
        return False
    try:
        msg = loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return False
    if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0":
        return False
    if "result" in msg or "method" in msg:
        return False
    error = msg.get("error")
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return False
    code = error.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        return False
    return "id" in msg and msg["id"] == rpc_id and type(msg["id"]) is type(rpc_id)


def body_failure_kind(body: bytes) -> str:
    """Why a non-2xx body could not be preserved; body-derived kinds beat http_status."""
    if not body:
        return "response_body_missing"
    try:
        msg = loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return "malformed_json"
    if isinstance(msg, dict) and "error" in msg:
        return "invalid_mcp_error"
    return "non_protocol_response"


def target_http_failure(status: int, body: bytes) -> TunnelFailure:
    return TunnelFailure("target_http", body_failure_kind(body), True, status)


def protocol_failure(kind: str = "invalid_protocol_response",
                     upstream_response_received: bool = True) -> TunnelFailure:
    return TunnelFailure("protocol", kind, upstream_response_received)


_ERRNO_KINDS = {
    errno.ECONNREFUSED: ("connect", "connection_refused"),
    errno.ENETUNREACH: ("connect", "network_unreachable"),
    errno.EHOSTUNREACH: ("connect", "host_unreachable"),
    errno.ECONNRESET: ("transport_closed", "connection_reset"),
    errno.ECONNABORTED: ("transport_closed", "connection_aborted"),
    errno.EPIPE: ("transport_closed", "closed_pipe"),
    errno.ETIMEDOUT: ("timeout", "timeout"),
}


def exception_chain(exc: BaseException):
    seen = set()
    stack = [exc]
    while stack:
        current = stack.pop(0)
        if not isinstance(current, BaseException) or id(current) in seen:
            continue  # e.g. ssl.SSLError.reason is a string, urllib3's is an exception
        seen.add(id(current))
        yield current
        stack.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])
        stack.extend(a for a in getattr(current, "args", ()) if isinstance(a, BaseException))


def classify_exception(exc: BaseException, upstream_response_received: bool = False
                       ) -> TunnelFailure:
    """Map a transport exception (and what caused it) to failure provenance.

    The most specific cause anywhere in the chain wins (an errno beats the generic
    "connection aborted" wrapper around it).
    """
    received = upstream_response_received
    chain = list(exception_chain(exc))
    for current in chain:
        if isinstance(current, socket.gaierror):
            return TunnelFailure("dns", "dns", received)
        if isinstance(current, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(current):
            return TunnelFailure("tls", "tls", received)
        if isinstance(current, (socket.timeout, TimeoutError)) or \
                type(current).__name__ in _TIMEOUT_NAMES:
            return TunnelFailure("timeout", "timeout", received)
        if isinstance(current, OSError) and current.errno in _ERRNO_KINDS:
            source, kind = _ERRNO_KINDS[current.errno]
            return TunnelFailure(source, kind, received)
    for current in chain:
        if isinstance(current, EOFError) or type(current).__name__ in _EOF_NAMES:
            return TunnelFailure("transport_closed", "unexpected_eof" if received else "eof",
                                 received)
    for current in chain:
        if type(current).__name__ in ("NewConnectionError", "ProxyError"):
            return TunnelFailure("connect", "dial", received)
    return TunnelFailure("client_internal", "unknown", received)


_TIMEOUT_NAMES = ("ReadTimeoutError", "ConnectTimeoutError", "ReadTimeout", "ConnectTimeout",
                  "Timeout")
_EOF_NAMES = ("IncompleteRead", "ProtocolError", "RemoteDisconnected", "ChunkedEncodingError")


# --- X-Tunnel-MCP-Server-Info ------------------------------------------------------------


def server_info_header(channels: Sequence[Tuple[str, bool]]) -> str:
    """Compact v1 declaration of channels and their process affinity.

    Order is configuration order; ``proc_affinity`` is present only when true.
    """
    if len(channels) > SERVER_INFO_MAX_CHANNELS:
        raise ValueError("X-Tunnel-MCP-Server-Info allows at most %d channels"
                         % SERVER_INFO_MAX_CHANNELS)
    seen = set()
    entries = []
    for name, affinity in channels:
        if normalize_channel(name) != name or name in seen:
            raise ValueError("channel %r is not canonical or not unique" % name)
        seen.add(name)
        entries.append({"name": name, "proc_affinity": True} if affinity else {"name": name})
    value = json.dumps({"version": 1, "channels": entries}, separators=_COMPACT)
    if len(value.encode("utf-8")) > SERVER_INFO_MAX_BYTES:
        raise ValueError("X-Tunnel-MCP-Server-Info exceeds %d bytes" % SERVER_INFO_MAX_BYTES)
    return value


# --- HTTP status text (Go's net/http spellings, stable across Python versions) ----------

_STATUS_TEXT = {
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 409: "Conflict",
    410: "Gone", 411: "Length Required", 412: "Precondition Failed",
    413: "Request Entity Too Large", 414: "Request URI Too Long",
    415: "Unsupported Media Type", 416: "Requested Range Not Satisfiable",
    417: "Expectation Failed", 418: "I'm a teapot", 421: "Misdirected Request",
    422: "Unprocessable Entity", 423: "Locked", 424: "Failed Dependency", 425: "Too Early",
    426: "Upgrade Required", 428: "Precondition Required", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 451: "Unavailable For Legal Reasons",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported",
    506: "Variant Also Negotiates", 507: "Insufficient Storage", 508: "Loop Detected",
    510: "Not Extended", 511: "Network Authentication Required",
}


def status_text(status: int) -> str:
    return _STATUS_TEXT.get(status, "Bad Gateway" if status >= 500 else "Bad Request")
