"""The Streamable HTTP binding end to end: relay -> tunnel-client run -> HTTP MCP server."""

import json
import threading

import pytest

from tests.support.calls import exchange, final, initialize, notification, rpc, tool_call
from tests.support.contract import assert_valid, tunnel_failure_errors
from tests.support.servers import result, sse


def forwarded(server):
    """What the server received on behalf of callers: health probes and the OAuth discovery
    the client runs at start (well-known GETs, body-less probes) left out."""
    return [r for r in server.requests
            if not (r["json"] or {}).get("id") == "tunnel-client-probe"
            and not r["path"].startswith("/.well-known/")
            and not (r["method"] in ("GET", "POST") and not r["body"])]


def test_round_trips_with_zero_integer_and_string_ids_over_http(relay, daemon, http_stub):
    daemon(mcp_url=http_stub())
    init = final(relay, initialize(rpc_id=0))
    assert init["resp_code"] == 200
    session = init["resp_headers"]["Mcp-Session-Id"][0]
    for rpc_id in (0, 7, "s-1"):
        reply = final(relay, tool_call("echo", rpc_id, input="x%s" % rpc_id),
                      headers={"Mcp-Session-Id": session})
        assert reply["resp_json"]["id"] == rpc_id
        assert reply["resp_json"]["result"]["structuredContent"] == {"echoed": "x%s" % rpc_id}
        assert reply["resp_headers"]["Content-Type"] == ["application/json"]
    for record in relay.responses:
        assert_valid("response_payload", json.loads(record["body"]))
    assert relay.polls[-1]["headers"]["X-Tunnel-MCP-Server-Info"] == \
        '{"version":1,"channels":[{"name":"main"}]}'


def test_sse_progress_is_posted_as_notify_before_the_final_response(relay, daemon, http_stub):
    daemon(mcp_url=http_stub())
    payloads = exchange(relay, tool_call("count", 1, progress="p", to=3, delay_ms=10))
    assert [p["resp_type"] for p in payloads] == ["jsonrpc_notify"] * 3 + ["jsonrpc_response"]
    assert [p["resp_json"]["params"]["progress"] for p in payloads[:3]] == [1, 2, 3]
    assert payloads[0]["resp_headers"]["Content-Type"] == ["text/event-stream"]
    assert payloads[-1]["resp_headers"]["Content-Type"] == ["text/event-stream"]


def test_command_headers_win_over_static_ones_and_host_is_the_targets(relay, daemon, scripted):
    server = scripted(lambda r: (200, {"Content-Type": "application/json"},
                                 json.dumps(result(r, {})).encode()))
    daemon(mcp_url=server.url, args=["--mcp.extra-headers", "X-Static: from-config",
                                     "--mcp.extra-headers", "Authorization: Bearer static"])
    final(relay, rpc("tools/list", 1), headers={
        "Authorization": "Bearer connector", "Mcp-Session-Id": "sess",
        "Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list",
        "Last-Event-ID": "5", "Host": "public.example"})
    headers = forwarded(server)[-1]["headers"]
    assert headers["authorization"] == "Bearer connector"
    assert headers["x-static"] == "from-config"
    assert headers["mcp-session-id"] == "sess" and headers["mcp-method"] == "tools/list"
    assert headers["mcp-protocol-version"] == "2026-07-28" and headers["last-event-id"] == "5"
    assert headers["host"] == server.url.split("/")[2]
    assert headers["accept"] == "application/json, text/event-stream"
    assert headers["content-type"] == "application/json"


def test_target_jsonrpc_errors_pass_through_byte_for_byte(relay, daemon, scripted):
    body = b'{"jsonrpc":"2.0","id":4,"error":{"code":-32003,"message":"forbidden tool"}}'
    server = scripted(lambda r: (403, {"Content-Type": "application/json",
                                       "WWW-Authenticate": 'Bearer realm="x"'}, body))
    daemon(mcp_url=server.url)
    payload = final(relay, tool_call("echo", 4, input="x"))
    raw = relay.responses[-1]["body"]
    assert body in raw
    assert payload["resp_code"] == 403
    assert payload["resp_headers"]["Www-Authenticate"] == ['Bearer realm="x"']


