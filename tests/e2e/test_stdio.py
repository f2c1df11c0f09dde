"""The stdio binding end to end: relay -> tunnel-client run -> stdio MCP server."""

import concurrent.futures
import json
import os
import signal

import pytest
import requests

from tests.conftest import read_stub_log
from tests.support.calls import (exchange, final, initialize, notification,
                                 posted_bodies, rpc, tool_call)
from tests.support.contract import assert_valid
from tests.support.daemon import stub_command, wait_for

FAST_RESTART = ["--mcp.stdio.restart-backoff", "50ms"]


def result_of(payload):
    assert payload["resp_type"] == "jsonrpc_response", payload
    return payload["resp_json"]


def stub_pids(log):
    return sorted({entry["pid"] for entry in read_stub_log(log)})


def stub_pids_in_order(entries):
    seen = []
    for entry in entries:
        if entry["pid"] not in seen:
            seen.append(entry["pid"])
    return seen


def test_tools_list_and_call_round_trip_with_zero_integer_and_string_ids(relay, daemon):
    daemon(mcp_command=stub_command())
    assert result_of(final(relay, initialize(rpc_id=0)))["result"]["serverInfo"]["name"] \
        == "mcp-stub"
    for rpc_id in (0, 41, "req-abc"):
        reply = result_of(final(relay, rpc("tools/list", rpc_id)))
        assert reply["id"] == rpc_id and type(reply["id"]) is type(rpc_id)
        assert "echo" in [t["name"] for t in reply["result"]["tools"]]
        reply = result_of(final(relay, tool_call("echo", rpc_id, input="hi %s" % rpc_id)))
        assert reply["id"] == rpc_id
        assert reply["result"]["structuredContent"] == {"echoed": "hi %s" % rpc_id}
    for record in relay.responses:
        assert_valid("response_payload", json.loads(record["body"]))
        assert record["headers"]["X-Tunnel-Shard-Token"].startswith("shard_")
    for record in relay.polls:
        assert record["path"].endswith(("limit=1&timeout_ms=2000", "limit=1&timeout_ms=1"))
        assert record["headers"]["X-Tunnel-MCP-Server-Info"] == \
            '{"version":1,"channels":[{"name":"main","proc_affinity":true}]}'
        assert len(record["headers"]["X-Tunnel-Client-Instance-Id"]) == 32


def test_strict_server_is_initialized_without_an_initialize_through_the_tunnel(
        relay, daemon, stub_log):
    instance = daemon(mcp_command=stub_command("--strict-init", "--log", stub_log),
                      args=FAST_RESTART)
    reply = result_of(final(relay, tool_call("echo", 1, input="a"), timeout=20))
    assert reply["result"]["structuredContent"] == {"echoed": "a"}
    first_pid = stub_pids(stub_log)[0]
    os.kill(first_pid, signal.SIGKILL)
    # A command written in the very instant of the kill is ambiguous and is not replayed;
    # the story here is the next command after the restart.
    wait_for(lambda: "stdio MCP server is down; restarting" in instance.output(),
             message="the supervisor noticing the crash")
    assert instance.proc.poll() is None
    reply = result_of(final(relay, tool_call("echo", 2, input="b"), timeout=20))
    assert reply["result"]["structuredContent"] == {"echoed": "b"}
    log = read_stub_log(stub_log)
    assert len(stub_pids(stub_log)) == 2
    for pid in stub_pids(stub_log):
        methods = [e["method"] for e in log if e["pid"] == pid]
        assert methods[:3] == ["initialize", "notifications/initialized", "tools/call"], methods


def test_connector_initialize_is_forwarded_once_and_duplicates_come_from_the_cache(
        relay, daemon, stub_log):
    daemon(mcp_command=stub_command("--strict-init", "--log", stub_log))
    first = result_of(final(relay, initialize(rpc_id=1)))
    assert final(relay, notification("notifications/initialized"))["resp_type"] == "notify_ack"
    second = result_of(final(relay, initialize(rpc_id="second-session")))
    assert second["id"] == "second-session"
    assert second["result"] == first["result"]
    # The server logs notifications/initialized a moment after the ack went out.
    methods = wait_for(lambda: (lambda m: m if "notifications/initialized" in m else None)(
        [e["method"] for e in read_stub_log(stub_log)]), message="the initialized notification")
    assert methods.count("initialize") == 1
    assert methods.count("notifications/initialized") == 1


