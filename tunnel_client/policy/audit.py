"""The audit trail: one sealed JSON Lines record per command, hash-chained across files.

Each record carries ``seq``, ``prev`` (SHA-256 of the previous record's line) and, as its
last field, ``mac``: HMAC-SHA256 under the operator's key over the line without it. Editing,
removing, reordering or appending a record without the key breaks ``prev`` or ``mac``; a
truncated tail is caught against the chain head (/api/audit, syslog). A reopened or new
file starts with a ``link`` record that continues the chain from the previous file.
"""

import hashlib
import hmac
import json
import os
import threading
import time
from typing import Any, Dict, Optional, Tuple

from tunnel_client.errors import StartupError
from tunnel_client.observe.health import Check
from tunnel_client.observe.logs import get_logger

log = get_logger("audit")

VERSION = 1
GENESIS = "0" * 64
_MAC_HEAD = b',"mac":"'
_MAC_TAIL_LEN = len(_MAC_HEAD) + 64 + 2  # ,"mac":"<64 hex>"}
MIN_KEY_BYTES = 16
FILE_MODE = 0o640


def read_key(path: str) -> bytes:
    """The HMAC key: the file's bytes without surrounding whitespace (at least 16)."""
    try:
        with open(path, "rb") as handle:
            key = handle.read().strip()
    except OSError as exc:
        raise StartupError("cannot read audit key file %s: %s; create it with `umask 077; "
                           "head -c 32 /dev/urandom | base64 > %s`"
                           % (path, exc.strerror or exc, path)) from None
    if len(key) < MIN_KEY_BYTES:
        raise StartupError("audit key file %s holds %d bytes; use at least %d random bytes "
                           "(head -c 32 /dev/urandom | base64)" % (path, len(key),
                                                                   MIN_KEY_BYTES))
    return key


def digest(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)


def seal(record: Dict[str, Any], key: bytes) -> bytes:
    """The record as one line (no newline), ``mac`` appended last."""
    body = _ENCODER.encode(record).encode("ascii")
    mac = hmac.digest(key, body, "sha256").hex().encode("ascii")  # one-shot: no HMAC object
    return body[:-1] + _MAC_HEAD + mac + b'"}'


def unseal(line: bytes) -> Optional[Tuple[bytes, str]]:
    """(the sealed body, its mac) or None when the line does not end in a mac field."""
    if len(line) < _MAC_TAIL_LEN or not line.endswith(b'"}'):
        return None
    tail = line[-_MAC_TAIL_LEN:]
    if not tail.startswith(_MAC_HEAD):
        return None
    return line[:-_MAC_TAIL_LEN] + b"}", tail[len(_MAC_HEAD):-2].decode("ascii", "replace")


def mac_ok(body: bytes, mac: str, key: bytes) -> bool:
    return hmac.compare_digest(hmac.digest(key, body, "sha256").hex(), mac)


_second = (-1, "")  # (whole second, its formatted prefix): formatted once a second


def utc_now() -> str:
    global _second
    now = time.time()
    whole = int(now)
    if _second[0] != whole:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(whole)))
    return "%s%03dZ" % (_second[1], int((now - whole) * 1000))


def last_line(path: str, chunk: int = 1 << 16) -> Optional[bytes]:
    """The last non-empty line of a file, however long, or None (missing or empty file)."""
    try:
        with open(path, "rb") as handle:
            end = handle.seek(0, os.SEEK_END)
            data = b""
            while end > 0:
                start = max(0, end - chunk)
                handle.seek(start)
                data = handle.read(end - start) + data
                end = start
                stripped = data.rstrip(b"\n")
                if b"\n" in stripped:
                    return stripped.rsplit(b"\n", 1)[1]
            return data.rstrip(b"\n") or None
    except OSError:
        return None


