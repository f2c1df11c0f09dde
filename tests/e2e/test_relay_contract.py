"""The local control plane speaks the wire as tests/contract/wire.schema.json describes it:
everything it emits validates, and a malformed poll or response gets a documented error
answer, never a crash."""

import json
import socket
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.support.calls import final, initialize, tool_call
from tests.support.contract import (assert_valid, documented, header_errors,
                                    stable_error_codes)
from tests.support.daemon import stub_command, wait_for
from tunnel_client.devtools.relay import Relay

OTHER_TUNNEL = "tunnel_" + "3" * 32


@pytest.fixture
def service(capfd):
    """A relay and a raw HTTP session acting as a tunnel client; fails the test if any
    request made a handler thread raise (socketserver prints those tracebacks)."""
    relay = Relay(response_timeout="5s", max_poll_wait=2.0).start()
    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = "Bearer " + relay.api_key
    yield relay, session
    session.close()
    relay.stop()
    assert "Traceback" not in capfd.readouterr().err


def url(relay, tail="", tunnel_id=None):
    return "%s/v1/tunnels/%s%s" % (relay.base_url, tunnel_id or relay.tunnel_id, tail)


def assert_error(resp, status, code=None, param=None, operation=None):
    """An error answer as the wire schema shapes it: the status, an error_response body, and
    for an ``operation`` a status (and stable code) that operation documents."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()
    assert_valid("error_response", body)
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    if param is not None:
        assert body["error"]["param"] == param, body
    if operation is not None:
        answer = documented(operation, status)
        assert answer, "%s is not documented for %s" % (status, operation)
        if code in stable_error_codes():
            assert code in answer.get("codes", []), "%s is not a %s code of %s" % (
                code, status, operation)
    return body


POLL, RESPONSE, METADATA = "poll", "respond", "metadata"  # the schema's operations


# --- what the relay emits ------------------------------------------------------------------


def test_metadata_poll_bodies_and_acks_validate(service):
    relay, session = service
    meta = session.get(url(relay), timeout=5)
    assert meta.status_code == 200
    assert_valid("tunnel_metadata", meta.json())
    assert meta.json()["id"] == relay.tunnel_id

    empty = session.get(url(relay, "/poll"), params={"timeout_ms": 50}, timeout=5)
    assert empty.status_code == 204 and empty.content == b""

    rpc = relay.submit(tool_call("echo", 7, input="x"), headers={"Mcp-Session-Id": "s1"})
    ending = relay.submit(None, headers={"Mcp-Session-Id": "s1"},
                          command_type="session_termination")
    untimed = relay.submit(initialize(), channel="other-1", response_timeout=None)
    polled = session.get(url(relay, "/poll"), params={"limit": 25, "timeout_ms": 1000},
                         timeout=5)
    assert polled.status_code == 200
    assert polled.headers["X-Request-Id"]
    body = polled.json()
    assert_valid("poll_body", body)
    by_id = {c["request_id"]: c for c in body["commands"]}
    assert set(by_id) == {rpc.request_id, ending.request_id, untimed.request_id}
    assert by_id[rpc.request_id]["jsonrpc"]["id"] == 7
    assert by_id[rpc.request_id]["response_timeout"] == "5s"
    assert by_id[rpc.request_id]["headers"] == {"Mcp-Session-Id": ["s1"]}
    assert by_id[ending.request_id]["command_type"] == "session_termination"
    assert "jsonrpc" not in by_id[ending.request_id]
    assert by_id[untimed.request_id]["channel"] == "other-1"
    assert "response_timeout" not in by_id[untimed.request_id]

    answers = [
        (rpc, {"request_id": rpc.request_id, "resp_type": "jsonrpc_notify", "resp_code": 200,
               "resp_json": {"jsonrpc": "2.0", "method": "notifications/progress",
                             "params": {"progressToken": 1, "progress": 1}}}),
        (rpc, {"request_id": rpc.request_id, "channel": "main", "resp_code": 200,
               "resp_headers": {"Content-Type": ["application/json"]},
               "resp_json": {"jsonrpc": "2.0", "id": 7, "result": {}}}),
        (ending, {"request_id": ending.request_id, "resp_code": 204,
                  "resp_type": "session_termination_response", "resp_json": None}),
        (untimed, {"request_id": untimed.request_id, "channel": "other-1", "resp_code": 202,
                   "resp_type": "notify_ack"}),
    ]
    for call, payload in answers:
        assert_valid("response_payload", payload)  # the test's own input is valid
        ack = session.post(url(relay, "/response"), json=payload, timeout=5,
                           headers={"X-Tunnel-Shard-Token": call.shard_token})
        assert ack.status_code == 200, ack.text
        assert ack.json() == {"status": "ok"}
        assert_valid("response_ack", ack.json())
    assert rpc.take(1)["resp_type"] == "jsonrpc_notify"
    assert rpc.take(1)["resp_json"]["id"] == 7


def test_a_real_client_run_is_answered_200_or_204_only(relay, daemon):
    """The daemon's polls and posts during a session all got success answers."""
    daemon(mcp_command=stub_command())
    assert final(relay, initialize())["resp_code"] == 200
    reply = final(relay, tool_call("count", 1, progress="p", to=2, delay_ms=1))
    assert reply["resp_json"]["result"]["structuredContent"] == {"count": 2}
    posts = list(relay.responses)
    assert len(posts) == 4  # initialize, 2 progress notifications, the final reply
    # The caller may see the reply a moment before the relay has written the ack.
    wait_for(lambda: all("status" in r for r in posts), timeout=5, message="the acks")
    assert [r["status"] for r in posts] == [200] * 4
    for record in posts:
        assert_valid("response_payload", json.loads(record["body"]))
        assert not header_errors(RESPONSE, record["headers"]), record["headers"]
    polls = list(relay.polls)
    answered = [r["status"] for r in polls if "status" in r]
    assert answered and set(answered) <= {200, 204}, answered
    for record in polls:
        assert not header_errors(POLL, record["headers"]), record["headers"]
        assert_poll_query(record["path"])


