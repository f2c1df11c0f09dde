"""The response POST's retry rules against a loopback control plane, in process: which
statuses are retried for which replies, and the gate pause a Retry-After imposes."""

import json
import logging
import socket
import threading
import time

import pytest
import requests

from tests.support.servers import Scripted
from tunnel_client import __version__, controlplane, wire
from tunnel_client.controlplane import (POLL, BackoffGate, ControlPlane, TunnelMetadata,
                                        parse_api_error)
from tunnel_client.config.values import HeaderList
from tunnel_client.errors import ControlPlaneError
from tunnel_client.net import Backoff, Route

TUNNEL = "tunnel_" + "c" * 32


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    # The retry rules are under test here, not the backoff's length.
    monkeypatch.setattr(controlplane, "POST_BACKOFF", Backoff(initial=0.001, maximum=0.001))


@pytest.fixture
def plane_for():
    """plane_for(handler, **kwargs) -> (server, control plane) for any scripted answers."""
    opened = []

    def start(handler, **kwargs):
        server = Scripted(handler)
        plane = ControlPlane(Route("control-plane", server.url[:-len("/mcp")], None, "test"),
                             TUNNEL, "sk-unit-key", **kwargs)
        opened.append((server, plane))
        return server, plane

    yield start
    for server, plane in opened:
        plane.close()
        server.close()


@pytest.fixture
def answering(plane_for):
    """answering(*statuses, headers=None) -> (server, control plane); the server answers
    response POSTs with the statuses in turn, then 200."""

    def start(*statuses, headers=None):
        queue = list(statuses)

        def handler(request):
            status = queue.pop(0) if queue else 200
            return status, (headers or {}) if status != 200 else {}, b"{}"

        return plane_for(handler)

    return start


@pytest.fixture
def held(plane_for):
    """held(**kwargs) -> control plane whose server holds every answer until the test ends,
    so the client's own timeouts are what ends each request."""
    release = threading.Event()

    def slow(request):
        release.wait(10)
        return 200, {}, b"{}"

    yield lambda **kwargs: plane_for(slow, **kwargs)[1]
    release.set()


def command(rpc_id=1):
    return wire.parse_command({"request_id": "req_1", "shard_token": "shard",
                               "command_type": "jsonrpc", "channel": "main",
                               "jsonrpc": {"jsonrpc": "2.0", "id": rpc_id,
                                           "method": "tools/call"}}, time.monotonic())


def progress():
    return wire.notify(wire.dumps({"jsonrpc": "2.0", "method": "notifications/progress",
                                   "params": {"progressToken": "t", "progress": 1}}), 200)


def answer():
    return wire.response(wire.dumps({"jsonrpc": "2.0", "id": 1, "result": {}}), 200)


def posts(server):
    return [r for r in server.requests if r["method"] == "POST"]


@pytest.mark.parametrize("status", [408, 502, 503, 504])
def test_a_notification_post_is_never_retried_on_a_status_that_may_follow_delivery(
        answering, status):
    server, plane = answering(status)
    outcome = plane.post(command(), progress(), wire.NO_DEADLINE)
    assert outcome == "failed"
    assert len(posts(server)) == 1, "a notification must never be duplicated"


def test_a_notification_post_is_retried_on_429(answering):
    server, plane = answering(429)
    assert plane.post(command(), progress(), wire.NO_DEADLINE) == "ok"
    assert len(posts(server)) == 2


@pytest.mark.parametrize("status", [408, 502, 504])
def test_a_terminal_post_is_retried_with_the_same_body(answering, status):
    server, plane = answering(status)
    assert plane.post(command(), answer(), wire.NO_DEADLINE) == "ok"
    sent = posts(server)
    assert len(sent) == 2 and sent[0]["body"] == sent[1]["body"]
    assert sent[0]["headers"]["x-tunnel-shard-token"] == "shard"


@pytest.mark.parametrize("status", [400, 413, 500])
def test_a_terminal_post_is_not_retried_on_other_statuses(answering, status):
    server, plane = answering(status)
    assert plane.post(command(), answer(), wire.NO_DEADLINE) == "failed"
    assert len(posts(server)) == 1


def test_retry_after_on_a_503_response_post_pauses_the_polls(answering):
    server, plane = answering(503, headers={"Retry-After": "30"})
    assert plane.post(command(), progress(), wire.NO_DEADLINE) == "failed"  # not retried
    assert plane.gate.paused_for() > 20
    assert "Retry-After" in plane.gate.reason


def test_retry_after_on_a_429_response_post_pauses_the_polls(answering):
    # Retried only after Retry-After, which is beyond this deadline: the post gives up.
    server, plane = answering(429, 429, 429, headers={"Retry-After": "30"})
    assert plane.post(command(), answer(), wire.Deadline.after(5.0)) == "expired"
    assert len(posts(server)) == 1
    assert plane.gate.paused_for() > 20


def test_retry_after_on_another_status_does_not_pause_the_polls(answering):
    server, plane = answering(500, headers={"Retry-After": "30"})
    plane.post(command(), answer(), wire.NO_DEADLINE)
    assert plane.gate.paused_for() == 0


def test_a_failure_while_paused_does_not_count_again():
    gate = BackoffGate()
    gate.failure(ControlPlaneError("down", status=503))
    gate.failure(ControlPlaneError("down", status=503))
    assert gate.failures == 1
    assert gate.paused_for() > 0


def test_after_a_success_every_worker_polls_and_after_a_failure_one_probes():
    gate = BackoffGate()
    stop = threading.Event()
    assert gate.wait(stop) == "probe"
    gate.success(time.monotonic())
    assert gate.wait(stop) == POLL and gate.wait(stop) == POLL
    stop.set()
    assert gate.wait(stop) is None



# --- poll and metadata ----------------------------------------------------------------


def polled(body, status=200, headers=None):
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return lambda request: (status, headers or {"Content-Type": "application/json"}, payload)


