"""Inbound: what a child writes on its own goes to its call, to the caller that can answer
it, or gets a local answer; no message can break the reader."""

import logging
import types

import pytest

from tunnel_client.mcp.stdio.asks import Asks
from tunnel_client.mcp.stdio.inbound import Inbound
from tunnel_client.mcp.stdio.mux import Caller, Expired, Notify, PipeMux
from tunnel_client.observe.instruments import Instruments


class Rig:
    def __init__(self, generation=1):
        self.generation = generation
        self.mux = PipeMux()
        self.asks = Asks()
        self.metrics = Instruments()
        self.answered = []
        self.answered_to = []  # the generation each local answer is for
        self.session = types.SimpleNamespace(roots=())
        self.inbound = Inbound("main", self.mux, self.asks, self.metrics, self.session,
                               lambda: self.generation, self._answer)

    def _answer(self, generation, msg):
        self.answered_to.append(generation)
        self.answered.append(msg)

    def call(self, caps=(), rpc_id=1):
        call, _ = self.mux.open({"jsonrpc": "2.0", "id": rpc_id, "method": "tools/call"},
                                self.generation, Caller(rpc_id, None, frozenset(caps)))
        return call

    def ask(self, method, rpc_id="srv-1"):
        self.inbound.on_message(self.generation, {"jsonrpc": "2.0", "id": rpc_id,
                                                  "method": method, "params": {}})

    def note(self, method, **params):
        self.inbound.on_message(self.generation, {"jsonrpc": "2.0", "method": method,
                                                  "params": params})


@pytest.fixture
def stdio_log(caplog):
    """The stdio rooms' log records, from debug up."""
    caplog.set_level(logging.DEBUG, logger="tunnel_client.stdio")
    return caplog


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


LONG_METHOD = "x/" + "m" * 70  # longer than any label the metrics or logs keep


def test_a_relayed_server_request_is_counted_and_logged(stdio_log):
    rig = Rig(generation=3)
    rig.call(["sampling"])
    rig.ask("sampling/createMessage")
    assert rig.metrics.stdio_relayed_requests.value(
        channel="main", method="sampling/createMessage") == 1
    [record] = [r for r in stdio_log.records if r.name == "tunnel_client.stdio"]
    assert record.getMessage() == "relayed a server request to the caller"
    assert (record.levelno, record.channel, record.method) == \
        (logging.INFO, "main", "sampling/createMessage")
    assert rig.answered == []


@pytest.mark.parametrize("method, caps, calls, why", [
    ("sampling/createMessage", (), 0, "not exactly one call in flight could have caused it"),
    ("sampling/createMessage", ("roots",), 1,
     "the caller did not declare the sampling capability"),
    ("tools/list", ("sampling",), 1, "no caller can answer tools/list"),
    (LONG_METHOD, (), 1, "no caller can answer " + LONG_METHOD),
])
def test_a_locally_answered_server_request_says_why(stdio_log, method, caps, calls, why):
    rig = Rig(generation=3)
    for n in range(calls):
        rig.call(caps, rpc_id=n + 1)
    rig.ask(method)
    assert rig.answered_to == [3] and rig.answered[0]["id"] == "srv-1"
    assert rig.metrics.stdio_local_answers.value(channel="main", method=method[:40]) == 1
    assert rig.metrics.stdio_relayed_requests.total() == 0
    [record] = [r for r in stdio_log.records if r.name == "tunnel_client.stdio"]
    assert record.getMessage() == "answered a server request locally"
    assert (record.levelno, record.channel, record.method, record.why) == \
        (logging.INFO, "main", method[:60], why)


def test_ping_and_the_operators_roots_are_answered_without_a_log_line(stdio_log):
    rig = Rig(generation=2)
    rig.session.roots = ("file:///srv",)
    rig.call(["roots"])
    rig.ask("ping")
    rig.ask("roots/list", rpc_id="srv-2")
    assert rig.answered_to == [2, 2]
    assert [m["id"] for m in rig.answered] == ["srv-1", "srv-2"]
    assert rig.answered[1]["result"]["roots"][0]["uri"] == "file:///srv"
    for method in ("ping", "roots/list"):
        assert rig.metrics.stdio_local_answers.value(channel="main", method=method) == 1
    assert [r for r in stdio_log.records if r.levelno >= logging.INFO] == []


def test_the_operators_roots_answer_only_roots_list():
    rig = Rig()
    rig.session.roots = ("file:///srv",)
    rig.ask("sampling/createMessage")
    assert "error" in rig.answered[0] and "result" not in rig.answered[0]


def test_a_notification_during_the_only_call_goes_to_that_call_unchanged():
    rig = Rig(generation=2)
    call = rig.call()
    rig.note("notifications/message", level="info", data="hi")
    assert call.next(0) == Notify({"jsonrpc": "2.0", "method": "notifications/message",
                                   "params": {"level": "info", "data": "hi"}})
    assert rig.metrics.stdio_unrouted_notifications.total() == 0


