"""SSE resumption in process (the daemon-level tests are tests/e2e/test_http_resume.py): a
stream the server ends after an event id is resumed with GET + Last-Event-ID and the
caller sees one call; what is not resumable ends in a transport_closed failure."""

import time

import pytest

from tests.support.resume import (PROGRESS, SSE, PollingServer,
                                  assert_one_resumption_as_a_get, priming, with_id)
from tests.support.servers import Scripted, result, sse
from tunnel_client import wire
from tunnel_client.config.values import BindingSpec
from tunnel_client.mcp.http import HttpBinding
from tunnel_client.net import Route


@pytest.fixture
def polling():
    """polling(gets, post_chunks=None) -> (server, binding)."""
    opened = []

    def start(gets, post_chunks=None):
        server = PollingServer(Scripted, gets, post_chunks)
        binding = HttpBinding(BindingSpec("main", "http", url=server.url),
                              Route("mcp:main", server.url, None, "test"))
        opened.append((server, binding))
        return server, binding

    yield start
    for server, binding in opened:
        binding.stop()
        server.server.close()


def send(binding, rpc_id=5, headers=None, deadline=wire.NO_DEADLINE):
    cmd = wire.parse_command({
        "request_id": "req_1", "shard_token": "s", "command_type": "jsonrpc",
        "headers": headers or {}, "jsonrpc": {"jsonrpc": "2.0", "id": rpc_id,
                                              "method": "tools/call",
                                              "params": {"name": "slow"}}}, time.monotonic())
    return list(binding.handle(cmd, deadline))


def failure_kind(reply):
    failure = reply.json()["error"]["data"]["tunnel_failure"]
    return failure["source"], failure["transport_error_kind"]


def test_a_stream_ended_after_an_event_id_is_resumed_with_the_callers_session(polling):
    server, binding = polling([
        lambda last, call: (200, SSE, [priming("ev-3")] + sse(result(call, {"done": last})))])
    got = send(binding, headers={"Mcp-Session-Id": "s-1", "Mcp-Protocol-Version":
                                 "2025-11-25", "Mcp-Method": "tools/call"})
    assert [r.resp_type for r in got] == ["jsonrpc_notify", "jsonrpc_response"]
    assert got[0].json() == PROGRESS
    assert got[-1].resp_code == 200
    assert got[-1].json() == {"jsonrpc": "2.0", "id": 5, "result": {"done": "ev-2"}}
    assert_one_resumption_as_a_get(server, "ev-2", "s-1", "2025-11-25")


def test_each_resumed_stream_resumes_from_its_own_last_id(polling):
    server, binding = polling([
        lambda last, call: (200, SSE, [with_id("ev-3", PROGRESS)]),
        lambda last, call: (200, SSE, [priming("ev-4")]),
        lambda last, call: (200, SSE, sse(result(call, {"after": last})))])
    got = send(binding, rpc_id="c")
    assert [r.resp_type for r in got] == ["jsonrpc_notify"] * 2 + ["jsonrpc_response"]
    assert got[-1].json()["result"] == {"after": "ev-4"}
    assert [g["headers"]["last-event-id"] for g in server.resumptions()] == [
        "ev-2", "ev-3", "ev-4"]


def test_a_stream_without_event_ids_is_not_resumed(polling):
    server, binding = polling([lambda last, call: (200, SSE, sse(result(call, {})))],
                              post_chunks=sse(PROGRESS))
    got = send(binding)
    assert failure_kind(got[-1]) == ("transport_closed", "unexpected_eof")
    assert server.resumptions() == []


@pytest.mark.parametrize("status,headers,body", [
    (405, {}, b""),
    (200, {"Content-Type": "application/json"}, b"{}"),
])
def test_a_refused_resumption_is_a_transport_closed_failure(polling, status, headers, body):
    server, binding = polling([lambda last, call: (status, headers, body)])
    got = send(binding)
    assert got[-1].resp_code == 502
    assert failure_kind(got[-1]) == ("transport_closed", "unexpected_eof")
    assert len(server.resumptions()) == 1


def test_resumption_stops_when_resumed_streams_bring_nothing_new(polling):
    server, binding = polling([lambda last, call: (200, SSE, [b": nothing\n\n"])] * 10)
    got = send(binding)
    assert failure_kind(got[-1]) == ("transport_closed", "unexpected_eof")
    assert [g["headers"]["last-event-id"] for g in server.resumptions()] == ["ev-2"] * 3


def test_a_retry_delay_past_the_deadline_is_not_waited_for(polling):
    server, binding = polling([lambda last, call: (200, SSE, sse(result(call, {})))],
                              post_chunks=[priming("ev-1", retry_ms=3600 * 1000)])
    got = send(binding, deadline=wire.Deadline.after(20))
    assert failure_kind(got[-1]) == ("transport_closed", "unexpected_eof")
    assert server.resumptions() == []  # failed at once rather than waiting for the hour


def test_the_servers_retry_delay_is_honoured_before_resuming(polling):
    server, binding = polling([lambda last, call: (200, SSE, sse(result(call, {})))],
                              post_chunks=[priming("ev-1", retry_ms=300)])
    got = send(binding)
    assert got[-1].json()["result"] == {}
    (post,) = [r for r in server.server.requests if r["method"] == "POST"]
    (get,) = server.resumptions()
    assert get["received"] - post["received"] >= 0.3


def test_a_refused_or_failed_resumption_is_logged_with_the_request(polling, caplog):
    server, binding = polling([lambda last, call: (200, {"Content-Type": "text/html"}, b"x")])
    with caplog.at_level("WARNING", logger="tunnel_client"):
        send(binding)
    (refused,) = [r for r in caplog.records if "resumption" in r.getMessage()]
    assert refused.getMessage() == "MCP stream resumption refused: HTTP 200 text/html"
    assert refused.request_id == "req_1" and refused.channel == "main"


def test_a_redirected_resumption_is_refused_not_followed(polling):
    server, binding = polling([lambda last, call: (307, {"Location": "/elsewhere"}, b"")])
    got = send(binding)
    assert failure_kind(got[-1]) == ("transport_closed", "unexpected_eof")
    assert len(server.resumptions()) == 1
    assert all(r["path"] != "/elsewhere" for r in server.server.requests)


def test_the_resumption_is_dumped_like_any_exchange(polling, monkeypatch):
    from tunnel_client.observe import logs
    seen = []
    monkeypatch.setattr(logs.RawHttp, "exchange", classmethod(
        lambda cls, *args: seen.append(args)))
    server, binding = polling([lambda last, call: (200, SSE, sse(result(call, {})))])
    send(binding, headers={"Mcp-Name": "slow"})
    (route, method, url, status, request_headers, body, response_headers, rest) = seen[-1]
    assert (route, method, url, status, body, rest) == ("mcp:main", "GET", server.url, 200,
                                                        None, None)
    assert request_headers["Last-Event-ID"] == "ev-2"
    assert response_headers["Content-Type"] == "text/event-stream"
    (get,) = server.resumptions()
    assert "mcp-name" not in get["headers"]