def test_a_poll_sends_the_identity_headers_and_the_documented_query(plane_for):
    server, plane = plane_for(lambda r: (204, {}, b""), poll_timeout=7.0,
                              channels=["zeta", "alpha"], organization_id="org_1",
                              instance_id="inst-1", server_info=lambda: '{"version":1}',
                              extra_headers={"X-Team": "blue",
                                             "X-Tunnel-Client-Instance-Id": "forged"})
    assert plane.poll() == ([], [])
    assert plane.poll(probe=True) == ([], [])
    poll, probe = server.requests
    prefix = "/v1/tunnels/%s/poll?channel=alpha&channel=zeta&limit=1" % TUNNEL
    assert poll["path"] == prefix + "&timeout_ms=7000"
    assert probe["path"] == prefix + "&timeout_ms=1"
    headers = poll["headers"]
    assert headers["authorization"] == "Bearer sk-unit-key"
    assert headers["accept"] == "application/json"
    assert headers["user-agent"].startswith("tunnel-client-python/")
    assert headers["x-tunnel-client-name"] == "tunnel-client-python"
    assert headers["x-tunnel-client-version"] == __version__
    assert headers["x-tunnel-client-instance-id"] == "inst-1"
    assert headers["openai-organization"] == "org_1"
    assert headers["x-team"] == "blue"
    assert headers["x-tunnel-mcp-server-info"] == '{"version":1}'
    assert plane.poll_window == 12.0 and plane.metadata_url.endswith("/v1/tunnels/" + TUNNEL)
    assert plane.response_url == plane.metadata_url + "/response"


def test_a_changed_server_info_is_sent_with_the_next_request(plane_for):
    info = ['{"version":1,"channels":[{"name":"main"}]}']
    server, plane = plane_for(lambda r: (204, {}, b""), server_info=lambda: info[0])
    plane.poll()
    info[0] = '{"version":1,"channels":[]}'
    plane.poll()
    assert [r["headers"]["x-tunnel-mcp-server-info"] for r in server.requests] == [
        '{"version":1,"channels":[{"name":"main"}]}', '{"version":1,"channels":[]}']


def test_extra_headers_from_the_configuration(plane_for):
    server, plane = plane_for(lambda r: (204, {}, b""),
                              extra_headers=HeaderList((("X-Team", "red"),)))
    plane.poll()
    assert server.requests[0]["headers"]["x-team"] == "red"


def test_no_organization_header_without_an_organization(plane_for):
    server, plane = plane_for(lambda r: (204, {}, b""))
    plane.poll()
    assert "openai-organization" not in server.requests[0]["headers"]
    assert "x-tunnel-mcp-server-info" not in server.requests[0]["headers"]


def test_a_poll_with_commands_returns_them_and_the_skipped_ones(plane_for):
    server, plane = plane_for(polled({"commands": [
        {"request_id": "req_1", "shard_token": "s", "command_type": "jsonrpc",
         "jsonrpc": {"jsonrpc": "2.0", "id": 1, "method": "ping"}},
        {"request_id": "req_2", "command_type": "teleport"}]}))
    before = time.monotonic()
    commands, skipped = plane.poll()
    assert [c.request_id for c in commands] == ["req_1"]
    assert commands[0].received_at >= before
    assert [s.request_id for s in skipped] == ["req_2"]
    assert plane.metrics.polled.value() == 1


@pytest.mark.parametrize("status,body,expected", [
    (401, {"error": {"message": "Incorrect API key", "code": "invalid_api_key",
                     "type": "invalid_request_error"}},
     "poll failed: HTTP 401 invalid_api_key: Incorrect API key (check control_plane.api_key: "
     "the control plane rejected the key)"),
    (403, {"error": {"message": "nope"}},
     "poll failed: HTTP 403: nope (the key lacks the tunnel permission "
     "(api.organization.tunnel.use))"),
    (403, {"error": {"message": "x", "code": "tunnel_use_forbidden"}},
     "poll failed: HTTP 403 tunnel_use_forbidden: x (use an API key of a principal that may "
     "use this tunnel, or recreate the tunnel in the key's organization or workspace)"),
    (500, b"plain text", "poll failed: HTTP 500: plain text"),
    (502, b"", "poll failed: HTTP 502"),
])
def test_a_refused_poll_is_one_clear_error(plane_for, status, body, expected):
    server, plane = plane_for(polled(body, status, {"X-Request-Id": "req-abc",
                                                    "Retry-After": "3"}))
    with pytest.raises(ControlPlaneError) as failure:
        plane.poll()
    error = failure.value
    assert str(error) == expected
    assert (error.status, error.retry_after, error.request_id) == (status, 3.0, "req-abc")
    assert error.is_auth == (status in (401, 403))
    assert not error.transport


def test_a_proxy_rejecting_credentials_is_named(plane_for):
    server, plane = plane_for(polled(b"", 407))
    with pytest.raises(ControlPlaneError) as failure:
        plane.poll()
    assert "the proxy rejected the credentials (407 Proxy Authentication Required)" in \
        str(failure.value)
    assert failure.value.status == 407 and failure.value.transport


@pytest.mark.parametrize("body", [b"{", b'{"commands": 5}'])
def test_a_malformed_poll_answer_is_a_protocol_failure(plane_for, body):
    server, plane = plane_for(polled(body))
    with pytest.raises(ControlPlaneError) as failure:
        plane.poll()
    assert str(failure.value).startswith("poll failed: poll response is not")
    assert failure.value.status == 200


def test_an_unreachable_control_plane_is_a_transport_error():
    plane = ControlPlane(Route("control-plane", "http://127.0.0.1:9", None, "test"), TUNNEL,
                         "sk-unit-key", connect_timeout=2)
    try:
        with pytest.raises(ControlPlaneError) as failure:
            plane.poll()
        error = failure.value
        assert error.transport and error.status is None and error.code == "connect"
        assert str(error) == "poll failed: " + error.summary
        assert error.kind == "connection_refused" and error.detail not in (None, error.summary)
        assert plane.metrics.poll_errors.value(error_kind="connection_refused") == 1
        with pytest.raises(ControlPlaneError) as metadata:
            plane.metadata(timeout=2)
        assert str(metadata.value).startswith("tunnel metadata fetch failed: ")
    finally:
        plane.close()