def test_progress_for_a_token_nobody_holds_is_dropped_with_a_debug_line(stdio_log):
    rig = Rig()
    call = rig.call()  # a sole call must not receive a stray progress notification
    rig.note("notifications/progress", progressToken="tc-99", progress=1)
    assert isinstance(call.next(0), Expired)
    [record] = stdio_log.records
    assert record.getMessage() == "dropping progress for a token no call in flight holds"
    assert (record.levelno, record.channel) == (logging.DEBUG, "main")


def test_progress_for_a_call_in_flight_is_delivered_without_a_log_line(stdio_log):
    rig = Rig()
    call, _ = rig.mux.open({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                            "params": {"_meta": {"progressToken": 7}}}, 1, Caller(1))
    rig.note("notifications/progress", progressToken=call.token, progress=1)
    assert call.next(0).message["params"]["progressToken"] == 7
    assert stdio_log.records == []


def test_an_unrouted_notification_is_logged_at_info_once_per_method(stdio_log):
    rig = Rig()
    for _ in range(2):
        rig.note(LONG_METHOD)
    assert rig.metrics.stdio_unrouted_notifications.value(
        channel="main", method=LONG_METHOD[:60]) == 2
    first, second = stdio_log.records
    assert first.getMessage() == second.getMessage() == (
        "stdio server sent a notification outside any single call; callers cannot "
        "receive it")
    assert (first.levelno, second.levelno) == (logging.INFO, logging.DEBUG)
    assert (first.channel, first.method) == ("main", LONG_METHOD[:60])


def test_the_methods_remembered_as_seen_are_bounded(stdio_log):
    rig = Rig()
    for n in range(256):
        rig.note("notifications/n%d" % n)
    assert len(rig.inbound._seen_unrouted) == 256
    stdio_log.clear()
    for _ in range(2):  # beyond the bound a method is not remembered: info each time
        rig.note("notifications/late")
    assert [r.levelno for r in stdio_log.records] == [logging.INFO, logging.INFO]
    assert len(rig.inbound._seen_unrouted) == 256


def test_open_asks_are_bounded_forgetting_the_oldest():
    from tunnel_client.mcp.stdio.asks import MAX_OPEN_ASKS
    asks = Asks()
    ids = [asks.add(n) for n in range(MAX_OPEN_ASKS + 1)]
    assert len(asks) == MAX_OPEN_ASKS
    assert asks.take(ids[0]) is None
    assert asks.take(ids[1]) == 1 and asks.take(ids[-1]) == MAX_OPEN_ASKS


def test_a_reply_for_no_call_in_flight_is_dropped_with_a_debug_line(stdio_log):
    rig = Rig()
    rig.inbound.on_message(1, {"jsonrpc": "2.0", "id": "r" * 50, "result": {}})
    [record] = stdio_log.records
    assert record.getMessage() == "dropping a reply for a retired or unknown request"
    assert (record.levelno, record.channel, record.rpc_id) == \
        (logging.DEBUG, "main", repr("r" * 50)[:40])


def test_a_reply_to_a_call_is_delivered_and_marks_the_child_as_answering(stdio_log):
    rig = Rig(generation=3)
    call = rig.call()
    rig.inbound.on_message(3, {"jsonrpc": "2.0", "id": 1, "result": {}})
    assert call.next(0).message["result"] == {} and stdio_log.records == []
    assert rig.inbound.replied_gen == 3
    assert rig.metrics.stdio_last_exchange.value(channel="main") > 0


def test_a_message_that_is_not_json_rpc_is_counted_and_logged(stdio_log):
    rig = Rig()
    rig.inbound.on_message(1, {"hello": "world"})
    assert rig.metrics.stdio_dropped_lines.value(channel="main", reason="not_jsonrpc") == 1
    [record] = stdio_log.records
    assert record.getMessage() == "stdio server wrote a message that is not JSON-RPC; skipped it"
    assert (record.levelno, record.channel) == (logging.WARNING, "main")


def test_a_message_that_breaks_its_handling_is_counted_and_logged(stdio_log):
    class Broken:
        @property
        def roots(self):
            raise RuntimeError("broken")

    rig = Rig()
    rig.inbound.session = Broken()
    rig.ask("roots/list")
    assert rig.metrics.stdio_dropped_lines.value(channel="main", reason="unhandled") == 1
    [record] = stdio_log.records
    assert record.getMessage() == ("stdio server wrote a message that could not be handled; "
                                   "skipped it")
    assert (record.levelno, record.channel, record.error) == \
        (logging.WARNING, "main", "RuntimeError")
