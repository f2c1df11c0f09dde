"""The Streamable HTTP binding in process against a scripted loopback MCP server: what is
sent (headers, bodies, DELETE), and every kind of answer turned into replies."""

import json
import logging
import time

import pytest

from tests.support.servers import Scripted, sse
from tunnel_client import wire
from tunnel_client.config.values import BindingSpec, HeaderList
from tunnel_client.mcp.http import HttpBinding
from tunnel_client.net import Route
from tunnel_client.observe.health import Check


@pytest.fixture
def mcp():
    """mcp(handler, **binding options) -> (server, binding)."""
    opened = []

    def start(handler, **options):
        server = Scripted(handler)
        binding = HttpBinding(BindingSpec("main", "http", url=server.url),
                              Route("mcp:main", server.url, None, "test"), **options)
        opened.append((server, binding))
        return server, binding

    yield start
    for server, binding in opened:
        binding.stop()
        server.close()


def command(message=None, command_type="jsonrpc", headers=None):
    return wire.parse_command({
        "request_id": "req_1", "shard_token": "s", "command_type": command_type,
        "headers": headers or {}, "jsonrpc": message}, time.monotonic())


def call(rpc_id=1):
    return {"jsonrpc": "2.0", "id": rpc_id, "method": "tools/call",
            "params": {"name": "echo"}}


def replies(binding, cmd, deadline=wire.NO_DEADLINE):
    return list(binding.handle(cmd, deadline))


def json_answer(status, message, headers=None):
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    return lambda request: (status, dict({"Content-Type": "application/json"},
                                         **(headers or {})), body)


def failure_of(reply):
    return reply.json()["error"]["data"]["tunnel_failure"]


def test_a_json_answer_is_the_terminal_reply_with_the_real_status(mcp):
    server, binding = mcp(json_answer(200, b' {"jsonrpc":"2.0","id":1,"result":{"a":1}} ',
                                      {"Mcp-Session-Id": "s-1", "Server": "x"}))
    [reply] = replies(binding, command(call()))
    assert reply == wire.Reply("jsonrpc_response", 200,
                               b'{"jsonrpc":"2.0","id":1,"result":{"a":1}}',
                               {"Mcp-Session-Id": ["s-1"],
                                "Content-Type": ["application/json"]})
    [sent] = server.requests
    assert sent["method"] == "POST" and sent["json"] == call()


def test_headers_sent_to_the_server(mcp):
    server, binding = mcp(json_answer(200, {"jsonrpc": "2.0", "id": 1, "result": {}}),
                          static_headers=HeaderList((("Authorization", "Bearer static"),
                                                     ("X-Static", "s"))))
    replies(binding, command(call(), headers={
        "X-Static": ["from-command"], "Mcp-Session-Id": ["s-9"], "Host": ["evil"],
        "Proxy-Authorization": ["Basic x"], "Content-Type": ["text/plain"],
        "Accept-Encoding": ["gzip"], "X-Multi": ["a", "b"]}))
    headers = server.requests[0]["headers"]
    assert headers["authorization"] == "Bearer static"
    assert headers["x-static"] == "from-command"
    assert headers["mcp-session-id"] == "s-9" and headers["x-multi"] == "a, b"
    assert headers["host"].startswith("127.0.0.1:")
    assert "proxy-authorization" not in headers
    assert headers["content-type"] == "application/json"
    assert headers["accept-encoding"] == "identity"
    assert headers["accept"] == "application/json, text/event-stream"


def test_a_callers_accept_header_is_kept(mcp):
    server, binding = mcp(json_answer(200, {"jsonrpc": "2.0", "id": 1, "result": {}}))
    replies(binding, command(call(), headers={"Accept": ["application/json"]}))
    assert server.requests[0]["headers"]["accept"] == "application/json"