def test_a_stopping_control_plane_polls_no_more(plane_for):
    server, plane = plane_for(lambda r: (204, {}, b""))
    plane.interrupt_polls()
    with pytest.raises(ControlPlaneError, match="poll skipped: stopping"):
        plane.poll()
    assert server.requests == []


def test_metadata(plane_for):
    server, plane = plane_for(polled({"id": TUNNEL, "name": "prod", "description": "d"}))
    assert plane.metadata() == TunnelMetadata(TUNNEL, "prod", "d")
    assert server.requests[0]["path"] == "/v1/tunnels/" + TUNNEL
    assert server.requests[0]["method"] == "GET"
    assert server.requests[0]["headers"]["authorization"] == "Bearer sk-unit-key"


@pytest.mark.parametrize("status,body,expected", [
    (200, b"[1]", "tunnel metadata fetch failed: response is not an object"),
    (200, b"{", "tunnel metadata fetch failed: response is not JSON"),
    (404, {"error": {"message": "no such tunnel", "code": "invalid_tunnel_id_format"}},
     "tunnel metadata fetch failed: HTTP 404 invalid_tunnel_id_format: no such tunnel (use "
     "the exact tunnel ID from the tunnel settings page in control_plane.tunnel_id)"),
])
def test_metadata_failures(plane_for, status, body, expected):
    server, plane = plane_for(polled(body, status))
    with pytest.raises(ControlPlaneError) as failure:
        plane.metadata()
    assert str(failure.value) == expected


def test_metadata_fields_default_to_empty(plane_for):
    server, plane = plane_for(polled({"id": 7}))
    assert plane.metadata() == TunnelMetadata("7", "", "")


@pytest.mark.parametrize("body,expected", [
    (b'{"error": {"code": "c", "message": "m", "type": "t"}}', ("c", "m", "t")),
    (b'{"code": "c", "message": "m"}', ("c", "m", None)),
    (b'{"detail": "d"}', (None, "d", None)),
    (b'{"error": {"code": 5, "type": 6, "message": ""}, "detail": "d"}', (None, "d", None)),
    (b'["x"]', (None, "['x']", None)),
    (b"  not json  ", (None, "not json", None)),
    (b"\xff", (None, "\ufffd", None)),
    (b'{"error": {"message": "caf\xff"}}', (None, "caf\ufffd", None)),
    (b"x" * 2000, (None, "x" * 1024, None)),
    (b"[" + b'"y",' * 400 + b'"y"]', (None, str(["y"] * 401)[:1024], None)),
])
def test_api_error_bodies_in_every_shape(body, expected):
    assert parse_api_error(body) == expected


def test_a_post_sends_the_shard_token_and_the_callers_request_id(answering):
    server, plane = answering()
    cmd = wire.parse_command({"request_id": "req_9", "shard_token": "shard-9",
                              "command_type": "jsonrpc", "headers": {"X-Request-Id": "cr-1"},
                              "jsonrpc": {"jsonrpc": "2.0", "id": 1, "method": "x"}},
                             time.monotonic())
    assert plane.post(cmd, answer(), wire.NO_DEADLINE) == "ok"
    [sent] = posts(server)
    assert sent["path"] == "/v1/tunnels/%s/response" % TUNNEL
    assert sent["headers"]["x-tunnel-shard-token"] == "shard-9"
    assert sent["headers"]["x-client-request-id"] == "cr-1"
    assert sent["headers"]["content-type"] == "application/json"
    assert sent["json"]["request_id"] == "req_9"


def test_a_post_after_the_deadline_is_not_sent(answering):
    server, plane = answering()
    expired = wire.Deadline(time.monotonic() - 1)
    assert plane.post(command(), answer(), expired) == "expired"
    assert posts(server) == []


def test_a_404_post_is_final(answering):
    server, plane = answering(404)
    assert plane.post(command(), answer(), wire.NO_DEADLINE) == "gone"
    assert len(posts(server)) == 1


def test_a_terminal_post_gives_up_after_three_attempts(answering):
    server, plane = answering(503, 503, 503, 503)
    assert plane.post(command(), answer(), wire.NO_DEADLINE) == "failed"
    assert len(posts(server)) == 3
    assert plane.metrics.post_retries.value(resp_type="jsonrpc_response") == 2


# --- the gate, transport failures, metrics and interruption -----------------------------


def test_the_gate_pauses_by_its_policy_and_an_auth_failure_by_the_long_one():
    gate = BackoffGate(policy=Backoff(initial=2.0, jitter=0.0),
                       auth_policy=Backoff(initial=40.0, maximum=300.0, jitter=0.0))
    stop = threading.Event()
    assert gate.wait(stop) == "probe"
    pause = gate.failure(ControlPlaneError("HTTP 503", status=503))
    assert 1.9 < pause <= 2.0 and gate.failures == 1 and gate.reason == "HTTP 503"
    longer = gate.failure(ControlPlaneError("HTTP 429", status=429, retry_after=9.0))
    assert 8.9 < longer <= 9.0 and gate.failures == 1, "a failure while paused never counts"
    gate.success(time.monotonic())
    assert gate.paused_for() == 0 and gate.reason == "" and gate.failures == 0
    assert 39.9 < gate.failure(ControlPlaneError("HTTP 401", status=401)) <= 40.0
    gate.pause(50.0, "told to wait")
    assert 49.9 < gate.paused_for() <= 50.0 and gate.reason == "told to wait"
    gate.pause(1.0, "shorter")
    assert gate.paused_for() > 49, "a shorter pause never cuts a longer one"
    gate.close()
    assert gate.wait(stop) is None


def test_a_second_worker_waits_for_the_probe_and_a_failed_probe_passes_the_turn():
    gate = BackoffGate(policy=Backoff(initial=0.001, jitter=0.0))
    stop = threading.Event()
    assert gate.wait(stop) == "probe"
    gate.failure(ControlPlaneError("down", status=503))
    assert gate.wait(stop) == "probe", "after the pause, the next worker probes"


def hang_up(request):
    raise ConnectionResetError("the server hung up without answering")


