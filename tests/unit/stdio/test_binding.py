"""StdioBinding over real stub children: each era gets its own child, a cancel finds the
child with the call, a DELETE finds the child with the session, health and describe
cover every child."""

import json
import logging
import os
import sys
import threading

import pytest

from tunnel_client import wire
from tunnel_client.housekeeping import Housekeeping
from tunnel_client.mcp.stdio.eras import StdioBinding
from tunnel_client.mcp.stdio.policy import StdioPolicy
from tunnel_client.observe.instruments import Instruments
from tests.support.patience import PATIENCE

META = {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}


class Channel:
    def __init__(self, tmp_path, *flags):
        self.log_path = str(tmp_path / "stub.jsonl")
        self.scheduler = Housekeeping("test")
        self.scheduler.start()
        self.metrics = Instruments()
        self.fatal = []
        self.binding = StdioBinding(
            "main", [sys.executable, "-m", "tunnel_client.devtools.stub",
                     "--log", self.log_path] + list(flags),
            dict(os.environ, STUB_MARK="from-the-binding"),
            StdioPolicy(health_interval=0, restart_backoff=0.01, stop_grace=0.5),
            self.metrics, self.fatal.append)
        self.binding.start(self.scheduler)

    def run(self, msg, session_id=None, timeout=PATIENCE, ctype=wire.CMD_JSONRPC):
        headers = {"Mcp-Session-Id": [session_id]} if session_id else {}
        cmd = wire.Command("r", "tok", ctype, "main", 0.0, headers, msg)
        return list(self.binding.handle(cmd, wire.Deadline.after(timeout)))

    def received(self):
        with open(self.log_path) as handle:
            return [json.loads(line) for line in handle]

    def close(self):
        self.binding.stop()
        self.scheduler.stop()


@pytest.fixture
def channel(tmp_path):
    made = []

    def make(*flags):
        made.append(Channel(tmp_path, *flags))
        return made[-1]

    yield make
    for each in made:
        each.close()


def only(replies):
    assert len(replies) == 1, replies
    return replies[0]


def legacy_call(rpc_id, name="echo", **arguments):
    return {"jsonrpc": "2.0", "id": rpc_id, "method": "tools/call",
            "params": {"name": name, "arguments": arguments}}


def modern_call(rpc_id, name="echo", **arguments):
    return {"jsonrpc": "2.0", "id": rpc_id, "method": "tools/call",
            "params": dict(META, name=name, arguments=arguments)}


def test_before_any_request_one_unclaimed_child_runs(channel):
    c = channel()
    assert len(c.binding.sessions()) == 1
    info = c.binding.describe()
    assert info["name"] == "main" and info["transport_kind"] == "stdio"
    assert info["era"] is None and len(info["children"]) == 1


def test_each_era_gets_its_own_child(channel):
    c = channel()
    assert only(c.run(legacy_call("a", input="old"))).json()["result"]["content"][0]["text"] \
        == "old"
    assert only(c.run(modern_call("b", input="new"))).json()["result"]["content"][0]["text"] \
        == "new"
    sessions = c.binding.sessions()
    assert [s.era for s in sessions] == ["legacy", "2026-07-28"]
    pids = {m["pid"] for m in c.received()}
    assert len(pids) == 2
    by_pid = {}
    for m in c.received():
        by_pid.setdefault(m["pid"], []).append(m["method"])
    assert sorted(by_pid.values()) == sorted([
        ["initialize", "notifications/initialized", "tools/call"], ["tools/call"]])
    info = c.binding.describe()
    assert [child["era"] for child in info["children"]] == ["legacy", "2026-07-28"]
    assert info["era"] == "legacy"
    check = c.binding.health()
    assert check.ok and check.reason.startswith("legacy: stdio server running")
    assert "; 2026-07-28: stdio server running" in check.reason
    assert check.since == max(s.health().since for s in sessions)


def test_one_stopped_child_makes_the_channel_unhealthy(channel):
    c = channel()
    only(c.run(legacy_call("a", input="old")))
    only(c.run(modern_call("b", input="new")))
    c.binding.sessions()[1].stop()
    check = c.binding.health()
    assert not check.ok and check.reason.startswith("channel main: ")


def test_a_single_child_reports_its_own_health(channel):
    c = channel()
    check = c.binding.health()
    assert check == c.binding.primary.health()


