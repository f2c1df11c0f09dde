"""Schedulers for periodic and delayed jobs; idle, the daemon wakes only when a job is due.

The service runs two: one for time-critical jobs (child restarts, local answers, health
pings, the systemd watchdog) and one for network jobs (tunnel metadata, proxy checks, HTTP
probes, OAuth discovery), so an endpoint that hangs can never delay a restart.
"""

import heapq
import itertools
import threading
import time
from typing import Callable, Optional

from tunnel_client.observe.logs import get_logger

log = get_logger("housekeeping")


class Housekeeping:
    def __init__(self, name: str = "housekeeping"):
        self.name = name
        self._heap = []
        self._counter = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self):
        self._thread.start()

    def call_later(self, delay: float, job: Callable[[], Optional[float]], name: str = ""):
        """Run ``job`` after ``delay`` seconds; if it returns a number, run it again then."""
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._counter), job,
                                        name or getattr(job, "__name__", "job")))
            self._cond.notify()

    def every(self, interval: float, job: Callable[[], None], name: str = ""):
        def repeat():
            job()
            return interval
        self.call_later(interval, repeat, name or getattr(job, "__name__", "job"))

    def stop(self):
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def _run(self):
        while True:
            with self._cond:
                while not self._stopped:
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        break
                    self._cond.wait(self._heap[0][0] - now if self._heap else None)
                if self._stopped:
                    return
                _, _, job, name = heapq.heappop(self._heap)
            try:
                again = job()
            except Exception:  # one broken job must not stop the others
                log.exception("housekeeping job failed", extra={"job": name,
                                                                 "scheduler": self.name})
                again = None
            if again is not None:
                self.call_later(again, job, name)
