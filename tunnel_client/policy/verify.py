"""Offline verification of an audit trail: one or more files (rotated ones too, .gz read
transparently), the HMAC key, and optionally the chain head taken from /api/audit or
syslog. Reports the first break and where it is."""

import gzip
import json
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from tunnel_client.policy.audit import GENESIS, digest, mac_ok, unseal


@dataclass
class Verdict:
    ok: bool
    message: str
    records: int = 0
    first_seq: Optional[int] = None
    last_seq: Optional[int] = None
    head: Optional[str] = None
    where: str = ""  # FILE:LINE of the break

    def summary(self) -> str:
        if self.ok:
            return "OK: %d records, seq %s..%s, chain head %s:%s" % (
                self.records, self.first_seq, self.last_seq, self.last_seq, self.head)
        return "BROKEN: %s: %s" % (self.where, self.message) if self.where \
            else "BROKEN: %s" % self.message


class Unreadable(Exception):
    """A file cannot be read at all (exit 3: unknown, not evidence of tampering)."""


def parse_head(text: str) -> Tuple[Optional[int], str]:
    """``SEQ:DIGEST`` or ``DIGEST`` (64 hex digits)."""
    seq, _, value = text.strip().rpartition(":")
    value = value.lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ValueError("chain head must be SEQ:DIGEST or a 64-hex-digit digest")
    if seq and not seq.isdigit():
        raise ValueError("chain head must be SEQ:DIGEST with SEQ a number")
    return (int(seq) if seq else None), value


def _read(path: str) -> bytes:
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as handle:
                return handle.read()
        with open(path, "rb") as handle:
            return handle.read()
    except (OSError, EOFError) as exc:
        raise Unreadable("cannot read %s: %s" % (path, getattr(exc, "strerror", None) or exc))


def _first_seq(data: bytes) -> float:
    for line in data.split(b"\n"):
        sealed = unseal(line.strip())
        if sealed:
            try:
                return int(json.loads(sealed[0])["seq"])
            except (ValueError, KeyError, TypeError):
                break
    return float("inf")


def verify(paths: Sequence[str], key: bytes, head: Optional[Tuple[Optional[int], str]] = None
           ) -> Verdict:
    return verify_data([(path, _read(path)) for path in paths], key, head)


def verify_tail(path: str, key: bytes, max_bytes: int = 4 << 20) -> Verdict:
    """The last ``max_bytes`` of one file (whole records only): a quick check for cron."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - max_bytes))
            data = handle.read()
    except OSError as exc:
        raise Unreadable("cannot read %s: %s" % (path, exc.strerror or exc))
    if size > max_bytes:
        data = data.split(b"\n", 1)[1] if b"\n" in data else b""
    return verify_data([(path, data)], key)


def verify_data(files: List[Tuple[str, bytes]], key: bytes,
                head: Optional[Tuple[Optional[int], str]] = None) -> Verdict:
    """``files``: (name, content) pairs, in any order."""
    files = list(files)
    files.sort(key=lambda item: _first_seq(item[1]))  # rotation order, whatever the names
    v = Verdict(True, "")
    prev_digest: Optional[str] = None
    prev_seq: Optional[int] = None
    seen = {}
    for index, (path, data) in enumerate(files):
        lines = data.split(b"\n")
        last_file = index == len(files) - 1
        for number, raw in enumerate(lines, 1):
            line = raw.rstrip(b"\r")
            if not line.strip():
                continue
            where = "%s:%d" % (path, number)
            partial = last_file and number == len(lines) and not data.endswith(b"\n")
            problem, record = _check_line(line, key, partial)
            if problem is None:
                problem = _check_link(record, prev_digest, prev_seq)
            if problem is not None:
                return Verdict(False, problem, v.records, v.first_seq, prev_seq, prev_digest,
                               where)
            prev_seq, prev_digest = record["seq"], digest(line)
            seen[prev_seq] = prev_digest
            v.records += 1
            if v.first_seq is None:
                v.first_seq = prev_seq
    v.last_seq, v.head = prev_seq, prev_digest
    if not v.records:
        return Verdict(False, "no audit records in %s" % ", ".join(n for n, _ in files))
    if head is not None:
        problem = _check_head(head, seen, v.last_seq)
        if problem:
            return Verdict(False, problem, v.records, v.first_seq, v.last_seq, v.head)
    return v


def _check_line(line: bytes, key: bytes, partial: bool):
    sealed = unseal(line)
    if sealed is None:
        if partial:
            return "the last record is incomplete (file truncated mid-record)", None
        return ("not a sealed audit record (no mac at the end of the line): inserted or "
                "forged"), None
    body, mac = sealed
    try:
        record = json.loads(body)
        seq = record["seq"]
        if not isinstance(seq, int) or not isinstance(record["prev"], str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return "not an audit record (unreadable JSON or no seq/prev)", None
    if not mac_ok(body, mac, key):
        return ("MAC does not match at seq %d: the record was edited, or forged without the "
                "key (or the key is wrong)" % seq), None
    return None, record


def _check_link(record, prev_digest: Optional[str], prev_seq: Optional[int]):
    seq, prev = record["seq"], record["prev"]
    if prev_digest is None:
        return None  # earlier files may simply not have been given
    if prev == prev_digest and seq == prev_seq + 1:
        return None
    if prev == GENESIS:
        return ("the chain starts again at seq %d after seq %d: an earlier trail was "
                "replaced or the daemon lost its chain head" % (seq, prev_seq))
    if seq > prev_seq + 1:
        missing = seq - prev_seq - 1
        return "%d record%s missing between seq %d and seq %d (removed)" % (
            missing, "s" if missing > 1 else "", prev_seq, seq)
    if seq <= prev_seq:
        return "records out of order: seq %d follows seq %d (swapped or replayed)" % (
            seq, prev_seq)
    return ("seq %d does not chain to the record before it (prev digest differs): that "
            "record was replaced" % seq)


def _check_head(head, seen, last_seq: int) -> Optional[str]:
    seq, wanted = head
    if seq is None:
        if wanted in seen.values():
            return None
        return ("the chain head %s is not in the trail (last record seq %d): the trail "
                "was truncated or replaced" % (wanted[:16], last_seq))
    if seq > last_seq:
        return ("trail truncated: it ends at seq %d but the chain head is seq %d (%d "
                "record%s missing at the end)" % (last_seq, seq, seq - last_seq,
                                                    "s" if seq - last_seq > 1 else ""))
    if seq in seen and seen[seq] != wanted:
        return "record seq %d differs from the chain head" % seq
    if seq not in seen:
        return "the chain head seq %d precedes the files given" % seq
    return None

