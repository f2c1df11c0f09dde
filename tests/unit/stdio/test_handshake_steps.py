"""HandshakeSteps through a real session and child: exactly what a fresh child receives
first in each era, what is logged about it, and what happens when the child ignores the
opening, rejects it or dies under it."""

import json
import logging
import sys

import pytest

from tunnel_client import CLIENT_NAME, __version__, wire
from tunnel_client.mcp import protocol as mcp
from tunnel_client.mcp.stdio.handshake_steps import MODERN_ERA
from tests.unit.stdio.sessions import call, deaf, initialize, only

META = mcp.MODERN_VERSION_KEY

# A server that reads and keeps every line but never answers anything.
SILENT = """import sys
with open(sys.argv[1], "a") as out:
    for line in sys.stdin:
        out.write(line)
        out.flush()
"""

# Dies on the first line it reads, the first time it runs; the stub from then on.
DIES_ONCE = """import os, sys
marker = sys.argv[1]
if not os.path.exists(marker):
    open(marker, "w").close()
    sys.stdin.readline()
    sys.exit(3)
os.execv(sys.executable, [sys.executable, "-m", "tunnel_client.devtools.stub"] + sys.argv[2:])
"""


@pytest.fixture
def stdio_log(caplog):
    caplog.set_level(logging.INFO, logger="tunnel_client.stdio")
    return lambda: [r for r in caplog.records if r.name == "tunnel_client.stdio"]


def messages(c):
    return [m["message"] for m in c.received()]


def test_a_fresh_legacy_child_gets_exactly_the_replayed_handshake_and_it_is_logged(
        child, stdio_log):
    c = child()
    only(c.run(call(1, input="x")))
    first, second, third = messages(c)
    assert first == {"jsonrpc": "2.0", "id": first["id"], "method": "initialize",
                     "params": mcp.default_initialize_params()}
    assert type(first["id"]) is int and first["id"] != third["id"]
    assert second == {"jsonrpc": "2.0", "method": "notifications/initialized"}
    [record] = [r for r in stdio_log() if r.getMessage() == "stdio server initialized"]
    assert (record.channel, record.era, record.generation, record.handshake) == \
        ("main", "", 1, "replayed")
    assert c.session.describe()["handshake"] == "done"


def test_a_connectors_forwarded_initialize_is_logged_as_forwarded(child, stdio_log):
    c = child()
    reply = only(c.run(initialize("one")))
    assert reply.resp_code == 200 and reply.json()["jsonrpc"] == "2.0"
    [record] = [r for r in stdio_log() if r.getMessage() == "stdio server initialized"]
    assert (record.generation, record.handshake) == (1, "forwarded")


def test_a_cached_initialize_is_a_complete_response_counted_as_a_local_answer(child):
    c = child()
    first = only(c.run(initialize("one")))
    second = only(c.run(initialize("two")))
    assert (second.resp_type, second.resp_code) == (wire.RESP_JSONRPC, 200)
    assert second.json() == {"jsonrpc": "2.0", "id": "two", "result": first.json()["result"]}
    assert c.session.metrics.stdio_local_answers.value(channel="main",
                                                       method="initialize") == 1


def test_a_modern_child_gets_exactly_an_enveloped_discover_and_it_is_logged(child, stdio_log):
    c = child(era=MODERN_ERA)
    only(c.run({"jsonrpc": "2.0", "id": "m", "method": "server/discover"}))
    probe = messages(c)[0]
    assert probe == {"jsonrpc": "2.0", "id": probe["id"], "method": "server/discover",
                     "params": {"_meta": {
                         META: MODERN_ERA, mcp.CLIENT_CAPABILITIES_KEY: {},
                         "io.modelcontextprotocol/clientInfo": {
                             "name": CLIENT_NAME, "version": __version__}}}}
    [record] = [r for r in stdio_log()
                if r.getMessage() == "stdio server opened in the 2026-07-28 era"]
    assert (record.channel, record.era, record.generation, record.handshake) == \
        ("main", MODERN_ERA, 1, "injected")


def test_the_injected_discover_carries_the_callers_protocol_version(child):
    c = child(era=MODERN_ERA)
    init = initialize("i")
    init["params"]["_meta"] = {META: "2099-01-01"}  # enveloped, but never an opening
    c.run(init)
    probe = messages(c)[0]
    assert probe["method"] == "server/discover"
    assert probe["params"]["_meta"][META] == "2099-01-01"


def test_a_child_opened_by_the_callers_own_request_is_logged_as_forwarded(child, stdio_log):
    c = child(era=MODERN_ERA)
    only(c.run({"jsonrpc": "2.0", "id": "m", "method": "tools/list",
                "params": {"_meta": {META: MODERN_ERA}}}))
    [record] = [r for r in stdio_log()
                if r.getMessage() == "stdio server opened in the 2026-07-28 era"]
    assert (record.generation, record.handshake) == (1, "forwarded")