def test_target_errors_sent_with_a_null_id_reach_the_caller_under_its_id(relay, daemon,
                                                                          scripted):
    error = {"code": -32000, "message": "Bad Request: Server not initialized",
             "data": {"hint": ["initialize first", 1]}}
    body = json.dumps({"jsonrpc": "2.0", "error": error, "id": None}).encode()
    server = scripted(lambda r: (400, {"Content-Type": "application/json"}, body))
    daemon(mcp_url=server.url)
    for rpc_id in ("d-1", 0):
        payload = final(relay, rpc("server/discover", rpc_id))
        assert payload["resp_code"] == 400
        assert payload["resp_json"] == {"jsonrpc": "2.0", "error": error, "id": rpc_id}


@pytest.mark.parametrize("media", ["application/json", "text/event-stream"])
def test_null_id_errors_in_a_success_reply_reach_the_caller_too(relay, daemon, scripted,
                                                                media):
    message = {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "nope"}}
    server = scripted(lambda r: (200, {"Content-Type": media}, sse(message)
                                 if media == "text/event-stream" else json.dumps(message).encode()))
    daemon(mcp_url=server.url)
    payload = final(relay, rpc("tools/list", 3))
    assert payload["resp_json"] == dict(message, id=3)


@pytest.mark.parametrize("body,kind", [
    (b'{"jsonrpc":"2.0","id":null,"error":{"code":"x","message":"no"}}', "invalid_mcp_error"),
    (b'{"jsonrpc":"2.0","id":null,"error":{"code":1}}', "invalid_mcp_error"),
    (b'{"jsonrpc":"2.0","id":77,"error":{"code":1,"message":"another"}}', "invalid_mcp_error"),
    (b'{"jsonrpc":"2.0","id":null,"result":{}}', "non_protocol_response")])
def test_bodies_that_are_not_this_requests_jsonrpc_error_are_still_synthesized(
        relay, daemon, scripted, body, kind):
    server = scripted(lambda r: (400, {"Content-Type": "application/json"}, body))
    daemon(mcp_url=server.url)
    payload = final(relay, rpc("tools/list", 1))
    failure = payload["resp_json"]["error"]["data"]["tunnel_failure"]
    assert (payload["resp_code"], failure["transport_error_kind"]) == (400, kind)


def test_non_json_error_bodies_become_target_http_failures_without_leaking(relay, daemon,
                                                                           scripted):
    server = scripted(lambda r: (503, {"Content-Type": "text/plain"}, b"secret upstream page"))
    daemon(mcp_url=server.url)
    payload = final(relay, tool_call("echo", "a", input="x"))
    assert payload["resp_code"] == 503
    error = payload["resp_json"]["error"]
    assert error["message"] == "Service Unavailable"
    failure = error["data"]["tunnel_failure"]
    assert failure == {"version": 1, "source": "target_http",
                       "transport_error_kind": "malformed_json",
                       "upstream_response_received": True, "upstream_status": 503}
    assert not tunnel_failure_errors(failure)
    assert b"secret upstream page" not in relay.responses[-1]["body"]


def test_connection_refused_is_a_synthesized_502(relay, daemon):
    daemon(mcp_url="http://127.0.0.1:9/mcp")
    payload = final(relay, tool_call("echo", 1, input="x"))
    assert payload["resp_code"] == 502
    failure = payload["resp_json"]["error"]["data"]["tunnel_failure"]
    assert (failure["source"], failure["transport_error_kind"]) == ("connect",
                                                                    "connection_refused")
    assert failure["upstream_response_received"] is False


def test_sse_keepalives_and_comments_are_ignored(relay, daemon, scripted):
    def handler(r):
        return 200, {"Content-Type": "text/event-stream"}, [
            b": ping\n\n", b"event: ping\ndata:\n\n", b": keepalive\n\n"] + sse(result(r, {"ok": 1}))
    daemon(mcp_url=scripted(handler).url)
    payloads = exchange(relay, rpc("tools/list", 9))
    assert [p["resp_type"] for p in payloads] == ["jsonrpc_response"]
    assert payloads[0]["resp_json"]["result"] == {"ok": 1}


