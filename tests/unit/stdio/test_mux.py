"""PipeMux: ids and progress tokens remapped, one mailbox per call, typed events."""

import json

import pytest

from tunnel_client.mcp.stdio.mux import (Caller, Expired, Final, Gone, GoneReason, Notify,
                                         PipeMux)

ANY_JSON = [0, -1, "", "x", 1.5, True, False, [1, "a"], {"k": [None]}, [], {}]


def request(rpc_id=1, token=None, **meta):
    params = {"name": "t", "_meta": dict(meta)}
    if token is not None:
        params["_meta"]["progressToken"] = token
    return {"jsonrpc": "2.0", "id": rpc_id, "method": "tools/call", "params": params}


def opened(mux, msg, generation=1, caller=Caller()):
    call, line = mux.open(msg, generation, caller)
    assert line is not None
    return call, json.loads(line)


def test_callers_reusing_an_id_get_distinct_pipe_ids_and_their_own_answers():
    mux = PipeMux()
    a, sent_a = opened(mux, request(1))
    b, sent_b = opened(mux, request(1))
    assert sent_a["id"] != sent_b["id"]
    assert mux.deliver_response({"jsonrpc": "2.0", "id": sent_b["id"], "result": "b"})
    assert mux.deliver_response({"jsonrpc": "2.0", "id": sent_a["id"], "result": "a"})
    assert a.next(0) == Final({"jsonrpc": "2.0", "id": sent_a["id"], "result": "a"})
    assert b.next(0).message["result"] == "b"


def test_the_callers_message_is_never_changed():
    mux = PipeMux()
    msg = request(7, token=["t"], other={"x": 1})
    before = json.dumps(msg, sort_keys=True)
    opened(mux, msg)
    assert json.dumps(msg, sort_keys=True) == before


@pytest.mark.parametrize("token", ANY_JSON, ids=repr)
def test_a_progress_token_of_any_json_type_comes_back_as_it_was_sent(token):
    mux = PipeMux()
    call, sent = opened(mux, request(1, token=token))
    ours = sent["params"]["_meta"]["progressToken"]
    assert isinstance(ours, str) and ours != token
    assert mux.deliver_progress({"jsonrpc": "2.0", "method": "notifications/progress",
                                 "params": {"progressToken": ours, "progress": 1}})
    event = call.next(0)
    assert isinstance(event, Notify)
    assert event.message["params"] == {"progressToken": token, "progress": 1}


@pytest.mark.parametrize("token", ANY_JSON + [None], ids=repr)
def test_progress_with_a_token_that_is_not_ours_is_dropped_whatever_its_type(token):
    mux = PipeMux()
    call, _ = opened(mux, request(1, token="caller"))
    assert not mux.deliver_progress({"jsonrpc": "2.0", "method": "notifications/progress",
                                     "params": {"progressToken": token}})
    assert isinstance(call.next(0), Expired)


@pytest.mark.parametrize("rpc_id", ANY_JSON + [None], ids=repr)
def test_a_reply_whose_id_is_not_a_pipe_id_in_flight_is_dropped(rpc_id):
    mux = PipeMux()
    call, sent = opened(mux, request(rpc_id if isinstance(rpc_id, (int, str)) else 1))
    if rpc_id == sent["id"] and type(rpc_id) is int:
        pytest.skip("that one is ours")
    assert not mux.deliver_response({"jsonrpc": "2.0", "id": rpc_id, "result": {}})
    assert isinstance(call.next(0), Expired)


def test_a_late_reply_to_a_retired_call_is_dropped():
    mux = PipeMux()
    call, sent = opened(mux, request(5))
    mux.close(call)
    fresh, _ = opened(mux, request(5))
    assert not mux.deliver_response({"jsonrpc": "2.0", "id": sent["id"], "result": "late"})
    assert isinstance(fresh.next(0), Expired)


def test_calls_of_an_exited_child_are_gone_and_new_ones_for_it_are_refused():
    mux = PipeMux()
    old, _ = opened(mux, request(1), generation=1)
    new, _ = opened(mux, request(2), generation=2)
    assert mux.fail_generation(1, GoneReason.CHILD_EXITED) == 1
    assert old.next(0) == Gone(GoneReason.CHILD_EXITED)
    assert isinstance(new.next(0), Expired)
    refused, line = mux.open(request(3), 1, Caller())
    assert refused == Gone(GoneReason.CHILD_EXITED) and line is None


def test_a_notification_belongs_to_a_call_only_when_it_is_the_only_one_in_flight():
    mux = PipeMux()
    first, _ = opened(mux, request(1))
    mux.open({"jsonrpc": "2.0", "id": 0, "method": "ping"}, 1)  # our own: not a caller's
    assert mux.sole_caller_call(1) is first
    opened(mux, request(2))
    assert mux.sole_caller_call(1) is None
    assert mux.sole_caller_call(2) is None