class AuditTrail:
    """Thread-safe writer. ``write`` returns False when a record could not be written."""

    def __init__(self, path: str, key: Optional[bytes] = None, on_failure: str = "deny",
                 syslog: bool = False, instruments=None, key_file: Optional[str] = None):
        self.path = path
        self.key = key
        self.key_file = key_file  # read at open(), so building a service reads no secret
        self.on_failure = on_failure
        self.syslog = syslog
        self.metrics = instruments
        self.seq = -1
        self.head = GENESIS
        self.failing: Optional[str] = None
        self.failures = 0
        self._fd: Optional[int] = None
        self._lock = threading.Lock()

    # --- lifecycle -----------------------------------------------------------------------

    def open(self):
        """Continue the chain from the file (or the head file) and write a ``link``."""
        if self.key_file:
            self.key = read_key(self.key_file)
        if self.syslog:
            import syslog
            syslog.openlog("tunnel-client-audit", 0, syslog.LOG_AUTHPRIV)
        with self._lock:
            self._resume()
            try:
                self._open_fd()
                self._append({"reason": "start"})
            except OSError as exc:
                raise StartupError("cannot write audit file %s: %s"
                                   % (self.path, exc.strerror or exc)) from None

    def reopen(self):
        """After logrotate moved the file (SIGHUP): a new file linked to the old one."""
        with self._lock:
            self._save_head()
            self._close_fd()
            try:
                self._open_fd()
                self._append({"reason": "reopen"})
                self._recovered()
            except OSError as exc:
                self._failed(exc)

    def close(self):
        with self._lock:
            if self._fd is not None:
                try:
                    self._append({"reason": "stop"})
                except OSError as exc:
                    self._failed(exc)
            self._save_head()
            self._close_fd()

    # --- records -------------------------------------------------------------------------

    def write(self, fields: Dict[str, Any]) -> bool:
        with self._lock:
            try:
                if self._fd is None:
                    self._open_fd()  # retry after a failure: the disk may have room again
                    self._append({"reason": "recover"})
                self._append(fields, "command")
            except OSError as exc:
                self._failed(exc)
                self._close_fd()
                # never silently: the record's facts go to the daemon log instead
                facts = {k: fields.get(k) for k in ("channel", "request_id", "method",
                                                     "decision", "rule", "status")}
                log.warning("audit record not written", extra=dict(
                    facts, target_name=fields.get("name")))
                return False
            self._recovered()
            return True

    @property
    def refusing(self) -> bool:
        """Fail closed: refuse calls while records cannot be written (each call first
        tries to reopen the file, so the trail recovers as soon as the disk does)."""
        if self.failing is None or self.on_failure != "deny":
            return False
        with self._lock:
            if self._fd is None:
                try:
                    self._open_fd()
                    self._append({"reason": "recover"})
                    self._recovered()
                except OSError as exc:
                    self._close_fd()
                    self._failed(exc)
        return self.failing is not None

    def chain_head(self) -> Dict[str, Any]:
        return {"seq": self.seq, "digest": self.head}

    def check(self) -> Check:
        if self.failing is None:
            return Check(True, "audit trail writable")
        action = "refusing calls" if self.on_failure == "deny" else "continuing unrecorded"
        return Check(self.on_failure != "deny",
                     "audit trail cannot be written (%s): %s" % (action, self.failing))

    # --- internals (lock held) -----------------------------------------------------------

    def _append(self, fields: Dict[str, Any], kind: str = "link"):
        record = {"v": VERSION, "seq": self.seq + 1, "ts": utc_now(), "type": kind, **fields,
                  "prev": self.head}
        line = seal(record, self.key)
        os.write(self._fd, line + b"\n")
        self.seq += 1
        self.head = digest(line)
        if self.metrics is not None:
            self.metrics.audit_records.inc()
        if self.syslog:
            import syslog
            syslog.syslog(syslog.LOG_INFO, line.decode("ascii"))

    def _resume(self):
        line = last_line(self.path)
        if line is None:
            line = None
            try:
                with open(self.head_path, encoding="utf-8") as handle:
                    saved = json.load(handle)
                self.seq, self.head = int(saved["seq"]), str(saved["digest"])
            except (OSError, ValueError, KeyError, TypeError):
                pass
            return
        try:
            self.seq = int(json.loads(line)["seq"])
        except (ValueError, KeyError, TypeError):
            log.warning("the last line of the audit file is not a record; continuing the "
                        "chain from it", extra={"path": self.path})
        self.head = digest(line)

    @property
    def head_path(self) -> str:
        """Hidden, so `audit verify DIR/audit.jsonl*` never takes it for a trail file."""
        directory, name = os.path.split(self.path)
        return os.path.join(directory, ".%s.head" % name)

    def _save_head(self):
        """Where the chain stands, for a daemon restarting after the file was rotated."""
        try:
            fd = os.open(self.head_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(self.chain_head(), handle)
        except OSError as exc:
            log.warning("cannot save the audit chain head", extra={"error": str(exc)})

    def _open_fd(self):
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)

    def _close_fd(self):
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None

    def _failed(self, exc: OSError):
        reason = exc.strerror or str(exc)
        self.failures += 1
        if self.metrics is not None:
            self.metrics.audit_failures.inc()
        if self.failing is None:
            log.error("audit record could not be written", extra={
                "path": self.path, "error": reason, "on_failure": self.on_failure})
        self.failing = reason

    def _recovered(self):
        if self.failing is not None:
            log.warning("audit trail writable again", extra={"path": self.path})
            self.failing = None