def test_an_sse_answer_gives_notifications_then_the_response(mcp):
    progress = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"p": 1}}
    ask = {"jsonrpc": "2.0", "id": "srv-1", "method": "sampling/createMessage"}
    done = {"jsonrpc": "2.0", "id": 1, "result": {"ok": True}}
    server, binding = mcp(lambda request: (200, {"Content-Type": "text/event-stream"},
                                           sse(progress, ask, done)))
    got = replies(binding, command(call()))
    assert [r.resp_type for r in got] == ["jsonrpc_notify", "jsonrpc_notify",
                                          "jsonrpc_response"]
    assert [r.json() for r in got] == [progress, ask, done]
    assert all(r.resp_code == 200 for r in got)
    assert got[-1].headers == {"Content-Type": ["text/event-stream"]}
    assert got[0].headers == {"Content-Type": ["text/event-stream"]}


@pytest.mark.parametrize("events,kind,source", [
    ([b"event: message\ndata: {\n\n"], "malformed_json", "protocol"),
    (sse({"jsonrpc": "2.0", "id": 2, "result": {}}), "invalid_protocol_response", "protocol"),
    (sse({"jsonrpc": "2.0", "method": "notifications/x"}), "unexpected_eof",
     "transport_closed"),
])
def test_a_broken_sse_answer_ends_in_a_synthesized_failure(mcp, events, kind, source):
    server, binding = mcp(lambda request: (200, {"Content-Type": "text/event-stream"}, events))
    last = replies(binding, command(call()))[-1]
    assert last.resp_type == "jsonrpc_response" and last.json()["error"]["code"] == -32603
    assert (failure_of(last)["source"], failure_of(last)["transport_error_kind"]) == (
        source, kind)


@pytest.mark.parametrize("body,kind", [
    (b"", "response_body_missing"), (b"  ", "response_body_missing"),
    (b"{", "malformed_json"),
    (b'{"jsonrpc":"2.0","id":"1","result":{}}', "invalid_protocol_response"),
    (b'{"jsonrpc":"2.0","id":2,"result":{}}', "invalid_protocol_response"),
    (b'{"jsonrpc":"2.0","method":"x"}', "invalid_protocol_response"),
])
def test_a_json_answer_that_is_not_our_response_is_a_protocol_failure(mcp, body, kind):
    server, binding = mcp(json_answer(200, body))
    [reply] = replies(binding, command(call()))
    assert reply.resp_code == 502 and reply.json()["id"] == 1
    assert failure_of(reply) == {"version": 1, "source": "protocol",
                                 "transport_error_kind": kind,
                                 "upstream_response_received": True}


def test_the_targets_own_error_passes_through_byte_for_byte(mcp):
    own = b'{"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"denied"}}'
    server, binding = mcp(json_answer(403, own, {"WWW-Authenticate": "Bearer x"}))
    [reply] = replies(binding, command(call()))
    assert reply == wire.Reply("jsonrpc_response", 403, own, {
        "Www-Authenticate": ["Bearer x"], "Content-Type": ["application/json"]})


@pytest.mark.parametrize("body,kind", [(b"gateway down", "malformed_json"),
                                       (b"", "response_body_missing"),
                                       (b'{"error": "x"}', "invalid_mcp_error")])
def test_another_error_answer_is_a_target_http_failure(mcp, body, kind):
    server, binding = mcp(json_answer(503, body))
    [reply] = replies(binding, command(call()))
    assert reply.resp_code == 503
    assert reply.json()["error"]["message"] == "Service Unavailable"
    assert failure_of(reply) == {"version": 1, "source": "target_http",
                                 "transport_error_kind": kind,
                                 "upstream_response_received": True, "upstream_status": 503}


def test_a_notification_is_acknowledged_with_the_servers_status(mcp):
    server, binding = mcp(lambda request: (202, {"Mcp-Session-Id": "s"}, b""))
    [reply] = replies(binding, command({"jsonrpc": "2.0", "method": "notifications/x"}))
    assert reply == wire.Reply("notify_ack", 202, None, {"Mcp-Session-Id": ["s"]})


def test_an_unreachable_server_is_a_connect_failure():
    binding = HttpBinding(BindingSpec("main", "http", url="http://127.0.0.1:9/mcp"),
                          Route("mcp:main", "http://127.0.0.1:9/mcp", None, "test"))
    try:
        [reply] = replies(binding, command(call(7)))
        assert reply.resp_code == 502 and reply.json()["id"] == 7
        assert failure_of(reply)["source"] == "connect"
        assert binding.probe_status == "failed"
        assert "connection_refused" in binding.probe_error
        [ack] = replies(binding, command({"jsonrpc": "2.0", "method": "notifications/x"}))
        assert ack == wire.notify_ack(502)
        assert binding.probe() == "failed"
        assert not binding.health().ok and "unreachable" in binding.health().reason
    finally:
        binding.stop()


