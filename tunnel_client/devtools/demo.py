"""``make demo``: the main job end to end, on this machine, in about ten seconds.

1. the local control plane starts on loopback;
2. ``tunnel-client run`` starts as a real daemon with the stub MCP server over stdio;
3. an MCP client talks to the tunnel's public-side URL: handshake, tools/list, a tool call
   with progress notifications, and the same through the 2026-07-28 protocol;
4. the daemon is stopped with SIGTERM and exits 0.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time

import requests

from tunnel_client.devtools.mcpclient import McpClient
from tunnel_client.devtools.relay import Relay

STEP = "\n\033[1m%s\033[0m" if sys.stdout.isatty() else "\n%s"


def say(text, *args):
    print(STEP % (text % args if args else text), flush=True)


def detail(text, *args):
    print("    " + (text % args if args else text), flush=True)


def _wait_ready(url_file: str, proc, timeout: float = 30.0) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError("tunnel-client exited early with code %s" % proc.returncode)
        if os.path.exists(url_file):
            base = open(url_file).read().strip()
            try:
                if requests.get(base + "/readyz", timeout=1).status_code == 200:
                    return base
            except requests.RequestException:
                pass
        time.sleep(0.05)  # polling a readiness endpoint with a bounded timeout
    raise RuntimeError("tunnel-client was not ready within %gs" % timeout)


def run() -> int:
    workdir = tempfile.mkdtemp(prefix="tunnel-client-demo-")
    log_path = os.path.join(workdir, "tunnel-client.log")
    url_file = os.path.join(workdir, "admin-url")
    say("1. Local control plane")
    relay = Relay(response_timeout="30s").start()
    detail("control plane:  %s", relay.base_url)
    detail("MCP URL:        %s  (what an MCP client would be given)", relay.mcp_url)
    detail("tunnel id:      %s", relay.tunnel_id)

    say("2. tunnel-client run, with the stub MCP server over stdio")
    stub = "%s -m tunnel_client.devtools.stub --server-name demo-stub" % sys.executable
    argv = [sys.executable, "-m", "tunnel_client", "run",
            "--control-plane.base-url", relay.base_url,
            "--control-plane.tunnel-id", relay.tunnel_id,
            "--control-plane.api-key", "env:CONTROL_PLANE_API_KEY",
            "--control-plane.poll-timeout", "10s",
            "--mcp.command", stub,
            "--health.listen-addr", "127.0.0.1:0", "--health.url-file", url_file,
            "--log.file", log_path, "--log.format", "json"]
    env = dict(os.environ, CONTROL_PLANE_API_KEY=relay.api_key, NO_PROXY="*")
    detail("$ CONTROL_PLANE_API_KEY=... tunnel-client run --mcp.command '... stub' ...")
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ok = False
    try:
        admin = _wait_ready(url_file, proc)
        detail("ready:          %s/readyz -> 200 ready", admin)
        detail("admin UI:       %s/ui", admin)
        detail("logs:           %s", log_path)

        say("3. An MCP session through the tunnel (legacy handshake)")
        client = McpClient(relay.mcp_url, timeout=30)
        info = client.initialize()
        detail("initialize -> %s %s, protocol %s", info["serverInfo"]["name"],
               info["serverInfo"]["version"], info["protocolVersion"])
        tools = client.list_tools()
        detail("tools/list -> %s", ", ".join(t["name"] for t in tools))
        detail("tools/call count {to: 3} with a progress token:")
        result = client.call_tool("count", {"to": 3, "delay_ms": 150}, progress=True,
                                  on_notification=lambda n: detail(
                                      "    progress %s/%s  %s", n["params"]["progress"],
                                      n["params"]["total"], n["params"].get("message", "")))
        detail("    result: %s", result.text)
        echo = client.call_tool("echo", {"input": "hello through the tunnel"})
        detail("tools/call echo -> %s", echo.result["structuredContent"])
        client.close()

        say("4. The same server through the 2026-07-28 protocol (no handshake)")
        modern = McpClient(relay.mcp_url, modern=True, timeout=30)
        discover = modern.initialize()
        detail("server/discover -> supported versions %s", discover["supportedVersions"])
        detail("tools/call uppercase -> %s", modern.call_tool(
            "uppercase", {"input": "modern era"}).result["structuredContent"])
        modern.close()

        metrics = requests.get(admin + "/metrics", timeout=5).text
        polled = [line for line in metrics.splitlines()
                  if line.startswith("commands_polled_total")]
        detail("metrics: %s", polled[0] if polled else "(none)")

        say("5. Stop the daemon with SIGTERM (it drains in-flight calls first)")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        detail("tunnel-client exited with code %d", code)
        ok = code == 0
    except Exception as exc:  # the demo reports any failure in one line, then the log
        print("\ndemo failed: %s" % exc, file=sys.stderr)
        if os.path.exists(log_path):
            print("last log lines:\n" + "".join(open(log_path).readlines()[-20:]),
                  file=sys.stderr)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        relay.stop()
    say("Demo %s.", "finished: every call went through the tunnel" if ok else "FAILED")
    return 0 if ok else 1
