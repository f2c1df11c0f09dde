"""The operator surface of a running daemon: readiness with reasons, metrics, the support
bundle, the health command and systemd notify."""

import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile

import pytest
import requests

from tests.support import prom
from tests.support.calls import final, initialize, rpc, tool_call
from tests.support.daemon import admin_base, stub_command, wait_for


def readyz(base):
    resp = requests.get(base + "/readyz", timeout=2)
    return resp.status_code, resp.text


def wait_ready_state(base, status, contains="", timeout=15):
    return wait_for(lambda: (lambda r: r if r[0] == status and contains in r[1] else None)(
        readyz(base)), timeout, message="readyz %d containing %r (last: %s)" % (
            status, contains, readyz(base)))


def test_readiness_follows_a_rejected_key_both_ways(relay, daemon, url_file):
    daemon(wait=False, mcp_command=stub_command(), api_key="rotated-key-1", args=[
        "--health.url-file", url_file, "--control-plane.auth-backoff", "500ms"])
    base = admin_base(url_file)
    status, reason = wait_ready_state(base, 503, "invalid_api_key")
    assert "api_key" in reason and "rotated-key-1" not in reason
    relay.add_key("rotated-key-1", True)
    wait_ready_state(base, 200, "ready")


def test_readiness_names_a_missing_tunnel_permission(relay, daemon, url_file):
    relay.add_key("no-permission-key", False)
    daemon(wait=False, mcp_command=stub_command(), api_key="no-permission-key",
                      args=["--health.url-file", url_file])
    base = admin_base(url_file)
    _, reason = wait_ready_state(base, 503, "tunnel_use_forbidden")
    assert "may use this tunnel" in reason


def test_readiness_reports_a_sustained_outage_and_recovers(relay, daemon, url_file):
    daemon(mcp_command=stub_command(), args=[
        "--health.url-file", url_file, "--health.poll-failure-grace", "1s",
        "--control-plane.poll-timeout", "500ms"])
    base = admin_base(url_file)
    wait_ready_state(base, 200)
    relay.faults.rates["poll-503"] = 1.0
    _, reason = wait_ready_state(base, 503, "control plane failing: HTTP 503")
    relay.faults.rates.clear()
    wait_ready_state(base, 200, timeout=20)


def test_readiness_follows_a_crash_looping_stdio_server(relay, daemon, url_file, tmp_path):
    counter = tmp_path / "starts"
    gate = tmp_path / "healthy"
    script = tmp_path / "flaky.py"
    script.write_text(
        "import os, runpy, sys\n"
        "open(%r, 'a').write('x')\n"
        "if not os.path.exists(%r):\n    sys.exit(5)\n"
        "sys.argv = ['stub']\n"
        "runpy.run_module('tunnel_client.devtools.stub', run_name='__main__')\n"
        % (str(counter), str(gate)))
    daemon(wait=False, mcp_command="%s %s" % (sys.executable, script), args=[
        "--health.url-file", url_file, "--mcp.stdio.restart-backoff", "300ms",
        "--mcp.stdio.restart-limit", "50", "--mcp.stdio.restart-window", "10s"])
    base = admin_base(url_file)
    _, reason = wait_ready_state(base, 503, "channel main: stdio server exited with code 5")
    assert "restart" in reason
    gate.touch()
    wait_ready_state(base, 200)
    assert final(relay, initialize())["resp_code"] == 200
    status = requests.get(base + "/api/status", timeout=2).json()
    channel = status["channels"][0]
    assert channel["restarts"] >= 1 and channel["healthy"] is True
    inputs = {i["name"]: i for i in status["readiness"]["inputs"]}
    assert inputs["channel:main"]["ok"] and inputs["control_plane"]["since"] > 0


def test_readiness_follows_an_http_target_that_goes_away(relay, daemon, url_file):
    from tunnel_client.devtools.stub import StubOptions, make_http_server
    import threading

    def serve(port=0):
        server = make_http_server(StubOptions(), port=port)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    server = serve()
    port = server.port
    daemon(mcp_url="http://127.0.0.1:%d/mcp" % port, args=[
        "--health.url-file", url_file, "--mcp.http-probe-interval", "200ms"])
    base = admin_base(url_file)
    wait_ready_state(base, 200)
    server.shutdown()
    server.server_close()
    _, reason = wait_ready_state(base, 503, "unreachable")
    assert "channel main" in reason
    server = serve(port)
    try:
        wait_ready_state(base, 200)
    finally:
        server.shutdown()
        server.server_close()