def test_session_termination_is_a_delete_with_the_session(mcp):
    server, binding = mcp(lambda request: (204, {"Mcp-Session-Id": "s-1"}, b""))
    [reply] = replies(binding, command(None, "session_termination",
                                       {"Mcp-Session-Id": ["s-1"]}))
    assert reply == wire.Reply("session_termination_response", 204, None,
                               {"Mcp-Session-Id": ["s-1"]})
    [sent] = server.requests
    assert sent["method"] == "DELETE" and sent["headers"]["mcp-session-id"] == "s-1"
    assert "content-type" not in sent["headers"]


def test_oauth_discovery_needs_a_discoverer(mcp):
    server, binding = mcp(json_answer(200, {}))
    [reply] = replies(binding, command(None, "oauth_discovery"))
    assert (reply.resp_type, reply.resp_code) == ("oauth_discovery_response", 404)
    assert reply.json()["error"]["code"] == "oauth_discovery"
    assert server.requests == []


@pytest.mark.parametrize("status,probe,ok", [(200, "ok", True), (401, "auth-required", True),
                                             (404, "ok", True), (500, "failed", False)])
def test_the_startup_probe_reads_the_servers_answer(mcp, status, probe, ok):
    server, binding = mcp(json_answer(status, {"jsonrpc": "2.0", "id": "x", "result": {}},
                                      {"Mcp-Session-Id": "probe-session"}),
                          static_headers=HeaderList((("Authorization", "Bearer k"),)))
    assert not binding.health().ok and binding.health().reason == "mcp startup probe pending"
    assert binding.probe() == probe
    assert binding.health().ok is ok
    first = server.requests[0]
    assert first["json"]["method"] == "initialize" and first["json"]["params"]
    assert first["headers"]["authorization"] == "Bearer k"
    # A session the probe opened is closed again.
    assert [r["method"] for r in server.requests] == ["POST", "DELETE"]
    assert server.requests[1]["headers"]["mcp-session-id"] == "probe-session"
    binding.probe(initialize=False)
    assert server.requests[2]["json"] == {"jsonrpc": "2.0", "id": "tunnel-client-probe",
                                          "method": "ping"}


def test_real_traffic_counts_as_a_probe(mcp):
    server, binding = mcp(json_answer(200, {"jsonrpc": "2.0", "id": 1, "result": {}}))
    replies(binding, command(call()))
    assert binding.probe_status == "ok"
    assert binding.health().reason.startswith("http-streamable http://127.0.0.1:")
    assert binding.describe()["url"].endswith("/mcp")


def test_timeouts_follow_the_deadline():
    binding = HttpBinding(BindingSpec("main", "http", url="http://127.0.0.1:9/mcp"),
                          Route("mcp:main", "http://127.0.0.1:9/mcp", None, "test"),
                          connect_timeout=10.0, read_timeout=300.0)
    assert binding._timeout(wire.NO_DEADLINE) == (10.0, 300.0)
    connect, read = binding._timeout(wire.Deadline.after(2.0))
    assert 1.9 < connect <= 2.0 and 1.9 < read <= 2.0
    assert binding._timeout(wire.Deadline(time.monotonic() - 1)) == (0.001, 0.001)


# --- health, probes, logs and the rarer paths -----------------------------------------


def unreachable(**options):
    return HttpBinding(BindingSpec("main", "http", url="http://127.0.0.1:9/mcp"),
                       Route("mcp:main", "http://127.0.0.1:9/mcp", None, "test"), **options)