def test_callers_reusing_the_same_id_concurrently_get_their_own_results(relay, daemon):
    daemon(mcp_command=stub_command(), workers=8)
    final(relay, initialize())

    def call(n):
        reply = result_of(final(relay, tool_call("echo", 1, input="caller-%d" % n)))
        return n, reply["id"], reply["result"]["structuredContent"]["echoed"]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(call, range(32)))
    for n, rpc_id, echoed in results:
        assert rpc_id == 1 and echoed == "caller-%d" % n


def test_a_late_reply_to_a_timed_out_request_never_leaks_into_a_later_command(
        relay, daemon, stub_log):
    instance = daemon(mcp_command=stub_command("--test-tools", "--log", stub_log), workers=1)
    final(relay, initialize())
    slow = relay.submit(tool_call("sleep", 5, seconds=1.5), response_timeout="300ms")
    wait_for(lambda: any(e["method"] == "tools/call" for e in read_stub_log(stub_log)),
             message="the slow call reaching the server")
    # The next command reuses id 5 and arrives while the late reply is still on its way.
    reply = result_of(final(relay, tool_call("echo", 5, input="fresh"), timeout=10))
    assert reply["result"]["structuredContent"] == {"echoed": "fresh"}
    wait_for(lambda: any(e["method"] == "notifications/cancelled"
                         for e in read_stub_log(stub_log)), message="a cancellation")
    # A call started after the slow one and as long: its answer comes after the late reply
    # on the server's output, so once it is in, the late reply has been read.
    fence = final(relay, tool_call("sleep", 6, seconds=1.5), timeout=10)
    assert result_of(fence)["result"]["structuredContent"] == {"slept": 1.5}
    assert instance.stop() == 0  # nothing can be posted any more
    assert slow.deliveries == 1
    assert not slow.payloads and slow.answers == 0, "an expired command was answered"
    assert posted_bodies(relay, slow.request_id) == []


def test_progress_notifications_reach_the_caller_that_asked_for_them(relay, daemon):
    daemon(mcp_command=stub_command(), workers=4)
    final(relay, initialize())
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        a = pool.submit(exchange, relay, tool_call("count", 1, progress="same", to=3,
                                                   delay_ms=30))
        b = pool.submit(exchange, relay, tool_call("count", 2, progress="same", to=5,
                                                   delay_ms=20))
        for payloads, total in ((a.result(), 3), (b.result(), 5)):
            notes = [p for p in payloads if p["resp_type"] == "jsonrpc_notify"]
            assert [n["resp_json"]["params"]["progress"] for n in notes] == \
                list(range(1, total + 1))
            assert all(n["resp_json"]["params"]["progressToken"] == "same" for n in notes)
            assert all(n["resp_json"]["params"]["total"] == total for n in notes)
            assert payloads[-1]["resp_type"] == "jsonrpc_response"
            assert payloads[-1]["resp_json"]["result"]["structuredContent"] == {"count": total}


def test_child_killed_mid_call_fails_fast_and_the_next_call_succeeds(relay, daemon, stub_log):
    daemon(mcp_command=stub_command("--log", stub_log), args=FAST_RESTART)
    final(relay, initialize())
    call = relay.submit(tool_call("sleep", 9, seconds=30))
    wait_for(lambda: any(e["method"] == "tools/call" for e in read_stub_log(stub_log)),
             message="the call reaching the server")
    os.kill(stub_pids(stub_log)[0], signal.SIGKILL)
    # Fast means "because the child died", told by the provenance below: the call itself
    # would sleep 30 s, past the command's 20 s deadline.
    payload = call.take(15)
    assert payload is not None, "no reply after the child died"
    error = payload["resp_json"]["error"]
    assert payload["resp_code"] == 502 and error["code"] == -32603
    assert error["data"]["tunnel_failure"]["source"] == "transport_closed"
    assert payload["resp_json"]["id"] == 9
    reply = result_of(final(relay, tool_call("echo", 10, input="after"), timeout=20))
    assert reply["result"]["structuredContent"] == {"echoed": "after"}


def test_a_child_that_always_exits_makes_the_daemon_exit_non_zero(relay, daemon):
    instance = daemon(wait=False, mcp_command="python3 -c 'import sys; sys.exit(3)'",
                      args=["--mcp.stdio.restart-backoff", "20ms",
                            "--mcp.stdio.restart-limit", "3"])
    assert instance.wait() == 1
    assert "giving up" in instance.output()


