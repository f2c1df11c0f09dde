"""Control-plane rules against the relay's fault injection: backoff, retries, auth."""

import json
import os
import signal
import time

from tests.conftest import read_stub_log
from tests.support.calls import final, initialize, posted_bodies, tool_call
from tests.support.daemon import stub_command, wait_for


def poll_times(relay):
    return [p["time"] for p in relay.polls]


def test_429_with_retry_after_pauses_every_worker(relay, daemon):
    relay.faults.push("poll", "status:429:2")
    instance = daemon(wait=False, mcp_command=stub_command(), workers=6)
    wait_for(lambda: len(relay.polls) >= 2, timeout=15, message="a poll after the 429")
    times = poll_times(relay)
    assert times[1] - times[0] >= 1.95, "polled %.2fs after Retry-After: 2" % (
        times[1] - times[0])
    assert instance.proc.poll() is None


def test_a_429_pauses_polls_that_were_already_waiting_too(relay, daemon):
    """Long polls in flight when another worker meets the 429 end with a 204 during the
    pause; none of them may start the next poll before Retry-After has passed."""
    daemon(mcp_command=stub_command(), workers=4)
    wait_for(lambda: len(relay.polls) >= 6, timeout=30, message="several polls in flight")
    relay.faults.push("poll", "status:429:4")
    limited = wait_for(lambda: [p for p in list(relay.polls)
                                if p.get("status") == 429 and "answered" in p],
                       timeout=30, message="the 429")[0]
    answered = limited["answered"]
    wait_for(lambda: any(p["time"] > answered + 3.9 for p in list(relay.polls)),
             timeout=30, message="polling to resume after the pause")
    # A poll sent before the 429 reached the client may still arrive just after it; the
    # pause ends no earlier than 4 s after the relay answered.
    early = [round(p["time"] - answered, 2) for p in list(relay.polls)
             if answered + 1.0 < p["time"] < answered + 3.9]
    assert not early, "polls arrived %s s after a 429 with Retry-After: 4" % early


def test_503_twice_on_a_response_then_200_gives_three_identical_posts(relay, daemon):
    daemon(mcp_command=stub_command())
    final(relay, initialize())
    relay.faults.push("response", "status:503", "status:503")
    payload = final(relay, tool_call("echo", 1, input="retried"))
    assert payload["resp_json"]["result"]["structuredContent"] == {"echoed": "retried"}
    posts = posted_bodies(relay, payload["request_id"])
    assert len(posts) == 3
    assert len({p["body"] for p in posts}) == 1
    assert len({p["headers"]["X-Tunnel-Shard-Token"] for p in posts}) == 1


def test_404_on_a_response_is_final_and_mcp_work_is_not_replayed(relay, daemon, stub_log):
    instance = daemon(mcp_command=stub_command("--log", stub_log))
    final(relay, initialize())
    relay.faults.push("response", "status:404")
    call = relay.submit(tool_call("echo", 1, input="once"))
    wait_for(lambda: len(posted_bodies(relay, call.request_id)) == 1, message="the 404'd post")
    final(relay, tool_call("echo", 2, input="later"))
    assert len(posted_bodies(relay, call.request_id)) == 1
    calls = [e for e in read_stub_log(stub_log) if e["method"] == "tools/call"]
    assert len(calls) == 2
    assert "response already fulfilled or unknown request" in instance.output()


def test_401_is_not_a_tight_loop(relay, daemon):
    instance = daemon(wait=False, mcp_command=stub_command(), api_key="wrong-key", workers=10)
    wait_for(lambda: len(relay.polls) >= 1, message="the first poll")
    started = time.monotonic()
    # Ten workers, a wrong key, ten seconds: a tight loop would poll hundreds of times.
    wait_for(lambda: time.monotonic() - started > 10, timeout=12, interval=0.5)
    assert len(relay.polls) <= 2, poll_times(relay)
    assert instance.proc.poll() is None
    events = [e for e in instance.events() if e.get("level") == "ERROR"]
    assert any("invalid_api_key" in e["msg"] and "api_key" in e["msg"] for e in events)
    assert "wrong-key" not in instance.output()