def test_health_reasons_for_every_probe_state():
    binding = unreachable()
    try:
        binding.probe_status = "auth-required"
        binding.probe_error = "HTTP 401"
        assert binding.health() == Check(True, "ready (mcp initialize requires auth: HTTP 401)",
                                         binding.probe_since)
        binding.probe_status, binding.probe_error = "timeout", "timeout (timeout)"
        assert binding.health().reason == \
            "ready (mcp startup probe timed out: timeout (timeout))"
        assert binding.health().ok is True
        binding.probe_status, binding.probe_error = "failed", "HTTP 502"
        assert binding.health() == Check(
            False, "channel main: MCP server http://127.0.0.1:9 unreachable: HTTP 502",
            binding.probe_since)
        binding.probe_status = "ok"
        assert binding.health() == Check(True, "http-streamable http://127.0.0.1:9 reachable",
                                         binding.probe_since)
        assert binding.describe() == {
            "name": "main", "transport_kind": "http-streamable",
            "url": "http://127.0.0.1:9/mcp", "route": "direct (test)",
            "probe_status": "ok", "probe_error": "HTTP 502"}
    finally:
        binding.stop()


def test_a_probe_change_is_logged_once_with_its_reason(caplog):
    binding = unreachable()
    try:
        with caplog.at_level(logging.INFO, logger="tunnel_client.mcpclient"):
            before = binding.probe_since
            assert binding.probe() == "failed"
            binding.probe()
        changes = [r for r in caplog.records if r.getMessage().startswith("MCP server probe")]
        assert [(r.getMessage(), r.levelno) for r in changes] == [
            ("MCP server probe: failed", logging.WARNING)]
        assert changes[0].probe_error == "connection_refused (connect)"
        assert changes[0].url == "http://127.0.0.1:9" and changes[0].channel == "main"
        assert binding.probe_since >= before
        # The library's own text, cut to a bounded length (urllib3 1.26 says more first).
        assert binding.probe_detail.startswith("connection_refused (")
    finally:
        binding.stop()


def test_a_recovered_server_is_logged_at_info(mcp, caplog):
    server, binding = mcp(json_answer(200, {"jsonrpc": "2.0", "id": 1, "result": {}}))
    binding._set_probe("failed", "HTTP 500")
    with caplog.at_level(logging.INFO, logger="tunnel_client.mcpclient"):
        replies(binding, command(call()))
    change = [r for r in caplog.records if r.getMessage().startswith("MCP server probe")][-1]
    assert (change.getMessage(), change.levelno) == ("MCP server probe: ok", logging.INFO)
    assert binding.probe_error == ""


def test_the_probe_job_reschedules_itself_until_stopped(mcp):
    server, binding = mcp(json_answer(200, {"jsonrpc": "2.0", "id": "x", "result": {}}),
                          probe_interval=30.0)
    scheduled = []

    class Housekeeping:
        def call_later(self, delay, job, name):
            scheduled.append((delay, job, name))

    binding.start(Housekeeping())
    [(delay, job, name)] = scheduled
    assert (delay, name) == (0, "mcp-probe-main")
    assert job() == 30.0 and binding.probe_status == "ok"
    assert server.requests[0]["json"]["method"] == "initialize"
    binding._last_reply = time.monotonic()  # traffic just proved the server is there
    assert job() == 30.0 and len(server.requests) == 1, "a fresh probe is not repeated"
    binding._last_reply -= 31
    job()
    assert server.requests[-1]["json"]["method"] == "ping"
    binding.stop()
    assert job() is None


def test_waiting_for_a_server_to_listen():
    import threading
    binding = unreachable()
    try:
        assert binding.wait_until_listening(0.2, threading.Event()) == \
            "connection_refused (connect) after waiting 0.2s"
        stop = threading.Event()
        stop.set()
        assert binding.wait_until_listening(5.0, stop) == "stopping"
    finally:
        binding.stop()


def test_a_listening_server_ends_the_wait_at_once(mcp):
    import threading
    server, binding = mcp(json_answer(401, b"{}"))
    assert binding.wait_until_listening(5.0, threading.Event()) is None
    server.handler = json_answer(500, b"{}")
    assert binding.wait_until_listening(5.0, threading.Event()) == "HTTP 500"