def test_a_rejected_handshake_is_logged_with_the_servers_error(child, stdio_log):
    c = child("--modern-only")
    only(c.run(call(1, input="x")))
    [record] = [r for r in stdio_log() if "rejected initialize" in r.getMessage()]
    assert record.getMessage() == ("stdio server rejected initialize; treating it as a "
                                   "modern-era server and forwarding without a handshake")
    assert record.channel == "main" and record.error["code"] == -32022
    assert c.session.describe()["handshake"] == "modern (none)"


@pytest.mark.parametrize("era, opening", [("", "initialize"), (MODERN_ERA, "server/discover")])
def test_an_unanswered_opening_is_logged_and_requests_are_forwarded_anyway(
        session, tmp_path, stdio_log, era, opening):
    seen = tmp_path / "seen.jsonl"
    s = session([sys.executable, "-c", SILENT, str(seen)], era=era, health_timeout=0.1,
                ttl=0.1)
    msg = {"jsonrpc": "2.0", "id": "q", "method": "tools/list"}
    reply = only(s.run(msg))
    assert reply.failure == wire.TunnelFailure("timeout", "timeout", False)
    lines = [json.loads(line) for line in seen.read_text().splitlines()]
    assert [m["method"] for m in lines][:2] == [opening, "tools/list"]
    [record] = [r for r in stdio_log() if "did not answer the injected" in r.getMessage()]
    assert record.getMessage() == ("stdio server did not answer the injected %s; "
                                   "forwarding requests anyway" % opening)
    assert (record.levelno, record.channel, record.generation) == (logging.WARNING, "main", 1)
    assert s.session.handshake.ready(1)


def test_a_connectors_initialize_after_an_unanswered_handshake_is_still_forwarded(
        session, tmp_path):
    seen = tmp_path / "seen.jsonl"
    s = session([sys.executable, "-c", SILENT, str(seen)], health_timeout=0.1, ttl=0.1)
    only(s.run({"jsonrpc": "2.0", "id": "q", "method": "tools/list"}))
    reply = only(s.run(initialize("late")))  # no cached result to answer from
    assert reply.failure == wire.TunnelFailure("timeout", "timeout", False)
    lines = [json.loads(line) for line in seen.read_text().splitlines()]
    assert [m["method"] for m in lines].count("initialize") == 2


def test_a_child_that_dies_under_the_handshake_is_replaced_and_the_next_one_initialized(
        session, tmp_path):
    log = tmp_path / "stub.jsonl"
    s = session([sys.executable, "-c", DIES_ONCE, str(tmp_path / "died"), "--log", str(log)])
    reply = only(s.run(call("c", input="after")))
    assert reply.json()["result"]["content"][0]["text"] == "after"
    received = [json.loads(line) for line in log.read_text().splitlines()]
    assert [m["method"] for m in received] == ["initialize", "notifications/initialized",
                                               "tools/call"]
    assert s.session.supervisor.generation == 2


def test_a_connectors_initialize_is_forwarded_to_a_child_that_needs_no_handshake(child):
    c = child("--modern-only")
    only(c.run(call(1, input="x")))  # the replayed initialize is rejected
    reply = only(c.run(initialize("i")))
    assert reply.json()["id"] == "i" and reply.json()["error"]["code"] == -32022
    assert [m["method"] for m in c.received()].count("initialize") == 2


def test_a_rejected_connectors_initialize_leaves_the_child_free_for_the_next_caller(child):
    c = child("--modern-only")
    rejected = only(c.run(initialize("i")))
    assert rejected.json()["error"]["code"] == -32022
    msg = {"jsonrpc": "2.0", "id": "m", "method": "tools/list",
           "params": {"_meta": {META: MODERN_ERA}}}
    reply = only(c.run(msg, timeout=3))  # not kept waiting for a handshake still "busy"
    assert reply.json()["id"] == "m" and "tools" in reply.json()["result"]


def test_a_child_that_dies_under_the_handshake_and_is_not_replaced_fails_the_call(session):
    s = session([sys.executable, "-c", "import sys; sys.stdin.readline(); sys.exit(3)"],
                restart_limit=0)
    reply = only(s.run(call("c", input="x")))
    assert reply.json()["id"] == "c"
    assert reply.failure == wire.TunnelFailure("transport_closed", "closed_pipe", False)


def test_a_child_that_cannot_take_the_handshake_is_not_sent_the_request(session):
    s = deaf(session)
    # The replayed initialize cannot be written; the caller's deadline passes while
    # waiting for a replacement, and nothing is answered after it.
    assert s.run(call("c", input="x"), timeout=0.15) == []
