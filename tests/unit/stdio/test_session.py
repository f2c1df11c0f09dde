"""StdioSession walking commands through a real stub child: replies with the caller's
ids, the handshake the child really received (the stub's --log), session termination,
notifications, cancels and typed failures."""

import json
import logging
import os
import sys
import threading

import pytest

from tunnel_client import wire
from tunnel_client.housekeeping import Housekeeping
from tunnel_client.mcp.stdio import supervisor as sup
from tunnel_client.mcp.stdio.handshake_steps import MODERN_ERA, modern_probe, opens_modern
from tunnel_client.mcp.stdio.policy import StdioPolicy
from tunnel_client.mcp.stdio.session import StdioSession

from tests.unit.stdio.sessions import call, deaf, initialize, only, paused
from tests.support.patience import PATIENCE

META = "io.modelcontextprotocol/protocolVersion"


def test_a_request_before_any_initialize_gets_a_replayed_handshake_first(child):
    c = child()
    reply = only(c.run(call("abc", input="hi")))
    assert reply.resp_type == wire.RESP_JSONRPC and reply.resp_code == 200
    body = reply.json()
    assert body["id"] == "abc"
    assert body["result"]["content"][0]["text"] == "hi"
    methods = [(m["method"], m["id"] is None) for m in c.received()]
    assert methods == [("initialize", False), ("notifications/initialized", True),
                       ("tools/call", False)]
    assert c.received()[2]["id"] != "abc"  # the child sees the mux's own id, never the caller's
    assert c.session.handshake.ready(1)


def test_a_connectors_initialize_is_forwarded_once_then_answered_from_the_cache(child):
    c = child()
    first = only(c.run(initialize("one")))
    assert first.resp_code == 200 and first.json()["id"] == "one"
    token = first.headers["Mcp-Session-Id"][0]
    assert token
    second = only(c.run(initialize("two")))
    assert second.json()["id"] == "two"
    assert second.json()["result"] == first.json()["result"]
    assert second.headers["Mcp-Session-Id"][0] not in ("", None)
    only(c.run(call(9, input="sync")))  # the stub logs in order: this read follows the rest
    assert [m["method"] for m in c.received()] == ["initialize", "notifications/initialized",
                                                   "tools/call"]
    assert c.session.metrics.stdio_local_answers  # the cache answered one


def test_the_connectors_initialized_notification_is_answered_locally(child):
    c = child()
    only(c.run(initialize("one")))
    ack = only(c.run({"jsonrpc": "2.0", "method": "notifications/initialized"}))
    assert ack.resp_type == wire.RESP_NOTIFY_ACK and ack.resp_code == 202 and ack.body is None
    only(c.run(call(9, input="sync")))
    assert [m["method"] for m in c.received()].count("notifications/initialized") == 1
    assert c.session.metrics.stdio_local_answers.value(
        channel="main", method="notifications/initialized") == 1


def test_session_termination_ends_a_known_session_once(child):
    c = child()
    token = only(c.run(initialize("one"))).headers["Mcp-Session-Id"][0]
    ended = only(c.run(None, token, ctype=wire.CMD_SESSION_TERMINATION))
    assert (ended.resp_type, ended.resp_code) == (wire.RESP_SESSION_TERMINATION, 204)
    again = only(c.run(None, token, ctype=wire.CMD_SESSION_TERMINATION))
    assert again.resp_code == 404
    gone = only(c.run(call(7, input="x"), token))
    assert gone.resp_code == 404
    assert gone.json() == {"jsonrpc": "2.0", "id": 7,
                           "error": {"code": -32600, "message": "Session not found"}}
    note = only(c.run({"jsonrpc": "2.0", "method": "notifications/cancelled",
                       "params": {"requestId": 7}}, token))
    assert (note.resp_type, note.resp_code) == (wire.RESP_NOTIFY_ACK, 404)


def test_oauth_discovery_is_refused_with_a_clear_error(child):
    c = child()
    reply = only(c.run(None, ctype=wire.CMD_OAUTH_DISCOVERY))
    assert (reply.resp_type, reply.resp_code) == (wire.RESP_OAUTH_DISCOVERY, 400)
    assert reply.json()["error"]["code"] == "unsupported_channel"
    assert reply.json()["error"]["type"] == "invalid_request_error"
    assert "HTTP MCP binding" in reply.json()["error"]["message"]