def test_raw_http_dumps_the_mcp_exchange(mcp, monkeypatch):
    from tunnel_client.observe import logs
    seen = []
    monkeypatch.setattr(logs.RawHttp, "exchange", classmethod(
        lambda cls, *args: seen.append(args)))
    server, binding = mcp(json_answer(200, {"jsonrpc": "2.0", "id": 1, "result": {}}))
    replies(binding, command(call()))
    [(route, method, url, status, request_headers, body, response_headers, rest)] = seen
    assert (route, method, url, status, rest) == ("mcp:main", "POST", server.url, 200, None)
    assert request_headers["Content-Type"] == "application/json"
    assert json.loads(body) == call()
    assert response_headers["Content-Type"] == "application/json"


def test_a_stream_cut_off_midway_is_a_transport_failure_after_the_answer_began(mcp):
    def handler(request):
        def hang_up():
            raise ConnectionResetError("gone")
        return 200, {"Content-Type": "text/event-stream"}, [
            b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"n\"}\n\n", hang_up]
    server, binding = mcp(handler)
    got = replies(binding, command(call()))
    assert got[0].resp_type == "jsonrpc_notify"
    assert failure_of(got[-1])["upstream_response_received"] is True
    assert failure_of(got[-1])["source"] == "transport_closed"
    assert got[-1].json()["id"] == 1


def test_a_session_termination_that_cannot_reach_the_server_is_502():
    binding = unreachable()
    try:
        [reply] = replies(binding, command(None, "session_termination",
                                           {"Mcp-Session-Id": ["s"]}))
        assert reply == wire.session_terminated(502)
    finally:
        binding.stop()


class Discovery:
    def __init__(self, **result):
        self.result = type("Result", (), dict(
            {"state": "ok", "status_code": None, "body": b"", "headers": None,
             "error": None}, **result))
        self.budgets = []

    def run(self, budget):
        self.budgets.append(budget)
        return self.result


@pytest.mark.parametrize("result,expected", [
    ({"state": "ok", "status_code": 203, "body": b' {"resource":"r"} \n',
      "headers": {"Content-Type": ["application/json"]}},
     wire.Reply("oauth_discovery_response", 203, b'{"resource":"r"}',
                {"Content-Type": ["application/json"]})),
    ({"state": "ok", "body": b"{}"}, wire.Reply("oauth_discovery_response", 200, b"{}")),
    ({"state": "not_advertised"}, wire.Reply("oauth_discovery_response", 404, wire.dumps(
        {"error": {"message": "OAuth protected resource metadata is not advertised",
                   "type": "invalid_request_error", "code": "oauth_discovery"}}))),
    ({"state": "failed", "error": "timeout"}, wire.Reply(
        "oauth_discovery_response", 502, wire.dumps(
            {"error": {"message": "oauth discovery failed: timeout",
                       "type": "invalid_request_error", "code": "oauth_discovery"}}))),
    ({"state": "failed"}, wire.Reply("oauth_discovery_response", 502, wire.dumps(
        {"error": {"message": "oauth discovery failed: unknown",
                   "type": "invalid_request_error", "code": "oauth_discovery"}}))),
])
def test_oauth_discovery_answers(result, expected):
    binding = unreachable()
    binding.discoverer = Discovery(**result)
    try:
        assert replies(binding, command(None, "oauth_discovery")) == [expected]
        assert binding.discoverer.budgets == [5.0]
        replies(binding, command(None, "oauth_discovery"), wire.Deadline.after(2.0))
        assert 1.9 < binding.discoverer.budgets[-1] <= 2.0
    finally:
        binding.stop()


def test_an_error_body_over_the_limit_is_not_preserved(mcp):
    from tunnel_client.mcp import http
    big = json.dumps({"jsonrpc": "2.0", "id": 1, "error": {
        "code": -1, "message": "x" * http.ERROR_BODY_LIMIT}}).encode()
    server, binding = mcp(json_answer(500, big))
    [reply] = replies(binding, command(call()))
    assert reply.resp_code == 500
    assert failure_of(reply)["transport_error_kind"] == "response_body_too_large"
    assert failure_of(reply)["source"] == "target_http"


