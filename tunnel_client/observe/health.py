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

    def __init__(self, outage_after: float = 60.0, on_first_success=None):
        self.outage_after = outage_after
        self.on_first_success = on_first_success
        self._lock = threading.Lock()
        self.last_success: Optional[float] = None  # wall clock
        self.failing_since: Optional[float] = None
        self.last_error: Optional[str] = None
        self.auth_error: Optional[str] = None
        self.consecutive_failures = 0
        self.first_success = threading.Event()

    def succeeded(self):
        with self._lock:
            self.last_success = time.time()
            self.failing_since = None
            self.last_error = None
            self.auth_error = None
            self.consecutive_failures = 0
            first = not self.first_success.is_set()
            self.first_success.set()
        if first and self.on_first_success is not None:
            self.on_first_success()

    def failed(self, message: str, auth: bool = False):
        with self._lock:
            now = time.time()
            if self.failing_since is None:
                self.failing_since = now
            self.consecutive_failures += 1
            self.last_error = message
            self.auth_error = message if auth else None

    def check(self) -> Check:
        with self._lock:
            if self.auth_error:
                return Check(False, self.auth_error, self.failing_since)
            if self.failing_since is not None:
                down_for = time.time() - self.failing_since
                if self.last_success is None or down_for >= self.outage_after:
                    return Check(False, "control plane unreachable for %ds: %s"
                                 % (down_for, self.last_error), self.failing_since)
            if self.last_success is None:
                return Check(False, "waiting for the first successful poll")
            return Check(True, "polling", self.last_success)

    def snapshot(self) -> dict:
        with self._lock:
            return {"last_success": self.last_success, "failing_since": self.failing_since,
                    "last_error": self.last_error, "auth_error": self.auth_error,
                    "consecutive_failures": self.consecutive_failures}


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