def test_a_cancel_reaches_the_era_child_holding_the_call(channel):
    c = channel("--test-tools")
    only(c.run(legacy_call("warm", input="x")))
    done = threading.Event()
    replies = []

    def slow():
        # Long enough that no deadline cancel can stand in for the caller's.
        replies.extend(c.run(modern_call("slow-1", name="drop"), timeout=30))
        done.set()

    worker = threading.Thread(target=slow)
    worker.start()
    try:
        owner = None
        deadline = wire.Deadline.after(PATIENCE / 2)
        while owner is None and not deadline.expired():
            found = [s for s in c.binding.sessions()
                     if s.mux.find_by_caller_id("slow-1", None)]
            owner = found[0] if found else None
            done.wait(0.01)
        assert owner is c.binding.sessions()[1]
        call_id = owner.mux.find_by_caller_id("slow-1", None)[0].rpc_id
        cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled",
                  "params": {"requestId": "slow-1"}}
        cmd = wire.Command("r", "tok", wire.CMD_JSONRPC, "main", 0.0, {}, cancel)
        assert c.binding.eras.owner_of_call(cmd) is owner
        assert only(c.run(cancel)).resp_code == 202
        cancels = []
        deadline = wire.Deadline.after(PATIENCE / 2)
        while not cancels and not deadline.expired():
            cancels = [m for m in c.received() if m["method"] == "notifications/cancelled"]
            done.wait(0.01)
    finally:
        c.binding.stop()  # ends the dropped call now rather than at its deadline
        worker.join(PATIENCE)
    # The cancel goes to the child with the call, never to the other era's.
    assert [(m["pid"], m["requestId"]) for m in cancels] == [(owner.child.pid, call_id)]


def test_a_cancel_naming_no_call_is_acknowledged_and_dropped(channel):
    c = channel()
    only(c.run(legacy_call("warm", input="x")))
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled",
              "params": {"requestId": "ghost"}}
    cmd = wire.Command("r", "tok", wire.CMD_JSONRPC, "main", 0.0, {}, cancel)
    assert c.binding.eras.owner_of_call(cmd) is None
    ack = only(c.run(cancel))
    assert (ack.resp_type, ack.resp_code) == (wire.RESP_NOTIFY_ACK, 202)
    only(c.run(legacy_call("sync", input="x")))
    assert "notifications/cancelled" not in [m["method"] for m in c.received()]


def test_a_delete_goes_to_the_child_that_opened_the_session(channel):
    c = channel()
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}}
    token = only(c.run(init)).headers["Mcp-Session-Id"][0]
    ended = only(c.run(None, token, ctype=wire.CMD_SESSION_TERMINATION))
    assert (ended.resp_type, ended.resp_code) == (wire.RESP_SESSION_TERMINATION, 204)
    unknown = only(c.run(None, "no-such", ctype=wire.CMD_SESSION_TERMINATION))
    assert (unknown.resp_type, unknown.resp_code) == (wire.RESP_SESSION_TERMINATION, 404)


def test_oauth_discovery_goes_to_the_primary_child(channel):
    c = channel()
    reply = only(c.run(None, ctype=wire.CMD_OAUTH_DISCOVERY))
    assert (reply.resp_type, reply.resp_code) == (wire.RESP_OAUTH_DISCOVERY, 400)


def test_a_stray_response_is_acknowledged(channel):
    c = channel()
    ack = only(c.run({"jsonrpc": "2.0", "id": "x", "result": {}}))
    assert (ack.resp_type, ack.resp_code) == (wire.RESP_NOTIFY_ACK, 202)
    assert c.binding.primary.era == ""  # a response claims no child for any era


def test_roots_reach_every_child_and_children_started_later(channel):
    c = channel()
    only(c.run(legacy_call("a", input="x")))
    c.binding.set_roots(["file:///srv"])
    assert c.binding.roots == ("file:///srv",)
    assert [s.roots for s in c.binding.sessions()] == [("file:///srv",)]
    only(c.run(modern_call("b", input="y")))
    assert [s.roots for s in c.binding.sessions()] == [("file:///srv",)] * 2
    only(c.run(legacy_call("c", input="z")))
    assert [m["method"] for m in c.received()].count("notifications/roots/list_changed") == 1
    c.binding.set_roots([])
    c.binding.set_roots([])  # the second is no change: no notice
    only(c.run(legacy_call("d", input="z")))
    assert [m["method"] for m in c.received()].count("notifications/roots/list_changed") == 2


def test_no_roots_at_start_are_no_change_to_announce(channel):
    c = channel()
    only(c.run(legacy_call("a", input="x")))
    c.binding.set_roots([])
    only(c.run(legacy_call("b", input="x")))
    assert "notifications/roots/list_changed" not in [m["method"] for m in c.received()]