def test_a_body_that_is_not_utf8_is_reencoded(mcp):
    body = b'\xef\xbb\xbf{"jsonrpc":"2.0","id":1,"result":{"t":"\xc3\xa9"}}'
    server, binding = mcp(json_answer(200, body))
    [reply] = replies(binding, command(call()))
    assert reply.body == '{"jsonrpc":"2.0","id":1,"result":{"t":"é"}}'.encode("utf-8")


# --- every synthesized failure keeps the caller's id and the server's headers ----------

SESSION = {"Mcp-Session-Id": "s-1"}


def cut_after(*chunks):
    def hang_up():
        raise ConnectionResetError("the server hung up mid-answer")
    return list(chunks) + [hang_up]


def provenance(source, kind, status=None):
    data = {"version": 1, "source": source, "transport_error_kind": kind,
            "upstream_response_received": True}
    if status is not None:
        data["upstream_status"] = status
    return data


@pytest.mark.parametrize("status,content_type,body,failure,code", [
    (200, "text/event-stream", [b"data: {\n\n"], provenance("protocol", "malformed_json"),
     502),
    (200, "text/event-stream", sse({"jsonrpc": "2.0", "id": 1, "result": {}}),
     provenance("protocol", "invalid_protocol_response"), 502),
    (200, "text/event-stream", sse({"jsonrpc": "2.0", "method": "n"}),
     provenance("transport_closed", "unexpected_eof"), 502),
    (200, "application/json", b"", provenance("protocol", "response_body_missing"), 502),
    (200, "application/json", b"{", provenance("protocol", "malformed_json"), 502),
    (200, "application/json", b'{"jsonrpc":"2.0","id":1,"result":{}}',
     provenance("protocol", "invalid_protocol_response"), 502),
    (200, "application/json", b'{"jsonrpc":"2.0","id":"id-7","result":{"big":"' +
     b"x" * 100 + b'"}}', provenance("protocol", "response_body_too_large"), 502),
    (400, "text/plain", b"bad request", provenance("target_http", "malformed_json", 400), 400),
    (503, "text/plain", b"x" * 200, provenance("target_http", "response_body_too_large", 503),
     503),
    (500, "text/plain", cut_after(b"partial"),
     provenance("target_http", "response_body_unreadable", 500), 500),
])
def test_every_synthesized_failure_keeps_the_id_and_the_servers_headers(
        mcp, monkeypatch, status, content_type, body, failure, code):
    from tunnel_client.mcp import http
    monkeypatch.setattr(http, "MAX_BODY", 100)
    monkeypatch.setattr(http, "ERROR_BODY_LIMIT", 100)
    server, binding = mcp(lambda request: (status, dict(SESSION, **{
        "Content-Type": content_type}), body))
    last = replies(binding, command(call("id-7")))[-1]
    assert (last.resp_type, last.resp_code) == ("jsonrpc_response", code)
    assert last.json()["id"] == "id-7" and last.json()["error"]["code"] == -32603
    assert failure_of(last) == failure
    assert last.headers["Mcp-Session-Id"] == ["s-1"]
    assert last.failure is not None and last.failure.source == failure["source"]


def test_sse_replies_carry_the_servers_headers_whatever_the_media_parameters(mcp):
    events = sse({"jsonrpc": "2.0", "method": "notifications/progress"},
                 {"jsonrpc": "2.0", "id": "id-7", "result": {"t": "\u00e9"}})
    server, binding = mcp(lambda request: (200, dict(SESSION, **{
        "Content-Type": "Text/Event-Stream; charset=utf-8"}), events))
    got = replies(binding, command(call("id-7")))
    assert [r.resp_type for r in got] == ["jsonrpc_notify", "jsonrpc_response"]
    assert got[0].headers == {"Mcp-Session-Id": ["s-1"],
                              "Content-Type": ["Text/Event-Stream; charset=utf-8"]}
    assert got[-1].headers == {"Mcp-Session-Id": ["s-1"], "Content-Type": ["text/event-stream"]}
    assert got[-1].json()["result"] == {"t": "\u00e9"}


def test_an_answer_without_a_content_type_is_read_as_json(mcp):
    server, binding = mcp(lambda request: (200, {}, b'{"jsonrpc":"2.0","id":1,"result":{}}'))
    [reply] = replies(binding, command(call()))
    assert reply.resp_type == "jsonrpc_response" and reply.json()["result"] == {}


