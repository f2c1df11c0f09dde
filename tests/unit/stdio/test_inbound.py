"""Inbound: what a child writes on its own goes to its call, to the caller that can answer
it, or gets a local answer; no message can break the reader."""

import types

import pytest

from tunnel_client.mcp.stdio.asks import Asks
from tunnel_client.mcp.stdio.inbound import Inbound
from tunnel_client.mcp.stdio.mux import Caller, Expired, Notify, PipeMux
from tunnel_client.observe.instruments import Instruments


class Rig:
    def __init__(self):
        self.mux = PipeMux()
        self.asks = Asks()
        self.metrics = Instruments()
        self.answered = []
        self.session = types.SimpleNamespace(roots=())
        self.inbound = Inbound("main", self.mux, self.asks, self.metrics, self.session,
                               lambda: 1, lambda gen, msg: self.answered.append(msg))

    def call(self, caps=(), rpc_id=1):
        call, _ = self.mux.open({"jsonrpc": "2.0", "id": rpc_id, "method": "tools/call"}, 1,
                                Caller(rpc_id, None, frozenset(caps)))
        return call

    def ask(self, method, rpc_id="srv-1"):
        self.inbound.on_message(1, {"jsonrpc": "2.0", "id": rpc_id, "method": method,
                                    "params": {}})


@pytest.mark.parametrize("method, capability", [("sampling/createMessage", "sampling"),
                                                ("elicitation/create", "elicitation"),
                                                ("roots/list", "roots")])
def test_a_server_request_goes_to_the_one_caller_that_declared_the_capability(
        method, capability):
    rig = Rig()
    call = rig.call([capability])
    rig.ask(method, rpc_id=17)
    event = call.next(0)
    assert isinstance(event, Notify) and event.message["method"] == method
    relay_id = event.message["id"]
    assert isinstance(relay_id, str) and relay_id.startswith("tc-ask-")
    ask = rig.asks.take(relay_id)
    assert (ask.session, ask.generation, ask.child_id) == (rig.session, 1, 17)
    assert rig.asks.take(relay_id) is None and rig.answered == []


def test_relay_ids_are_unique_across_callers_and_tables():
    first, second = Asks(), Asks()
    ids = {t.add(None) for t in (first, second) for _ in range(3)}
    assert len(ids) == 6


def test_a_caller_that_did_not_declare_it_gets_nothing_and_the_server_a_local_answer():
    rig = Rig()
    call = rig.call(["roots"])
    rig.ask("sampling/createMessage")
    assert isinstance(call.next(0), Expired)
    assert rig.answered[0]["error"]["code"] == -32601


def test_with_two_calls_in_flight_nobody_is_asked():
    rig = Rig()
    calls = [rig.call(["sampling"], 1), rig.call(["sampling"], 2)]
    rig.ask("sampling/createMessage")
    assert all(isinstance(c.next(0), Expired) for c in calls)
    assert rig.answered[0]["id"] == "srv-1" and "error" in rig.answered[0]


def test_the_operators_roots_answer_roots_list_even_when_a_caller_could():
    rig = Rig()
    rig.session.roots = ("file:///srv/data", "file:///")
    call = rig.call(["roots"])
    rig.ask("roots/list")
    assert isinstance(call.next(0), Expired)
    assert rig.answered == [{"jsonrpc": "2.0", "id": "srv-1", "result": {"roots": [
        {"uri": "file:///srv/data", "name": "data"}, {"uri": "file:///", "name": "/"}]}}]


def test_ping_is_always_answered_locally():
    rig = Rig()
    rig.call(["sampling", "ping"])
    rig.ask("ping")
    assert rig.answered == [{"jsonrpc": "2.0", "id": "srv-1", "result": {}}]


def test_a_notification_outside_any_single_call_is_counted_by_method():
    rig = Rig()
    for _ in range(2):
        rig.inbound.on_message(1, {"jsonrpc": "2.0",
                                   "method": "notifications/tools/list_changed"})
    assert rig.metrics.stdio_unrouted_notifications.value(
        channel="main", method="notifications/tools/list_changed") == 2


@pytest.mark.parametrize("msg", [
    {"jsonrpc": "2.0", "method": "notifications/progress", "params": [1]},
    {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": {}}},
    {"jsonrpc": "2.0", "id": [1], "result": {}},
    {"jsonrpc": "2.0", "id": {"a": 1}, "method": "sampling/createMessage"},
    [1, 2], "text", None, 3.5,
], ids=repr)
def test_no_message_breaks_the_reader(msg):
    rig = Rig()
    call = rig.call(["sampling"])
    rig.inbound.on_message(1, msg)
    rig.inbound.on_message(1, {"jsonrpc": "2.0", "id": 1, "result": "still routed"})
    assert call.next(0).message["result"] == "still routed"


def test_a_dead_childs_last_words_are_ignored():
    rig = Rig()
    call = rig.call()
    rig.inbound.on_message(0, {"jsonrpc": "2.0", "id": 1, "result": "stale"})
    assert isinstance(call.next(0), Expired)
