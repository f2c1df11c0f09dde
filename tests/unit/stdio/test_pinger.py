"""HealthPinger against a real stub child: an idle child that has answered before is
pinged in its era's own way; one that answers stays, one that does not is replaced; a
busy, unanswered, stopped or already-pinged child is left alone. The scheduler here only
records jobs, so each tick and check runs when the test says."""

import json
import os
import signal
import sys
import threading

import pytest

from tunnel_client import wire
from tunnel_client.housekeeping import Housekeeping
from tunnel_client.mcp.stdio import supervisor as sup
from tunnel_client.mcp.stdio.handshake_steps import MODERN_ERA
from tunnel_client.mcp.stdio.pinger import HealthPinger
from tunnel_client.mcp.stdio.policy import StdioPolicy
from tunnel_client.mcp.stdio.session import StdioSession
from tests.unit.stdio.sessions import paused
from tests.support.patience import PATIENCE

META = {"_meta": {"io.modelcontextprotocol/protocolVersion": MODERN_ERA}}


class Recorder:
    def __init__(self):
        self.jobs = []

    def call_later(self, delay, job, name=""):
        self.jobs.append((delay, job, name))


class Pinged:
    def __init__(self, tmp_path, era=""):
        self.log_path = str(tmp_path / "stub.jsonl")
        self.scheduler = Housekeeping("test")
        self.scheduler.start()
        # health_interval=0: the session's own pinger stays off, and any child counts as idle.
        self.session = StdioSession(
            "main", [sys.executable, "-m", "tunnel_client.devtools.stub",
                     "--log", self.log_path], dict(os.environ),
            StdioPolicy(health_interval=0, health_timeout=7.0, restart_backoff=0.01,
                        stop_grace=0.5), era=era)
        self.session.start(self.scheduler)
        self.recorder = Recorder()
        self.pinger = HealthPinger(self.session)
        self.pinger.scheduler = self.recorder

    def run(self, msg):
        cmd = wire.Command("r", "t", wire.CMD_JSONRPC, "main", 0.0, {}, msg)
        return list(self.session.handle(cmd, wire.Deadline.after(PATIENCE)))

    def warm(self):
        replies = self.run({"jsonrpc": "2.0", "id": "w", "method": "tools/call",
                            "params": dict(META if self.session.modern else {},
                                           name="echo", arguments={"input": "x"})})
        assert replies[-1].json()["id"] == "w"

    def wait_for_answer(self, before):
        deadline = wire.Deadline.after(PATIENCE)
        pause = threading.Event()
        while self.session.inbound.idle_since() == before and not deadline.expired():
            pause.wait(0.01)
        assert self.session.inbound.idle_since() != before, "the child never answered"

    def received(self):
        with open(self.log_path) as handle:
            return [json.loads(line) for line in handle]

    def close(self):
        self.session.stop()
        self.scheduler.stop()


@pytest.fixture
def pinged(tmp_path):
    made = []

    def make(**kw):
        made.append(Pinged(tmp_path, **kw))
        return made[-1]

    yield make
    for each in made:
        each.close()


def test_a_child_that_never_answered_is_not_pinged(pinged):
    p = pinged()
    assert p.session.supervisor.wait_running(wire.Deadline.after(PATIENCE)).generation == 1
    assert p.pinger.tick() == 0
    assert p.recorder.jobs == []


def test_an_answering_legacy_child_gets_a_ping_and_stays(pinged):
    p = pinged()
    p.warm()
    before = p.session.inbound.idle_since()
    assert p.pinger.tick() == 0
    [(delay, check, name)] = p.recorder.jobs
    assert delay == 7.0 and name == "stdio-ping-check-main"
    p.wait_for_answer(before)
    assert [m["method"] for m in p.received()][-1] == "ping"
    pid = p.session.child.pid
    check()
    assert p.session.supervisor.generation == 1
    assert p.session.supervisor.state is sup.ChildState.RUNNING
    assert p.pinger.tick() == 0 and len(p.recorder.jobs) == 2  # free to ping again
    p.warm()  # the same child still answers: nothing killed it
    assert p.session.child.pid == pid and p.session.supervisor.generation == 1
    assert p.session.metrics.stdio_restarts.total() == 0


def test_a_modern_child_is_probed_with_an_enveloped_discover_never_a_ping(pinged):
    p = pinged(era=MODERN_ERA)
    p.warm()
    before = p.session.inbound.idle_since()
    p.pinger.tick()
    [(_, check, _)] = p.recorder.jobs
    p.wait_for_answer(before)
    methods = [(m["method"], m["meta"]) for m in p.received()]
    assert ("ping", False) not in methods and "initialize" not in [m for m, _ in methods]
    assert methods[-1] == ("server/discover", True)
    check()
    assert p.session.supervisor.generation == 1


