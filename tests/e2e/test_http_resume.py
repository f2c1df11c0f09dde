"""SSE resumption on the Streamable HTTP binding: a server may end a call's stream early
once it has given an event id; the client resumes with GET + Last-Event-ID after the
server's ``retry:`` delay and the caller sees one uninterrupted call."""

import json

from tests.support.calls import exchange, rpc, tool_call
from tests.support.servers import result, sse

SSE = {"Content-Type": "text/event-stream"}
PROGRESS = {"jsonrpc": "2.0", "method": "notifications/progress",
            "params": {"progressToken": "p", "progress": 1}}


def priming(event_id, retry_ms=10):
    return b"id: %s\nretry: %d\ndata:\n\n" % (event_id.encode(), retry_ms)


def with_id(event_id, message):
    return b"id: %s\nevent: message\ndata: %s\n\n" % (event_id.encode(),
                                                       json.dumps(message).encode())


class PollingServer:
    """POST: a priming event (and a progress notification), then the stream ends. Each GET
    answers with ``gets[n](last_event_id, call)``: the resumed stream's chunks."""

    def __init__(self, scripted, gets, post_chunks=None):
        self.gets = list(gets)
        self.call = None
        self.post_chunks = post_chunks
        self.server = scripted(self.handle)
        self.url = self.server.url

    def handle(self, request):
        if request["method"] == "POST" and (request["json"] or {}).get("id") != \
                "tunnel-client-probe" and request["body"]:
            self.call = request
            return 200, SSE, self.post_chunks or [priming("ev-1"), with_id("ev-2", PROGRESS)]
        if request["method"] == "GET" and "last-event-id" in request["headers"] and \
                self.gets and self.call:  # not the OAuth discovery's well-known GETs
            return self.gets.pop(0)(request["headers"].get("last-event-id"), self.call)
        return 405, {}, b""

    def resumptions(self):
        return [r for r in self.server.requests if r["method"] == "GET" and
                "last-event-id" in r["headers"]]


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
    (get,) = server.resumptions()
    assert get["headers"]["last-event-id"] == "ev-2"
    assert get["headers"]["accept"] == "text/event-stream"
    assert get["headers"]["mcp-session-id"] == "s-1"
    assert get["headers"]["mcp-protocol-version"] == "2025-11-25"
    assert "mcp-method" not in get["headers"] and "content-type" not in get["headers"]


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
