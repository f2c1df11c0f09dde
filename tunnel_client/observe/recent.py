"""Counts over the last minute, kept by the daemon itself.

The UI used to derive "+N in the last min" from its own samples, which only cover the time
the page has been open: right after a page load it showed "+0" next to 22 errors. The
daemon knows when each outcome happened, so it says how many fell in the last minute.
"""

import collections
import threading
import time
from typing import Dict

WINDOW = 60  # seconds


class RecentCounts:
    """Per-second buckets of named counts for the last ``WINDOW`` seconds, plus totals."""

    def __init__(self, window: int = WINDOW, clock=time.monotonic):
        self.window = window
        self.clock = clock
        self._lock = threading.Lock()
        self._buckets = collections.deque()  # (second, Counter), oldest first
        self.totals: Dict[str, int] = collections.Counter()

    def record(self, name: str, count: int = 1):
        second = int(self.clock())
        with self._lock:
            self.totals[name] += count
            if not self._buckets or self._buckets[-1][0] != second:
                self._buckets.append((second, collections.Counter()))
                self._prune(second)
            self._buckets[-1][1][name] += count

    def last_window(self) -> Dict[str, int]:
        with self._lock:
            self._prune(int(self.clock()))
            found = collections.Counter()
            for _second, counts in self._buckets:
                found.update(counts)
            return dict(found)

    def snapshot(self) -> dict:
        recent = self.last_window()
        with self._lock:
            return {"window_seconds": self.window, "total": dict(self.totals),
                    "last_window": recent}

    def _prune(self, now: int):
        while self._buckets and self._buckets[0][0] <= now - self.window:
            self._buckets.popleft()
