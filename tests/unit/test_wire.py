import json
import socket
import time

import pytest

from tests.support.contract import assert_valid, schema_errors, tunnel_failure_errors
from tunnel_client import wire


@pytest.mark.parametrize("value,seconds", [
    ("0s", 0.0), ("30s", 30.0), ("4500ms", 4.5), ("2m", 120.0), ("1h", 3600.0),
    ("250us", 0.00025), ("10ns", 1e-8), ("0ms", 0.0)])
def test_response_timeout_grammar_accepts_one_integer_and_unit(value, seconds):
    assert wire.parse_response_timeout(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [
    None, 30, 1.5, " 1s", "1s ", "1s\n", "\n1s", "1s\r\n", "1m30s", "4.5s", "-1s", "30d", "", "s", "1S",
    "99999999999999999999h", True, {"s": 1}])
def test_response_timeout_is_fail_open_for_anything_else(value):
    assert wire.parse_response_timeout(value) is None


def test_nan_and_infinity_are_read_as_null_and_every_other_value_as_it_is():
    text = '{"a":NaN,"b":[Infinity,-Infinity],"c":-0.5,"d":12,"e":"NaN","\u00e9":null}'
    expected = {"a": None, "b": [None, None], "c": -0.5, "d": 12, "e": "NaN", "\u00e9": None}
    assert wire.loads(text) == wire.loads(text.encode("utf-8")) == expected
    assert wire.loads(text.encode("utf-16")) == expected  # the encodings json.loads detects
    assert wire.dumps(wire.loads(text)) == (
        b'{"a":null,"b":[null,null],"c":-0.5,"d":12,"e":"NaN","\xc3\xa9":null}')
    with pytest.raises(ValueError):
        wire.loads(b"\xff{}")


def test_a_lone_surrogate_goes_on_escaped_as_it_came():
    escaped = b'{"t":"\\ud800 and \xc3\xa9"}'  # a valid JSON escape with no UTF-8 form
    raw = b'"\xed\xa0\x80"'  # the same surrogate as bytes, as json.loads reads them
    assert wire.loads(escaped) == {"t": "\ud800 and \u00e9"}
    assert wire.loads(raw) == "\ud800"
    assert wire.dumps(wire.loads(escaped)) == b'{"t":"\\ud800 and \\u00e9"}'
    assert wire.dumps(wire.loads(raw)) == b'"\\ud800"'


def test_deadline_is_anchored_on_receipt_time():
    received = time.monotonic() - 5
    cmd = wire.parse_command(_command(response_timeout="3s"), received)
    assert cmd.deadline.expired()
    cmd = wire.parse_command(_command(response_timeout="30s"), received)
    assert 24 < cmd.deadline.remaining() <= 25.01
    assert not wire.parse_command(_command(response_timeout="bogus"), received).deadline.bounded


def test_zero_timeout_is_already_expired():
    assert wire.parse_command(_command(response_timeout="0s"), time.monotonic()).deadline.expired()


def _command(**overrides):
    cmd = {"request_id": "req_1", "shard_token": "shard", "command_type": "jsonrpc",
           "channel": "main", "created_at": "2026-01-01T00:00:00Z",
           "jsonrpc": {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}}
    cmd.update(overrides)
    return cmd


def test_poll_body_parses_the_wire_schema_example():
    from tests.support.contract import wire_schema
    example = wire_schema()["definitions"]["poll_body"]["examples"][0]
    assert_valid("poll_body", example)
    commands, skipped = wire.parse_poll_body(json.dumps(example).encode(), time.monotonic())
    assert not skipped
    assert [c.command_type for c in commands] == ["jsonrpc", "session_termination"]
    assert commands[0].rpc_id == "call_1" and commands[0].response_timeout == 30.0
    assert commands[1].header("mcp-session-id") == "sess_1"


def test_unknown_and_malformed_commands_are_skipped_with_their_request_id():
    body = json.dumps({"commands": [
        _command(command_type="teleport", request_id="req_a"),
        {k: v for k, v in _command(request_id="req_b").items() if k != "command_type"},
        _command(request_id="req_c", shard_token=""),
        _command(request_id="req_d", channel="Bad Channel!"),
        "not an object",
        _command(request_id="req_ok", channel=" MAIN ", extra_field=1),
    ]}).encode()
    commands, skipped = wire.parse_poll_body(body, time.monotonic())
    assert [c.request_id for c in commands] == ["req_ok"]
    assert commands[0].channel == "main"
    assert [(s.request_id, s.reason) for s in skipped] == [
        ("req_a", "unknown command_type"), ("req_b", "missing command_type"),
        ("req_c", "invalid jsonrpc payload: request_id and shard_token are required"),
        ("req_d", "invalid channel 'Bad Channel!'"), (None, "command is not a JSON object")]