def test_a_cancellation_finds_the_call_by_the_callers_id_and_json_type():
    mux = PipeMux()
    call, _ = opened(mux, request(1), caller=Caller(1, "s1"))
    opened(mux, request("1"), caller=Caller("1", "s1"))
    assert mux.find_by_caller_id(1, "s1") == [call]
    assert mux.find_by_caller_id(True, "s1") == []
    assert mux.find_by_caller_id([1], None) == []


def test_listen_stream_frames_reach_their_own_listen_call_under_the_callers_id():
    mux = PipeMux()
    key = "io.modelcontextprotocol/subscriptionId"
    first, sent_first = opened(mux, request("listen-a"), caller=Caller("listen-a"))
    second, sent_second = opened(mux, request(9), caller=Caller(9))

    def frame(sub_id, method="notifications/subscriptions/acknowledged"):
        return {"jsonrpc": "2.0", "method": method, "params": {"_meta": {key: sub_id}}}

    assert mux.deliver_subscription(frame(sent_second["id"]))
    assert mux.deliver_subscription(frame(sent_first["id"], "notifications/tools/list_changed"))
    assert second.next(0).message["params"]["_meta"][key] == 9
    got = first.next(0).message
    assert got["method"] == "notifications/tools/list_changed"
    assert got["params"]["_meta"][key] == "listen-a"
    for stray in (frame(10_000), frame("x"), frame([1]),
                  {"jsonrpc": "2.0", "method": "notifications/message"}):
        assert not mux.deliver_subscription(stray)
    assert isinstance(first.next(0), Expired) and isinstance(second.next(0), Expired)


def test_only_a_callers_call_on_that_child_makes_it_busy():
    mux = PipeMux()
    internal, _ = opened(mux, request(), 1, caller=None)
    other_child, _ = opened(mux, request(), 2)
    assert not mux.busy(1) and mux.busy(2)
    opened(mux, request(), 1)
    assert mux.busy(1)


def test_an_exited_childs_calls_take_no_late_reply_or_progress():
    mux = PipeMux()
    call, line = opened(mux, request(token="t"), 1)
    plain, plain_line = opened(mux, request(2), 1)
    assert mux.fail_generation(1, GoneReason.CHILD_EXITED) == 2
    assert not mux.deliver_response({"jsonrpc": "2.0", "id": line["id"], "result": {}})
    assert not mux.deliver_response({"jsonrpc": "2.0", "id": plain_line["id"], "result": {}})
    token = line["params"]["_meta"]["progressToken"]
    assert not mux.deliver_progress({"jsonrpc": "2.0", "method": "notifications/progress",
                                     "params": {"progressToken": token, "progress": 1}})
    assert call.next(0) == Gone(GoneReason.CHILD_EXITED) and isinstance(call.next(0), Expired)


def test_a_cancellation_tells_same_id_callers_apart_by_session_only_when_needed():
    mux = PipeMux()
    a, _ = opened(mux, request(7), caller=Caller(7, "session-a"))
    assert mux.find_by_caller_id(7, "session-b") == [a]  # one call: the id is enough
    b, _ = opened(mux, request(7), caller=Caller(7, "session-b"))
    assert mux.find_by_caller_id(7, "session-a") == [a]
    assert mux.find_by_caller_id(7, "session-b") == [b]
    c, _ = opened(mux, request(7), caller=Caller(7, "session-c"))
    assert mux.find_by_caller_id(7, "session-c") == [c]


def test_a_listen_frame_keeps_its_other_params_and_meta():
    mux = PipeMux()
    listen, line = opened(mux, request("sub-1"), caller=Caller("sub-1"))
    assert mux.deliver_subscription({"jsonrpc": "2.0", "method": "notifications/x", "params": {
        "uri": "u", "_meta": {"io.modelcontextprotocol/subscriptionId": line["id"], "k": 1}}})
    params = listen.next(0).message["params"]
    assert params == {"uri": "u", "_meta": {"io.modelcontextprotocol/subscriptionId": "sub-1",
                                            "k": 1}}


def test_an_answered_calls_token_takes_no_more_progress():
    mux = PipeMux()
    call, line = opened(mux, request(token="t"))
    assert mux.deliver_response({"jsonrpc": "2.0", "id": line["id"], "result": {}})
    token = line["params"]["_meta"]["progressToken"]
    assert not mux.deliver_progress({"jsonrpc": "2.0", "method": "notifications/progress",
                                     "params": {"progressToken": token, "progress": 1}})