def assert_poll_query(path):
    """The client's poll parameters are within what the poll operation accepts."""
    from jsonschema import Draft7Validator
    from tests.support.contract import operation

    query = {k: int(v[0]) for k, v in parse_qs(urlsplit(path).query).items()}
    declared = operation(POLL)["query"]
    assert set(query) <= set(declared), query
    for name, value in query.items():
        assert not list(Draft7Validator(declared[name]).iter_errors(value)), (name, value)


# --- malformed polls -------------------------------------------------------------------------


@pytest.mark.parametrize("query, param", [
    ({"limit": 0}, "limit"),
    ({"limit": 26}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"limit": "1.5"}, "limit"),
    ({"timeout_ms": 0}, "timeout_ms"),
    ({"timeout_ms": -5}, "timeout_ms"),
    ({"timeout_ms": "soon"}, "timeout_ms"),
])
def test_a_bad_poll_parameter_is_a_400_naming_it(service, query, param):
    relay, session = service
    resp = session.get(url(relay, "/poll"), params=query, timeout=5)
    assert_error(resp, 400, param=param)


def test_poll_limit_bounds_and_null_are_accepted(service):
    relay, session = service
    for limit in ("1", "25", "null", ""):
        resp = session.get(url(relay, "/poll"), params={"limit": limit, "timeout_ms": 1},
                           timeout=5)
        assert resp.status_code == 204, (limit, resp.text)


def test_poll_auth_failures_use_the_contract_codes(service):
    relay, session = service
    relay.add_key("key-without-tunnel-use", False)
    cases = [
        ({"Authorization": ""}, url(relay, "/poll"), 401, "invalid_api_key"),
        ({"Authorization": "Bearer wrong"}, url(relay, "/poll"), 401, "invalid_api_key"),
        ({"Authorization": "Basic " + relay.api_key}, url(relay, "/poll"), 401,
         "invalid_api_key"),
        ({"Authorization": "Bearer key-without-tunnel-use"}, url(relay, "/poll"), 401,
         "tunnel_use_forbidden"),
        ({}, url(relay, "/poll", OTHER_TUNNEL), 401, "tunnel_use_forbidden"),
        ({}, url(relay, "/poll", "tunnel_TOO-SHORT"), 400, "invalid_tunnel_id_format"),
    ]
    for headers, target, status, code in cases:
        resp = session.get(target, params={"timeout_ms": 1}, headers=headers, timeout=5)
        assert_error(resp, status, code=code, operation=POLL)


def test_metadata_refuses_a_key_without_tunnel_use_with_403(service):
    relay, session = service
    relay.add_key("key-without-tunnel-use", False)
    resp = session.get(url(relay), headers={"Authorization": "Bearer key-without-tunnel-use"},
                       timeout=5)
    assert_error(resp, 403, code="tunnel_use_forbidden", operation=METADATA)
    resp = session.get(url(relay, tunnel_id=OTHER_TUNNEL), timeout=5)
    assert_error(resp, 403, code="tunnel_use_forbidden", operation=METADATA)


def test_injected_poll_faults_are_contract_shaped(service):
    relay, session = service
    relay.faults.push("poll", "status:429:3", "status:503")
    limited = session.get(url(relay, "/poll"), params={"timeout_ms": 1}, timeout=5)
    assert_error(limited, 429, code="rate_limit_exceeded", operation=POLL)
    assert limited.headers["Retry-After"] == "3"
    down = session.get(url(relay, "/poll"), params={"timeout_ms": 1}, timeout=5)
    assert_error(down, 503, code="tunnel_transport_unavailable", operation=POLL)