def test_poll_requests_carry_identity_headers_and_no_secret_in_logs(relay, daemon):
    instance = daemon(mcp_command=stub_command(), args=[
        "--control-plane.organization-id", "org_123",
        "--control-plane.extra-headers", "X-Team: blue",
        "--control-plane.extra-headers", "X-Tunnel-Client-Instance-Id: forged"])
    final(relay, initialize())
    headers = relay.polls[-1]["headers"]
    assert headers["Authorization"] == "Bearer " + relay.api_key
    assert headers["Accept"] == "application/json"
    assert headers["User-Agent"].startswith("tunnel-client-python/")
    assert headers["X-Tunnel-Client-Name"] == "tunnel-client-python"
    assert headers["X-Tunnel-Client-Version"]
    assert headers["X-Tunnel-Client-Instance-Id"] != "forged"
    assert headers["OpenAI-Organization"] == "org_123"
    assert headers["X-Team"] == "blue"
    ids = {p["headers"]["X-Tunnel-Client-Instance-Id"] for p in relay.polls}
    assert len(ids) == 1
    assert relay.api_key not in instance.output()


def test_x_request_id_of_the_command_is_echoed_as_client_request_id(relay, daemon):
    daemon(mcp_command=stub_command())
    payload = final(relay, initialize(), headers={"X-Request-Id": "caller-req-42"})
    post = posted_bodies(relay, payload["request_id"])[-1]
    assert post["headers"]["X-Client-Request-Id"] == "caller-req-42"


def test_outage_then_recovery(relay, daemon):
    instance = daemon(mcp_command=stub_command())
    relay.faults.push("poll", "status:503", "drop", "status:503")
    wait_for(lambda: "poller recovered; polling operational" in instance.output(), timeout=30,
             message="recovery after the injected outage")
    assert not relay.faults.script["poll"], "every injected fault was met"
    assert "poll failed; backing off" in instance.output()
    assert final(relay, initialize(), timeout=20)["resp_code"] == 200


def test_unknown_command_types_are_skipped_and_polling_goes_on(relay, daemon):
    instance = daemon(mcp_command=stub_command())
    relay.submit({"x": 1}, command_type="teleport")
    payload = final(relay, initialize())
    assert payload["resp_code"] == 200
    assert any(e.get("msg") == "control-plane command dropped: unknown command_type" and
               e.get("command_type") == "teleport" for e in instance.events())


def test_sighup_reopens_the_log_file_and_pid_file_lifecycle(relay, daemon, tmp_path):
    log_path, pid_path = tmp_path / "tc.log", tmp_path / "tc.pid"
    instance = daemon(mcp_command=stub_command(), args=[
        "--log.file", str(log_path), "--pid.file", str(pid_path)])
    wait_for(lambda: pid_path.exists(), message="pid file")
    assert pid_path.read_text() == "%d\n" % instance.proc.pid
    assert oct(log_path.stat().st_mode & 0o777) == "0o600"
    os.rename(log_path, tmp_path / "tc.log.1")
    instance.signal(signal.SIGHUP)
    wait_for(lambda: log_path.exists(), message="reopened log file")
    final(relay, initialize())
    wait_for(lambda: "command received" in log_path.read_text(), message="new log lines")
    assert instance.stop() == 0
    assert not pid_path.exists()
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert lines[-1]["msg"] == "tunnel-client stopped"


RAW_SECRET_HEADERS = ("authorization", "proxy-authorization", "cookie", "set-cookie",
                      "x-tunnel-shard-token")