def test_a_callers_response_to_a_server_request_is_acknowledged(mcp):
    server, binding = mcp(lambda request: (202, {}, b""))
    [reply] = replies(binding, command({"jsonrpc": "2.0", "id": 5, "result": {}}))
    assert reply == wire.notify_ack(202, {})
    assert server.requests[0]["json"] == {"jsonrpc": "2.0", "id": 5, "result": {}}


@pytest.mark.parametrize("status,probe", [(500, "failed"), (499, "ok")])
def test_an_answer_of_500_or_more_marks_the_server_failed(mcp, status, probe):
    server, binding = mcp(json_answer(status, b"{}"))
    replies(binding, command(call()))
    assert binding.probe_status == probe
    assert binding.probe_error == ("HTTP 500" if probe == "failed" else "")


def test_an_unresolvable_server_is_a_dns_failure():
    binding = HttpBinding(BindingSpec("main", "http", url="http://no-such-host.invalid/mcp"),
                          Route("mcp:main", "http://no-such-host.invalid/mcp", None, "test"))
    try:
        [reply] = replies(binding, command(call()))
        assert failure_of(reply)["source"] == "dns"
        assert binding.probe_status == "failed" and binding.probe_error == "dns (dns)"
    finally:
        binding.stop()


def test_a_session_termination_does_not_follow_redirects(mcp):
    server, binding = mcp(lambda request: (307, {"Location": "/elsewhere"}, b""))
    [reply] = replies(binding, command(None, "session_termination",
                                       {"Mcp-Session-Id": ["s-1"]}))
    assert reply.resp_code == 307 and len(server.requests) == 1


def warnings_of(caplog, message):
    return [r for r in caplog.records if r.getMessage().startswith(message)]


def test_failures_are_logged_with_the_request_and_the_cause(mcp, caplog):
    caplog.set_level(logging.INFO, logger="tunnel_client.mcpclient")
    binding = unreachable()
    try:
        replies(binding, command(call()))
        replies(binding, command(None, "session_termination", {"Mcp-Session-Id": ["s"]}))
    finally:
        binding.stop()
    [request] = warnings_of(caplog, "MCP request failed: ")
    assert request.levelno == logging.WARNING and "refused" in request.getMessage()
    assert (request.channel, request.request_id, request.failure_source,
            request.transport_error_kind) == ("main", "req_1", "connect", "connection_refused")
    [termination] = warnings_of(caplog, "MCP session termination failed")
    assert termination.request_id == "req_1" and termination.channel == "main"
    assert "Connection refused" in termination.error

    server, binding = mcp(lambda request: (200, {"Content-Type": "text/event-stream"},
                                           cut_after(b"data: {}\n")))
    replies(binding, command(call()))
    [response] = warnings_of(caplog, "MCP response failed")
    assert (response.channel, response.request_id, response.failure_source) == (
        "main", "req_1", "transport_closed")
    assert response.transport_error_kind and response.error

    server.handler = lambda request: (200, {"Content-Type": "text/event-stream"},
                                      sse({"jsonrpc": "2.0", "method": "n"}))
    replies(binding, command(call()))
    [ended] = warnings_of(caplog, "MCP stream ended before the response")
    assert ended.levelno == logging.WARNING
    assert (ended.channel, ended.request_id) == ("main", "req_1")


def test_a_deadline_passing_mid_answer_posts_nothing_and_says_so(mcp, caplog):
    import threading
    caplog.set_level(logging.INFO, logger="tunnel_client.mcpclient")
    release = threading.Event()
    server, binding = mcp(lambda request: (200, {"Content-Type": "text/event-stream"}, [
        b"data: {\"jsonrpc\":\"2.0\",\"method\":\"n\"}\n\n", lambda: release.wait(10)]))
    try:
        got = replies(binding, command(call()), wire.Deadline.after(0.5))
    finally:
        release.set()
    assert [r.resp_type for r in got] == ["jsonrpc_notify"]
    [dropped] = warnings_of(caplog, "command response deadline reached; dropping without "
                                    "posting a response")
    assert dropped.levelno == logging.INFO and dropped.request_id == "req_1"