def test_metrics_parse_strictly_and_counters_move(relay, daemon, url_file):
    daemon(mcp_command=stub_command(), args=["--health.url-file", url_file])
    base = admin_base(url_file)
    before = prom.parse(requests.get(base + "/metrics", timeout=2).text)
    final(relay, initialize())
    for i in range(3):
        final(relay, tool_call("echo", i, input="m%d" % i))

    def scraped():
        # The relay has a reply a moment before the daemon books its outcome.
        families = prom.parse(requests.get(base + "/metrics", timeout=2).text)
        done = prom.value(families, "command_end_to_end_latency_milliseconds_count",
                          request_method="tools/call", latency_type="poll_to_response")
        return families if done == 3 else None

    after = wait_for(scraped, message="three tool calls in the latency histogram")
    assert prom.value(after, "commands_polled_total") >= \
        (prom.value(before, "commands_polled_total") or 0) + 4
    assert prom.value(after, "response_posts_total", resp_type="jsonrpc_response",
                      outcome="ok") >= 4
    assert prom.value(after, "command_end_to_end_latency_milliseconds_count",
                      request_method="tools/call", latency_type="poll_to_response") == 3
    assert prom.value(after, "dispatcher_worker_pool_capacity") == 4
    assert prom.value(after, "readiness") == 1 and prom.value(after, "liveness") == 1
    assert prom.value(after, "process_resident_memory_bytes") > 10e6
    assert prom.value(after, "commands_poll_last_successful_timestamp_seconds") > 0


def test_label_cardinality_is_bounded(relay, daemon, url_file):
    daemon(mcp_command=stub_command(), workers=8, args=["--health.url-file",
                                                                   url_file])
    base = admin_base(url_file)
    final(relay, initialize())
    calls = [relay.submit(rpc("custom/method-%d" % i, i)) for i in range(1000)]
    calls += [relay.submit(tool_call("tool-%d" % i, i)) for i in range(200)]
    calls += [relay.submit(rpc("tools/list", i), channel="chan-%d" % i) for i in range(300)]
    for call in calls:
        assert call.take(60) is not None
    families = prom.parse(requests.get(base + "/metrics", timeout=5).text)
    series = {name: len(f["samples"]) for name, f in families.items()}
    total = sum(series.values())
    assert total < 3000, sorted(series.items(), key=lambda kv: -kv[1])[:5]
    methods = {labels.get("request_method") for _, labels, _ in
               families["command_end_to_end_latency_milliseconds"]["samples"]}
    assert len(methods) <= 6, methods
    channels = {labels.get("channel") for _, labels, _ in
                families["command_unsupported_channel_total"]["samples"]}
    assert len(channels) <= 101


PLANTED = ["sk-PLANTEDkey1234567890", "Bearer planted-bearer-token-xyz", "shard_PLANTEDSHARD",
           "http://proxyuser:PLANTEDPASSWORD@proxy.example:3128", "access_token=PLANTEDQUERY"]


def test_support_bundle_is_redacted(relay, daemon, url_file, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("sk-PLANTEDkey1234567890\n")
    daemon(mcp_command=stub_command(), api_key="unused", args=[
        "--health.url-file", url_file,
        "--control-plane.api-key", "file:%s" % key_file,
        "--mcp.extra-headers", "Authorization: Bearer planted-bearer-token-xyz"],
        env={"HTTPS_PROXY": "http://proxyuser:PLANTEDPASSWORD@proxy.example:3128",
             "NO_PROXY": "*"})
    relay.add_key("sk-PLANTEDkey1234567890", True)
    base = admin_base(url_file)
    wait_ready_state(base, 200, timeout=30)
    call = relay.submit(tool_call("echo", 1, input="x"),
                        headers={"X-Note": "access_token=PLANTEDQUERY shard_PLANTEDSHARD"})
    assert call.take(15)["resp_code"] == 200
    resp = requests.get(base + "/api/logs/export?minutes=5", timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/gzip"
    archive = tarfile.open(fileobj=io.BytesIO(resp.content))
    names = archive.getnames()
    for expected in ("manifest.json", "README.txt", "tunnel-client.runtime.yaml",
                     "tunnel-client.logs.ndjson", "tunnel-client.metrics.prom",
                     "admin/status.json", "admin/system.json"):
        assert expected in names
    blob = b"".join(archive.extractfile(m).read() for m in archive.getmembers())
    # Every planted secret, whole and by its secret part, and the shard token the control
    # plane issued with the command.
    for secret in PLANTED + ["PLANTEDkey1234567890", "planted-bearer-token-xyz",
                             "PLANTEDPASSWORD", "PLANTEDQUERY", "PLANTEDSHARD",
                             call.shard_token]:
        assert secret.encode() not in blob, secret
    manifest = json.loads(archive.extractfile("manifest.json").read())
    assert manifest["redacted"] is True and manifest["event_count"] > 0
    effective = manifest["runtime"]["effective_config"]
    assert effective["control_plane.api_key"]["value"] == "[REDACTED]"
    assert effective["control_plane.api_key"]["from"] == "--control-plane.api-key"


def test_log_level_can_be_changed_at_runtime(relay, daemon, url_file):
    daemon(mcp_command=stub_command(), args=["--health.url-file", url_file])
    base = admin_base(url_file)
    assert requests.get(base + "/api/log-level", timeout=2).json()["level"] == "debug"
    bad = requests.put(base + "/api/log-level", json={"level": "loud"}, timeout=2)
    assert bad.status_code == 400 and "unsupported log level" in bad.json()["error"]
    assert requests.put(base + "/api/log-level", json={"level": "warn", "x": 1},
                        timeout=2).status_code == 400
    ok = requests.put(base + "/api/log-level", json={"level": "warn"}, timeout=2)
    assert ok.status_code == 200 and ok.json()["level"] == "warn"
    events = requests.get(base + "/api/logs?limit=50", timeout=2).json()["events"]
    assert any(e["msg"] == "runtime log level updated" for e in events)


def test_api_is_loopback_only_but_health_is_not(relay, daemon, url_file):
    daemon(mcp_command=stub_command(), args=[
        "--health.url-file", url_file, "--health.listen-addr", "0.0.0.0:0"])
    base = admin_base(url_file)
    port = int(base.rsplit(":", 1)[1])
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to test from")
    remote = "http://%s:%d" % (address, port)
    assert requests.get(remote + "/healthz", timeout=2).text == "live"
    denied = requests.get(remote + "/api/status", timeout=2)
    assert denied.status_code == 403 and "loopback" in denied.text
    assert requests.get(base + "/api/status", timeout=2).status_code == 200


def _non_loopback_address():
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))
        address = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