def test_raw_http_logging_dumps_exchanges_at_debug_with_secrets_redacted(
        relay, daemon, scripted):
    def mcp_server(request):
        if request["json"] is None or "id" not in request["json"]:
            return 202, {}, b""
        return 200, {"Content-Type": "application/json",
                     "Set-Cookie": "sid=PLANTEDSETCOOKIE; Path=/; HttpOnly"}, json.dumps(
            {"jsonrpc": "2.0", "id": request["json"]["id"], "result": {"ok": "raw-marker"}}
        ).encode()

    server = scripted(mcp_server)
    instance = daemon(mcp_url=server.url, args=[
        "--log.http-raw-unsafe",
        "--mcp.extra-headers", "Authorization: Bearer PLANTEDMCPBEARER",
        "--control-plane.extra-headers", "Cookie: sid=PLANTEDCOOKIE",
        "--control-plane.extra-headers", "Proxy-Authorization: Basic UExBTlRFRFBST1hZ"])
    call = relay.submit(tool_call("echo", 1, input="raw-marker"))
    assert call.take(15)["resp_code"] == 200
    wait_for(lambda: any(e.get("msg") == "raw http exchange" and e.get("method") == "POST"
                         and e.get("route") == "control-plane" for e in instance.events()),
             message="a raw POST dump")
    dumps = [e for e in instance.events() if e.get("msg") == "raw http exchange"]
    assert any("raw-marker" in (e.get("request_body") or "") for e in dumps)
    seen = set()
    for dump in dumps:
        for side in ("request_headers", "response_headers"):
            for name, value in (dump.get(side) or {}).items():
                if name.lower() in RAW_SECRET_HEADERS:
                    seen.add(name.lower())
                    assert value == "[REDACTED]", (dump["route"], side, name, value)
    assert seen == set(RAW_SECRET_HEADERS), "not every secret header was exercised"
    output = instance.output()
    for secret in (relay.api_key, call.shard_token, "PLANTEDMCPBEARER", "PLANTEDCOOKIE",
                   "UExBTlRFRFBST1hZ", "PLANTEDSETCOOKIE"):
        assert secret not in output, secret
    assert "raw HTTP logging is enabled" in output


def _poll_in_thread(controlplane, before_poll=None):
    """Run ``controlplane.poll()`` in its own thread (lanes are per thread)."""
    import threading

    from tunnel_client.errors import ControlPlaneError
    outcome = {}

    def run():
        if before_poll:
            before_poll()
        try:
            outcome["commands"] = controlplane.poll()[0]
        except ControlPlaneError as exc:
            outcome["error"] = str(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _controlplane(relay):
    from tunnel_client.controlplane import ControlPlane
    from tunnel_client.net import TrustStore, resolve_route
    route = resolve_route("control-plane", relay.base_url, [], {}, TrustStore(None))
    return ControlPlane(route, relay.tunnel_id, relay.api_key, poll_timeout=20.0)


def _interrupted_promptly(relay, controlplane, before_poll=None, short_polls=0):
    seen = len(relay.polls) + short_polls
    thread, outcome = _poll_in_thread(controlplane, before_poll)
    wait_for(lambda: len(relay.polls) > seen, message="the long poll waiting at the relay")
    controlplane.interrupt_polls()
    thread.join(5)
    assert not thread.is_alive(), "a 20-s long poll outlived interrupt_polls by 5 s"
    assert "commands" not in outcome, outcome


def test_stop_interrupts_a_long_poll_on_its_first_connection(relay):
    # The connection is opened inside the poll itself: nothing was known about it before.
    controlplane = _controlplane(relay)
    try:
        _interrupted_promptly(relay, controlplane)
    finally:
        controlplane.close()


def test_stop_interrupts_a_long_poll_on_a_replacement_connection(relay):
    # A short poll opens a connection, which is then dropped (as after an error or a
    # recycle): the long poll that follows runs on a new one.
    controlplane = _controlplane(relay)

    def probe_then_drop():
        controlplane.poll(probe=True)
        controlplane.sessions.get().close()

    try:
        _interrupted_promptly(relay, controlplane, probe_then_drop, short_polls=1)
    finally:
        controlplane.close()


def test_stop_interrupts_a_long_poll_on_a_connection_a_reply_opened(relay):
    # The poll's connection is dropped while its command runs; the reply's POST opens the
    # new one, and the next long poll reuses it.
    from tunnel_client import wire
    controlplane = _controlplane(relay)
    relay.submit({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, channel="elsewhere")

    def serve_one_then_drop():
        [command] = controlplane.poll()[0]
        controlplane.sessions.get().close()
        reply = wire.unsupported_channel(command)
        assert controlplane.post(command, reply, command.deadline) == "ok"

    try:
        _interrupted_promptly(relay, controlplane, serve_one_then_drop, short_polls=1)
    finally:
        controlplane.close()
