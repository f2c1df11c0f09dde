"""SSE resumption on the Streamable HTTP binding: a server may end a call's stream early
once it has given an event id; the client resumes with GET + Last-Event-ID after the
server's ``retry:`` delay and the caller sees one uninterrupted call."""

from tests.support.calls import exchange, rpc, tool_call
from tests.support.resume import (PROGRESS, SSE, PollingServer,
                                  assert_one_resumption_as_a_get, priming, with_id)
from tests.support.servers import result, sse


def test_a_stream_ended_after_an_event_id_is_resumed_with_last_event_id(relay, daemon,
                                                                        scripted):
    server = PollingServer(scripted, [
        lambda last, call: (200, SSE, [priming("ev-3")] + sse(result(call, {"done": last})))])
    daemon(mcp_url=server.url)
    payloads = exchange(relay, tool_call("slow", 5, progress="p"), headers={
        "Mcp-Session-Id": "s-1", "Mcp-Protocol-Version": "2025-11-25",
        "Mcp-Method": "tools/call"})
    assert [p["resp_type"] for p in payloads] == ["jsonrpc_notify", "jsonrpc_response"]
    assert payloads[-1]["resp_code"] == 200
    assert payloads[-1]["resp_json"] == {"jsonrpc": "2.0", "id": 5, "result": {"done": "ev-2"}}
    assert_one_resumption_as_a_get(server, "ev-2", "s-1", "2025-11-25")


def test_resumed_streams_that_end_early_again_are_resumed_from_their_last_id(relay, daemon,
                                                                             scripted):
    server = PollingServer(scripted, [
        lambda last, call: (200, SSE, [with_id("ev-3", PROGRESS)]),
        lambda last, call: (200, SSE, [priming("ev-4")]),
        lambda last, call: (200, SSE, sse(result(call, {"after": last})))])
    daemon(mcp_url=server.url)
    payloads = exchange(relay, rpc("tools/call", "c"))
    assert [p["resp_type"] for p in payloads] == ["jsonrpc_notify"] * 2 + ["jsonrpc_response"]
    assert payloads[-1]["resp_json"]["result"] == {"after": "ev-4"}
    assert [g["headers"]["last-event-id"] for g in server.resumptions()] == [
        "ev-2", "ev-3", "ev-4"]


def test_a_stream_without_event_ids_is_not_resumed(relay, daemon, scripted):
    server = PollingServer(scripted, [lambda last, call: (200, SSE, sse(result(call, {})))],
                           post_chunks=sse(PROGRESS))
    daemon(mcp_url=server.url)
    payloads = exchange(relay, rpc("tools/call", 1))
    failure = payloads[-1]["resp_json"]["error"]["data"]["tunnel_failure"]
    assert (failure["source"], failure["transport_error_kind"]) == ("transport_closed",
                                                                    "unexpected_eof")
    assert server.resumptions() == []


def test_a_refused_resumption_is_a_transport_closed_failure(relay, daemon, scripted):
    server = PollingServer(scripted, [lambda last, call: (405, {}, b"")])
    daemon(mcp_url=server.url)
    payloads = exchange(relay, rpc("tools/call", 1))
    assert payloads[-1]["resp_code"] == 502
    failure = payloads[-1]["resp_json"]["error"]["data"]["tunnel_failure"]
    assert failure["transport_error_kind"] == "unexpected_eof"
    assert len(server.resumptions()) == 1


def test_resumption_stops_when_resumed_streams_bring_nothing_new(relay, daemon, scripted):
    server = PollingServer(scripted, [lambda last, call: (200, SSE, [b": nothing\n\n"])] * 10)
    daemon(mcp_url=server.url)
    payloads = exchange(relay, rpc("tools/call", 1))
    assert payloads[-1]["resp_json"]["error"]["data"]["tunnel_failure"][
        "transport_error_kind"] == "unexpected_eof"
    assert [g["headers"]["last-event-id"] for g in server.resumptions()] == ["ev-2"] * 3


def test_a_retry_delay_past_the_commands_deadline_is_not_waited_for(relay, daemon, scripted):
    server = PollingServer(scripted, [lambda last, call: (200, SSE, sse(result(call, {})))],
                           post_chunks=[priming("ev-1", retry_ms=3600 * 1000)])
    daemon(mcp_url=server.url)
    payloads = exchange(relay, rpc("tools/call", 1), response_timeout="20s")
    assert payloads[-1]["resp_json"]["error"]["data"]["tunnel_failure"][
        "transport_error_kind"] == "unexpected_eof"
    assert server.resumptions() == []