def test_a_child_that_stops_answering_is_replaced(pinged, caplog):
    p = pinged()
    p.warm()
    pid = p.session.child.pid
    with paused(pid):
        p.pinger.tick()
        [(_, check, _)] = p.recorder.jobs
        assert p.pinger.tick() == 0 and len(p.recorder.jobs) == 1  # one ping at a time
        with caplog.at_level("WARNING", logger="tunnel_client.stdio"):
            check()
            assert p.session.supervisor.wait_replaced(1, wire.Deadline.after(PATIENCE))
    assert p.session.supervisor.generation == 2
    assert p.session.supervisor.snapshot()["restarts"] == 1
    restarts = p.session.metrics.stdio_restarts
    assert restarts.value(channel="main", reason=sup.DownReason.HEALTH.value) == 1
    records = [r for r in caplog.records if r.name == "tunnel_client.stdio"]
    assert records[0].getMessage() == "stdio server did not answer a health ping; restarting it"
    assert (records[0].channel, records[0].era, records[0].timeout_s) == ("main", "", 7.0)
    down = [r for r in records if r.getMessage() == "stdio MCP server is down; restarting"]
    assert down[0].reason == "did not answer a health ping within 7s"


def test_a_missed_ping_from_an_older_generation_kills_nothing(pinged):
    p = pinged()
    p.warm()
    os.kill(p.session.child.pid, signal.SIGSTOP)
    p.pinger.tick()
    [(_, check, _)] = p.recorder.jobs
    p.session.supervisor.kill(1, sup.DownReason.HEALTH, "replaced by the test")
    assert p.session.supervisor.wait_replaced(1, wire.Deadline.after(PATIENCE))
    check()
    assert p.session.supervisor.generation == 2
    assert p.session.supervisor.snapshot()["restarts"] == 1


def test_a_busy_child_is_not_pinged(pinged):
    p = pinged()
    p.warm()
    call, line = p.session.mux.open({"jsonrpc": "2.0", "id": "c", "method": "tools/list"},
                                    1, caller=object())
    try:
        assert line is not None and p.session.mux.busy(1)
        assert p.pinger.tick() == 0
        assert p.recorder.jobs == []
    finally:
        p.session.mux.close(call)
    assert not p.session.mux.busy(1)


def test_a_stopped_session_ends_the_ticks(pinged):
    p = pinged()
    p.warm()
    p.session.stop()
    assert p.pinger.tick() is None
    assert p.recorder.jobs == []


def test_start_schedules_the_first_tick_only_with_an_interval(pinged):
    p = pinged()
    recorder = Recorder()
    HealthPinger(p.session).start(recorder)
    assert recorder.jobs == []
    p.session.policy = StdioPolicy(health_interval=3.0)
    pinger = HealthPinger(p.session)
    pinger.start(recorder)
    [(delay, job, name)] = recorder.jobs
    assert delay == 3.0 and name == "stdio-health-main" and job == pinger.tick


def test_the_ping_is_exactly_a_ping_request(pinged):
    p = pinged()
    p.warm()
    before = p.session.inbound.idle_since()
    p.pinger.tick()
    p.wait_for_answer(before)
    ping = p.received()[-1]["message"]
    assert ping == {"jsonrpc": "2.0", "id": ping["id"], "method": "ping"}


def test_a_child_active_within_the_interval_is_not_pinged_until_it_idles(pinged):
    p = pinged()
    p.warm()
    p.pinger.policy = StdioPolicy(health_interval=30.0, health_timeout=7.0)
    assert p.pinger.tick() == 30.0 and p.recorder.jobs == []
    p.session.inbound.last_activity -= 31.0  # as if 31 s had passed without a message
    assert p.pinger.tick() == 30.0
    [(delay, _check, _name)] = p.recorder.jobs
    assert delay == 7.0


def test_a_child_that_took_its_opening_without_answering_is_still_pinged(tmp_path):
    seen = tmp_path / "seen.jsonl"
    scheduler = Housekeeping("test")
    scheduler.start()
    silent = "import sys\nwith open(sys.argv[1], 'a') as out:\n" \
             "    for line in sys.stdin:\n        out.write(line)\n        out.flush()\n"
    session = StdioSession("main", [sys.executable, "-c", silent, str(seen)],
                           dict(os.environ), StdioPolicy(health_interval=0, health_timeout=0.1,
                                                         ttl=0.1, stop_grace=0.5))
    try:
        session.start(scheduler)
        cmd = wire.Command("r", "t", wire.CMD_JSONRPC, "main", 0.0, {},
                           {"jsonrpc": "2.0", "id": "q", "method": "tools/list"})
        list(session.handle(cmd, wire.Deadline.after(PATIENCE)))
        assert session.handshake.ready(1) and session.inbound.replied_gen == 0
        recorder = Recorder()
        pinger = HealthPinger(session)
        pinger.scheduler = recorder
        pinger.tick()
        assert len(recorder.jobs) == 1
        deadline = wire.Deadline.after(PATIENCE / 2)
        while "ping" not in seen.read_text() and not deadline.expired():
            threading.Event().wait(0.01)
        assert [json.loads(line)["method"] for line in seen.read_text().splitlines()][-1] \
            == "ping"
    finally:
        session.stop()
        scheduler.stop()

