"""Fuzzing what callers send through a real stdio child: ids, progress tokens and ``_meta``
of any JSON type go out and come back exactly, and no value can break the pipe, the child
or the next call."""

import json
import os
import sys
import time

import pytest
pytest.importorskip("hypothesis", minversion="6")  # older ones lack what we use

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.strategies import JSON, finishes
from tunnel_client import wire
from tunnel_client.housekeeping import Housekeeping
from tunnel_client.mcp.stdio import StdioBinding, StdioPolicy

# Echoes what it received: the id, the _meta, and one progress notification for a token.
ECHO_SERVER = r"""
import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    if "id" not in msg:
        continue
    meta = (msg.get("params") or {}).get("_meta") if isinstance(msg.get("params"), dict) else None
    if isinstance(meta, dict) and "progressToken" in meta:
        print(json.dumps({"jsonrpc": "2.0", "method": "notifications/progress",
                          "params": {"progressToken": meta["progressToken"], "progress": 1}}))
    result = {"serverInfo": {"name": "echo"}, "capabilities": {},
              "protocolVersion": "2025-11-25"} if msg["method"] == "initialize" else \
        {"id_seen": msg["id"], "meta": meta, "pid": __import__("os").getpid()}
    print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}), flush=True)
"""

IDS = st.one_of(st.integers(-2 ** 70, 2 ** 70), st.text(max_size=12))
META = st.one_of(JSON, st.dictionaries(st.text(max_size=8), JSON, max_size=3).flatmap(
    lambda extra: JSON.map(lambda token: dict(extra, progressToken=token))))
MODERN = st.booleans()


@pytest.fixture(scope="module")
def binding():
    scheduler = Housekeeping("fuzz")
    scheduler.start()
    stdio = StdioBinding("main", [sys.executable, "-c", ECHO_SERVER], dict(os.environ),
                         StdioPolicy(health_interval=0, stop_grace=1.0))
    stdio.start(scheduler)
    yield stdio
    stdio.stop()
    scheduler.stop()


def command(msg) -> wire.Command:
    return wire.Command("req", "shard", wire.CMD_JSONRPC, "main", time.monotonic(),
                        message=msg)


def call(binding, msg):
    return finishes(lambda: list(binding.handle(command(msg), wire.Deadline.after(10))), 15)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(IDS, META, MODERN)
def test_caller_values_round_trip_through_a_real_child(binding, rpc_id, meta, modern):
    if modern:
        meta = dict(meta) if isinstance(meta, dict) else {"original": meta}
        meta["io.modelcontextprotocol/protocolVersion"] = "2026-07-28"
    msg = {"jsonrpc": "2.0", "id": rpc_id, "method": "tools/call",
           "params": {"name": "echo", "_meta": meta}}
    before = json.dumps(msg, sort_keys=True)
    replies = call(binding, msg)
    assert json.dumps(msg, sort_keys=True) == before, "the caller's message was changed"
    final = replies[-1].json()
    assert final["id"] == rpc_id and type(final["id"]) is type(rpc_id)
    seen = final["result"]["meta"]
    has_token = isinstance(meta, dict) and meta.get("progressToken") is not None
    if has_token:
        # The child saw a token of ours, the rest of _meta untouched; the caller gets its own.
        assert isinstance(seen["progressToken"], str)
        assert dict(seen, progressToken=None) == dict(meta, progressToken=None)
        notes = [r.json() for r in replies[:-1]]
        assert [n["params"]["progressToken"] for n in notes] == [meta["progressToken"]]
    else:
        assert seen == meta
        assert len(replies) == 1
    assert isinstance(final["result"]["id_seen"], int)  # the pipe id, never the caller's


def test_the_children_survived_every_example(binding):
    pids = set()
    for session in binding.sessions():
        assert session.supervisor.snapshot()["restarts"] == 0
        pids.add(session.supervisor.snapshot()["pid"])
    assert None not in pids
