"""Logging: json or key=value text, context fields on every record, a redaction filter
as a safety net, a reopenable 0600 file for logrotate, and an in-memory ring for the UI.

Code logs through ``get_logger(component)`` with structured fields in ``extra=``; secrets
are never passed to a record in the first place (the filter only catches accidents).
"""

import collections
import datetime
import json
import logging
import os
import re
import threading
import traceback
from typing import Dict, List, Optional

ROOT = "tunnel_client"
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
          "error": logging.ERROR}
_LEVEL_NAMES = {logging.DEBUG: "DEBUG", logging.INFO: "INFO", logging.WARNING: "WARN",
                logging.ERROR: "ERROR", logging.CRITICAL: "ERROR"}
_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "component"}

REDACTED = "[REDACTED]"


def get_logger(component: str) -> logging.Logger:
    return logging.getLogger("%s.%s" % (ROOT, component))


def level_name(level: int) -> str:
    for name, value in LEVELS.items():
        if value == level:
            return name
    return "info"


# --- redaction ---------------------------------------------------------------------------

_SENSITIVE_KEYS = {"authorization", "cookie", "set_cookie", "x_tunnel_shard_token",
                   "shard_token", "api_key", "apikey", "access_token", "refresh_token",
                   "id_token", "client_secret", "password", "secret", "proxy_authorization",
                   "token"}
_SECRET_NAMES = (r"api[_-]?key|apikey|access_token|refresh_token|id_token|client_secret|"
                 r"code|password|passwd|secret|token|shard_token")
_PATTERNS = [
    # Authorization / Proxy-Authorization header values, with or without a scheme.
    (re.compile(r"(?i)\b(authorization|proxy-authorization)(\"?\s*[:=]\s*\"?)"
                r"(?:(bearer|basic)\s+)?[^\s\",;]+"),
     lambda m: "%s%s%s%s" % (m.group(1), m.group(2), m.group(3) + " " if m.group(3) else "",
                             REDACTED)),
    (re.compile(r"(?i)\b(x-tunnel-shard-token|cookie|set-cookie)(\"?\s*[:=]\s*\"?)[^\s\",;]+"),
     lambda m: m.group(1) + m.group(2) + REDACTED),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"), lambda m: "Bearer " + REDACTED),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), lambda m: "sk-REDACTED"),
    # key=value in URLs, forms and logfmt text.
    (re.compile(r"(?i)([?&;\s]|^)(%s)=([^&\s\"',;]+)" % _SECRET_NAMES),
     lambda m: "%s%s=%s" % (m.group(1), m.group(2), REDACTED)),
    # JSON string members ("code": -32603 is a number and stays).
    (re.compile(r'(?i)"(%s|authorization)"(\s*:\s*)"(?:[^"\\]|\\.)*"' % _SECRET_NAMES),
     lambda m: '"%s"%s"%s"' % (m.group(1), m.group(2), REDACTED)),
    # URL userinfo.
    (re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s:@\"]+:[^/\s@\"]+@"),
     lambda m: m.group(1) + REDACTED + "@"),
]


class Redactor:
    """Scrubs known secret values and secret-looking patterns out of text and fields."""

    def __init__(self):
        self._secrets: List[str] = []
        self._lock = threading.Lock()

    def add_secret(self, value: Optional[str]):
        if value and len(value) >= 6:
            with self._lock:
                if value not in self._secrets:
                    self._secrets.append(value)
                    self._secrets.sort(key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        for pattern, repl in _PATTERNS:
            value = pattern.sub(repl, value)
        return value

    def value(self, key: str, value):
        if key.lower().replace("-", "_") in _SENSITIVE_KEYS:
            return REDACTED
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(str(k), item) for k, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(key, item) for item in value]
        return value


REDACTOR = Redactor()


def record_fields(record: logging.LogRecord) -> Dict[str, object]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}


class RedactionFilter(logging.Filter):
    def filter(self, record):
        record.msg = REDACTOR.text(record.getMessage())
        record.args = ()
        for key, value in record_fields(record).items():
            setattr(record, key, REDACTOR.value(key, value))
        return True