# --- malformed responses ---------------------------------------------------------------------


@pytest.fixture
def polled(service):
    """A command taken by a poll, waiting for its response."""
    relay, session = service
    call = relay.submit(tool_call("echo", 1, input="x"))
    resp = session.get(url(relay, "/poll"), params={"timeout_ms": 1000}, timeout=5)
    assert resp.status_code == 200
    return relay, session, call


def post(session, relay, payload, token, headers=None, tunnel_id=None):
    """POST a response the way a client would, with a raw body when given bytes or str."""
    sent = {"Content-Type": "application/json"}
    if token is not None:
        sent["X-Tunnel-Shard-Token"] = token
    sent.update(headers or {})
    data = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
    return session.post(url(relay, "/response", tunnel_id), data=data, headers=sent,
                        timeout=5)


def good(call, **changes):
    payload = {"request_id": call.request_id, "resp_code": 200, "channel": "main",
               "resp_json": {"jsonrpc": "2.0", "id": 1, "result": {}}}
    payload.update(changes)
    return payload


@pytest.mark.parametrize("change", [
    {"surprise": True},                                     # unknown field
    {"shard_token": "in-the-body"},                         # belongs in the header
    {"resp_code": "200"},
    {"resp_code": 200.5},
    {"resp_code": True},
    {"request_id": 12},
    {"resp_json": ["not", "an", "object"]},
    {"resp_json": "text"},
    {"resp_headers": {"Content-Type": "application/json"}},
    {"resp_headers": {"X-Count": [1]}},
    {"resp_type": "bogus"},
    {"resp_type": "oauth_discovery_response"},              # answers no contract command
    {"channel": 5},
], ids=lambda c: "-".join("%s=%r" % kv for kv in c.items()))
def test_a_malformed_response_payload_is_a_400_and_the_call_stays_pending(polled, change):
    relay, session, call = polled
    payload = good(call, **change)
    resp = post(session, relay, payload, call.shard_token)
    assert_error(resp, 400, operation=RESPONSE)
    assert relay.call_count() == 1
    ok = post(session, relay, good(call), call.shard_token)
    assert ok.status_code == 200 and ok.json() == {"status": "ok"}


def test_missing_fields_and_bodies_that_are_not_objects_are_400s(polled):
    relay, session, call = polled
    for body in ({"resp_code": 200}, {"request_id": call.request_id}, [good(call)], "null",
                 "not json", b"\xff\xfe", b""):
        resp = post(session, relay, body, call.shard_token)
        assert_error(resp, 400, operation=RESPONSE)


def test_an_invalid_channel_name_is_invalid_channel_format(polled):
    relay, session, call = polled
    resp = post(session, relay, good(call, channel="Main Channel!"), call.shard_token)
    assert_error(resp, 400, code="invalid_channel_format", param="channel", operation=RESPONSE)


def test_the_shard_token_header_is_required_and_must_match(polled):
    relay, session, call = polled
    missing = post(session, relay, good(call), None)
    assert_error(missing, 400, param="X-Tunnel-Shard-Token", operation=RESPONSE)
    wrong = post(session, relay, good(call), "shard_somebody_else")
    assert_error(wrong, 404, code="pending_request_not_found", operation=RESPONSE)
    assert relay.call_count() == 1, "a mismatched post must not consume the request"
    assert post(session, relay, good(call), call.shard_token).status_code == 200


def test_unknown_and_already_answered_requests_are_404(polled):
    relay, session, call = polled
    unknown = post(session, relay, good(call, request_id="req_never_issued"), call.shard_token)
    assert_error(unknown, 404, code="pending_request_not_found", operation=RESPONSE)
    assert post(session, relay, good(call), call.shard_token).status_code == 200
    again = post(session, relay, good(call), call.shard_token)
    assert_error(again, 404, code="pending_request_not_found", operation=RESPONSE)
    assert call.take(1)["resp_code"] == 200
    # The 404 was the relay's synchronous verdict: nothing more can be on its way.
    assert not call.payloads and call.answers == 1, "the second answer reached the caller"


def test_response_auth_failures_use_the_contract_codes(polled):
    relay, session, call = polled
    relay.add_key("key-without-tunnel-use", False)
    cases = [
        ({"Authorization": "Bearer wrong"}, None, 401, "invalid_api_key"),
        ({"Authorization": "Bearer key-without-tunnel-use"}, None, 401, "tunnel_use_forbidden"),
        ({}, OTHER_TUNNEL, 401, "tunnel_use_forbidden"),
        ({}, "not-a-tunnel", 400, "invalid_tunnel_id_format"),
    ]
    for headers, tunnel_id, status, code in cases:
        resp = post(session, relay, good(call), call.shard_token, headers=headers,
                    tunnel_id=tunnel_id)
        assert_error(resp, status, code=code, operation=RESPONSE)
    assert post(session, relay, good(call), call.shard_token).status_code == 200


