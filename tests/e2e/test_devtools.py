"""The dev subcommands as an operator types them: relay, proxy, mcp-stub and call."""

import json
import os
import signal
import subprocess
import sys

from tests.support.daemon import ROOT, stop_process, stub_command, wait_for

ENV = dict(os.environ, PYTHONPATH=ROOT, NO_PROXY="*")


def tunnel_client(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "tunnel_client"] + list(args), env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def run(*args, env=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "tunnel_client"] + list(args),
                          env=dict(ENV, **(env or {})), capture_output=True, text=True,
                          timeout=timeout)


def test_relay_run_and_call_from_the_shell(tmp_path, spawned):
    url_file = tmp_path / "relay.json"
    relay = tunnel_client("dev", "relay", "--print-json", "--url-file", str(url_file))
    daemon = None
    try:
        details = json.loads(relay.stdout.readline())
        assert details["tunnel_id"].startswith("tunnel_") and details["api_key"]
        assert json.loads(url_file.read_text()) == details
        assert oct(url_file.stat().st_mode & 0o777) == "0o600"
        daemon = spawned(
            [sys.executable, "-m", "tunnel_client", "run", "--control-plane.base-url",
             details["control_plane_base_url"], "--control-plane.tunnel-id",
             details["tunnel_id"], "--mcp.command", stub_command(), "--health.listen-addr",
             "127.0.0.1:0"], env=dict(ENV, CONTROL_PLANE_API_KEY=details["api_key"]))
        listed = run("dev", "call", details["mcp_url"], "tools/list")
        assert listed.returncode == 0, listed.stderr
        assert "echo" in [t["name"] for t in json.loads(listed.stdout)["tools"]]
        counted = run("dev", "call", details["mcp_url"], "tools/call",
                      '{"name": "count", "arguments": {"to": 2, "delay_ms": 10}}')
        assert counted.returncode == 0
        assert counted.stdout.splitlines()[:2] == ["progress 1/2 step 1/2",
                                                   "progress 2/2 step 2/2"]
        unknown = run("dev", "call", details["mcp_url"], "tools/call", '{"name": "nope"}')
        assert unknown.returncode == 1 and "Unknown tool" in unknown.stdout
    finally:
        if daemon is not None:
            daemon.stop()
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(20) == 0


def test_dev_proxy_serves_an_mcp_server_without_an_account():
    proxy = tunnel_client("dev", "proxy", "--mcp-command", stub_command(), "--print-json")
    try:
        details = json.loads(proxy.stdout.readline())  # printed once the client has polled
        assert "api_key" not in details and details["backend"] == "python-in-process"
        reply = run("dev", "call", details["mcp_url"], "tools/call",
                    '{"name": "echo", "arguments": {"input": "through dev proxy"}}')
        assert reply.returncode == 0, reply.stderr
        assert json.loads(reply.stdout)["structuredContent"] == {"echoed": "through dev proxy"}
        modern = run("dev", "call", "--modern", details["mcp_url"], "tools/list")
        assert modern.returncode == 0, modern.stderr
    finally:
        proxy.send_signal(signal.SIGTERM)
        assert proxy.wait(30) == 0


def test_dev_proxy_needs_a_target_and_says_so():
    proc = run("dev", "proxy")
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("tunnel-client dev: dev proxy needs an MCP target: "
                                   "--mcp-command, --mcp-server-url, --profile or "
                                   "--profile-file")


def test_mcp_stub_over_http_answers_a_direct_call(tmp_path):
    url_file = tmp_path / "stub-url"
    stub = tunnel_client("dev", "mcp-stub", "--listen", "127.0.0.1:0", "--url-file",
                         str(url_file))
    try:
        wait_for(lambda: url_file.exists() and url_file.read_text().strip(), message="stub URL")
        reply = run("dev", "call", url_file.read_text().strip(), "tools/call",
                    '{"name": "uppercase", "arguments": {"input": "direct"}}')
        assert reply.returncode == 0, reply.stderr
        assert json.loads(reply.stdout)["structuredContent"] == {"uppercase": "DIRECT"}
    finally:
        stop_process(stub)


def test_bad_dev_arguments_are_one_line_errors():
    fault = run("dev", "relay", "--fault", "poll-503")
    assert fault.returncode == 1
    assert fault.stderr.strip() == ('tunnel-client dev: invalid --fault "poll-503": expected '
                                    "NAME=RATE such as poll-503=0.1")
    params = run("dev", "call", "http://127.0.0.1:9/mcp", "tools/call", "[1]")
    assert params.returncode == 1 and "params must be a JSON object" in params.stderr
    unreachable = run("dev", "call", "http://127.0.0.1:9/mcp", "tools/list")
    assert unreachable.returncode == 1
    assert unreachable.stderr.startswith("tunnel-client dev call: cannot reach "
                                         "http://127.0.0.1:9/mcp")