def test_a_notification_whose_post_may_have_arrived_is_not_retried(plane_for):
    server, plane = plane_for(hang_up)
    assert plane.post(command(), progress(), wire.NO_DEADLINE) == "failed"
    assert len(posts(server)) == 1
    assert plane.metrics.posts.value(resp_type="jsonrpc_notify", outcome="failed") == 1


def test_a_terminal_post_is_retried_after_a_transport_error(plane_for):
    server, plane = plane_for(hang_up)
    assert plane.post(command(), answer(), wire.NO_DEADLINE) == "failed"
    assert len(posts(server)) == 3


def test_a_notification_that_never_left_is_retried():
    plane = ControlPlane(Route("control-plane", "http://127.0.0.1:9", None, "test"), TUNNEL,
                         "sk-unit-key", connect_timeout=2)
    try:
        assert plane.post(command(), progress(), wire.NO_DEADLINE) == "failed"
        assert plane.metrics.post_retries.value(resp_type="jsonrpc_notify") == 2
    finally:
        plane.close()


def test_a_retry_that_would_outlast_the_deadline_is_not_made(answering, monkeypatch):
    monkeypatch.setattr(controlplane, "POST_BACKOFF", Backoff(initial=30.0, jitter=0.0))
    server, plane = answering(503)
    assert plane.post(command(), answer(), wire.Deadline.after(10.0)) == "expired"
    assert len(posts(server)) == 1
    assert plane.metrics.posts.value(resp_type="jsonrpc_response", outcome="expired") == 1


@pytest.mark.parametrize("exc,before", [
    (requests.ConnectTimeout("x"), True),
    (requests.ConnectionError(type("NewConnectionError", (Exception,), {})("x")), True),
    (requests.ConnectionError(type("NameResolutionError", (Exception,), {})("x")), True),
    (requests.ReadTimeout("x"), False),
    (requests.ConnectionError(ConnectionResetError(104, "x")), False)])
def test_which_failures_certainly_happened_before_sending(exc, before):
    assert controlplane._failed_before_send(exc) is before


def test_poll_metrics(plane_for):
    server, plane = plane_for(lambda r: (204, {}, b""))
    plane.poll()
    assert plane.metrics.poll_cycles.value() == 1
    assert plane.metrics.poll_last_success.value() > 0
    assert plane.metrics.polled.value() == 0
    server.handler = lambda r: (503, {}, b"")
    with pytest.raises(ControlPlaneError):
        plane.poll()
    assert plane.metrics.poll_errors.value(error_kind="server_error") == 1
    assert plane.metrics.poll_cycles.value() == 1
    assert plane.metrics.poll_latency.count(error="false") == 1
    assert plane.metrics.poll_latency.count(error="true") == 1


def test_more_commands_than_asked_for_are_served_and_logged(plane_for, caplog):
    commands = [{"request_id": "req_%d" % i, "shard_token": "s", "command_type": "jsonrpc",
                 "jsonrpc": {"jsonrpc": "2.0", "id": i, "method": "ping"}} for i in range(2)]
    server, plane = plane_for(polled({"commands": commands}))
    with caplog.at_level(logging.ERROR, logger="tunnel_client.controlplane"):
        got, _ = plane.poll()
    assert len(got) == 2
    [record] = [r for r in caplog.records if "more commands" in r.getMessage()]
    assert record.getMessage() == "control-plane returned more commands than requested limit"
    assert (record.limit, record.count) == (1, 2)


def test_interrupting_ends_a_waiting_long_poll_at_once(plane_for):
    release = threading.Event()

    def hold(request):
        release.wait(30)
        return 204, {}, b""
    server, plane = plane_for(hold, poll_timeout=20.0)
    outcome = {}

    def poll():
        try:
            outcome["result"] = plane.poll()
        except ControlPlaneError as exc:
            outcome["error"] = exc
    worker = threading.Thread(target=poll)
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.01)  # bounded polling for the request to arrive
        assert server.requests, "the poll never reached the server"
        plane.interrupt_polls()
        worker.join(5)
        assert not worker.is_alive(), "the long poll outlived interrupt_polls"
        assert "error" in outcome and outcome["error"].transport
    finally:
        release.set()


def test_raw_http_dumps_of_polls_and_posts(plane_for, monkeypatch):
    from tunnel_client.observe import logs
    seen = []
    monkeypatch.setattr(logs.RawHttp, "exchange", classmethod(
        lambda cls, *args: seen.append(args)))
    server, plane = plane_for(lambda r: (204, {"X-Poll": "p"}, b"") if r["method"] == "GET"
                              else (200, {"X-Post": "q"}, b'{"status":"ok"}'))
    plane.poll()
    plane.post(command(), answer(), wire.NO_DEADLINE)
    (poll, post) = seen
    assert poll[:4] == ("control-plane", "GET", plane.poll_url, 204)
    assert poll[4]["Authorization"] == "Bearer sk-unit-key" and poll[5] is None
    assert poll[6]["X-Poll"] == "p" and poll[7] == b""
    assert post[:4] == ("control-plane", "POST", plane.response_url, 200)
    assert post[4]["X-Tunnel-Shard-Token"] == "shard"
    assert json.loads(post[5])["request_id"] == "req_1"
    assert post[6]["X-Post"] == "q" and post[7] == b'{"status":"ok"}'


def test_error_details_are_kept_on_the_error(plane_for):
    server, plane = plane_for(polled({"error": {"code": "rate_limit_exceeded", "message": "m"}},
                                     429, {"Retry-After": "2", "X-Request-Id": "rq"}))
    with pytest.raises(ControlPlaneError) as failure:
        plane.poll()
    error = failure.value
    assert (error.code, error.retry_after, error.request_id) == ("rate_limit_exceeded", 2.0,
                                                                 "rq")
    assert "(reduce MCP request volume; the client backs off automatically)" in str(error)
    server.handler = polled({"error": {}}, 500)
    with pytest.raises(ControlPlaneError) as bare:
        plane.poll()
    assert str(bare.value) == "poll failed: HTTP 500"
    assert bare.value.code is None