def test_a_missing_executable_is_a_one_line_startup_error(relay, daemon):
    instance = daemon(wait=False, mcp_command="/nonexistent/mcp-server --stdio")
    assert instance.wait() == 1
    assert "start tunnel-client: stdio MCP command for channel main: executable " \
           "'/nonexistent/mcp-server' not found" in instance.output()


def test_stderr_floods_and_garbage_lines_do_not_stop_the_server(relay, daemon):
    instance = daemon(mcp_command=stub_command("--test-tools"))
    final(relay, initialize())
    assert result_of(final(relay, tool_call("stderr_flood", 1, lines=20000),
                           timeout=30))["result"]
    assert result_of(final(relay, tool_call("garbage", 2)))["result"]
    assert result_of(final(relay, tool_call("echo", 3, input="still here")))["result"][
        "structuredContent"] == {"echoed": "still here"}
    assert "not JSON" in instance.output()

    # Every flood line is either logged or counted in a "suppressed" report, which comes
    # on a timer even though the flood ended and the server stays quiet.
    def accounted():
        events = instance.events()
        logged = sum(1 for e in events if e.get("stream") == "stderr"
                     and "stderr line" in e.get("msg", ""))
        suppressed = sum(e.get("suppressed", 0) for e in events)
        return suppressed > 0 and logged + suppressed == 20000

    wait_for(accounted, timeout=30, message="every stderr line logged or reported suppressed")


def test_modern_only_server_gets_no_handshake_and_its_errors_pass_through(
        relay, daemon, stub_log):
    daemon(mcp_command=stub_command("--modern-only", "--log", stub_log))
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}
    discover = result_of(final(relay, rpc("server/discover", 1, _meta=meta)))
    assert discover["result"]["supportedVersions"] == ["2026-07-28"]
    reply = result_of(final(relay, tool_call("echo", 2, meta=meta, input="modern")))
    assert reply["result"]["resultType"] == "complete"
    # A legacy request gets the server's own error, verbatim, not a synthesized -32603.
    legacy = result_of(final(relay, tool_call("echo", 3, input="legacy")))
    assert legacy["error"]["code"] == -32022
    log = read_stub_log(stub_log)
    for pid in stub_pids(stub_log):
        methods = [e["method"] for e in log if e["pid"] == pid]
        assert methods.count("initialize") <= 1, "a rejected handshake is never retried"
    first = [e["method"] for e in log if e["pid"] == stub_pids_in_order(log)[0]]
    assert first[:2] == ["server/discover", "tools/call"]


def test_server_to_client_requests_get_local_answers(relay, daemon):
    daemon(mcp_command=stub_command("--test-tools"))
    final(relay, initialize())
    ping = result_of(final(relay, tool_call("ask_client", 1, method="ping")))
    assert ping["result"]["structuredContent"]["answer"]["result"] == {}
    roots = result_of(final(relay, tool_call("ask_client", 2, method="roots/list")))
    assert roots["result"]["structuredContent"]["answer"]["error"]["code"] == -32601


def test_a_server_request_is_relayed_to_the_caller_that_declared_it_and_answered_back(
        relay, daemon):
    daemon(mcp_command=stub_command("--test-tools"))
    final(relay, rpc("initialize", 0, protocolVersion="2025-06-18",
                     capabilities={"roots": {"listChanged": True}},
                     clientInfo={"name": "test", "version": "1"}))
    call = relay.submit(tool_call("ask_client", 1, method="roots/list"))
    asked = call.take(10)
    assert asked["resp_type"] == "jsonrpc_notify", asked
    request = asked["resp_json"]
    assert request["method"] == "roots/list" and request["id"].startswith("tc-ask-")
    roots = {"roots": [{"uri": "file:///srv/data", "name": "data"}]}
    ack = final(relay, {"jsonrpc": "2.0", "id": request["id"], "result": roots})
    assert (ack["resp_type"], ack["resp_code"]) == ("notify_ack", 202)
    done = call.take(10)
    assert result_of(done)["result"]["structuredContent"]["answer"]["result"] == roots
    # Answering again, or answering nothing that was asked, is acknowledged and dropped.
    for rpc_id in (request["id"], "never-asked", 7):
        again = final(relay, {"jsonrpc": "2.0", "id": rpc_id, "result": roots})
        assert (again["resp_type"], again["resp_code"]) == ("notify_ack", 202)
    assert result_of(final(relay, tool_call("echo", 2, input="ok")))["result"]


