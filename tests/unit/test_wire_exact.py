"""The wire format byte for byte, without the contract file: every command we parse and
every reply we build compared whole, so a changed field, type or message shows."""

import errno
import json
import re
import socket
import ssl
import time

import pytest

from tunnel_client import wire

T0 = 1000.0


def item(**overrides):
    cmd = {"request_id": "req_1", "shard_token": "shard", "command_type": "jsonrpc",
           "channel": "Main ", "created_at": "2026-01-01T00:00:00Z",
           "response_timeout": "2s", "headers": {"X-Request-Id": "r1"},
           "jsonrpc": {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}}
    cmd.update(overrides)
    return cmd


def test_a_jsonrpc_command_is_parsed_field_by_field():
    cmd = wire.parse_command(item(), T0)
    assert cmd == wire.Command(
        request_id="req_1", shard_token="shard", command_type="jsonrpc", channel="main",
        received_at=T0, headers={"X-Request-Id": ["r1"]},
        message={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        created_at="2026-01-01T00:00:00Z", response_timeout=2.0, problem=None)
    assert cmd.deadline.at == T0 + 2.0
    assert (cmd.kind, cmd.rpc_id, cmd.method) == ("call", 1, "tools/list")
    assert cmd.header("x-request-id") == "r1" and cmd.header("X-Other") is None


@pytest.mark.parametrize("overrides,expected", [
    ({"jsonrpc": [{"jsonrpc": "2.0", "id": 1, "method": "x"}]},
     "JSON-RPC batches are not supported"),
    ({"jsonrpc": {"jsonrpc": "2.0", "id": True, "method": "x"}},
     "jsonrpc is not a valid JSON-RPC message"),
    ({"jsonrpc": "text"}, "jsonrpc is not a valid JSON-RPC message"),
    ({"command_type": "session_termination", "headers": {}},
     "session_termination requires an Mcp-Session-Id header"),
])
def test_commands_that_cannot_run_carry_the_problem(overrides, expected):
    cmd = wire.parse_command(item(**overrides), T0)
    assert isinstance(cmd, wire.Command)
    assert cmd.problem == expected and cmd.request_id == "req_1"
    if "jsonrpc" in overrides:
        assert cmd.message is None


def test_a_session_termination_keeps_its_headers_and_has_no_message():
    cmd = wire.parse_command(item(command_type="session_termination", jsonrpc=None,
                                  headers={"mcp-session-id": ["s-1", "s-2"]}), T0)
    assert cmd.problem is None and cmd.message is None
    assert cmd.header("Mcp-Session-Id") == "s-1"
    assert (cmd.kind, cmd.rpc_id, cmd.method) == ("session_termination", None, None)


@pytest.mark.parametrize("raw,expected", [
    (item(command_type=None), wire.Skipped("req_1", "missing command_type")),
    (dict((k, v) for k, v in item().items() if k != "command_type"),
     wire.Skipped("req_1", "missing command_type")),
    (item(command_type="teleport"), wire.Skipped("req_1", "unknown command_type", "teleport")),
    (item(command_type=7), wire.Skipped("req_1", "unknown command_type", "7")),
    (item(shard_token=""), wire.Skipped(
        "req_1", "invalid jsonrpc payload: request_id and shard_token are required",
        "jsonrpc")),
    (item(shard_token=5), wire.Skipped(
        "req_1", "invalid jsonrpc payload: request_id and shard_token are required",
        "jsonrpc")),
    (item(request_id=""), wire.Skipped(
        None, "invalid jsonrpc payload: request_id and shard_token are required", "jsonrpc")),
    (item(request_id=9), wire.Skipped(
        None, "invalid jsonrpc payload: request_id and shard_token are required", "jsonrpc")),
    (item(channel="no spaces"), wire.Skipped("req_1", "invalid channel 'no spaces'",
                                             "jsonrpc")),
    ([1], wire.Skipped(None, "command is not a JSON object")),
])
def test_unusable_elements_are_skipped_with_the_reason(raw, expected):
    assert wire.parse_command(raw, T0) == expected


def test_headers_keep_only_string_names_and_values():
    cmd = wire.parse_command(item(headers={"A": "one", "B": ["x", 2, "y"], "C": [3],
                                           "D": 4, "E": []}), T0)
    assert cmd.headers == {"A": ["one"], "B": ["x", "y"]}
    assert wire.parse_command(item(headers=["A"]), T0).headers == {}
    assert wire.parse_command(item(created_at=5), T0).created_at is None
    assert wire.parse_command(item(channel=None), T0).channel == "main"


def test_a_poll_body_splits_commands_from_skipped_elements():
    body = json.dumps({"commands": [item(), item(command_type="x", request_id="req_2")]})
    commands, skipped = wire.parse_poll_body(body.encode(), T0)
    assert [c.request_id for c in commands] == ["req_1"]
    assert skipped == [wire.Skipped("req_2", "unknown command_type", "x")]
    assert wire.parse_poll_body(b'{}', T0) == ([], [])
    assert wire.parse_poll_body(b"  \n", T0) == ([], [])
    with pytest.raises(wire.ProtocolError, match="not valid JSON"):
        wire.parse_poll_body(b"{", T0)
    with pytest.raises(wire.ProtocolError, match=r'not \{"commands": \[\.\.\.\]\}'):
        wire.parse_poll_body(b'{"commands": {}}', T0)


def cmd():
    return wire.parse_command(item(), T0)


def test_replies_are_built_exactly():
    assert wire.notify(b"{}", 200) == wire.Reply(
        "jsonrpc_notify", 200, b"{}", {"Content-Type": ["text/event-stream"]})
    assert wire.notify(b"{}", 200, {"content-type": ["application/json"]}).headers == {
        "content-type": ["application/json"]}
    assert wire.response(b"{}", 201, {"content-type": ["x"], "Mcp-Session-Id": ["s"]}) == \
        wire.Reply("jsonrpc_response", 201, b"{}", {"Mcp-Session-Id": ["s"],
                                                     "Content-Type": ["application/json"]})
    assert wire.response(b"{}", 200, sse=True).headers == {
        "Content-Type": ["text/event-stream"]}
    assert wire.notify_ack(202) == wire.Reply("notify_ack", 202, None, None)
    assert wire.notify_ack(202, {"A": ["b"]}).headers == {"A": ["b"]}
    assert wire.session_terminated(204) == wire.Reply("session_termination_response", 204,
                                                      None, None)
    assert wire.session_terminated(200, {"A": ["b"]}).headers == {"A": ["b"]}
    error = wire.rpc_error(3, -32601, "Method not found", 200)
    assert error == wire.Reply("jsonrpc_response", 200,
                               b'{"jsonrpc":"2.0","id":3,"error":{"code":-32601,'
                               b'"message":"Method not found"}}',
                               {"Content-Type": ["application/json"]})
    assert error.terminal and not wire.notify(b"{}", 200).terminal
    assert wire.notify_ack(202).json() is None and error.json()["id"] == 3
    assert wire.rpc_error(3, 1, "m", 400, data={"k": 1}).json()["error"] == {
        "code": 1, "message": "m", "data": {"k": 1}}


def test_a_synthesized_failure_names_its_status_and_provenance():
    cause = wire.TunnelFailure("connect", "connection_refused", False)
    reply = wire.failure(9, cause, headers={"X-A": ["1"]})
    assert (reply.resp_type, reply.resp_code, reply.failure) == ("jsonrpc_response", 502, cause)
    assert reply.headers == {"X-A": ["1"], "Content-Type": ["application/json"]}
    assert reply.json() == {"jsonrpc": "2.0", "id": 9, "error": {
        "code": -32603, "message": "Bad Gateway", "data": {"tunnel_failure": {
            "version": 1, "source": "connect", "transport_error_kind": "connection_refused",
            "upstream_response_received": False}}}}
    assert wire.TunnelFailure("protocol").as_dict() == {
        "version": 1, "source": "protocol", "upstream_response_received": False}
    assert wire.protocol_failure() == wire.TunnelFailure(
        "protocol", "invalid_protocol_response", True)
    assert wire.protocol_failure("x", False) == wire.TunnelFailure("protocol", "x", False)
    assert wire.target_http_failure(404, b"") == wire.TunnelFailure(
        "target_http", "response_body_missing", True, 404)


def test_an_unsupported_channel_is_answered_like_the_reference():
    reply = wire.unsupported_channel(cmd())
    assert (reply.resp_type, reply.resp_code) == ("jsonrpc_response", 400)
    assert reply.json() == {"jsonrpc": "2.0", "id": 1, "error": {
        "code": -32603, "message": 'Bad Request: unsupported channel "main"'}}
    termination = wire.parse_command(item(command_type="session_termination",
                                          headers={"Mcp-Session-Id": "s"}), T0)
    assert wire.unsupported_channel(termination) == wire.session_terminated(400)


def test_the_response_envelope_is_exact():
    assert wire.encode_response(cmd(), wire.response(b'{"id":1}', 200)) == (
        b'{"request_id":"req_1","channel":"main","resp_code":200,'
        b'"resp_type":"jsonrpc_response","resp_headers":{"Content-Type":["application/json"]},'
        b'"resp_json":{"id":1}}')
    assert wire.encode_response(cmd(), wire.notify_ack(202)) == (
        b'{"request_id":"req_1","channel":"main","resp_code":202,"resp_type":"notify_ack"}')
    with pytest.raises(ValueError, match="session_termination_response replies never carry"):
        wire.encode_response(cmd(), wire.Reply("session_termination_response", 200, b"{}"))


def test_dumps_and_loads():
    assert wire.dumps({"a": [1, "é"]}) == '{"a":[1,"é"]}'.encode("utf-8")
    assert wire.loads(b'{"a": 1}') == {"a": 1}
    for bad in (b"[1,]", b"[" * 100000 + b"]" * 100000):
        with pytest.raises(ValueError):
            wire.loads(bad)


@pytest.mark.parametrize("body,kind", [
    (b"", "response_body_missing"), (b"{", "malformed_json"), (b"\xff", "malformed_json"),
    (b'{"error": 1}', "invalid_mcp_error"), (b"[1]", "non_protocol_response"),
    (b'{"result": 1}', "non_protocol_response")])
def test_why_a_target_body_could_not_be_preserved(body, kind):
    assert wire.body_failure_kind(body) == kind


@pytest.mark.parametrize("body,rpc_id,ok", [
    (b'{"jsonrpc":"2.0","id":"a","error":{"code":-1,"message":"no"}}', "a", True),
    (b'{"jsonrpc":"2.0","id":1,"method":"x","error":{"code":1,"message":"no"}}', 1, False),
    (b'{"jsonrpc":"2.0","id":1,"error":{"code":1}}', 1, False),
    (b'{"jsonrpc":"2.0","id":1,"error":{"code":true,"message":"no"}}', 1, False),
    (b'{"jsonrpc":"2.0","id":1,"error":"no"}', 1, False),
    (b'{"jsonrpc":"2.0","error":{"code":1,"message":"no"}}', None, False),
    (b'{"jsonrpc":"2.0","id":2,"error":{"code":1,"message":"no"}}', 1, False),
    (b'[{"jsonrpc":"2.0"}]', 1, False), (b"\xff", 1, False)])
def test_preservable_errors_in_detail(body, rpc_id, ok):
    assert wire.preservable_error(body, rpc_id) is ok


def _chained(outer, inner, how="cause"):
    setattr(outer, "__%s__" % how, inner)
    return outer


@pytest.mark.parametrize("exc,expected", [
    (OSError(errno.ENETUNREACH, "x"), ("connect", "network_unreachable")),
    (OSError(errno.EHOSTUNREACH, "x"), ("connect", "host_unreachable")),
    (OSError(errno.ECONNABORTED, "x"), ("transport_closed", "connection_aborted")),
    (OSError(errno.ETIMEDOUT, "x"), ("timeout", "timeout")),
    (OSError(errno.ENOENT, "x"), ("client_internal", "unknown")),
    (TimeoutError(), ("timeout", "timeout")),
    (ssl.SSLError(1, "bad"), ("tls", "tls")),
    (ValueError("CERTIFICATE_VERIFY_FAILED somewhere"), ("tls", "tls")),
    (type("ReadTimeoutError", (Exception,), {})(), ("timeout", "timeout")),
    (type("RemoteDisconnected", (Exception,), {})(), ("transport_closed", "eof")),
    (type("NewConnectionError", (Exception,), {})(), ("connect", "dial")),
    (type("ProxyError", (Exception,), {})(), ("connect", "dial")),
    (_chained(ValueError("outer"), ConnectionRefusedError(111, "x")),
     ("connect", "connection_refused")),
    (_chained(ValueError("outer"), socket.gaierror(-2, "x"), "context"), ("dns", "dns")),
    (ValueError(ConnectionResetError(104, "x")), ("transport_closed", "connection_reset")),
    # the specific cause wins over an EOF or a dial failure met first
    (_chained(EOFError(), OSError(errno.EPIPE, "x")), ("transport_closed", "closed_pipe")),
    (_chained(type("NewConnectionError", (Exception,), {})(), EOFError()),
     ("transport_closed", "eof")),
])
def test_exception_classification_in_detail(exc, expected):
    failure = wire.classify_exception(exc)
    assert (failure.source, failure.transport_error_kind) == expected
    assert failure.upstream_response_received is False


def test_classification_knows_whether_the_upstream_answered():
    assert wire.classify_exception(EOFError(), True) == wire.TunnelFailure(
        "transport_closed", "unexpected_eof", True)
    assert wire.classify_exception(socket.timeout(), True) == wire.TunnelFailure(
        "timeout", "timeout", True)


def test_the_exception_chain_is_walked_once_each():
    root = ConnectionRefusedError(111, "x")
    middle = _chained(ValueError("m"), root)
    middle.reason = "a string reason"
    top = _chained(RuntimeError("t", middle), middle, "context")
    top.reason = root
    assert list(wire.exception_chain(top)) == [top, middle, root]


def test_server_info_header_rejects_non_canonical_and_oversized_declarations():
    with pytest.raises(ValueError, match="not canonical"):
        wire.server_info_header([("Main", False)])
    with pytest.raises(ValueError, match="at most 32 channels"):
        wire.server_info_header([("c%d" % i, False) for i in range(33)])
    assert wire.server_info_header([("c%d" % i, False) for i in range(32)]).count(
        '"name"') == 32


@pytest.mark.parametrize("status,text", [
    (400, "Bad Request"), (404, "Not Found"), (429, "Too Many Requests"),
    (500, "Internal Server Error"), (503, "Service Unavailable"), (504, "Gateway Timeout"),
    (599, "Bad Gateway"), (499, "Bad Request"), (302, "Bad Request")])
def test_status_texts_use_go_spellings(status, text):
    assert wire.status_text(status) == text


def test_deadline_arithmetic():
    never = wire.Deadline.after(None)
    assert not never.bounded and not never.expired()
    assert never.remaining() is None and never.remaining(cap=3) == 3
    soon = wire.Deadline.after(100.0)
    assert soon.bounded and 99 < soon.remaining() <= 100
    assert soon.remaining(cap=5) == 5
    past = wire.Deadline(time.monotonic() - 1)
    assert past.expired() and past.remaining() == 0.0
    assert wire.Deadline.after(1.0, start=T0).at == T0 + 1.0
    assert never.sooner(None) is never
    assert 9 < never.sooner(10).remaining() <= 10
    assert soon.sooner(1000).at == soon.at
    assert repr(never) == "Deadline(never)"
    assert re.fullmatch(r"Deadline\(in (99|100)\.\d{3}s\)", repr(soon))


def test_command_kinds():
    note = wire.parse_command(item(jsonrpc={"jsonrpc": "2.0", "method": "notifications/x"}),
                              T0)
    answer = wire.parse_command(item(jsonrpc={"jsonrpc": "2.0", "id": 4, "result": {}}), T0)
    assert (note.kind, note.rpc_id, note.method) == ("notification", None, "notifications/x")
    assert (answer.kind, answer.rpc_id, answer.method) == ("response", 4, None)
    assert wire.rpc_kind({"jsonrpc": "2.0", "id": 1, "result": {}, "error": {}}) == "invalid"
    assert wire.rpc_kind({"jsonrpc": "2.0", "id": [1], "result": {}}) == "invalid"
    assert wire.rpc_kind({"jsonrpc": "2.0", "method": 5, "id": 1}) == "invalid"
    assert wire.valid_rpc_id("a") and wire.valid_rpc_id(0) and not wire.valid_rpc_id(False)


def test_classification_keeps_whether_the_upstream_answered_for_every_cause():
    for exc in (socket.gaierror(-2, "x"), ssl.SSLError(1, "x"), ConnectionRefusedError(111, "x"),
                type("NewConnectionError", (Exception,), {})(), ValueError("x")):
        assert wire.classify_exception(exc, True).upstream_response_received is True


def test_a_cause_reachable_only_through_reason_is_found():
    wrapper = RuntimeError("max retries")
    wrapper.reason = ConnectionRefusedError(111, "x")
    assert wire.classify_exception(wrapper).transport_error_kind == "connection_refused"


def test_header_and_poll_details():
    cmd = wire.parse_command(item(headers={5: "x", "B": "y"}), T0)
    assert cmd.headers == {"B": ["y"]}
    commands, _ = wire.parse_poll_body(json.dumps({"commands": [item()]}).encode(), T0)
    assert commands[0].received_at == T0
    kept = wire.sanitize_response_headers([
        ("Server", "x"), ("Connection", "X-A,Mcp-Session-Id"), ("Mcp-Session-Id", "s"),
        ("Content-Type", "application/json")])
    assert kept == {"Content-Type": ["application/json"]}


def test_the_largest_duration_is_accepted_and_one_more_nanosecond_is_not():
    assert wire.parse_response_timeout("9223372036854775807ns") == pytest.approx(9.22e9,
                                                                                 rel=1e-3)
    assert wire.parse_response_timeout("9223372036854775808ns") is None


def test_error_messages_of_the_wire_helpers():
    with pytest.raises(ValueError) as deep:
        wire.loads(b"[" * 100000 + b"]" * 100000)
    assert str(deep.value) == "JSON nested too deeply"
    with pytest.raises(wire.ProtocolError) as bad:
        wire.parse_poll_body(b"{", T0)
    assert str(bad.value).startswith("poll response is not valid JSON: Expecting")
    with pytest.raises(wire.ProtocolError) as shape:
        wire.parse_poll_body(b"[]", T0)
    assert str(shape.value) == 'poll response is not {"commands": [...]}'
    with pytest.raises(ValueError) as ack:
        wire.encode_response(cmd(), wire.Reply("notify_ack", 202, b"{}"))
    assert str(ack.value) == "notify_ack replies never carry resp_json"
    with pytest.raises(ValueError) as twice:
        wire.server_info_header([("main", False), ("main", False)])
    assert str(twice.value) == "channel 'main' is not canonical or not unique"
    with pytest.raises(ValueError) as many:
        wire.server_info_header([("c%d" % i, False) for i in range(33)])
    assert str(many.value) == "X-Tunnel-MCP-Server-Info allows at most 32 channels"