def health_cmd(*args):
    return subprocess.run([sys.executable, "-m", "tunnel_client", "health"] + list(args),
                          capture_output=True, text=True, timeout=30)


def test_health_command_against_live_not_ready_and_dead_daemons(relay, daemon, tmp_path):
    ready_file, unready_file = str(tmp_path / "ready-url"), str(tmp_path / "unready-url")
    live = daemon(mcp_command=stub_command(), args=["--health.url-file", ready_file])
    admin_base(ready_file)
    final(relay, initialize())
    ok = health_cmd("--url-file", ready_file, "--require-control-plane-poll",
                    "--pid", str(live.proc.pid))
    assert ok.returncode == 0, ok.stdout
    assert "Result:            OK" in ok.stdout and "Readyz:            PASS" in ok.stdout
    daemon(wait=False, mcp_command=stub_command(), api_key="bad-key",
             args=["--health.url-file", unready_file])
    admin_base(unready_file)
    report = health_cmd("--url-file", unready_file, "--json")
    assert report.returncode == 2
    data = json.loads(report.stdout)
    assert data["healthz"]["ok"] is True and data["readyz"]["ok"] is False
    assert data["readyz"]["status"] == 503
    base = open(ready_file).read().strip()
    live.stop()
    dead = health_cmd("--url", base + "/readyz")
    assert dead.returncode == 2 and "connection refused" in dead.stdout
    assert not os.path.exists(ready_file), "the URL file is removed at exit"
    assert health_cmd("--port", "1", "--url", "x").returncode == 1


def test_systemd_notify_ready_watchdog_stopping_in_order(relay, daemon, tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    try:
        instance = daemon(mcp_command=stub_command(),
                          env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})
        messages = []

        def receive_until(word):
            while not any(word in m for m in messages):
                messages.append(sock.recv(4096).decode())
            return True

        receive_until("READY=1")
        receive_until("WATCHDOG=1")
        receive_until("WATCHDOG=1")
        instance.signal(signal.SIGTERM)
        receive_until("STOPPING=1")
        assert instance.wait(20) == 0
        firsts = [next(i for i, m in enumerate(messages) if word in m)
                  for word in ("READY=1", "WATCHDOG=1", "STOPPING=1")]
        assert firsts == sorted(firsts)
        assert "STATUS=ready" in messages[0]
    finally:
        sock.close()


def test_ui_and_api_refuse_foreign_host_names_and_cannot_be_framed(relay, daemon, url_file):
    daemon(mcp_command=stub_command(), args=["--health.url-file", url_file])
    base = admin_base(url_file)
    rebound = requests.get(base + "/api/status", headers={"Host": "attacker.example"},
                           timeout=2)
    assert rebound.status_code == 403 and "DNS rebinding" in rebound.text
    assert requests.get(base + "/readyz", headers={"Host": "attacker.example"},
                        timeout=2).status_code in (200, 503)
    page = requests.get(base + "/ui", timeout=2)
    assert page.status_code == 200
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
