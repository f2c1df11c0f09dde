"""The system under measurement, each part its own process: the local control plane
(``tunnel-client dev relay``), an optional Streamable HTTP MCP stub, and the daemon
(``tunnel-client run``). Separate processes keep the GIL of one part from slowing another
and let /proc report each part's own CPU."""

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import List, Optional

from tests.support.daemon import wait_for  # noqa: F401 - the one bounded poll helper

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable


def environment(extra: Optional[dict] = None) -> dict:
    env = dict(os.environ)
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "ALL_PROXY",
                 "all_proxy"):
        env.pop(name, None)
    env.update({"NO_PROXY": "*", "PYTHONPATH": ROOT, "PYTHONDONTWRITEBYTECODE": "1"})
    env.update(extra or {})
    return env


class Process:
    """A child process with its output in a temporary file, stopped with SIGTERM."""

    def __init__(self, argv: List[str], env: Optional[dict] = None, name: str = "process"):
        self.name = name
        self.output_file = tempfile.NamedTemporaryFile(prefix="bench-%s-" % name,
                                                       suffix=".log", delete=False)
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.output_file,
                                     env=env or environment(), cwd=ROOT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def first_line(self, timeout: float = 20.0) -> str:
        """The first line printed (both servers print their address once listening)."""
        readable, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if readable else b""
        if not line:
            raise RuntimeError("%s exited before printing its address:\n%s"
                               % (self.name, self.output()))
        return line.decode().strip()

    def output(self) -> str:
        with open(self.output_file.name, errors="replace") as handle:
            return handle.read()[-8000:]

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.output_file.close()
        os.unlink(self.output_file.name)
        return self.proc.returncode


class RelayProcess(Process):
    def __init__(self, response_timeout: str = "60s", faults=()):
        argv = [PY, "-m", "tunnel_client", "dev", "relay", "--print-json",
                "--response-timeout", response_timeout]
        for fault in faults:
            argv += ["--fault", fault]
        super().__init__(argv, name="relay")
        details = json.loads(self.first_line())
        self.base_url = details["control_plane_base_url"]
        self.mcp_url = details["mcp_url"]
        self.tunnel_id = details["tunnel_id"]
        self.api_key = details["api_key"]


class HttpStubProcess(Process):
    def __init__(self):
        super().__init__([PY, "-m", "tunnel_client.devtools.stub", "--listen", "127.0.0.1:0"],
                         name="http-stub")
        self.url = self.first_line().rsplit(" ", 1)[1]


def stub_argv() -> List[str]:
    return [PY, "-m", "tunnel_client.devtools.stub"]


class DaemonProcess(Process):
    """``tunnel-client run`` with the stdio stub (``mcp_url=None``) or an HTTP server."""

    def __init__(self, relay: RelayProcess, workers: int, mcp_url: Optional[str] = None,
                 log_level: str = "info", args=()):
        self._url_file = tempfile.mktemp(prefix="bench-health-")
        argv = [PY, "-m", "tunnel_client", "run",
                "--control-plane.base-url", relay.base_url,
                "--control-plane.tunnel-id", relay.tunnel_id,
                "--control-plane.api-key", "env:CONTROL_PLANE_API_KEY",
                "--mcp.max-concurrent-requests", str(workers),
                "--health.listen-addr", "127.0.0.1:0", "--health.url-file", self._url_file,
                "--log.level", log_level]
        if mcp_url:
            argv += ["--mcp.server-url", mcp_url]
        else:
            argv += ["--mcp.command", " ".join(stub_argv())]
        argv += list(args)
        self.argv = argv
        self.started = time.monotonic()
        super().__init__(argv, environment({"CONTROL_PLANE_API_KEY": relay.api_key}),
                         name="daemon")
        self.health_url = None

    def wait_ready(self, timeout: float = 30.0) -> float:
        """Seconds from spawn until /readyz says ready (a poll has succeeded)."""
        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("daemon exited early:\n" + self.output())
            if self.health_url is None:
                try:
                    with open(self._url_file) as handle:
                        self.health_url = handle.read().strip() or None
                except OSError:
                    return False
                if self.health_url is None:
                    return False
            try:
                with _DIRECT.open(self.health_url + "/readyz", timeout=2) as resp:
                    return resp.status == 200
            except OSError:
                return False
        wait_for(ready, timeout, interval=0.005, message="the daemon's /readyz")
        return time.monotonic() - self.started

    def stop(self, timeout: float = 30.0) -> int:
        code = super().stop(timeout)
        try:
            os.unlink(self._url_file)
        except OSError:
            pass
        return code