def test_the_proxy_rejection_reads_in_full(plane_for):
    server, plane = plane_for(polled(b"", 407))
    with pytest.raises(ControlPlaneError) as failure:
        plane.metadata()
    assert str(failure.value) == (
        "tunnel metadata fetch failed: the proxy rejected the credentials (407 Proxy "
        "Authentication Required); check the user and password in the proxy URL")


def test_a_poll_that_outlasts_its_window_is_counted_as_a_timeout(held):
    plane = held(poll_timeout=0.2, guardrail=0.1)
    with pytest.raises(ControlPlaneError) as failure:
        plane.poll()
    assert failure.value.code == "timeout" and failure.value.transport
    assert plane.metrics.poll_errors.value(error_kind="timeout") == 1
    assert plane.metrics.poll_errors.value(error_kind="other") == 0


def test_one_command_and_one_skipped_element_are_more_than_the_limit(plane_for, caplog):
    server, plane = plane_for(polled({"commands": [
        {"request_id": "req_1", "shard_token": "s", "command_type": "jsonrpc",
         "jsonrpc": {"jsonrpc": "2.0", "id": 1, "method": "ping"}},
        {"request_id": "req_2", "command_type": "teleport"}]}))
    with caplog.at_level(logging.ERROR, logger="tunnel_client.controlplane"):
        plane.poll()
        server.handler = polled({"commands": [{"request_id": "req_3", "shard_token": "s",
                                               "command_type": "jsonrpc", "jsonrpc": {
                                                   "jsonrpc": "2.0", "id": 1,
                                                   "method": "ping"}}]})
        plane.poll()
    [record] = [r for r in caplog.records if "more commands" in r.getMessage()]
    assert record.count == 2


def test_a_skipped_poll_while_stopping_is_a_transport_error(plane_for):
    server, plane = plane_for(lambda r: (204, {}, b""))
    plane.interrupt_polls()
    with pytest.raises(ControlPlaneError) as failure:
        plane.poll()
    assert failure.value.transport is True


# --- exact texts, limits and fields ----------------------------------------------------


def test_a_long_error_message_is_cut_at_200_characters(plane_for):
    server, plane = plane_for(polled({"error": {"message": "m" * 201}}, 400))
    with pytest.raises(ControlPlaneError) as failure:
        plane.poll()
    assert str(failure.value) == "poll failed: HTTP 400: " + "m" * 200 + "..."
    assert failure.value.summary == "HTTP 400: " + "m" * 200 + "..."
    assert failure.value.detail == "m" * 201
    server.handler = polled({"error": {"message": "m" * 200}}, 400)
    with pytest.raises(ControlPlaneError) as exact:
        plane.poll()
    assert str(exact.value) == "poll failed: HTTP 400: " + "m" * 200


def test_an_error_without_a_message_has_no_detail(plane_for):
    server, plane = plane_for(polled(b"", 500, {"X-Request-Id": "rq-1"}))
    with pytest.raises(ControlPlaneError) as failure:
        plane.poll()
    error = failure.value
    assert (error.detail, error.summary, error.kind) == (None, "HTTP 500", "server_error")
    assert (error.retry_after, error.request_id) == (None, "rq-1")


def test_the_proxy_rejection_fields(plane_for):
    server, plane = plane_for(polled({"error": {"code": "x", "message": "m"}}, 407))
    with pytest.raises(ControlPlaneError) as failure:
        plane.poll()
    error = failure.value
    assert error.summary == ("the proxy rejected the credentials (407 Proxy Authentication "
                             "Required); check the user and password in the proxy URL")
    assert (error.status, error.code, error.kind) == (407, None, "proxy_auth")
    assert str(error) == "poll failed: " + error.summary


def test_an_api_error_body_is_read_up_to_the_limit():
    big = b'{"error": {"message": "' + b"a" * (controlplane.ERROR_BODY_LIMIT - 40) + b'"}}'
    assert parse_api_error(big)[1] == "a" * (controlplane.ERROR_BODY_LIMIT - 40)
    too_big = b'{"detail": "' + b"a" * controlplane.ERROR_BODY_LIMIT + b'"}'
    assert parse_api_error(too_big) == (None, too_big[:1024].decode(), None)


def test_the_poll_window_is_capped_at_ten_minutes_and_the_probe_at_one_ms(plane_for):
    server, plane = plane_for(lambda r: (204, {}, b""), poll_timeout=700.0, guardrail=5.0)
    assert plane.poll_window == 600.0
    assert plane.poll_url.endswith("?limit=1&timeout_ms=700000")
    assert plane.probe_url.endswith("?limit=1&timeout_ms=1")
    server, plane = plane_for(lambda r: (204, {}, b""), poll_timeout=0.0001)
    assert plane.probe_url.endswith("?limit=1&timeout_ms=1")
    assert plane.poll_url.endswith("?limit=1&timeout_ms=0")


def test_the_urls_quote_the_tunnel_and_channels_and_keep_the_path_prefix():
    route = Route("control-plane", "http://cp.example/", None, "test")
    plane = ControlPlane(route, "a/b c", "k", url_path="/api", channels=["x y"],
                         poll_timeout=1.5)
    try:
        assert plane.metadata_url == "http://cp.example/api/v1/tunnels/a%2Fb%20c"
        assert plane.response_url == "http://cp.example/api/v1/tunnels/a%2Fb%20c/response"
        assert plane.poll_url == ("http://cp.example/api/v1/tunnels/a%2Fb%20c/poll?"
                                  "channel=x%20y&limit=1&timeout_ms=1500")
    finally:
        plane.close()


def test_the_auth_backoff_setting_is_the_first_auth_pause():
    route = Route("control-plane", "http://cp.example", None, "test")
    plane = ControlPlane(route, TUNNEL, "k", auth_backoff=500.0)
    try:
        policy = plane.gate.auth_policy
        assert (policy.initial, policy.maximum, policy.jitter) == (500.0, 500.0, 0.1)
        assert plane.gate.policy is controlplane.POLL_BACKOFF
    finally:
        plane.close()
    plane = ControlPlane(route, TUNNEL, "k", auth_backoff=2.0)
    try:
        assert (plane.gate.auth_policy.initial, plane.gate.auth_policy.maximum) == (2.0, 300.0)
    finally:
        plane.close()


