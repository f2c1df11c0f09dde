"""Supervisor: states change in one place, children restart with backoff, a crash loop
ends in GAVE_UP and one fatal call; generations tell children apart. Real processes."""

import logging
import os
import signal
import threading
import time

import pytest

from tunnel_client import wire
from tunnel_client.housekeeping import Housekeeping
from tunnel_client.mcp.stdio import supervisor as sup
from tunnel_client.mcp.stdio.policy import StdioPolicy
from tunnel_client.observe.instruments import Instruments
from tests.support.patience import PATIENCE


class Story:
    """A supervisor of ``argv`` with its scheduler, recording what it reports."""

    def __init__(self, argv, **policy):
        self.down, self.fatal = [], []
        self.fatal_seen = threading.Event()
        self.scheduler = Housekeeping("test")
        self.scheduler.start()
        self.supervisor = sup.Supervisor(
            "main", argv, {"PATH": "/usr/bin:/bin"},
            StdioPolicy(**dict({"restart_backoff": 0.01, "health_interval": 0,
                                "stop_grace": 0.05}, **policy)),
            Instruments(), on_message=lambda gen, msg: None,
            on_down=lambda gen: self.down.append(gen) or 0, on_fatal=self._fatal)

    def _fatal(self, exc):
        self.fatal.append(exc)
        self.fatal_seen.set()

    def close(self):
        self.supervisor.stop()
        self.scheduler.stop()


@pytest.fixture
def story():
    made = []

    def make(argv, **policy):
        made.append(Story(argv, **policy))
        return made[-1]

    yield make
    for each in made:
        each.close()


def test_a_running_child_is_handed_out_with_its_generation(story):
    s = story(["sleep", "30"])
    s.supervisor.start(s.scheduler)
    running = s.supervisor.wait_running(wire.Deadline.after(PATIENCE / 2))
    assert isinstance(running, sup.Running) and running.generation == 1
    assert s.supervisor.state is sup.ChildState.RUNNING


def test_a_killed_child_is_replaced_by_the_next_generation(story):
    s = story(["sleep", "30"])
    s.supervisor.start(s.scheduler)
    assert soon(lambda: s.supervisor.child.pid)  # spawned, not only registered
    s.supervisor.kill(1, sup.DownReason.HEALTH, "did not answer")
    assert s.supervisor.wait_replaced(1, wire.Deadline.after(PATIENCE))
    assert s.supervisor.generation == 2 and s.down == [1]
    assert s.supervisor.snapshot()["restarts"] == 1


def test_news_about_an_old_generation_changes_nothing(story):
    s = story(["sleep", "30"])
    s.supervisor.start(s.scheduler)
    s.supervisor.kill(0, sup.DownReason.HEALTH, "stale")
    s.supervisor._down(0, sup.DownReason.EXIT, "stale")
    assert s.supervisor.generation == 1 and s.down == []


def test_a_child_that_keeps_exiting_ends_in_gave_up_with_one_fatal_report(story):
    s = story(["false"], restart_limit=2, restart_window=60)
    s.supervisor.start(s.scheduler)
    assert s.fatal_seen.wait(PATIENCE)
    assert s.supervisor.state is sup.ChildState.GAVE_UP
    assert "restarted 2 times" in s.supervisor.reason and len(s.fatal) == 1
    assert isinstance(s.supervisor.wait_running(wire.Deadline.after(1)), sup.Unavailable)


def test_a_stopped_supervisor_is_not_restarted_and_refuses_calls(story):
    s = story(["sleep", "30"])
    s.supervisor.start(s.scheduler)
    s.supervisor.stop()
    assert s.supervisor.state is sup.ChildState.STOPPED and s.fatal == []
    assert isinstance(s.supervisor.wait_running(wire.Deadline.after(1)), sup.Unavailable)


def test_waiting_for_a_child_that_never_starts_ends_at_the_callers_deadline(story):
    s = story(["sleep", "30"])  # never started: stays NEW
    assert isinstance(s.supervisor.wait_running(wire.Deadline.after(0.05)), sup.Expired)


def test_only_allowed_transitions_happen(story):
    s = story(["sleep", "30"])
    with s.supervisor._cond:
        s.supervisor._move(sup.ChildState.STOPPED, "stopped")
        with pytest.raises(RuntimeError, match="^stdio supervisor: STOPPED -> RUNNING is "
                           "not a transition$"):
            s.supervisor._move(sup.ChildState.RUNNING, "no way back")


