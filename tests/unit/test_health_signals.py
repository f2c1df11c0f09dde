"""Outage reminders and the daemon's own last-minute counts, on a controlled clock."""

from tunnel_client.observe.health import PollHealth
from tunnel_client.observe.recent import RecentCounts


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_outage_reminders_come_at_1_5_15_minutes_then_hourly():
    clock = Clock()
    health = PollHealth(outage_after=60, clock=clock)
    health.succeeded()
    health.failed("connection refused by 127.0.0.1:39000", kind="connection_refused")
    seen = []
    for second in range(0, 3 * 3600 + 1, 10):
        clock.now = 1000.0 + second
        if second % 600 == 0:
            health.failed("connection refused by 127.0.0.1:39000")
        line = health.reminder()
        if line:
            seen.append((second, line))
    assert [s for s, _ in seen] == [60, 300, 900, 3600, 7200, 10800]
    first = seen[0][1]
    assert first.startswith("control plane still unreachable after 60 s: connection refused")
    assert "failed polls" in first
    assert "after 15 min" in seen[2][1] and "after 2h00m" in seen[4][1]
    health.succeeded()
    clock.now += 7200
    assert health.reminder() is None


def test_reminders_start_over_after_a_recovery():
    clock = Clock()
    health = PollHealth(clock=clock)
    health.failed("HTTP 503")
    clock.now += 61
    assert health.reminder()
    health.succeeded()
    health.failed("HTTP 503")
    clock.now += 30
    assert health.reminder() is None
    clock.now += 31
    assert "after 61 s" in health.reminder()


def test_recent_counts_cover_the_last_minute_only():
    clock = Clock()
    recent = RecentCounts(clock=clock)
    recent.record("failed", 22)
    clock.now += 30
    recent.record("failed")
    recent.record("ok")
    assert recent.last_window() == {"failed": 23, "ok": 1}
    clock.now += 31
    assert recent.last_window() == {"failed": 1, "ok": 1}
    clock.now += 60
    snapshot = recent.snapshot()
    assert snapshot["last_window"] == {} and snapshot["total"] == {"failed": 23, "ok": 1}
