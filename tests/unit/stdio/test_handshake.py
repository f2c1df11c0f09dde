"""Handshake: whose turn it is, what is cached per child, what callers declared."""

import threading

from tunnel_client import wire
from tunnel_client.mcp import protocol as mcp
from tunnel_client.mcp.stdio.handshake import Handshake, Turn
from tests.support.patience import PATIENCE


def soon():
    return wire.Deadline.after(PATIENCE / 2)


def init(caps=None, version="2025-06-18"):
    return {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": caps or {}, "clientInfo": {"name": "t"}}}


def test_one_caller_handshakes_with_a_child_while_the_others_wait_for_it():
    hs = Handshake()
    assert hs.begin(1, soon()) is Turn.MINE
    waited = []
    other = threading.Thread(target=lambda: waited.append(hs.begin(1, soon())))
    other.start()
    hs.done(1, {"serverInfo": {"name": "s"}})
    hs.end(1)
    other.join(PATIENCE / 2)
    assert waited == [Turn.READY]
    assert hs.cached(1) == (1, {"serverInfo": {"name": "s"}})


def test_a_restarted_child_needs_its_own_handshake_with_the_first_callers_params():
    hs = Handshake()
    hs.remember(init(version="first"))
    hs.remember(init(version="second"))
    hs.done(1, {"ok": 1})
    assert hs.ready(1) and not hs.ready(2)
    assert hs.cached(2) is None
    assert hs.begin(2, soon()) is Turn.MINE
    assert hs.replay_params()["protocolVersion"] == "first"


def test_without_any_connector_initialize_the_default_handshake_is_replayed():
    assert Handshake().replay_params() == mcp.default_initialize_params()


def test_an_unanswered_handshake_lets_requests_through_but_not_a_cached_initialize():
    hs = Handshake()
    hs.unanswered(1)
    assert hs.begin(1, soon()) is Turn.READY
    assert hs.begin(1, soon(), need_result=True) is Turn.MINE


def test_a_rejected_handshake_marks_a_server_that_needs_none():
    hs = Handshake()
    hs.rejected()
    assert hs.begin(3, soon()) is Turn.READY
    assert hs.state(3) == "modern (none)"


def test_a_wait_for_another_callers_handshake_ends_at_the_deadline():
    hs = Handshake()
    hs.begin(1, soon())
    assert hs.begin(1, wire.Deadline.after(0.05)) is Turn.EXPIRED


def test_capabilities_by_session_or_else_only_what_every_caller_declared():
    hs = Handshake()
    hs.declare("s1", init({"sampling": {}, "elicitation": {}}))
    hs.declare("s2", init({"roots": {}, "sampling": {}}))
    hs.declare(None, init({"sampling": {}, "elicitation": {}, "junk": 1}))
    assert hs.capabilities("s1") == {"sampling", "elicitation"}
    assert hs.capabilities("s2") == {"roots", "sampling"}
    assert hs.capabilities(None) == {"sampling"}
    assert hs.capabilities("unknown") == {"sampling"}


def test_capabilities_that_are_not_an_object_declare_nothing():
    hs = Handshake()
    hs.declare(None, {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                      "params": {"capabilities": ["sampling"]}})
    assert hs.capabilities(None) == frozenset()


def test_each_initialize_opens_a_session_that_keeps_its_capabilities_until_ended():
    hs = Handshake()
    a = hs.open_session(init({"elicitation": {}}))
    b = hs.open_session(init({}))
    assert a != b and a.isascii() and a.isalnum() and len(a) >= 32
    assert hs.capabilities(a) == {"elicitation"} and hs.capabilities(b) == frozenset()
    assert hs.has_session(a) and not hs.ended(a)
    assert hs.end_session(a) and not hs.end_session(a) and not hs.end_session("nope")
    assert hs.ended(a) and not hs.has_session(a)
    assert not hs.ended(b) and not hs.ended(None) and not hs.end_session(None)


def test_session_ids_are_16_random_bytes_in_hex():
    session_id = Handshake().open_session(init())
    assert len(session_id) == 32 and int(session_id, 16) >= 0


def test_open_and_ended_sessions_are_bounded_forgetting_the_oldest():
    from tunnel_client.mcp.stdio.handshake import MAX_SESSIONS
    hs = Handshake()
    ids = ["s%d" % n for n in range(MAX_SESSIONS + 1)]
    for session_id in ids:
        hs.declare(session_id, init())
    assert not hs.has_session(ids[0])
    assert hs.has_session(ids[1]) and hs.has_session(ids[-1])
    for session_id in ids[1:]:
        assert hs.end_session(session_id)
    hs.declare("late", init())
    assert hs.end_session("late")  # one more ended than the bound holds
    assert not hs.ended(ids[1])
    assert hs.ended(ids[2]) and hs.ended("late")


def test_initialize_params_that_are_not_an_object_replay_as_empty():
    hs = Handshake()
    hs.remember({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": [1, 2]})
    assert hs.replay_params() == {}


def test_the_state_of_each_childs_handshake():
    hs = Handshake()
    assert hs.state(1) == "pending"
    hs.done(1, {"ok": 1})
    assert (hs.state(1), hs.state(2)) == ("done", "pending")


def test_an_unanswered_handshake_of_a_later_child_has_no_cached_result():
    hs = Handshake()
    hs.done(1, {"ok": 1})
    hs.unanswered(2)
    assert hs.ready(2) and hs.cached(2) is None and hs.cached(1) is None