def test_a_caller_gets_a_session_id_and_an_ended_session_is_404_while_others_go_on(
        relay, daemon):
    daemon(mcp_command=stub_command())
    first, second = exchange(relay, initialize(0))[-1], exchange(relay, initialize(1))[-1]
    ids = [reply["resp_headers"]["Mcp-Session-Id"][0] for reply in (first, second)]
    assert ids[0] != ids[1] and all(sid.isalnum() and sid.isascii() for sid in ids)
    unknown = final(relay, None, command_type="session_termination",
                    headers={"Mcp-Session-Id": "s-1"})
    assert (unknown["resp_type"], unknown["resp_code"]) == ("session_termination_response", 404)
    ended = final(relay, None, command_type="session_termination",
                  headers={"Mcp-Session-Id": ids[0]})
    assert (ended["resp_type"], ended["resp_code"]) == ("session_termination_response", 204)
    assert "resp_json" not in ended
    gone = final(relay, tool_call("echo", 2, input="x"), headers={"Mcp-Session-Id": ids[0]})
    assert gone["resp_code"] == 404 and gone["resp_json"]["error"]["code"] == -32600
    kept = final(relay, tool_call("echo", 3, input="ok"), headers={"Mcp-Session-Id": ids[1]})
    assert result_of(kept)["result"]
    assert result_of(final(relay, tool_call("echo", 4, input="ok")))["result"]


def test_zero_timeout_is_dropped_without_contacting_the_server(relay, daemon, stub_log):
    instance = daemon(mcp_command=stub_command("--log", stub_log))
    final(relay, initialize())
    expired = relay.submit(tool_call("echo", 1, input="never"), response_timeout="0s")
    reply = result_of(final(relay, tool_call("echo", 2, input="after"),
                            response_timeout="not-a-duration"))
    assert reply["result"]["structuredContent"] == {"echoed": "after"}
    wait_for(lambda: expired.deliveries, message="the expired command reaching the daemon")
    assert instance.stop() == 0  # it has handled everything it took: nothing more to come
    assert not expired.payloads and posted_bodies(relay, expired.request_id) == []
    calls = [e for e in read_stub_log(stub_log) if e["method"] == "tools/call"]
    assert len(calls) == 1


def test_pool_size_bounds_concurrent_calls(relay, daemon, stub_log):
    daemon(mcp_command=stub_command("--log", stub_log), workers=2)
    final(relay, initialize())
    calls = [relay.submit(tool_call("sleep", i, seconds=0.4)) for i in range(6)]
    for call in calls:
        assert call.take(20)["resp_code"] == 200
    starts = [e["t"] for e in read_stub_log(stub_log) if e["method"] == "tools/call"]
    # Each call takes 0.4 s; with two workers no three starts can fall within 0.4 s.
    starts.sort()
    assert all(starts[i + 2] - starts[i] >= 0.35 for i in range(len(starts) - 2)), starts


def test_sigterm_during_a_call_posts_the_reply_exits_0_and_leaves_no_child(
        relay, daemon, stub_log):
    instance = daemon(mcp_command=stub_command("--log", stub_log))
    final(relay, initialize())
    call = relay.submit(tool_call("sleep", 1, seconds=1.0))
    wait_for(lambda: any(e["method"] == "tools/call" for e in read_stub_log(stub_log)),
             message="the call reaching the server")
    instance.signal(signal.SIGTERM)
    payload = call.take(10)
    assert payload is not None and payload["resp_code"] == 200
    assert payload["resp_json"]["result"]["structuredContent"] == {"slept": 1.0}
    assert instance.wait(20) == 0
    pid = stub_pids(stub_log)[0]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_child_environment_does_not_carry_the_api_key(relay, daemon, tmp_path):
    dump = tmp_path / "env.json"
    script = tmp_path / "envdump.py"
    script.write_text("import json, os, sys\n"
                      "json.dump(dict(os.environ), open(%r, 'w'))\n"
                      "sys.stdin.read()\n" % str(dump))
    daemon(mcp_command="python3 %s" % script)
    wait_for(lambda: dump.exists() and dump.stat().st_size > 0, message="env dump")
    env = json.loads(dump.read_text())
    assert "CONTROL_PLANE_API_KEY" not in env
    assert relay.api_key not in env.values()
    assert "PATH" in env