def test_an_oversize_response_is_413_request_body_too_large(service):
    relay, session = service
    small = Relay(max_response_body=4096).start()
    try:
        call = small.submit(tool_call("echo", 1, input="x"))
        resp = post(session, small, good(call, resp_json={"blob": "x" * 8192}),
                    call.shard_token, headers={"Authorization": "Bearer " + small.api_key})
        assert_error(resp, 413, code="request_body_too_large", operation=RESPONSE)
        assert small.call_count() == 1
    finally:
        small.stop()
    # The default limit is refused from the header alone, before any byte of the body.
    answer = raw_request(relay, "POST", url(relay, "/response"), {
        "Content-Length": str(relay.max_response_body + 1),
        "X-Tunnel-Shard-Token": "shard", "Content-Type": "application/json"})
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert_valid("error_response", json.loads(answer.split(b"\r\n\r\n", 1)[1]))


@pytest.mark.parametrize("length", ["abc", "-1", "1e3"])
def test_a_malformed_content_length_is_a_400(service, length):
    relay, _ = service
    answer = raw_request(relay, "POST", url(relay, "/response"), {
        "Content-Length": length, "X-Tunnel-Shard-Token": "shard"})
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert_valid("error_response", json.loads(answer.split(b"\r\n\r\n", 1)[1]))


def test_wrong_methods_get_405_with_an_error_body(service):
    relay, session = service
    for method, target in (("POST", url(relay, "/poll")), ("GET", url(relay, "/response")),
                           ("DELETE", url(relay))):
        resp = session.request(method, target, timeout=5)
        assert_error(resp, 405)
        assert resp.headers["Allow"]


def test_the_relay_still_serves_after_every_kind_of_abuse(service):
    relay, session = service
    for raw in (b"GARBAGE\r\n\r\n", b"GET /v1/tunnels/%s/poll HTTP/1.1\r\n" % (
            relay.tunnel_id.encode()), b"POST /v1/tunnels/x/response HTTP/1.1\r\n"
            b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"):
        with socket.create_connection(relay.server.server_address[:2], timeout=5) as sock:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
            sock.recv(65536)
    call = relay.submit(tool_call("echo", 1, input="still here"))
    resp = session.get(url(relay, "/poll"), params={"timeout_ms": 1000}, timeout=5)
    assert resp.status_code == 200
    assert resp.json()["commands"][0]["request_id"] == call.request_id


def raw_request(relay, method, target, headers):
    """Send only a request head (no body) and return the raw answer."""
    host, port = relay.server.server_address[:2]
    path = target.split(str(port), 1)[1]
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s:%d" % (host, port),
             "Authorization: Bearer " + relay.api_key, "Connection: close"]
    lines += ["%s: %s" % item for item in headers.items()]
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def test_a_command_is_never_handed_to_a_poller_that_hung_up(service):
    relay, session = service
    host, port = relay.server.server_address[:2]
    gone = socket.create_connection((host, port), timeout=5)
    gone.sendall(("GET /v1/tunnels/%s/poll?timeout_ms=5000 HTTP/1.1\r\nHost: %s:%d\r\n"
                  "Authorization: Bearer %s\r\n\r\n" % (relay.tunnel_id, host, port,
                                                        relay.api_key)).encode())
    wait_for(lambda: len(relay.polls) == 1, timeout=5, message="the long poll")
    gone.close()
    call = relay.submit(tool_call("echo", 1, input="kept"))
    resp = session.get(url(relay, "/poll"), params={"timeout_ms": 3000}, timeout=10)
    assert resp.status_code == 200
    assert [c["request_id"] for c in resp.json()["commands"]] == [call.request_id]
    assert call.deliveries == 1


def test_a_caller_refused_before_its_body_is_read_gets_its_connection_closed(relay):
    """The unread body of a refused request must not be parsed as the next request on a
    keep-alive connection (a suite's DNS-rebinding probe followed by a real call did that)."""
    smuggled = b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    host, port = relay.base_url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"POST /v1/mcp/%s HTTP/1.1\r\nHost: attacker.example\r\n"
                     b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
                         relay.tunnel_id.encode(), len(smuggled), smuggled))
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            received += chunk
    assert received.startswith(b"HTTP/1.0 403") or received.startswith(b"HTTP/1.1 403")
    assert received.count(b"HTTP/1.") == 1, received
