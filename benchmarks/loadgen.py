"""Load: N caller threads each send one call, wait for its answer, repeat (closed loop), or
start each call on a fixed schedule (paced: ``rate`` calls/s in all, spread evenly over
the callers), so two daemons compared do the same work per second.

A warm-up period is discarded; the measured window then runs until it has lasted
``duration`` seconds and holds ``min_calls`` answers (capped at ``max_seconds``). CPU of
the watched processes is read from /proc at the window's edges, their RSS every 50 ms.
"""

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Sequence

from benchmarks import procstat
from benchmarks.callers import unique_text


@dataclass
class LoadResult:
    concurrency: int
    payload: int
    seconds: float
    latencies_ms: List[float]
    errors: int = 0
    misrouted: int = 0
    first_error: str = ""
    cpu: Dict[str, float] = field(default_factory=dict)  # CPU seconds in the window
    peak_rss: Dict[str, int] = field(default_factory=dict)

    @property
    def calls(self) -> int:
        return len(self.latencies_ms)

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        rank = max(1, math.ceil(p / 100.0 * len(self.latencies_ms)))
        return self.latencies_ms[rank - 1]

    def cpu_ms_per_call(self, name: str) -> float:
        return 1000.0 * self.cpu.get(name, 0.0) / self.calls if self.calls else float("nan")


def run(echoes: Sequence[Callable[[str], str]], payload: int, duration: float = 3.0,
        warmup: float = 0.5, min_calls: int = 0, max_seconds: float = 60.0,
        watch: Dict[str, int] = None, rate: float = 0.0) -> LoadResult:
    """One run with ``len(echoes)`` callers; ``echoes[i](text)`` makes one call. With
    ``rate`` > 0 the callers are paced to that many calls per second in all."""
    watch = dict(watch or {})
    stop = threading.Event()
    records: List[list] = [[] for _ in echoes]
    lock = threading.Lock()
    state = {"errors": 0, "misrouted": 0, "first_error": "", "measured": 0, "window": None}

    interval = len(echoes) / rate if rate > 0 else 0.0

    def caller(index: int):
        echo, mine = echoes[index], records[index]
        next_at = time.perf_counter() + interval * index / max(1, len(echoes))
        while not stop.is_set():
            if interval:
                # a schedule, not synchronisation: a late caller skips the slots it missed
                # rather than bursting to catch up
                now = time.perf_counter()
                if next_at > now and stop.wait(next_at - now):
                    break
                next_at = max(next_at + interval, time.perf_counter())
            text = unique_text(payload)
            started = time.perf_counter()
            try:
                ok = echo(text) == text
                problem = "" if ok else "misrouted"
            except Exception as exc:  # counted and reported, never fatal to the run
                ok, problem = False, "%s: %s" % (type(exc).__name__, exc)
            ended = time.perf_counter()
            window = state["window"]
            if ok:
                mine.append((started, ended))
                if window is not None and started >= window:
                    state["measured"] += 1
            else:
                with lock:
                    state["misrouted" if problem == "misrouted" else "errors"] += 1
                    state["first_error"] = state["first_error"] or problem[:300]

    threads = [threading.Thread(target=caller, args=(i,), daemon=True)
               for i in range(len(echoes))]
    for thread in threads:
        thread.start()
    peak = {name: 0 for name in watch}

    def sample_rss():
        for name, pid in watch.items():
            try:
                peak[name] = max(peak[name], procstat.rss_bytes(pid))
            except OSError:
                pass

    begin = time.perf_counter()
    while time.perf_counter() - begin < warmup:
        sample_rss()
        time.sleep(0.05)
    cpu_before = {name: procstat.cpu_seconds(pid) for name, pid in watch.items()}
    window_start = state["window"] = time.perf_counter()
    peak = {name: 0 for name in watch}
    while True:
        sample_rss()
        elapsed = time.perf_counter() - window_start
        if elapsed >= max_seconds or (elapsed >= duration and state["measured"] >= min_calls):
            break
        time.sleep(0.05)
    window_end = time.perf_counter()
    cpu_after = {name: procstat.cpu_seconds(pid) for name, pid in watch.items()}
    stop.set()
    for thread in threads:
        thread.join(180)
    latencies = sorted((end - start) * 1000.0 for mine in records for start, end in mine
                       if start >= window_start and end <= window_end)
    return LoadResult(len(echoes), payload, window_end - window_start, latencies,
                      state["errors"], state["misrouted"], state["first_error"],
                      {n: cpu_after[n] - cpu_before[n] for n in watch}, peak)