def test_a_stuck_child_fails_its_health_ping_and_is_replaced(relay, daemon, stub_log):
    instance = daemon(mcp_command=stub_command("--log", stub_log), args=FAST_RESTART + [
        "--mcp.stdio.health-interval", "300ms", "--mcp.stdio.health-timeout", "500ms"])
    final(relay, initialize())
    first = stub_pids(stub_log)[0]
    wait_for(lambda: any(e["method"] == "ping" for e in read_stub_log(stub_log)),
             message="an idle health ping")
    os.kill(first, signal.SIGSTOP)
    try:
        wait_for(lambda: "did not answer a health ping" in instance.output(), timeout=10,
                 message="the stuck child being noticed")
    finally:
        try:
            os.kill(first, signal.SIGCONT)
        except ProcessLookupError:
            pass  # already killed by the supervisor, as it should be
    reply = result_of(final(relay, tool_call("echo", 1, input="fresh child"), timeout=20))
    assert reply["result"]["structuredContent"] == {"echoed": "fresh child"}
    assert len(stub_pids(stub_log)) == 2


def test_a_child_ignoring_sigterm_is_killed_after_the_grace(relay, daemon, tmp_path):
    pid_file = tmp_path / "child.pid"
    script = tmp_path / "stubborn.py"
    script.write_text("import os, signal, time\n"
                      "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                      "open(%r, 'w').write(str(os.getpid()))\n"
                      "while True:\n    time.sleep(1)\n" % str(pid_file))
    instance = daemon(mcp_command="python3 %s" % script,
                      args=["--mcp.stdio.stop-grace", "200ms"])
    wait_for(lambda: pid_file.exists() and pid_file.read_text(), message="child pid")
    child = int(pid_file.read_text())
    assert instance.stop() == 0
    assert "stdio server ignored SIGTERM; killing it" in instance.output()
    wait_for(lambda: not os.path.exists("/proc/%d" % child) or
             open("/proc/%d/stat" % child).read().split()[2] == "Z", message="child gone")


def test_an_era_locked_server_gets_a_second_child_for_the_other_era(relay, daemon, tmp_path):
    """A server that locks its connection to the first era it sees (the official SDK does)
    refuses the other with -32022; that era then gets a dedicated child."""
    script = tmp_path / "locked.py"
    script.write_text(
        "import json, os, sys\n"
        "era = None\n"
        "for line in sys.stdin:\n"
        "    msg = json.loads(line)\n"
        "    if 'id' not in msg:\n"
        "        continue\n"
        "    modern = 'io.modelcontextprotocol/protocolVersion' in "
        "(msg.get('params') or {}).get('_meta', {})\n"
        "    mine = 'modern' if modern else 'legacy'\n"
        "    era = era or mine\n"
        "    if mine != era:\n"
        "        out = {'jsonrpc': '2.0', 'id': msg['id'], 'error': {'code': -32022, "
        "'message': 'connection is serving the %s era' % era}}\n"
        "    elif msg['method'] == 'initialize':\n"
        "        out = {'jsonrpc': '2.0', 'id': msg['id'], 'result': {'protocolVersion': "
        "'2025-11-25', 'capabilities': {}, 'serverInfo': {'name': 'locked', 'version': "
        "str(os.getpid())}}}\n"
        "    else:\n"
        "        out = {'jsonrpc': '2.0', 'id': msg['id'], 'result': {'pid': os.getpid(), "
        "'era': era}}\n"
        "    print(json.dumps(out), flush=True)\n")
    instance = daemon(mcp_command="%s %s" % (os.environ.get("PYTHON", "python3"), script))
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}
    modern = result_of(final(relay, rpc("tools/list", 1, _meta=meta)))["result"]
    assert modern["era"] == "modern"
    legacy_init = result_of(final(relay, initialize(rpc_id=2)))
    assert "result" in legacy_init, legacy_init
    legacy = result_of(final(relay, rpc("tools/list", 3)))["result"]
    assert legacy["era"] == "legacy" and legacy["pid"] != modern["pid"]
    again = result_of(final(relay, rpc("tools/list", 4, _meta=meta)))["result"]
    assert again["pid"] == modern["pid"]
    assert "started a dedicated process" in instance.output()