def test_stream_closed_before_the_response_is_transport_closed(relay, daemon, scripted):
    note = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}}
    server = scripted(lambda r: (200, {"Content-Type": "text/event-stream"}, sse(note)))
    daemon(mcp_url=server.url)
    payloads = exchange(relay, rpc("tools/call", 1))
    assert payloads[0]["resp_type"] == "jsonrpc_notify"
    failure = payloads[-1]["resp_json"]["error"]["data"]["tunnel_failure"]
    assert failure["source"] == "transport_closed" and payloads[-1]["resp_code"] == 502


@pytest.mark.parametrize("body,kind", [
    (b'{"jsonrpc":"2.0","id":999,"result":{}}', "invalid_protocol_response"),
    (b'{"jsonrpc":"2.0","method":"notifications/x"}', "invalid_protocol_response"),
    (b"", "response_body_missing"), (b"{not json", "malformed_json")])
def test_protocol_violations_are_502_protocol(relay, daemon, scripted, body, kind):
    server = scripted(lambda r: (200, {"Content-Type": "application/json"}, body))
    daemon(mcp_url=server.url)
    payload = final(relay, rpc("tools/list", 1))
    failure = payload["resp_json"]["error"]["data"]["tunnel_failure"]
    assert (payload["resp_code"], failure["source"], failure["transport_error_kind"]) == (
        502, "protocol", kind)


def test_notifications_get_notify_ack_with_the_real_status(relay, daemon, http_stub):
    daemon(mcp_url=http_stub())
    payload = final(relay, notification("notifications/initialized"))
    assert (payload["resp_type"], payload["resp_code"]) == ("notify_ack", 202)
    assert "resp_json" not in payload


def test_session_termination_sends_delete_with_the_session_headers(relay, daemon, scripted):
    server = scripted(lambda r: (204, {}, b""))
    daemon(mcp_url=server.url)
    payload = final(relay, None, command_type="session_termination",
                    headers={"Mcp-Session-Id": "s-9", "Authorization": "Bearer c",
                             "Mcp-Protocol-Version": "2025-06-18"})
    assert (payload["resp_type"], payload["resp_code"]) == ("session_termination_response", 204)
    request = forwarded(server)[-1]
    assert request["method"] == "DELETE"
    assert request["headers"]["mcp-session-id"] == "s-9"
    assert request["headers"]["authorization"] == "Bearer c"


def test_a_silent_server_is_bounded_by_the_read_timeout_without_response_timeout(
        relay, daemon, scripted):
    release = threading.Event()

    def handler(r):
        release.wait(10)
        return 200, {"Content-Type": "application/json"}, json.dumps(result(r, {})).encode()

    server = scripted(handler)
    daemon(mcp_url=server.url, args=["--mcp.read-timeout", "1s"])
    payload = final(relay, rpc("tools/list", 1), response_timeout=None, timeout=10)
    release.set()
    failure = payload["resp_json"]["error"]["data"]["tunnel_failure"]
    assert failure["source"] == "timeout" and payload["resp_code"] == 502


def test_unsupported_channel_never_reaches_main(relay, daemon, scripted):
    server = scripted(lambda r: (200, {"Content-Type": "application/json"},
                                 json.dumps(result(r, {})).encode()))
    daemon(mcp_url=server.url)
    payload = final(relay, rpc("tools/list", 3), channel="other")
    assert payload["resp_code"] == 400
    assert payload["resp_json"] == {"jsonrpc": "2.0", "id": 3, "error": {
        "code": -32603, "message": 'Bad Request: unsupported channel "other"'}}
    assert forwarded(server) == []


def test_channels_route_to_their_own_bindings(relay, daemon, scripted, http_stub):
    tools = scripted(lambda r: (200, {"Content-Type": "application/json"},
                                json.dumps(result(r, {"from": "tools"})).encode()))
    daemon(mcp_url=http_stub(), args=["--mcp.server-url", "channel=tools,url=%s" % tools.url])
    assert final(relay, rpc("ping", 1), channel="tools")["resp_json"]["result"] == {
        "from": "tools"}
    assert final(relay, rpc("ping", 2))["resp_json"]["result"] == {}
    assert relay.polls[-1]["headers"]["X-Tunnel-MCP-Server-Info"] == \
        '{"version":1,"channels":[{"name":"main"},{"name":"tools"}]}'