def test_a_forged_instance_id_header_is_ignored_with_a_warning(plane_for, caplog):
    with caplog.at_level(logging.WARNING, logger="tunnel_client.controlplane"):
        server, plane = plane_for(lambda r: (204, {}, b""), instance_id="mine",
                                  extra_headers=[("x-tunnel-client-instance-id", "forged")])
    assert [r.getMessage() for r in caplog.records] == [
        "ignoring extra header X-Tunnel-Client-Instance-Id; the client sets its own"]
    plane.poll()
    assert server.requests[0]["headers"]["x-tunnel-client-instance-id"] == "mine"


def test_no_extra_headers_at_all(plane_for):
    server, plane = plane_for(lambda r: (204, {}, b""), extra_headers=None)
    plane.poll()
    assert server.requests[0]["headers"]["authorization"] == "Bearer sk-unit-key"


def test_a_post_without_a_callers_request_id_sends_none(answering):
    server, plane = answering()
    assert plane.post(command(), answer(), wire.NO_DEADLINE) == "ok"
    [sent] = posts(server)
    assert "x-client-request-id" not in sent["headers"]
    assert sent["headers"]["authorization"] == "Bearer sk-unit-key"
    assert plane.metrics.posts.value(resp_type="jsonrpc_response", outcome="ok") == 1
    assert plane.metrics.post_retries.value(resp_type="jsonrpc_response") == 0


def test_the_post_logs_name_the_request_and_the_problem(answering, caplog, monkeypatch):
    monkeypatch.setattr(controlplane, "POST_BACKOFF", Backoff(initial=0.002, jitter=0.0))
    server, plane = answering(503, 404)
    with caplog.at_level(logging.INFO, logger="tunnel_client.controlplane"):
        assert plane.post(command(), answer(), wire.NO_DEADLINE) == "gone"
    retry, gone = caplog.records
    assert retry.getMessage() == "response post failed; retrying"
    assert (retry.request_id, retry.resp_type, retry.resp_code) == (
        "req_1", "jsonrpc_response", 200)
    assert (retry.problem, retry.attempt, retry.retry_in_ms) == ("HTTP 503", 1, 2)
    assert gone.getMessage() == "response already fulfilled or unknown request"
    assert gone.levelno == logging.WARNING and gone.status == 404
    assert plane.metrics.posts.value(resp_type="jsonrpc_response", outcome="gone") == 1


def test_the_post_logs_when_it_gives_up(answering, caplog):
    server, plane = answering(502, 502, 502)
    with caplog.at_level(logging.INFO, logger="tunnel_client.controlplane"):
        assert plane.post(command(), answer(), wire.NO_DEADLINE) == "failed"
    *retries, final = caplog.records
    assert [r.attempt for r in retries] == [1, 2]
    assert final.getMessage() == "failed to post response to control plane"
    assert final.levelno == logging.ERROR
    assert (final.attempts, final.problem, final.request_id) == (3, "HTTP 502", "req_1")
    server2, plane2 = answering(400)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tunnel_client.controlplane"):
        assert plane2.post(command(), answer(), wire.NO_DEADLINE) == "failed"
    [refused] = caplog.records
    assert refused.getMessage() == "failed to post response to control plane"
    assert refused.levelno == logging.ERROR and refused.status == 400
    assert plane2.metrics.posts.value(resp_type="jsonrpc_response", outcome="failed") == 1


# --- the gate's hand-offs between workers ----------------------------------------------


def waiting(gate, stop):
    """Start a worker blocked in gate.wait(); returns (thread, outcome list)."""
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(gate.wait(stop)), daemon=True)
    worker.start()
    return worker, outcome


def finished(worker, outcome):
    worker.join(5)
    assert not worker.is_alive(), "the waiting worker was never woken"
    return outcome[0]


def test_a_probe_success_wakes_the_waiting_workers_to_poll():
    gate, stop = BackoffGate(), threading.Event()
    assert gate.wait(stop) == "probe"
    worker, outcome = waiting(gate, stop)
    assert gate.success(time.monotonic()) is True
    assert finished(worker, outcome) == POLL


def test_closing_the_gate_wakes_the_waiting_workers():
    gate, stop = BackoffGate(), threading.Event()
    assert gate.wait(stop) == "probe"
    worker, outcome = waiting(gate, stop)
    gate.close()
    assert finished(worker, outcome) is None


def test_a_probe_failure_hands_the_probe_to_a_waiting_worker():
    gate, stop = BackoffGate(policy=Backoff(initial=0.001, jitter=0.0)), threading.Event()
    assert gate.wait(stop) == "probe"
    worker, outcome = waiting(gate, stop)
    gate.failure(ControlPlaneError("down", status=503))
    assert finished(worker, outcome) == "probe"


def test_a_success_overtaken_by_a_failure_does_not_count_but_frees_the_probe():
    gate, stop = BackoffGate(policy=Backoff(initial=0.001, jitter=0.0)), threading.Event()
    assert gate.wait(stop) == "probe"
    sent = time.monotonic()
    gate.failure(ControlPlaneError("down", status=503))  # another worker's poll, later
    assert gate.success(sent) is False
    assert gate.reason == "down"
    worker, outcome = waiting(gate, stop)
    assert finished(worker, outcome) == "probe"
    assert gate.paused_for() == 0.0


def test_a_success_overtaken_by_a_response_posts_pause_counts_but_keeps_the_pause():
    gate, stop = BackoffGate(), threading.Event()
    assert gate.wait(stop) == "probe"
    sent = time.monotonic()
    gate.pause(0.001, "told to wait")
    assert gate.success(sent) is True
    assert gate.reason == "told to wait"
    worker, outcome = waiting(gate, stop)
    assert finished(worker, outcome) == POLL
    assert gate.paused_for() == 0.0


def test_a_failure_after_success_makes_the_next_worker_probe():
    gate, stop = BackoffGate(policy=Backoff(initial=0.001, jitter=0.0)), threading.Event()
    assert gate.wait(stop) == "probe"
    gate.success(time.monotonic())
    pause = gate.failure(ControlPlaneError("down", status=503))
    assert 0 < pause < 0.01, "no Retry-After: the policy alone sets the pause"
    assert gate.wait(stop) == "probe"


