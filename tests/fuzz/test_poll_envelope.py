"""Fuzzing poll bodies from the control plane: whatever arrives, parse_poll_body returns
commands and skips or raises ProtocolError, and every command it returns can be handled
and answered (deadline, kind, headers, the response envelope, its age)."""

import json

import pytest
pytest.importorskip("hypothesis", minversion="6")  # older ones lack what we use

from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.fuzz.strategies import JSON, dumps, finishes, rpc_messages
from tunnel_client import wire
from tunnel_client.worker import _age

TIMEOUTS = st.one_of(st.sampled_from(["30s", "0s", "10ms", "1h", "9223372036854775808ns",
                                      "99999999999999999999h", "-1s", "1.5s", " 30s", "30"]),
                     st.text(max_size=8), JSON)
STAMPS = st.one_of(st.datetimes().map(lambda d: d.isoformat() + "Z"),
                   st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
                                    "2026-01-01T00:00:00.123456789Z", "2026-13-01T00:00:00Z",
                                    "2026-01-01t00:00:00z", ""]),
                   st.text(max_size=30), JSON)
HEADERS = st.one_of(st.dictionaries(st.text(max_size=12), st.one_of(
    st.text(max_size=12), st.lists(st.one_of(st.text(max_size=8), JSON), max_size=3), JSON),
    max_size=4), JSON)
COMMANDS = st.fixed_dictionaries({}, optional={
    "request_id": st.one_of(st.text(max_size=12), JSON),
    "shard_token": st.one_of(st.text(max_size=12), JSON),
    "command_type": st.one_of(st.sampled_from(["jsonrpc", "session_termination",
                                               "oauth_discovery", "JSONRPC", "bogus"]), JSON),
    "channel": st.one_of(st.sampled_from(["main", "", "Main", "harpoon", "a/b", " x "]),
                         st.text(max_size=10), JSON),
    "headers": HEADERS, "created_at": STAMPS, "response_timeout": TIMEOUTS,
    "jsonrpc": st.one_of(rpc_messages(), st.lists(rpc_messages(), max_size=2), JSON)})
BODIES = st.one_of(
    st.fixed_dictionaries({"commands": st.lists(st.one_of(COMMANDS, JSON), max_size=4)}).map(
        dumps),
    JSON.map(dumps), st.binary(max_size=200),
    st.sampled_from([b"", b"  \n", b"{}", b'{"commands":null}', b'{"commands":{}}', b"\xff"]))


def handle_like_a_worker(cmd: wire.Command):
    """What the worker and the response path touch on every command."""
    cmd.deadline.expired()
    cmd.deadline.remaining(cap=30)
    kind, method, rpc_id = cmd.kind, cmd.method, cmd.rpc_id
    assert kind in ("call", "notification", "response", "invalid") or kind == cmd.command_type
    cmd.header("Mcp-Session-Id")
    reply = wire.failure(rpc_id if wire.valid_rpc_id(rpc_id) else None,
                         wire.TunnelFailure("transport_closed", "eof"))
    envelope = json.loads(wire.encode_response(cmd, reply))
    assert envelope["request_id"] == cmd.request_id and envelope["channel"] == cmd.channel
    if cmd.created_at is not None:
        age = _age(cmd.created_at)
        assert age is None or age >= 0
    return method


@settings(max_examples=200, deadline=None)
@given(BODIES)
@example(b'{"commands":[{"request_id":"r","shard_token":"s","command_type":"jsonrpc",'
         b'"jsonrpc":[]}]}')
def test_any_poll_body_is_commands_skips_or_a_protocol_error(body):
    try:
        commands, skipped = finishes(lambda: wire.parse_poll_body(body, 100.0))
    except wire.ProtocolError:
        return
    envelope = json.loads(body) if body.strip() else {}
    items = envelope.get("commands") or []
    assert len(commands) + len(skipped) == len(items)
    for cmd in commands:
        assert isinstance(cmd.request_id, str) and cmd.request_id
        assert isinstance(cmd.shard_token, str) and cmd.shard_token
        handle_like_a_worker(cmd)


@settings(max_examples=200, deadline=None)
@given(TIMEOUTS)
def test_any_response_timeout_is_seconds_or_no_deadline(value):
    seconds = wire.parse_response_timeout(value)
    assert seconds is None or (isinstance(seconds, (int, float)) and seconds >= 0)


def test_deeply_nested_poll_body_is_a_protocol_error():
    body = b'{"commands":[{"request_id":"r","shard_token":"s","command_type":"jsonrpc",' \
           b'"jsonrpc":' + b"[" * 100000 + b"]" * 100000 + b"}]}"
    with pytest.raises(wire.ProtocolError):
        wire.parse_poll_body(body, 0.0)