def test_a_stopped_supervisor_hands_out_no_child_and_no_pid(story):
    s = story(["sleep", "30"])
    s.supervisor.start(s.scheduler)
    assert s.supervisor.current().generation == 1 and s.supervisor.snapshot()["pid"]
    s.supervisor.stop()
    assert s.supervisor.current() is None and s.supervisor.snapshot()["pid"] is None
    # A stopped lineage is never replaced: the answer comes at once, not at the deadline.
    assert not s.supervisor.wait_replaced(1, wire.Deadline.after(600))


def test_a_wait_for_a_replacement_that_does_not_come_ends_at_the_deadline(story):
    s = story(["sleep", "30"])
    s.supervisor.start(s.scheduler)
    assert not s.supervisor.wait_replaced(1, wire.Deadline.after(0.1))


def test_a_restart_that_cannot_start_the_program_counts_as_a_failed_spawn(story, tmp_path):
    program = tmp_path / "server"
    program.write_text("#!/bin/sh\nexec sleep 30\n")
    program.chmod(0o755)
    s = story([str(program)], restart_limit=2)
    s.supervisor.start(s.scheduler)
    program.unlink()  # the first child is running; every restart now fails to start
    assert soon(lambda: s.supervisor.child.pid)  # spawned, not only registered
    s.supervisor.kill(1, sup.DownReason.HEALTH, "replaced by the test")
    assert s.fatal_seen.wait(PATIENCE)
    restarts = s.supervisor.metrics.stdio_restarts
    assert restarts.value(channel="main", reason="spawn_failed") == 1
    assert s.supervisor.state is sup.ChildState.GAVE_UP
    assert s.supervisor.reason.startswith("stdio server could not start (")
    assert s.supervisor.generation == 3 and s.down == [1, 2, 3]


def test_a_child_stopped_before_it_started_never_runs():
    from tunnel_client.mcp.process import ChildProcess
    exits = []
    child = ChildProcess(["sleep", "30"], {"PATH": "/usr/bin:/bin"}, "main", 1, 1 << 20,
                         on_message=lambda msg: None, on_exit=exits.append)
    child.stop(0.2)  # the supervisor stopped while this generation was being started
    child.start()
    assert child.pid is None and not child.alive and exits == []


def test_a_child_killed_while_it_was_being_started_is_killed_once_it_runs():
    from tunnel_client.mcp.process import ChildProcess
    exited = threading.Event()
    exits = []
    child = ChildProcess(["sleep", "30"], {"PATH": "/usr/bin:/bin"}, "main", 1, 1 << 20,
                         on_message=lambda msg: None,
                         on_exit=lambda code: exits.append(code) or exited.set())
    child.kill()  # the watchdog gave up on this generation before its process existed
    child.start()
    assert exited.wait(PATIENCE), "the kill was lost: the child runs on"
    assert exits == [-signal.SIGKILL]


def test_a_kill_before_the_process_exists_reaches_the_supervisor_as_that_kill(story,
                                                                              monkeypatch):
    s = story(["sleep", "30"])
    gate = threading.Event()
    real_start = sup.ChildProcess.start

    def held_start(child):  # the generation is registered; its process not yet started
        gate.wait(PATIENCE)
        real_start(child)

    monkeypatch.setattr(sup.ChildProcess, "start", held_start)
    starter = threading.Thread(target=s.supervisor.start, args=(s.scheduler,))
    starter.start()
    assert soon(lambda: s.supervisor.child is not None)
    s.supervisor.kill(1, sup.DownReason.STUCK, "did not read its input")
    gate.set()
    starter.join(PATIENCE)
    assert s.supervisor.wait_replaced(1, wire.Deadline.after(PATIENCE))
    restarts = s.supervisor.metrics.stdio_restarts
    assert restarts.value(channel="main", reason="stuck") == 1


def soon(check):
    """Bounded polling for something another thread brings about."""
    deadline = wire.Deadline.after(PATIENCE)
    while not check() and not deadline.expired():
        threading.Event().wait(0.01)
    return check()


def down_records(caplog):
    return [r for r in caplog.records if r.getMessage() == "stdio MCP server is down; restarting"]


def test_a_supervisor_not_yet_started_says_so(story):
    s = story(["sleep", "30"])
    info = s.supervisor.snapshot()
    assert (info["state"], info["reason"], info["pid"], info["generation"], info["restarts"]) \
        == ("new", "not started", None, 0, 0)
    assert s.supervisor.current() is None


