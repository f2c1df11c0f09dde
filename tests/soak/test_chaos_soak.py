"""Chaos soak: steady callers while the control plane misbehaves and the stdio server is
SIGKILLed; every call must get exactly one answer, its own, and the daemon must stay flat.

``make soak`` runs it (SOAK_MINUTES, default 1.5; SOAK_SEED picks the fault timetable).
See chaos.py for the faults and why each is survivable, leaks.py for the bounds.
"""

import os
import sys
import threading
import time

import pytest

from benchmarks import procstat
from benchmarks.report import table
from tests.soak import leaks
from tests.soak.callers import Caller
from tests.soak.chaos import Chaos, ChaosRelay
from tests.soak.conftest import SOAK_VARIABLE
from tests.soak.ledger import audit
from tests.support.daemon import Daemon

CALLERS = 6
KILL_EVERY = 8.0  # seconds; wider than the restart window below, so no crash-loop verdict
DAEMON_ARGS = ["--log.level", "info", "--mcp.stdio.restart-window", "5s"]


def recording_stub(path: str) -> str:
    return "%s -m tests.soak.recording_stub --record %s" % (sys.executable, path)


@pytest.mark.soak
def test_chaos_soak_loses_duplicates_and_misroutes_nothing_and_stays_flat(tmp_path):
    minutes = float(os.environ[SOAK_VARIABLE])
    seed = int(os.environ.get("TUNNEL_CLIENT_SOAK_SEED", "8"))
    duration = minutes * 60.0
    executed = str(tmp_path / "executed.jsonl")
    open(executed, "w").close()
    relay = ChaosRelay(response_timeout="20s", record=10 ** 6).start()
    daemon = Daemon(relay, mcp_command=recording_stub(executed), workers=10,
                    poll_timeout="5s", args=DAEMON_ARGS)
    try:
        daemon.wait_polling()
        report = soak(relay, daemon, duration, seed)
        alive = daemon.proc.poll() is None
    finally:
        code = daemon.stop()
        relay.stop()
    books = audit(report["records"], report["kills"], relay, executed)
    print_report(books, report, minutes, seed)
    try:
        assert alive, "the daemon died during the soak:\n" + daemon.output()[-5000:]
        assert code == 0, "the daemon stopped with exit code %s" % code
        assert not books["problems"], "broken promises: %s" % {
            k: v[:3] for k, v in books["problems"].items()}
        assert books["outcomes"].get("ok", 0) > 0
        assert report["chaos"].injected["sigkill"] >= 1, "no SIGKILL happened"
        assert not report["leaks"]["crossed"], "daemon not flat: %s" % report["leaks"]
    finally:
        daemon.cleanup()


def soak(relay, daemon, duration: float, seed: int) -> dict:
    pid = daemon.proc.pid
    warmup_until = time.monotonic() + min(20.0, duration * 0.2)
    snapshots = []

    def child():
        kids = procstat.children(pid)
        return kids[0] if kids else None

    chaos = Chaos(relay, child, seed, KILL_EVERY,
                  before_kill=lambda: snapshots.append(leaks.snapshot(pid, time.monotonic())))
    stop = threading.Event()
    callers = [Caller(i, relay.mcp_url, stop, seed) for i in range(CALLERS)]
    started = time.monotonic()
    for caller in callers:
        caller.start()
    chaos.start()
    stop.wait(duration)  # the soak's length, not a synchronisation
    snapshots.append(leaks.snapshot(pid, time.monotonic()))
    chaos.finish()
    stop.set()
    for caller in callers:
        caller.join(90)
    assert not any(c.is_alive() for c in callers), "a caller is stuck"
    return {"records": [r for c in callers for r in c.records], "kills": chaos.kills,
            "chaos": chaos, "seconds": time.monotonic() - started,
            "leaks": leaks.growth(snapshots, warmup_until)}


def print_report(books: dict, report: dict, minutes: float, seed: int):
    outcomes = books["outcomes"]
    print("\n\nchaos soak: %.1f min, seed %d, %d callers, %d calls (%.0f calls/s)" % (
        minutes, seed, CALLERS, books["calls"], books["calls"] / report["seconds"]))
    print(table(["outcome", "calls"], sorted(outcomes.items())))
    print("redelivered after a lost poll reply (and answered once): %d"
          % books["redelivered_after_lost_poll_reply"])
    print("server-side executions: %d" % books["executions"])
    print(table(["fault injected", "times"], sorted(report["chaos"].injected.items())))
    found = report["leaks"]
    if "baseline" in found:
        base, worst, last = found["baseline"], found["worst"], found["last"]
        print(table(["daemon", "after warm-up", "worst later", "last", "bound"], [
            ["RSS MB", base.rss / 1e6, worst.rss / 1e6, last.rss / 1e6,
             "+%d MB" % (leaks.RSS_SLACK_BYTES >> 20)],
            ["threads", base.threads, worst.threads, last.threads,
             "+%d" % leaks.THREAD_SLACK],
            ["open fds", base.fds, worst.fds, last.fds, "+%d" % leaks.FD_SLACK]]))
    for kind, examples in books["problems"].items():
        print("PROBLEM %s (%d): %s" % (kind, len(examples), examples[:3]))
