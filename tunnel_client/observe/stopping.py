"""Where a stop's time goes.

Every phase of a stop is logged with its duration, and a stop that overruns (a second
SIGTERM, the drain budget running out, or workers still running with nothing in flight)
logs the stack of every thread, so a hang can be read from the journal instead of
guessed at.
"""

import contextlib
import sys
import threading
import time
import traceback
from typing import Dict, Iterator, List, Optional

from tunnel_client.observe.logs import get_logger

log = get_logger("process")

DUMP_WAIT = 5.0  # the longest the end of a stop waits for a thread dump in progress
STACK_DEPTH = 40  # innermost frames kept per thread
SLOW_PHASE = 2.0  # a phase this long is logged as a warning


class StopWatch:
    """Times the phases of one stop and dumps thread stacks when it overruns.

    A watcher thread, started with the stop, does the dumping: the thread running the stop
    may be the one that is stuck.
    """

    def __init__(self, budget: float):
        self.budget = budget
        self.started: Optional[float] = None
        self.phase_name = "not started"
        self.durations: Dict[str, float] = {}
        self._wake = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._reasons: List[str] = []
        self._watcher = threading.Thread(target=self._watch, name="stop-watch", daemon=True)

    def begin(self):
        self.started = time.monotonic()
        self._watcher.start()

    @contextlib.contextmanager
    def phase(self, name: str, **fields) -> Iterator[dict]:
        """Time one phase; the caller may add fields to the dict it gets."""
        self.phase_name = name
        started = time.monotonic()
        try:
            yield fields
        finally:
            took = time.monotonic() - started
            self.durations[name] = took
            level = log.warning if took >= SLOW_PHASE else log.info
            level("stop phase %s: %d ms" % (name, took * 1000),
                  extra=dict(fields, phase=name, duration_ms=round(took * 1000, 1)))

    def dump(self, reason: str):
        """Ask the watcher for a dump of every thread's stack (safe in a signal handler)."""
        with self._lock:
            self._reasons.append(reason)
        self._wake.set()

    def elapsed(self) -> float:
        return time.monotonic() - self.started if self.started is not None else 0.0

    def finish(self) -> Dict[str, object]:
        """The stop is over: let a dump in progress end, then the summary fields."""
        self._done.set()
        self._wake.set()
        if self._watcher.is_alive():
            self._watcher.join(DUMP_WAIT)
        slowest = max(self.durations.items(), key=lambda item: item[1], default=("", 0.0))
        return {"stop_ms": round(self.elapsed() * 1000, 1), "slowest_phase": slowest[0],
                "slowest_phase_ms": round(slowest[1] * 1000, 1)}

    def _watch(self):
        # With no drain budget there is nothing to overrun.
        budget_end = self.started + self.budget if self.budget > 0 else None
        while True:
            left = budget_end - time.monotonic() if budget_end is not None else None
            woken = self._wake.wait(max(0.0, left) if left is not None else None)
            self._wake.clear()
            with self._lock:
                reasons, self._reasons = self._reasons, []
            for reason in reasons:
                dump_stacks(reason, self.phase_name)
            if self._done.is_set():
                return
            if not woken and budget_end is not None:
                budget_end = None
                dump_stacks("the stop is still running after the drain budget (%gs)"
                            % self.budget, self.phase_name)


def dump_stacks(reason: str, phase: str = ""):
    """Log every thread's stack: one event per thread, innermost frame last."""
    frames = sys._current_frames()
    threads = {thread.ident: thread for thread in threading.enumerate()}
    log.warning("thread dump: %s" % reason, extra={"threads": len(frames), "phase": phase})
    for ident, frame in sorted(frames.items(), key=lambda item: _name(threads, item[0])):
        thread = threads.get(ident)
        stack = ["%s:%d in %s%s" % (entry.filename, entry.lineno, entry.name,
                                     ": " + entry.line if entry.line else "")
                 for entry in traceback.extract_stack(frame)]
        log.warning("thread %s stack" % _name(threads, ident), extra={
            "thread_name": _name(threads, ident),
            "daemon": bool(thread and thread.daemon), "stack": stack[-STACK_DEPTH:]})


def _name(threads, ident) -> str:
    thread = threads.get(ident)
    return thread.name if thread is not None else "thread-%d" % ident
