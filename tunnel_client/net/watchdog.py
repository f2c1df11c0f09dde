"""One thread that runs actions when their deadline passes.

A blocking read can only be bounded in wall time from outside: a socket timeout applies to
each ``recv``, so a server dripping one byte at a time resets it forever. The body readers
arm this watchdog with "shut the socket down at the deadline", which ends any read in
progress; one shared thread keeps that free of a thread per request.
"""

import heapq
import itertools
import threading
import time
from typing import Callable


class Alarm:
    """An armed action; ``fired`` tells whether the deadline passed before ``cancel``."""

    __slots__ = ("at", "action", "fired", "cancelled")

    def __init__(self, at: float, action: Callable[[], None]):
        self.at, self.action = at, action
        self.fired = self.cancelled = False


class Watchdog:
    def __init__(self):
        self._cond = threading.Condition()
        self._heap = []
        self._order = itertools.count()
        self._thread = None
        self._cancelled = 0

    def arm(self, at: float, action: Callable[[], None]) -> Alarm:
        """Run ``action`` once ``time.monotonic()`` reaches ``at`` unless cancelled first."""
        alarm = Alarm(at, action)
        with self._cond:
            heapq.heappush(self._heap, (at, next(self._order), alarm))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="deadline-watchdog",
                                                daemon=True)
                self._thread.start()
            if self._heap[0][2] is alarm:
                self._cond.notify()  # only an earlier first deadline changes the wait
        return alarm

    def cancel(self, alarm: Alarm):
        with self._cond:
            if alarm.cancelled or alarm.fired:
                return
            alarm.cancelled = True
            self._cancelled += 1
            # Nearly every alarm is cancelled long before its deadline: drop them in bulk
            # so a busy daemon's heap stays the size of the work in flight.
            if self._cancelled > 64 and self._cancelled * 2 > len(self._heap):
                self._heap = [entry for entry in self._heap if not entry[2].cancelled]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def pending(self) -> int:
        with self._cond:
            return len(self._heap) - self._cancelled

    def _run(self):
        while True:
            with self._cond:
                while self._heap and self._heap[0][2].cancelled:
                    heapq.heappop(self._heap)
                    self._cancelled -= 1
                if not self._heap:
                    self._cond.wait()
                    continue
                at, _, alarm = self._heap[0]
                delay = at - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
                alarm.fired = True
            try:
                alarm.action()
            except Exception:  # an action must never stop the watchdog
                pass


WATCHDOG = Watchdog()
