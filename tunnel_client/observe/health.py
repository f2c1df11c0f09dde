"""Liveness and readiness with reasons.

Readiness is computed from named inputs, each a callable returning a ``Check`` (ok, a
one-line reason, and since when). The first failing input, in registration order, names
the reason ``/readyz`` gives; ``/api/status`` shows every input with its timestamp.
"""

import threading
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple


@dataclass(frozen=True)
class Check:
    ok: bool
    reason: str = ""
    since: Optional[float] = None  # wall-clock time the state began

    def as_dict(self, name: str) -> dict:
        return {"name": name, "ok": self.ok, "reason": self.reason, "since": self.since}


class PollHealth:
    """Control-plane poll state as the workers report it (shared by all of them)."""

    def __init__(self, outage_after: float = 60.0, on_first_success=None, clock=None):
        self.outage_after = outage_after
        self.clock = clock or time.time  # looked up here, so tests can replace the module's time
        self.on_first_success = on_first_success
        self._lock = threading.Lock()
        self.last_success: Optional[float] = None  # wall clock
        self.failing_since: Optional[float] = None
        self.last_error: Optional[str] = None  # one short line
        self.last_error_kind: Optional[str] = None
        self.last_error_detail: Optional[str] = None  # the library's text, for a details view
        self.auth_error: Optional[str] = None
        self.consecutive_failures = 0
        self._reminders_sent = 0
        self.first_success = threading.Event()

    def succeeded(self):
        with self._lock:
            self.last_success = self.clock()
            self.failing_since = None
            self.last_error = self.last_error_kind = self.last_error_detail = None
            self.auth_error = None
            self.consecutive_failures = 0
            self._reminders_sent = 0
            first = not self.first_success.is_set()
            self.first_success.set()
        if first and self.on_first_success is not None:
            self.on_first_success()

    def failed(self, message: str, auth: bool = False, kind: Optional[str] = None,
               detail: Optional[str] = None):
        with self._lock:
            now = self.clock()
            if self.failing_since is None:
                self.failing_since = now
            self.consecutive_failures += 1
            self.last_error = message
            self.last_error_kind = kind
            self.last_error_detail = detail if detail != message else None
            self.auth_error = message if auth else None

    def reminder(self) -> Optional[str]:
        """While polls fail: a reminder line once each of REMINDERS has passed (then
        hourly), so a long outage keeps showing in the log; None when none is due."""
        with self._lock:
            if self.failing_since is None:
                return None
            down_for = self.clock() - self.failing_since
            step = self._reminders_sent
            due = REMINDERS[step] if step < len(REMINDERS) else \
                REMINDERS[-1] + 3600.0 * (step - len(REMINDERS) + 1)
            if down_for < due:
                return None
            self._reminders_sent += 1
            what = "rejecting the key" if self.auth_error else "unreachable"
            return ("control plane still %s after %s: %s (%d failed polls)"
                    % (what, _duration(down_for), self.last_error, self.consecutive_failures))

    def check(self) -> Check:
        with self._lock:
            if self.auth_error:
                return Check(False, self.auth_error, self.failing_since)
            if self.failing_since is not None:
                down_for = self.clock() - self.failing_since
                if self.last_success is None or down_for >= self.outage_after:
                    return Check(False, "%s for %s" % (_unreachable(self.last_error),
                                                        _duration(down_for)),
                                 self.failing_since)
            if self.last_success is None:
                return Check(False, "waiting for the first successful poll")
            return Check(True, "polling", self.last_success)

    def snapshot(self) -> dict:
        with self._lock:
            return {"last_success": self.last_success, "failing_since": self.failing_since,
                    "last_error": self.last_error, "last_error_kind": self.last_error_kind,
                    "last_error_detail": self.last_error_detail,
                    "auth_error": self.auth_error,
                    "consecutive_failures": self.consecutive_failures}


# Outage reminders: after 1, 5 and 15 minutes, then hourly.
REMINDERS = (60.0, 300.0, 900.0, 3600.0)


def _unreachable(summary: Optional[str]) -> str:
    text = summary or "no answer"
    if text.startswith("HTTP "):
        return "control plane failing: " + text
    return "control plane unreachable: " + text


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return "%d s" % seconds
    if seconds < 7200:
        return "%d min" % (seconds // 60)
    return "%dh%02dm" % (seconds // 3600, seconds % 3600 // 60)


class ReadinessLog:
    """Logs every readiness transition with its reason, so /readyz turning 503 is in the
    log and not only in a probe's answer. ``observe`` is called periodically."""

    def __init__(self, readiness: "Readiness", logger):
        self.readiness = readiness
        self.log = logger
        self.ready: Optional[bool] = None
        self.key: Optional[Tuple[str, str]] = None

    def observe(self) -> Check:
        failing = [(name, check) for name, check in self.readiness.inputs() if not check.ok]
        if not failing:
            if self.ready is not True:
                self.log.info("readiness: ready", extra={"ready": True})
            self.ready, self.key = True, None
            return Check(True, "ready")
        name, check = failing[0]
        # Counts and durations change every second; the state is the input and the words.
        key = (name, "".join(c for c in check.reason if not c.isdigit()))
        if self.ready is not False or key != self.key:
            self.log.warning("readiness: not ready: %s" % check.reason,
                             extra={"ready": False, "input": name, "reason": check.reason})
        self.ready, self.key = False, key
        return check


class Readiness:
    def __init__(self):
        self._inputs: List[Tuple[str, Callable[[], Check]]] = []

    def add(self, name: str, source: Callable[[], Check]):
        self._inputs.append((name, source))

    def inputs(self) -> List[Tuple[str, Check]]:
        results = []
        for name, source in self._inputs:
            try:
                results.append((name, source()))
            except Exception as exc:  # a broken input must read as not ready, not crash
                results.append((name, Check(False, "%s check failed: %s" % (name, exc))))
        return results

    def evaluate(self) -> Check:
        for _name, check in self.inputs():
            if not check.ok:
                return check
        return Check(True, "ready")