def test_batches_and_session_termination_without_session_are_marked_not_dropped():
    body = json.dumps({"commands": [
        _command(request_id="b", jsonrpc=[{"jsonrpc": "2.0", "id": 1, "method": "x"}]),
        _command(request_id="t", command_type="session_termination"),
    ]}).encode()
    commands, _ = wire.parse_poll_body(body, 0.0)
    assert "batches" in commands[0].problem
    assert "Mcp-Session-Id" in commands[1].problem


@pytest.mark.parametrize("body", [b"[]", b"{\"commands\": 3}", b"not json"])
def test_unusable_poll_bodies_are_protocol_errors(body):
    with pytest.raises(wire.ProtocolError):
        wire.parse_poll_body(body, 0.0)


def test_empty_poll_body_means_no_commands():
    assert wire.parse_poll_body(b"", 0.0) == ([], [])
    assert wire.parse_poll_body(b'{"commands": []}', 0.0) == ([], [])


def _cmd():
    return wire.parse_command(_command(), time.monotonic())


@pytest.mark.parametrize("reply", [
    wire.response(b'{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}', 200),
    wire.notify(b'{"jsonrpc":"2.0","method":"notifications/progress","params":{}}', 200),
    wire.notify_ack(202),
    wire.session_terminated(204, {"Mcp-Session-Id": ["s"]}),
    wire.failure(1, wire.TunnelFailure("transport_closed", "eof", False)),
    wire.unsupported_channel(_cmd()),
])
def test_every_response_body_we_build_matches_the_wire_schema(reply):
    body = json.loads(wire.encode_response(_cmd(), reply))
    assert_valid("response_payload", body)
    assert body["request_id"] == "req_1" and body["channel"] == "main"
    if reply.resp_type in ("notify_ack", "session_termination_response"):
        assert "resp_json" not in body


def test_resp_json_bytes_are_spliced_not_reencoded():
    raw = b'{"jsonrpc": "2.0",  "id": 7, "error": {"code": -32003, "message": "x"}}'
    body = wire.encode_response(_cmd(), wire.Reply(wire.RESP_JSONRPC, 403, raw))
    assert raw in body
    assert json.loads(body)["resp_json"]["error"]["code"] == -32003


def test_ack_replies_refuse_a_body():
    with pytest.raises(ValueError):
        wire.encode_response(_cmd(), wire.Reply(wire.RESP_NOTIFY_ACK, 202, b"{}"))


def test_response_headers_allowlist_and_go_spellings():
    kept = wire.sanitize_response_headers([
        ("content-type", "text/event-stream"), ("mcp-session-id", "abc"),
        ("Last-Event-ID", "7"), ("WWW-Authenticate", "Bearer a"), ("www-authenticate", "Basic"),
        ("Set-Cookie", "x=1"), ("Server", "x"), ("Connection", "close, Mcp-Protocol-Version"),
        ("Mcp-Protocol-Version", "2025-06-18"), ("Access-Control-Expose-Headers", "")])
    assert kept == {"Content-Type": ["text/event-stream"], "Mcp-Session-Id": ["abc"],
                    "Last-Event-Id": ["7"], "Www-Authenticate": ["Bearer a", "Basic"]}


def test_synthesized_failures_carry_valid_provenance():
    reply = wire.failure("abc", wire.target_http_failure(503, b"upstream down"))
    message = reply.json()
    assert reply.resp_code == 503
    assert message["error"] == {"code": -32603, "message": "Service Unavailable", "data": {
        "tunnel_failure": {"version": 1, "source": "target_http",
                           "transport_error_kind": "malformed_json",
                           "upstream_response_received": True, "upstream_status": 503}}}
    assert message["id"] == "abc"
    assert not tunnel_failure_errors(message["error"]["data"]["tunnel_failure"])
    closed = wire.failure(0, wire.TunnelFailure("transport_closed", "eof", False))
    assert closed.resp_code == 502 and closed.json()["error"]["message"] == "Bad Gateway"
    assert closed.json()["id"] == 0
    assert not tunnel_failure_errors(closed.json()["error"]["data"]["tunnel_failure"])