def test_a_pause_does_not_unprove_the_polls():
    gate, stop = BackoffGate(), threading.Event()
    assert gate.wait(stop) == "probe"
    gate.success(time.monotonic())
    gate.pause(0.001, "told to wait")
    assert gate.failures == 0
    assert gate.wait(stop) == POLL
    assert gate.paused_for() == 0.0


def test_the_backoff_grows_with_each_failure_after_a_pause():
    gate = BackoffGate(policy=Backoff(initial=0.001, factor=1000.0, maximum=60.0, jitter=0.0))
    stop = threading.Event()
    assert gate.wait(stop) == "probe"
    assert gate.failure(ControlPlaneError("down", status=503)) < 0.01
    assert gate.wait(stop) == "probe"
    assert 0.9 < gate.failure(ControlPlaneError("down", status=503)) <= 1.0
    assert gate.failures == 2 and gate.reason == "down"


# --- lanes and interruption ------------------------------------------------------------


class FakeConn:
    def __init__(self):
        self.sock, self.peer = socket.socketpair()


def test_a_connection_opened_by_a_poll_while_stopping_is_cut(plane_for):
    server, plane = plane_for(lambda r: (204, {}, b""))
    lane = plane._lane()
    conn, idle = FakeConn(), FakeConn()
    lane.connecting(conn)
    assert lane.opening is True
    lane.polling = True
    assert plane.opening_polls() == {threading.get_ident()}
    plane.interrupt_polls()
    lane.connected(conn)
    assert lane.opening is False and lane.conn is conn
    assert plane.opening_polls() == set()
    assert conn.peer.recv(1) == b"", "the poll's connection was not shut"
    lane.polling = False
    lane.connected(idle)
    idle.peer.setblocking(False)
    with pytest.raises(BlockingIOError):
        idle.peer.recv(1)  # a request other than a poll keeps its connection
    lane.connected(None)
    assert lane.conn is idle


def test_interrupting_cuts_only_the_lanes_waiting_for_a_poll(plane_for):
    server, plane = plane_for(lambda r: (204, {}, b""))
    lane = plane._lane()
    lane.conn = FakeConn()
    plane.interrupt_polls()
    lane.conn.peer.setblocking(False)
    with pytest.raises(BlockingIOError):
        lane.conn.peer.recv(1)
    lane.polling = True
    plane.interrupt_polls()
    assert lane.conn.peer.recv(1) == b""
    plane.interrupt_polls()  # already shut: the OSError is swallowed
    lane.conn = None
    plane.interrupt_polls()


# --- poll and post details -------------------------------------------------------------


def test_a_malformed_poll_answer_is_counted_as_a_protocol_error(plane_for):
    server, plane = plane_for(polled(b'{"commands": 5}'))
    with pytest.raises(ControlPlaneError) as failure:
        plane.poll()
    assert failure.value.summary.startswith("invalid poll response: poll response is not")
    assert failure.value.kind == "protocol" and not failure.value.transport
    assert plane.metrics.poll_errors.value(error_kind="protocol") == 1
    assert plane.metrics.poll_latency.count(error="true") == 1


def test_every_polled_command_is_counted(plane_for):
    commands = [{"request_id": "req_%d" % i, "shard_token": "s", "command_type": "jsonrpc",
                 "jsonrpc": {"jsonrpc": "2.0", "id": i, "method": "ping"}} for i in range(3)]
    server, plane = plane_for(polled({"commands": commands}))
    plane.poll()
    assert plane.metrics.polled.value() == 3


def test_metadata_sends_the_server_info(plane_for):
    server, plane = plane_for(polled({"id": TUNNEL}), server_info=lambda: '{"version":1}')
    plane.metadata()
    assert server.requests[0]["headers"]["x-tunnel-mcp-server-info"] == '{"version":1}'


@pytest.mark.parametrize("status", [502, 504])
def test_retry_after_on_a_retried_gateway_error_does_not_pause_the_polls(answering, status):
    server, plane = answering(status, headers={"Retry-After": "1"})
    assert plane.post(command(), answer(), wire.NO_DEADLINE) == "ok"
    assert plane.gate.paused_for() == 0 and plane.gate.reason == ""


def test_the_pause_from_a_response_post_names_the_status(answering):
    server, plane = answering(429, headers={"Retry-After": "30"})
    plane.post(command(), progress(), wire.Deadline.after(5.0))
    assert plane.gate.reason == "response POST got 429 with Retry-After"
    assert plane.gate.failures == 0


def test_an_undelivered_notification_is_logged_as_not_retried(plane_for, caplog):
    server, plane = plane_for(hang_up)
    with caplog.at_level(logging.WARNING, logger="tunnel_client.controlplane"):
        plane.post(command(), progress(), wire.NO_DEADLINE)
    [record] = caplog.records
    assert record.getMessage() == ("response post failed; not retried because the "
                                   "notification may have been delivered")
    assert record.request_id == "req_1" and record.resp_type == "jsonrpc_notify"
    assert record.error
    assert plane.metrics.post_retries.value(resp_type="jsonrpc_notify") == 0


def test_a_notification_retry_is_counted_by_its_type(answering):
    server, plane = answering(429)
    plane.post(command(), progress(), wire.NO_DEADLINE)
    assert plane.metrics.post_retries.value(resp_type="jsonrpc_notify") == 1
    assert plane.metrics.posts.value(resp_type="jsonrpc_notify", outcome="ok") == 1


# --- defaults, fields and the remaining edges --------------------------------------------


def latency_sum(plane, error):
    [line] = [line for line in plane.metrics.poll_latency.render()
              if line.startswith(plane.metrics.poll_latency.name + "_sum")
              and 'error="%s"' % error in line]
    return float(line.rsplit(" ", 1)[1])


def test_the_poll_latency_is_the_time_the_poll_took(plane_for):
    server, plane = plane_for(lambda r: (204, {}, b""))
    before = time.monotonic()
    plane.poll()
    server.handler = lambda r: (503, {}, b"")
    with pytest.raises(ControlPlaneError):
        plane.poll()
    assert 0 <= latency_sum(plane, "false") < before
    assert 0 <= latency_sum(plane, "true") < before