def test_a_second_era_child_that_cannot_start_fails_that_request_only(tmp_path, caplog):
    scheduler = Housekeeping("test")
    scheduler.start()
    # The boot child starts through a link to Python that is then removed, so the second
    # era's child meets a missing executable. The stub needs only the standard library.
    python = tmp_path / "python"
    python.symlink_to(sys.executable)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(wire.__file__)))
    binding = StdioBinding("main", [str(python), "-m", "tunnel_client.devtools.stub"], env,
                           StdioPolicy(health_interval=0, restart_backoff=0.01,
                                       stop_grace=0.5))
    try:
        binding.start(scheduler)
        python.unlink()  # the running child was started from it already
        cmd = wire.Command("r", "t", wire.CMD_JSONRPC, "main", 0.0, {},
                           legacy_call("a", input="x"))
        first = list(binding.handle(cmd, wire.Deadline.after(PATIENCE)))
        cmd = wire.Command("r", "t", wire.CMD_JSONRPC, "main", 0.0, {},
                           modern_call("b", input="y"))
        second = list(binding.handle(cmd, wire.Deadline.after(PATIENCE)))
        note = wire.Command("r", "t", wire.CMD_JSONRPC, "main", 0.0, {},
                            {"jsonrpc": "2.0", "method": "notifications/x", "params": META})
        third = list(binding.handle(note, wire.Deadline.after(PATIENCE)))
    finally:
        binding.stop()
        scheduler.stop()
    assert only(first).json()["result"]["content"][0]["text"] == "x"
    assert only(second).failure == wire.TunnelFailure("connect", "dial", False)
    assert only(second).json()["id"] == "b"
    # Once for the request, once for the notification.
    record, _ = [r for r in caplog.records
                 if r.getMessage() == "could not start a stdio server for another MCP era"]
    assert record.channel == "main" and str(python) in record.error
    assert (only(third).resp_type, only(third).resp_code) == (wire.RESP_NOTIFY_ACK, 502)
    assert len(binding.sessions()) == 1


def test_every_era_child_gets_the_bindings_environment_metrics_and_answers(channel):
    c = channel()
    only(c.run(legacy_call("a", input="x")))
    only(c.run(modern_call("b", input="y")))
    for session in c.binding.sessions():
        with open("/proc/%d/environ" % session.child.pid, "rb") as handle:
            assert b"STUB_MARK=from-the-binding" in handle.read().split(b"\0")
        assert session.asks is c.binding.asks and session.metrics is c.metrics
    gauge = c.metrics.stdio_generation
    assert gauge.value(channel="main", era="legacy") == 1
    assert gauge.value(channel="main", era="2026-07-28") == 1


def test_the_dedicated_child_of_a_new_era_is_logged(channel, caplog):
    c = channel()
    only(c.run(legacy_call("a", input="x")))
    with caplog.at_level(logging.INFO, logger="tunnel_client.stdio"):
        only(c.run(modern_call("b", input="y")))
    [record] = [r for r in caplog.records
                if r.getMessage() == "started a dedicated process for the 2026-07-28 era"]
    assert (record.channel, record.era) == ("main", "2026-07-28")


def test_a_cancel_whose_params_are_not_an_object_is_acknowledged(channel):
    c = channel()
    ack = only(c.run({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": [1]}))
    assert (ack.resp_type, ack.resp_code) == (wire.RESP_NOTIFY_ACK, 202)


def test_a_cancel_reaches_the_call_of_its_own_session_when_callers_reuse_an_id(channel):
    c = channel("--test-tools")
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}}
    tokens = [only(c.run(init)).headers["Mcp-Session-Id"][0] for _ in range(2)]
    workers = [threading.Thread(target=c.run, args=(legacy_call(5, name="drop"), token),
                                kwargs={"timeout": 30}) for token in tokens]
    for worker in workers:
        worker.start()
    try:
        pause = threading.Event()
        deadline = wire.Deadline.after(PATIENCE / 2)  # both calls are open once the child has both
        while [m["name"] for m in c.received()].count("drop") < 2 and not deadline.expired():
            pause.wait(0.01)
        drops = {m["id"] for m in c.received() if m["name"] == "drop"}
        mux = c.binding.primary.mux
        theirs = [call.rpc_id for call in mux.find_by_caller_id(5, tokens[1])]
        assert len(drops) == 2 and len(theirs) == 1
        cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled",
                  "params": {"requestId": 5}}
        assert only(c.run(cancel, tokens[1])).resp_code == 202
        cancels = []
        while not cancels and not deadline.expired():
            pause.wait(0.01)
            cancels = [m["requestId"] for m in c.received()
                       if m["method"] == "notifications/cancelled"]
    finally:
        c.binding.stop()
        for worker in workers:
            worker.join(PATIENCE)
    assert cancels == theirs


def test_a_channel_whose_server_keeps_exiting_reports_it_once(tmp_path):
    scheduler = Housekeeping("test")
    scheduler.start()
    fatal = []
    reported = threading.Event()
    binding = StdioBinding("main", ["false"], dict(os.environ),
                           StdioPolicy(health_interval=0, restart_limit=1,
                                       restart_backoff=0.01),
                           on_fatal=lambda exc: fatal.append(exc) or reported.set())
    try:
        binding.start(scheduler)  # the one restart needs the binding's scheduler
        assert reported.wait(PATIENCE)
    finally:
        binding.stop()
        scheduler.stop()
    assert len(fatal) == 1 and "restarted 1 times" in str(fatal[0])
