"""The deadline watchdog: due alarms fire once, cancelled ones never, and a stream of
cancelled alarms (every healthy request) does not grow its heap."""

import threading
import time

from tunnel_client.net.watchdog import Watchdog


def test_a_due_alarm_fires_and_a_cancelled_one_does_not():
    watchdog = Watchdog()
    fired, spared = threading.Event(), threading.Event()
    due = watchdog.arm(time.monotonic() + 0.05, fired.set)
    cancelled = watchdog.arm(time.monotonic() + 0.05, spared.set)
    watchdog.cancel(cancelled)
    assert fired.wait(5) and due.fired
    after = threading.Event()
    watchdog.arm(time.monotonic() + 0.06, after.set)  # fires after the cancelled one was due
    assert after.wait(5)
    assert not spared.is_set() and not cancelled.fired


def test_cancelled_alarms_do_not_accumulate():
    watchdog = Watchdog()
    for _ in range(10000):
        watchdog.cancel(watchdog.arm(time.monotonic() + 600, lambda: None))
    assert watchdog.pending() == 0
    assert len(watchdog._heap) < 200