def test_a_killed_child_restarts_while_the_metadata_endpoint_hangs(relay, daemon):
    """Restarts run on their own scheduler: a hanging network job cannot delay them."""
    relay.faults.push("metadata", "delay:8")
    instance = daemon(mcp_command=stub_command(), args=FAST_RESTART)
    started = "stdio MCP command started"
    pid = wait_for(lambda: [json.loads(line)["pid"] for line in instance.output().splitlines()
                            if started in line], message="the first child")[0]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: instance.output().count(started) == 2, message="the restarted child")
    assert "tunnel metadata" not in instance.output(), "the metadata fetch was not hanging"
    assert result_of(final(relay, tool_call("echo", 1, input="back")))["result"][
        "structuredContent"] == {"echoed": "back"}


def test_status_readiness_and_metrics_show_the_child_of_each_era(relay, daemon, tmp_path):
    url_file = str(tmp_path / "admin.url")
    daemon(mcp_command=stub_command(), args=["--health.url-file", url_file])
    wait_for(lambda: os.path.exists(url_file) and open(url_file).read().strip(),
             message="the admin URL file")
    base = open(url_file).read().strip()
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}
    assert "result" in result_of(final(relay, rpc("tools/list", 1, _meta=meta)))
    assert "result" in result_of(final(relay, initialize(rpc_id=2)))
    assert "result" in result_of(final(relay, rpc("tools/list", 3)))
    status = requests.get(base + "/api/status", timeout=5).json()
    channel = status["channels"][0]
    children = {c["era"]: c for c in channel["children"]}
    assert set(children) == {"2026-07-28", "legacy"}
    assert children["2026-07-28"]["pid"] != children["legacy"]["pid"]
    assert children["legacy"]["handshake"] == "done"
    assert all(c["generation"] == 1 and c["restarts"] == 0 for c in children.values())
    assert requests.get(base + "/readyz", timeout=5).status_code == 200
    ready = {i["name"]: i for i in status["readiness"]["inputs"]}["channel:main"]["reason"]
    assert "legacy: stdio server running" in ready and "2026-07-28: stdio server running" \
        in ready
    metrics = requests.get(base + "/metrics", timeout=5).text
    for era in ("legacy", "2026-07-28"):
        assert 'mcp_stdio_generation{channel="main",era="%s"} 1' % era in metrics


def test_the_operators_roots_answer_the_server_and_a_reload_announces_new_ones(
        relay, daemon, stub_log, tmp_path):
    config = tmp_path / "tunnel.yaml"
    config.write_text("mcp:\n  roots: ['file:///srv/data']\n")
    instance = daemon(mcp_command=stub_command("--test-tools", "--log", stub_log),
                      args=["--config", str(config)])
    final(relay, rpc("initialize", 0, protocolVersion="2025-06-18",
                     capabilities={"roots": {}, "sampling": {}},
                     clientInfo={"name": "test", "version": "1"}))

    def roots_seen_by_server(rpc_id):
        reply = result_of(final(relay, tool_call("ask_client", rpc_id, method="roots/list")))
        return reply["result"]["structuredContent"]["answer"]["result"]["roots"]

    # The caller declared roots, but the operator's have the last word: nobody is asked.
    assert roots_seen_by_server(1) == [{"uri": "file:///srv/data", "name": "data"}]
    handshake = [e for e in read_stub_log(stub_log) if e["method"] == "initialize"]
    assert handshake[0]["capabilities"]["roots"] == {"listChanged": True}
    config.write_text("mcp:\n  roots: ['file:///srv/data', 'file:///srv/more/']\n")
    instance.signal(signal.SIGHUP)
    wait_for(lambda: any(e["method"] == "notifications/roots/list_changed"
                         for e in read_stub_log(stub_log)), message="roots/list_changed")
    assert roots_seen_by_server(2) == [{"uri": "file:///srv/data", "name": "data"},
                                       {"uri": "file:///srv/more/", "name": "more"}]
    assert instance.proc.poll() is None


def test_a_root_that_is_not_a_file_uri_is_a_one_line_startup_error(relay, daemon):
    instance = daemon(wait=False, mcp_command=stub_command(),
                      args=["--mcp.root", "/srv/data"])
    assert instance.wait(15) != 0
    assert 'root "/srv/data" is not a file:// URI' in instance.output()