def test_the_defaults_and_the_kept_settings():
    route = Route("control-plane", "http://cp.example", None, "test")
    plane = ControlPlane(route, TUNNEL, "k")
    try:
        assert (plane.route, plane.tunnel_id, plane.poll_timeout) == (route, TUNNEL, 30.0)
        assert (plane.connect_timeout, plane.poll_window) == (10.0, 35.0)
        assert plane.poll_url.endswith("/poll?limit=1&timeout_ms=30000")
        assert plane._headers()["X-Tunnel-Client-Instance-Id"] == ""
        assert plane._lane() is plane._lane(), "one lane per thread, kept"
        assert plane._lane().polling is False and plane.opening_polls() == set()
        assert BackoffGate().reason == ""
    finally:
        plane.close()


def test_the_headers_after_a_forged_instance_id_are_kept(plane_for):
    server, plane = plane_for(lambda r: (204, {}, b""), extra_headers=[
        ("X-Tunnel-Client-Instance-Id", "forged"), ("X-Team", "blue")])
    plane.poll(probe=True)
    headers = server.requests[0]["headers"]
    assert headers["x-team"] == "blue" and headers["authorization"] == "Bearer sk-unit-key"


def test_a_poll_leaves_its_lane_idle(plane_for):
    server, plane = plane_for(lambda r: (204, {}, b""))
    plane.poll()
    assert plane._lane().polling is False


def test_the_stopping_error_reads_in_full(plane_for):
    server, plane = plane_for(lambda r: (204, {}, b""))
    plane.interrupt_polls()
    with pytest.raises(ControlPlaneError) as failure:
        plane.poll()
    assert str(failure.value) == "poll skipped: stopping"


def test_a_compressed_error_body_is_decoded(plane_for):
    import gzip
    body = gzip.compress(json.dumps({"error": {"message": "zipped", "code": "c"}}).encode())
    server, plane = plane_for(polled(body, 400, {"Content-Encoding": "gzip"}))
    with pytest.raises(ControlPlaneError) as failure:
        plane.poll()
    assert str(failure.value) == "poll failed: HTTP 400 c: zipped"


def test_an_unreadable_error_body_leaves_the_status():
    class Unreadable:
        def read(self, *args, **kwargs):
            raise OSError("gone")
    resp = requests.Response()
    resp.status_code, resp.raw = 500, Unreadable()
    error = controlplane.api_error(resp, "poll")
    assert str(error) == "poll failed: HTTP 500" and error.detail is None


def test_a_metadata_fetch_times_out_by_its_timeout(held):
    with pytest.raises(ControlPlaneError) as failure:
        held().metadata(timeout=0.2)
    assert failure.value.code == "timeout" and failure.value.transport


@pytest.mark.parametrize("body", [b"{", b"[1]"])
def test_a_metadata_answer_that_is_not_an_object_is_a_200_failure(plane_for, body):
    server, plane = plane_for(polled(body))
    with pytest.raises(ControlPlaneError) as failure:
        plane.metadata()
    assert failure.value.status == 200


def test_a_metadata_answer_without_an_id(plane_for):
    server, plane = plane_for(polled({"name": "n"}))
    assert plane.metadata() == TunnelMetadata("", "n", "")


def test_a_connect_timeout_deep_in_the_chain_happened_before_sending():
    inner = type("ConnectTimeoutError", (Exception,), {})("x")
    assert controlplane._failed_before_send(requests.ConnectionError(inner)) is True


def test_the_post_logs_of_a_hang_up_name_the_failure(plane_for, caplog):
    server, plane = plane_for(hang_up)
    with caplog.at_level(logging.INFO, logger="tunnel_client.controlplane"):
        plane.post(command(), progress(), wire.NO_DEADLINE)
        plane.post(command(), answer(), wire.NO_DEADLINE)
    notify, *retries, final = caplog.records
    assert "Remote end closed connection without response" in notify.error
    assert [r.problem for r in retries] == ["eof", "eof"] and final.problem == "eof"


def test_a_refused_or_gone_post_logs_the_request(answering, caplog):
    server, plane = answering(400, 404)
    with caplog.at_level(logging.INFO, logger="tunnel_client.controlplane"):
        plane.post(command(), answer(), wire.NO_DEADLINE)
        plane.post(command(), answer(), wire.NO_DEADLINE)
    refused, gone = caplog.records
    assert (refused.request_id, refused.resp_type, refused.status) == (
        "req_1", "jsonrpc_response", 400)
    assert (gone.request_id, gone.resp_type, gone.status) == ("req_1", "jsonrpc_response", 404)


def test_a_retry_waits_for_the_retry_after_of_the_answer(answering, caplog):
    server, plane = answering(502, headers={"Retry-After": "1"})
    with caplog.at_level(logging.INFO, logger="tunnel_client.controlplane"):
        assert plane.post(command(), answer(), wire.NO_DEADLINE) == "ok"
    [retry] = caplog.records
    assert retry.retry_in_ms == 1000


def test_a_post_waits_no_longer_than_the_poll_window(held):
    plane = held(poll_timeout=0.2, guardrail=0.1)
    assert plane.post(command(), progress(), wire.NO_DEADLINE) == "failed"


def test_an_unreachable_proxy_is_named_in_the_summary_and_the_detail():
    plane = ControlPlane(Route("control-plane", "http://cp.example", "http://127.0.0.1:9",
                               "test"), TUNNEL, "sk-unit-key", connect_timeout=2)
    try:
        with pytest.raises(ControlPlaneError) as poll:
            plane.poll()
        with pytest.raises(ControlPlaneError) as metadata:
            plane.metadata(timeout=2)
    finally:
        plane.close()
    for error in (poll.value, metadata.value):
        assert error.summary == "proxy http://127.0.0.1:9 unreachable: connection refused"
        assert error.detail.startswith("proxy http://127.0.0.1:9 failed: connection_refused")
        assert error.kind == "proxy_unreachable"