def test_a_notification_reaches_the_child_and_is_acknowledged(child):
    c = child()
    only(c.run(call(1, input="warm")))
    ack = only(c.run({"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}))
    assert (ack.resp_type, ack.resp_code) == (wire.RESP_NOTIFY_ACK, 202)
    # The stub logs in order; a later request proves the notification was read first.
    only(c.run(call(2, input="after")))
    methods = [m["method"] for m in c.received()]
    assert methods[-2:] == ["notifications/roots/list_changed", "tools/call"]


def test_a_cancel_for_an_unknown_request_is_dropped_not_forwarded(child):
    c = child()
    only(c.run(call(1, input="warm")))
    ack = only(c.run({"jsonrpc": "2.0", "method": "notifications/cancelled",
                      "params": {"requestId": "nobody"}}))
    assert (ack.resp_type, ack.resp_code) == (wire.RESP_NOTIFY_ACK, 202)
    only(c.run(call(2, input="after")))
    assert "notifications/cancelled" not in [m["method"] for m in c.received()]


def test_a_cancel_is_translated_to_the_childs_id_of_the_open_call(child):
    c = child("--test-tools")
    only(c.run(call(1, input="warm")))
    replies = []
    done = threading.Event()

    def slow():
        # Long enough that no deadline cancel can stand in for the caller's.
        replies.extend(c.run(call("slow-1", name="drop"), timeout=30))
        done.set()

    worker = threading.Thread(target=slow)
    worker.start()
    try:
        found = []
        deadline = wire.Deadline.after(PATIENCE / 2)
        while not found and not deadline.expired():
            found = c.session.mux.find_by_caller_id("slow-1", None)
            done.wait(0.01)
        assert len(found) == 1
        msg = {"jsonrpc": "2.0", "method": "notifications/cancelled",
               "params": {"requestId": "slow-1", "reason": "user"}}
        cmd = wire.Command("r", "tok", wire.CMD_JSONRPC, "main", 0.0, {}, msg)
        translated = c.session.translate_cancel(cmd, msg)
        assert translated == {"jsonrpc": "2.0", "method": "notifications/cancelled",
                              "params": {"requestId": found[0].rpc_id, "reason": "user"}}
        assert only(c.run(msg)).resp_code == 202
        cancels = c.wait_received("notifications/cancelled")
    finally:
        c.session.stop()  # ends the dropped call now rather than at its deadline
        worker.join(PATIENCE)
    assert [m["requestId"] for m in cancels] == [found[0].rpc_id]


def test_a_response_that_answers_no_server_request_is_acknowledged_and_dropped(child):
    c = child()
    ack = only(c.run({"jsonrpc": "2.0", "id": "nope", "result": {}}))
    assert (ack.resp_type, ack.resp_code) == (wire.RESP_NOTIFY_ACK, 202)


def test_progress_notifications_come_before_the_final_reply(child):
    c = child()
    replies = c.run({"jsonrpc": "2.0", "id": "p", "method": "tools/call", "params": {
        "name": "count", "arguments": {"to": 3},
        "_meta": {"progressToken": "tok-9"}}})
    assert [r.resp_type for r in replies] == [wire.RESP_NOTIFY] * 3 + [wire.RESP_JSONRPC]
    progress = [r.json()["params"] for r in replies[:3]]
    assert [p["progressToken"] for p in progress] == ["tok-9"] * 3
    assert [p["progress"] for p in progress] == [1, 2, 3]
    assert replies[-1].json()["id"] == "p"


def test_a_child_that_exits_mid_call_gives_an_eof_failure(child):
    c = child("--test-tools")
    reply = only(c.run(call("boom", name="crash")))
    assert reply.resp_code == 502
    body = reply.json()
    assert body["id"] == "boom" and body["error"]["code"] == -32603
    assert reply.failure == wire.TunnelFailure("transport_closed", "eof", False)


def test_a_call_the_child_never_answers_times_out_at_the_ttl_and_is_cancelled(child, caplog):
    c = child("--test-tools", ttl=0.1)
    with caplog.at_level(logging.INFO, logger="tunnel_client.stdio"):
        reply = only(c.run(call("d", name="drop"), timeout=10))
    ttl = [r for r in caplog.records if r.name == "tunnel_client.stdio"
           and r.getMessage() == "MCP connection TTL reached; answering with a timeout"]
    assert [(r.levelno, r.channel, r.request_id) for r in ttl] == \
        [(logging.WARNING, "main", "r-d")]
    assert reply.failure == wire.TunnelFailure("timeout", "timeout", False)
    assert reply.json()["id"] == "d"
    only(c.run(call(2, input="after")))
    dropped = [m for m in c.received() if m["method"] == "tools/call"][0]
    cancels = [m["message"] for m in c.received() if m["method"] == "notifications/cancelled"]
    assert cancels == [{"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {
        "requestId": dropped["id"], "reason": "deadline reached"}}]


def test_a_call_past_its_own_deadline_yields_nothing(child, caplog):
    c = child("--test-tools")
    only(c.run(call(1, input="warm")))
    with caplog.at_level(logging.INFO, logger="tunnel_client.stdio"):
        assert c.run(call("d", name="drop"), timeout=0.3) == []
    [record] = [r for r in caplog.records if r.name == "tunnel_client.stdio"]
    assert record.getMessage() == ("command response deadline reached; dropping without "
                                   "posting a response")
    assert (record.channel, record.request_id) == ("main", "r-d")


def test_modern_era_child_is_opened_by_the_callers_enveloped_request(child):
    c = child(era=MODERN_ERA)
    msg = {"jsonrpc": "2.0", "id": "m1", "method": "tools/list",
           "params": {"_meta": {META: MODERN_ERA}}}
    assert opens_modern(msg)
    reply = only(c.run(msg))
    assert reply.json()["id"] == "m1" and "tools" in reply.json()["result"]
    received = c.received()
    assert [(m["method"], m["meta"]) for m in received] == [("tools/list", True)]
    assert c.session.handshake.ready(1)


def test_modern_era_child_gets_an_injected_discover_before_an_unenveloped_request(child):
    c = child(era=MODERN_ERA)
    msg = {"jsonrpc": "2.0", "id": "m1", "method": "server/discover"}
    assert not opens_modern(msg)
    reply = only(c.run(msg))
    assert reply.json()["id"] == "m1"
    received = c.received()
    assert [(m["method"], m["meta"]) for m in received] == \
        [("server/discover", True), ("server/discover", False)]
    assert "initialize" not in [m["method"] for m in received]


def test_a_modern_only_child_rejecting_initialize_is_served_without_a_handshake(child):
    c = child("--modern-only")
    msg = {"jsonrpc": "2.0", "id": "m", "method": "tools/list",
           "params": {"_meta": {META: MODERN_ERA}}}
    only(c.run(call(1, input="x")))  # the replayed initialize is rejected
    assert c.session.handshake.modern_only
    reply = only(c.run(msg))
    assert reply.json()["id"] == "m" and "tools" in reply.json()["result"]


def test_modern_probe_carries_the_callers_version_or_the_era():
    probe = modern_probe({"params": {"_meta": {META: "2099-01-01"}}})
    assert probe["method"] == "server/discover" and probe["id"] == 0
    assert probe["params"]["_meta"][META] == "2099-01-01"
    assert modern_probe()["params"]["_meta"][META] == MODERN_ERA
    assert modern_probe({"params": {"_meta": {META: 5}}})["params"]["_meta"][META] == MODERN_ERA
    info = probe["params"]["_meta"]["io.modelcontextprotocol/clientInfo"]
    assert info["name"] and info["version"]
    assert probe["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] == {}


def test_opens_modern_needs_the_envelope_and_not_initialize():
    assert not opens_modern({"method": "initialize", "params": {"_meta": {META: MODERN_ERA}}})
    assert not opens_modern({"method": "tools/list"})
    assert opens_modern({"method": "tools/list", "params": {"_meta": {META: MODERN_ERA}}})


def test_health_and_describe_tell_the_running_child(child):
    c = child()
    only(c.run(call(1, input="x")))
    check = c.session.health()
    assert check.ok and "generation 1" in check.reason and str(c.session.child.pid) in check.reason
    info = c.session.describe()
    assert info["name"] == "main" and info["transport_kind"] == "stdio"
    assert info["command"].endswith("--log " + c.log_path)
    assert info["era"] is None and info["generation"] == 1 and "since" not in info
    c.session.stop()
    down = c.session.health()
    assert down.ok is False and down.reason == "channel main: stopped"
    assert down.since == c.session.supervisor.since


def test_new_roots_are_announced_to_an_initialized_child_once(child, caplog):
    c = child()
    only(c.run(call(1, input="x")))
    with caplog.at_level(logging.INFO, logger="tunnel_client.stdio"):
        c.session.set_roots(["file:///a", "file:///b"])
        c.session.set_roots(["file:///a", "file:///b"])  # unchanged: no second notice
    only(c.run(call(2, input="y")))
    notices = [m["message"] for m in c.received()
               if m["method"] == "notifications/roots/list_changed"]
    assert notices == [{"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}]
    assert c.session.roots == ("file:///a", "file:///b")
    [record] = [r for r in caplog.records if r.name == "tunnel_client.stdio"]
    assert record.getMessage() == "told the stdio server its roots changed"
    assert (record.channel, record.era, record.roots) == ("main", "", 2)


def test_with_roots_the_replayed_initialize_declares_the_roots_capability(child):
    c = child()
    c.session.set_roots(["file:///a"])
    only(c.run(call(1, input="x")))
    init = [m for m in c.received() if m["method"] == "initialize"][0]
    assert "roots" in init["capabilities"]
    assert "notifications/roots/list_changed" not in [m["method"] for m in c.received()]


def test_write_refuses_a_stale_generation(child):
    c = child()
    only(c.run(call(1, input="x")))
    assert c.session.write(1, {"jsonrpc": "2.0", "method": "notifications/x"})
    assert not c.session.write(2, {"jsonrpc": "2.0", "method": "notifications/y"})
    only(c.run(call(2, input="y")))
    methods = [m["method"] for m in c.received()]
    assert "notifications/x" in methods and "notifications/y" not in methods


@pytest.mark.parametrize("msg", [call("x", input="1"), initialize("x")],
                         ids=["request", "initialize"])
def test_a_child_that_keeps_exiting_gives_an_unavailable_failure(msg):
    gave_up = threading.Event()
    scheduler = Housekeeping("test")
    scheduler.start()
    session = StdioSession("main", ["false"], dict(os.environ),
                           StdioPolicy(health_interval=0, restart_limit=0,
                                       restart_backoff=0.01),
                           on_fatal=lambda exc: gave_up.set())
    try:
        session.start(scheduler)
        assert gave_up.wait(PATIENCE)  # once given up, every request meets the same answer
        cmd = wire.Command("r", "t", wire.CMD_JSONRPC, "main", 0.0, {}, msg)
        replies = list(session.handle(cmd, wire.Deadline.after(PATIENCE)))
        state = session.state
    finally:
        session.stop()
        scheduler.stop()
    reply = only(replies)
    assert reply.json()["id"] == "x" and reply.json()["error"]["code"] == -32603
    assert reply.failure == wire.TunnelFailure("connect", "dial", False)
    assert state == sup.ChildState.GAVE_UP.value


def relayed_ask(c, method, caps):
    """A caller with ``caps`` calls the stub's ask_client tool after another caller that
    declared nothing; returns the caller's session id and the reply stream (paused)."""
    only(c.run(initialize("other")))
    init = initialize("i")
    init["params"]["capabilities"] = caps
    token = only(c.run(init)).headers["Mcp-Session-Id"][0]
    cmd = wire.Command("r-ask", "tok", wire.CMD_JSONRPC, "main", 0.0,
                       {"Mcp-Session-Id": [token]}, call("ask", name="ask_client", method=method))
    # A short deadline: a child left without its answer waits much longer than that.
    replies = c.session.handle(cmd, wire.Deadline.after(3))
    return token, replies


def test_a_server_request_is_relayed_and_the_callers_answer_reaches_the_child(child, caplog):
    c = child("--test-tools")
    token, replies = relayed_ask(c, "sampling/createMessage", {"sampling": {}})
    try:
        relayed = next(replies)
        assert relayed.resp_type == wire.RESP_NOTIFY
        request = relayed.json()
        assert request["method"] == "sampling/createMessage"
        with caplog.at_level(logging.INFO, logger="tunnel_client.stdio"):
            ack = only(c.run({"jsonrpc": "2.0", "id": request["id"],
                              "result": {"content": {"type": "text", "text": "yes"}}}, token))
        assert (ack.resp_type, ack.resp_code) == (wire.RESP_NOTIFY_ACK, 202)
        assert [r.getMessage() for r in caplog.records
                if r.name == "tunnel_client.stdio"] == []  # not dropped
        final = only(list(replies))
    finally:
        c.session.stop()
    answer = final.json()["result"]["structuredContent"]["answer"]
    assert answer["result"] == {"content": {"type": "text", "text": "yes"}}
    assert answer["id"].startswith("srv-") and answer["jsonrpc"] == "2.0"
    # Answered once: a second answer under the same relay id finds nothing open.
    assert c.session.asks.take(request["id"]) is None


def test_a_callers_answer_to_nothing_open_is_dropped_with_a_log_line(child, caplog):
    c = child()
    with caplog.at_level(logging.INFO, logger="tunnel_client.stdio"):
        ack = only(c.run({"jsonrpc": "2.0", "id": "tc-ask-0-1", "result": {}}))
    assert (ack.resp_type, ack.resp_code) == (wire.RESP_NOTIFY_ACK, 202)
    [record] = [r for r in caplog.records if r.name == "tunnel_client.stdio"]
    assert record.getMessage() == ("dropping a response from the caller that answers no "
                                   "open server request")
    assert (record.channel, record.era) == ("main", "")


def test_a_server_request_no_caller_can_answer_is_answered_once_at_once(child):
    c = child("--test-tools")
    reply = only(c.run(call("ask", name="ask_client", method="ping"), timeout=3))
    answer = reply.json()["result"]["structuredContent"]["answer"]
    assert answer["result"] == {} and answer["id"].startswith("srv-")
    [job] = [j for j in c.scheduler.jobs if j[0] == "stdio-local-answer"]
    deadline = wire.Deadline.after(PATIENCE / 2)
    while job[2] == "not run" and not deadline.expired():  # the job returns after writing
        threading.Event().wait(0.01)
    assert job[1] == 0 and job[2] is None  # written now, and never again


def test_a_notification_to_a_stopped_child_is_refused_with_502(child):
    c = child()
    only(c.run(call(1, input="x")))
    c.session.stop()
    ack = only(c.run({"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}))
    assert (ack.resp_type, ack.resp_code) == (wire.RESP_NOTIFY_ACK, 502)


def test_a_cancel_whose_params_are_not_an_object_is_dropped(child):
    c = child()
    only(c.run(call(1, input="x")))
    ack = only(c.run({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": [1]}))
    assert (ack.resp_type, ack.resp_code) == (wire.RESP_NOTIFY_ACK, 202)


def test_a_cancel_names_the_call_of_its_own_session_when_callers_reuse_an_id(child):
    c = child("--test-tools")
    tokens = [only(c.run(initialize(n))).headers["Mcp-Session-Id"][0] for n in ("a", "b")]
    workers = [threading.Thread(target=c.run, args=(call(5, name="drop"), token),
                                kwargs={"timeout": 10}) for token in tokens]
    for worker in workers:
        worker.start()
    try:
        deadline = wire.Deadline.after(PATIENCE / 2)  # both calls are open once the child has both
        while [m["name"] for m in c.received()].count("drop") < 2 and not deadline.expired():
            threading.Event().wait(0.01)
        calls = {call_.caller.session_id: call_.rpc_id
                 for call_ in c.session.mux.find_by_caller_id(5, tokens[0]) +
                 c.session.mux.find_by_caller_id(5, tokens[1])}
        assert len(calls) == 2
        msg = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 5}}
        cmd = wire.Command("r", "tok", wire.CMD_JSONRPC, "main", 0.0,
                           {"Mcp-Session-Id": [tokens[1]]}, msg)
        assert c.session.translate_cancel(cmd, msg)["params"]["requestId"] == calls[tokens[1]]
    finally:
        c.session.stop()
        for worker in workers:
            worker.join(PATIENCE)


BIG = "x" * (4 << 20)  # more than a pipe holds: the write blocks on a child not reading


def test_a_child_that_stops_reading_its_input_is_restarted_and_the_call_times_out(
        child, caplog, monkeypatch):
    from tunnel_client.mcp.stdio import session as session_module
    monkeypatch.setattr(session_module, "WRITE_TIMEOUT", 0.1)
    c = child(era=MODERN_ERA)
    pid = c.session.supervisor.wait_running(wire.Deadline.after(PATIENCE)).child.pid
    with paused(pid):
        msg = call("big", input=BIG)
        msg["params"]["_meta"] = {META: MODERN_ERA}
        with caplog.at_level(logging.WARNING, logger="tunnel_client.stdio"):
            reply = only(c.run(msg, timeout=30))
        assert c.session.supervisor.wait_replaced(1, wire.Deadline.after(PATIENCE))
    assert reply.failure == wire.TunnelFailure("timeout", "timeout", False)
    assert reply.json()["id"] == "big"
    record = [r for r in caplog.records if r.name == "tunnel_client.stdio"][0]
    assert record.getMessage() == "stdio server stopped reading its input; restarting it"
    assert record.channel == "main"
    assert c.session.metrics.stdio_restarts.value(channel="main", reason="stuck") == 1


def test_a_write_blocked_past_the_callers_deadline_yields_nothing_and_kills_nothing(child):
    c = child(era=MODERN_ERA)
    pid = c.session.supervisor.wait_running(wire.Deadline.after(PATIENCE)).child.pid
    with paused(pid):
        msg = call("big", input=BIG)
        msg["params"]["_meta"] = {META: MODERN_ERA}
        assert c.run(msg, timeout=0.3) == []
        assert c.session.supervisor.generation == 1
        assert c.session.metrics.stdio_restarts.total() == 0


def test_a_notification_a_stuck_child_does_not_read_is_refused_with_502(child, monkeypatch):
    from tunnel_client.mcp.stdio import session as session_module
    monkeypatch.setattr(session_module, "WRITE_TIMEOUT", 0.1)
    c = child()
    only(c.run(call(1, input="x")))
    with paused(c.session.child.pid):
        ack = only(c.run({"jsonrpc": "2.0", "method": "notifications/message",
                          "params": {"data": BIG}}))
    assert (ack.resp_type, ack.resp_code) == (wire.RESP_NOTIFY_ACK, 502)


def test_a_modern_callers_request_declares_its_own_capabilities(child):
    c = child("--test-tools", era=MODERN_ERA)
    msg = call("ask", name="ask_client", method="sampling/createMessage")
    msg["params"]["_meta"] = {META: MODERN_ERA,
                              "io.modelcontextprotocol/clientCapabilities": {"sampling": {}}}
    cmd = wire.Command("r", "tok", wire.CMD_JSONRPC, "main", 0.0, {}, msg)
    replies = c.session.handle(cmd, wire.Deadline.after(3))
    try:
        relayed = next(replies)
    finally:
        c.session.stop()
    assert relayed.resp_type == wire.RESP_NOTIFY
    assert relayed.json()["method"] == "sampling/createMessage"


def test_a_session_outside_an_era_router_is_opened_by_a_modern_request_itself(child):
    c = child()  # no era: the request decides
    reply = only(c.run({"jsonrpc": "2.0", "id": "m", "method": "tools/list",
                        "params": {"_meta": {META: MODERN_ERA}}}))
    assert "tools" in reply.json()["result"]
    assert [(m["method"], m["meta"]) for m in c.received()] == [("tools/list", True)]


def test_a_replayed_handshake_caches_the_childs_own_result_for_connectors(child):
    c = child()
    only(c.run(call(1, input="x")))
    reply = only(c.run(initialize("late")))
    assert reply.json()["result"]["serverInfo"]["name"] == "mcp-stub"
    assert [m["method"] for m in c.received()].count("initialize") == 1



def test_a_child_that_closed_its_input_fails_requests_and_refuses_notifications(session):
    s = deaf(session, era=MODERN_ERA)
    msg = {"jsonrpc": "2.0", "id": "m", "method": "tools/list",
           "params": {"_meta": {META: MODERN_ERA}}}
    for _ in range(2):  # the second finds the child free to open again, not still busy
        reply = only(s.run(msg, timeout=0.15))
        assert reply.json()["id"] == "m"
        assert reply.failure == wire.TunnelFailure("transport_closed", "closed_pipe", False)
    ack = only(s.run({"jsonrpc": "2.0", "method": "notifications/message", "params": {}}))
    assert (ack.resp_type, ack.resp_code) == (wire.RESP_NOTIFY_ACK, 502)


# A Python server answering with floats json.dumps writes but JSON does not have, and a
# string with a lone surrogate (valid JSON as an escape, with no UTF-8 form).
NOT_JSON_NUMBERS = (
    "import json, sys\n"
    "for line in sys.stdin:\n"
    "    msg = json.loads(line)\n"
    "    if 'id' in msg:\n"
    "        result = {'ratio': float('nan'), 'limits': [float('inf'), -float('inf')], 'n': 2,\n"
    "                  'half': '\\ud800'}\n"
    "        print(json.dumps({'jsonrpc': '2.0', 'id': msg['id'], 'result': result}),\n"
    "              flush=True)\n")


def test_nan_infinity_and_lone_surrogates_from_a_python_server_reach_the_caller_as_json(
        session):
    def refuse(name):
        raise ValueError("%s is not JSON" % name)

    s = session([sys.executable, "-c", NOT_JSON_NUMBERS])
    reply = only(s.run(call(7)))
    posted = json.loads(reply.body, parse_constant=refuse)  # what any strict parser reads
    assert posted == {"jsonrpc": "2.0", "id": 7,
                      "result": {"ratio": None, "limits": [None, None], "n": 2,
                                 "half": "\ud800"}}  # a lone surrogate, escaped as it came