def test_each_restart_is_logged_with_why_and_when_and_waits_twice_as_long(story, caplog):
    s = story(["sleep", "30"], restart_backoff=0.01)
    s.supervisor.start(s.scheduler)
    with caplog.at_level(logging.INFO, logger="tunnel_client.stdio"):
        for generation in (1, 2):
            assert soon(lambda: s.supervisor.child.pid)  # spawned, not only registered
            os.kill(s.supervisor.child.pid, signal.SIGKILL)
            assert s.supervisor.wait_replaced(generation, wire.Deadline.after(PATIENCE))
    first, second = down_records(caplog)
    assert (first.channel, first.reason, first.generation, first.era, first.retry_in_ms,
            first.in_flight_failed) == ("main", "was killed by signal 9", 1, "", 10, 0)
    assert (second.generation, second.retry_in_ms) == (2, 20)
    restarts = s.supervisor.metrics.stdio_restarts
    assert restarts.value(channel="main", reason="signal") == 2
    assert s.supervisor.snapshot()["restarts"] == 2


def test_a_restart_waits_at_most_the_longest_backoff(story, caplog):
    s = story(["true"], restart_backoff=100.0)
    with caplog.at_level(logging.INFO, logger="tunnel_client.stdio"):
        s.supervisor.start(s.scheduler)
        assert soon(lambda: s.supervisor.state is sup.ChildState.RESTARTING)
        assert isinstance(s.supervisor.wait_running(wire.Deadline.after(0.1)), sup.Expired)
    [record] = down_records(caplog)
    assert record.retry_in_ms == 30000 and record.reason == "exited with code 0"
    assert s.supervisor.reason == ("stdio server exited with code 0; restart 1 of 5 within "
                                   "60s in 30.00s")
    assert s.supervisor.metrics.stdio_restarts.value(channel="main", reason="exit") == 1


def test_a_restart_that_takes_too_long_is_no_child_for_the_caller(story, monkeypatch):
    monkeypatch.setattr(sup, "RESTART_WAIT_CAP", 0.1)
    s = story(["true"], restart_backoff=100.0)
    s.supervisor.start(s.scheduler)
    assert soon(lambda: s.supervisor.state is sup.ChildState.RESTARTING)
    waited = s.supervisor.wait_running(wire.Deadline.after(PATIENCE))
    assert waited == sup.Unavailable(wire.TunnelFailure("connect", "dial", False))


def test_restarts_older_than_the_window_no_longer_count(story):
    s = story(["sleep", "30"], restart_limit=1, restart_window=60)
    s.supervisor.start(s.scheduler)
    s.supervisor.restarts.append(time.monotonic() - 61)  # one restart, long ago
    assert soon(lambda: s.supervisor.child.pid)  # spawned, not only registered
    s.supervisor.kill(1, sup.DownReason.HEALTH, "replaced by the test")
    assert s.supervisor.wait_replaced(1, wire.Deadline.after(PATIENCE))
    assert s.fatal == [] and len(s.supervisor.restarts) == 1


def test_giving_up_says_why_in_the_state_the_log_and_the_fatal_report(story, caplog):
    s = story(["false"], restart_limit=2, restart_window=60)
    with caplog.at_level(logging.INFO, logger="tunnel_client.stdio"):
        s.supervisor.start(s.scheduler)
        assert s.fatal_seen.wait(PATIENCE)
    why = "stdio server exited with code 1 and was restarted 2 times within 60s; giving up"
    assert s.supervisor.reason == why
    assert str(s.fatal[0]) == "stdio MCP server for channel main: " + why
    gave_up = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in gave_up] == [str(s.fatal[0])]
    assert gave_up[0].channel == "main"
    assert s.down == [1, 2, 3]


def test_only_a_claimed_lineage_publishes_its_generation(story):
    s = story(["sleep", "30"])
    s.supervisor.start(s.scheduler)
    gauge = s.supervisor.metrics.stdio_generation
    assert gauge.value(channel="main", era="") == 0
    s.supervisor.claim("legacy")
    assert s.supervisor.label == "legacy" and gauge.value(channel="main", era="legacy") == 1


def test_lines_the_child_writes_that_are_not_json_are_counted(story):
    s = story(["sh", "-c", "echo not json; exec sleep 30"])
    s.supervisor.start(s.scheduler)
    dropped = s.supervisor.metrics.stdio_dropped_lines
    assert soon(lambda: dropped.value(channel="main", reason="not_json") == 1)