class ContextFilter(logging.Filter):
    """Adds the process-wide fields (client_instance_id, tunnel_id) to every record."""

    def __init__(self, **fields):
        super().__init__()
        self.fields = fields

    def filter(self, record):
        record.component = record.name[len(ROOT) + 1:] if record.name.startswith(ROOT + ".") \
            else record.name
        for key, value in self.fields.items():
            if value is not None and not hasattr(record, key):
                setattr(record, key, value)
        return True


# --- formats -----------------------------------------------------------------------------


def _timestamp(record) -> str:
    when = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (record.msecs,)


def _jsonable(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def event(record: logging.LogRecord) -> Dict[str, object]:
    """The structured form of a record: what JSON logs, the UI and bundles show."""
    data = {"time": _timestamp(record), "level": _LEVEL_NAMES.get(record.levelno, "INFO"),
            "msg": record.getMessage(), "component": getattr(record, "component", "")}
    for key, value in record_fields(record).items():
        # A field named like a core key must not overwrite it (a "level" field would
        # relabel the event); it is kept under field_<name>.
        data["field_" + key if key in data else key] = _jsonable(value)
    if record.exc_info and record.exc_info[1] is not None:
        # Built here, after the redaction filter ran on the record: redact it here too.
        data["error"] = REDACTOR.text("%s: %s" % (type(record.exc_info[1]).__name__,
                                                  record.exc_info[1]))
        data["traceback"] = REDACTOR.text(
            "".join(traceback.format_exception(*record.exc_info))[-4000:])
    return data


class JsonFormatter(logging.Formatter):
    def format(self, record):
        return json.dumps(event(record), ensure_ascii=False, separators=(",", ":"))


_BARE = re.compile(r"^[A-Za-z0-9_./:@+-]+$")


def _logfmt(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, str):
        value = json.dumps(_jsonable(value), separators=(",", ":")) \
            if isinstance(value, (list, dict, tuple)) else str(value)
    if value and _BARE.match(value):
        return value
    return json.dumps(value, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``time=... level=INFO component=worker msg="..." key=value`` (logfmt)."""

    def format(self, record):
        data = event(record)
        return " ".join("%s=%s" % (k, _logfmt(v)) for k, v in data.items() if v != "")


# --- handlers ----------------------------------------------------------------------------


class ReopenableFileHandler(logging.StreamHandler):
    """Appends to a 0600 file; ``reopen()`` (on SIGHUP) follows logrotate's rename."""

    def __init__(self, path: str):
        self.path = path
        super().__init__(self._open())

    def _open(self):
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return os.fdopen(fd, "a", encoding="utf-8")

    def reopen(self):
        self.acquire()
        try:
            old = self.stream
            self.stream = self._open()
            old.close()
        finally:
            self.release()

    def close(self):
        self.acquire()
        try:
            if self.stream and not self.stream.closed:
                self.stream.close()
        finally:
            self.release()
        super().close()


class RingBuffer(logging.Handler):
    """The last N structured events, for /api/logs, the live stream and support bundles."""

    def __init__(self, capacity: int = 2000):
        super().__init__(logging.DEBUG)
        self.events = collections.deque(maxlen=capacity)
        self.seq = 0
        self.changed = threading.Condition()

    def emit(self, record):
        try:
            data = event(record)
        except Exception:  # a log call must never break the caller
            return
        with self.changed:
            self.seq += 1
            data["seq"] = self.seq
            self.events.append(data)
            self.changed.notify_all()

    def since(self, seq: int) -> List[dict]:
        with self.changed:
            return [e for e in self.events if e["seq"] > seq]

    def recent(self, limit: int) -> List[dict]:
        with self.changed:
            items = list(self.events)
        return items[-limit:] if limit else items

    def wait(self, seq: int, timeout: float) -> List[dict]:
        with self.changed:
            self.changed.wait_for(lambda: self.seq > seq, timeout)
        return self.since(seq)


class LogSetup:
    """The configured logging of one process; keeps what SIGHUP and the UI need."""

    def __init__(self, level: str = "info", fmt: str = "struct-text",
                 file: Optional[str] = None, ring_capacity: int = 2000, stream=None,
                 **context):
        self.root = logging.getLogger(ROOT)
        self.root.propagate = False
        for handler in list(self.root.handlers):
            self.root.removeHandler(handler)
            handler.close()
        formatter = JsonFormatter() if fmt == "json" else TextFormatter()
        self.file_handler = ReopenableFileHandler(file) if file else None
        output = self.file_handler or logging.StreamHandler(stream)
        self.ring = RingBuffer(ring_capacity)
        self.context = ContextFilter(**context)
        redaction = RedactionFilter()
        for handler in (output, self.ring):
            handler.addFilter(self.context)
            handler.addFilter(redaction)
        output.setFormatter(formatter)
        self.output = output
        self.root.addHandler(output)
        self.root.addHandler(self.ring)
        self.set_level(level)

    def set_level(self, level: str):
        self.root.setLevel(LEVELS[level])

    @property
    def level(self) -> str:
        return level_name(self.root.level)

    def set_context(self, **fields):
        self.context.fields.update(fields)

    def reopen(self):
        if self.file_handler:
            self.file_handler.reopen()

    def close(self):
        """Undo the setup: handlers closed, records propagate to the root logger again."""
        for handler in list(self.root.handlers):
            self.root.removeHandler(handler)
            handler.close()
        self.root.propagate = True
        self.root.setLevel(logging.NOTSET)


_raw_log = logging.getLogger(ROOT + ".http")
RAW_PREVIEW = 4096


class RawHttp:
    """``log.http_raw_unsafe``: exchanges dumped at debug level (bodies cut at 4 KiB). The
    redaction filter still runs, but payloads can carry data no pattern recognises; hence
    the name and the startup warning."""

    enabled = False

    @classmethod
    def exchange(cls, route: str, method: str, url: str, status, request_headers=None,
                 request_body=None, response_headers=None, response_body=None):
        if not cls.enabled or not _raw_log.isEnabledFor(logging.DEBUG):
            return
        _raw_log.debug("raw http exchange", extra={
            "route": route, "method": method, "url": url, "status": status,
            "request_headers": shown_headers(request_headers),
            "request_body": _preview(request_body),
            "response_headers": shown_headers(response_headers),
            "response_body": _preview(response_body)})


# Headers whose values describe the exchange and never carry a credential. Every other value
# is redacted: a header's name does not say whether its value is secret (X-Gateway-Credential,
# a caller's custom header).
_SHOWN_HEADERS = frozenset((
    "accept", "accept-encoding", "cache-control", "connection", "content-encoding",
    "content-length", "content-type", "date", "keep-alive", "mcp-method", "mcp-name",
    "mcp-protocol-version", "retry-after", "server", "transfer-encoding", "user-agent", "vary",
    "x-request-id"))


def shown_headers(headers) -> Dict[str, object]:
    """Header names with their values, except values that might be secret."""
    return {str(name): value if str(name).lower() in _SHOWN_HEADERS else REDACTED
            for name, value in dict(headers or {}).items()}


def _preview(body):
    if body is None:
        return None
    if isinstance(body, bytes) and len(body) <= 16 * RAW_PREVIEW:
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body[:1] == "{" and len(body) <= 16 * RAW_PREVIEW:
        try:
            # Poll bodies carry the caller's headers, response posts the server's.
            body = json.dumps(_headers_hidden(json.loads(body)), ensure_ascii=False)
        except ValueError:
            pass
    if isinstance(body, bytes):
        body = body[:RAW_PREVIEW].decode("utf-8", "replace")
    return body[:RAW_PREVIEW]


def _headers_hidden(node):
    if isinstance(node, dict):
        return {key: shown_headers(value) if key in ("headers", "resp_headers") and
                isinstance(value, dict) else _headers_hidden(value)
                for key, value in node.items()}
    if isinstance(node, list):
        return [_headers_hidden(item) for item in node]
    return node