def test_the_wire_schema_rejects_what_provenance_must_never_say():
    assert tunnel_failure_errors({"version": 1, "source": "transport_closed",
                                  "upstream_response_received": True})


@pytest.mark.parametrize("body,rpc_id,ok", [
    (b'{"jsonrpc":"2.0","id":1,"error":{"code":-32003,"message":"no"}}', 1, True),
    (b'{"jsonrpc":"2.0","id":"1","error":{"code":-32003,"message":"no"}}', 1, False),
    (b'{"jsonrpc":"2.0","id":1,"error":{"code":"x","message":"no"}}', 1, False),
    (b'{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"no"}}', 1, False),
    (b'{"jsonrpc":"1.0","id":1,"error":{"code":1,"message":"no"}}', 1, False),
    (b'{"id":1,"error":{"code":1,"message":"no"}}', 1, False),
    (b'\xef\xbb\xbf{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"no"}}', 1, False),
    (b"Service down", 1, False), (b"", 1, False)])
def test_only_the_targets_own_matching_jsonrpc_error_is_preserved(body, rpc_id, ok):
    assert wire.preservable_error(body, rpc_id) is ok


@pytest.mark.parametrize("exc,source,kind", [
    (ConnectionRefusedError(111, "refused"), "connect", "connection_refused"),
    (ConnectionResetError(104, "reset"), "transport_closed", "connection_reset"),
    (BrokenPipeError(32, "pipe"), "transport_closed", "closed_pipe"),
    (socket.gaierror(-2, "Name or service not known"), "dns", "dns"),
    (socket.timeout("timed out"), "timeout", "timeout"),
    (EOFError(), "transport_closed", "eof"),
    (ValueError("odd"), "client_internal", "unknown"),
])
def test_exception_classification(exc, source, kind):
    failure = wire.classify_exception(exc)
    assert (failure.source, failure.transport_error_kind) == (source, kind)


def test_classification_finds_the_root_cause_in_a_requests_error():
    import requests
    try:
        requests.get("http://127.0.0.1:9/", timeout=2)
    except requests.RequestException as exc:
        failure = wire.classify_exception(exc)
    assert (failure.source, failure.transport_error_kind) == ("connect", "connection_refused")


def test_server_info_header_matches_the_reference_strings():
    assert wire.server_info_header([("main", False)]) == '{"version":1,"channels":[{"name":"main"}]}'
    assert wire.server_info_header([("main", True), ("harpoon", True)]) == (
        '{"version":1,"channels":[{"name":"main","proc_affinity":true},'
        '{"name":"harpoon","proc_affinity":true}]}')
    with pytest.raises(ValueError):
        wire.server_info_header([("main", False), ("main", True)])
    with pytest.raises(ValueError):
        wire.server_info_header([("c%d" % i, False) for i in range(33)])


def test_rpc_kinds():
    assert wire.rpc_kind({"jsonrpc": "2.0", "id": 0, "method": "x"}) == "request"
    assert wire.rpc_kind({"jsonrpc": "2.0", "method": "x"}) == "notification"
    assert wire.rpc_kind({"jsonrpc": "2.0", "id": "a", "result": {}}) == "response"
    assert wire.rpc_kind({"jsonrpc": "2.0", "id": None, "error": {}}) == "response"
    assert wire.rpc_kind({"jsonrpc": "2.0", "id": True, "method": "x"}) == "invalid"
    assert wire.rpc_kind({"jsonrpc": "2.0", "id": 1.5, "method": "x"}) == "invalid"
    assert wire.rpc_kind([]) == "invalid"
    assert not schema_errors("response_ack", {"status": "ok"})


def test_classification_of_tls_errors_whose_reason_is_a_string():
    import ssl
    error = ssl.SSLCertVerificationError(1, "certificate verify failed: unable to get local "
                                            "issuer certificate")
    error.reason = "CERTIFICATE_VERIFY_FAILED"
    wrapped = OSError("wrapped")
    wrapped.__cause__ = error
    assert wire.classify_exception(wrapped).source == "tls"


def test_a_header_name_with_a_trailing_newline_is_dropped():
    cmd = wire.parse_command({"request_id": "r", "shard_token": "s", "command_type": "jsonrpc",
                              "channel": "main", "headers": {"X-Ok": "1", "X-Bad\n": "2"},
                              "jsonrpc": {"jsonrpc": "2.0", "id": 1, "method": "ping"}}, 0.0)
    assert dict(cmd.headers) == {"X-Ok": ["1"]}
