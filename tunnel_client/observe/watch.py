"""The daemon watching itself once a second: readiness transitions and outage reminders
go to the log, and stdio restarts are counted against their budget so the UI can warn
before the last allowed restart is spent."""

import collections
import time
from typing import Callable, Dict, List, Optional

from tunnel_client.observe.health import PollHealth, Readiness, ReadinessLog
from tunnel_client.observe.logs import get_logger
from tunnel_client.observe.recent import RecentCounts

log = get_logger("health")

INTERVAL = 1.0  # while not ready: transitions and restarts show within a second
STEADY_INTERVAL = 5.0  # while ready: an idle daemon wakes rarely


class Watch:
    def __init__(self, readiness: Readiness, poll_health: PollHealth,
                 channels: Callable[[], List[dict]], restart_limit: int,
                 restart_window: float, recent: Optional[RecentCounts] = None):
        self.readiness_log = ReadinessLog(readiness, log)
        self.poll_health = poll_health
        self.channels = channels
        self.restart_limit = restart_limit
        self.restart_window = restart_window
        self.recent = recent
        self._seen: Dict[str, int] = {}
        self._restarts: Dict[str, collections.deque] = {}
        self._warned: Dict[str, bool] = {}

    def tick(self) -> float:
        """One look; returns the seconds until the next one."""
        check = self.readiness_log.observe()
        reminder = self.poll_health.reminder()
        if reminder:
            log.warning(reminder, extra={"failing_since": self.poll_health.failing_since})
        self._count_restarts()
        return STEADY_INTERVAL if check.ok else INTERVAL

    def _count_restarts(self):
        now = time.monotonic()
        for info in self.channels():
            if info.get("transport_kind") != "stdio":
                continue
            name, total = info.get("name", ""), info.get("restarts") or 0
            seen = self._seen.get(name, 0)
            times = self._restarts.setdefault(name, collections.deque())
            for _ in range(max(0, total - seen)):
                times.append(now)
            if total > seen and self.recent is not None:
                self.recent.record("restart", total - seen)
            self._seen[name] = total
            while times and now - times[0] > self.restart_window:
                times.popleft()
            budget = self.budget(info)
            nearly = budget is not None and budget["nearly_spent"]
            if nearly and not self._warned.get(name):
                log.warning("channel %s: stdio server restarted %d of %d allowed times within "
                            "%ds; one more crash past the limit stops the daemon"
                            % (name, budget["used"], budget["limit"], budget["window_seconds"]),
                            extra={"channel": name})
            self._warned[name] = nearly

    def budget(self, info: dict) -> Optional[dict]:
        """Restarts used within the window for a stdio channel's ``describe()``."""
        if info.get("transport_kind") != "stdio":
            return None
        limit = info.get("restart_limit", self.restart_limit)
        used = info.get("restarts_in_window")
        if used is None:
            used = len(self._restarts.get(info.get("name", ""), ()))
        window = info.get("restart_window", self.restart_window)
        return {"used": used, "limit": limit, "window_seconds": int(window),
                "nearly_spent": bool(limit) and used >= max(1, limit - 1) and used * 5 >= limit * 3}
