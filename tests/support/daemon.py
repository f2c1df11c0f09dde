"""Run ``tunnel-client run`` as a real subprocess against a local relay."""

import os
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def stub_command(*knobs: str) -> str:
    """The stdio stub as an mcp.command string."""
    return " ".join([sys.executable, "-m", "tunnel_client.devtools.stub"] + list(knobs))


def stop_process(proc, timeout: float = 10.0) -> int:
    """SIGTERM, then SIGKILL if it is still there after ``timeout``; the exit status."""
    if proc.poll() is None:
        proc.terminate()
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.02, message: str = ""):
    """Poll a condition with a bounded timeout (never a fixed sleep). Bounds are generous:
    on a loaded machine a passing test only takes longer, a failing one says so later."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, message or predicate))


class Daemon:
    def __init__(self, relay, args=(), env=None, mcp_command=None, mcp_url=None,
                 workers: int = 4, poll_timeout: str = "2s", api_key=None, cwd=None):
        self.relay = relay
        self.log_file = tempfile.NamedTemporaryFile(prefix="tunnel-client-", suffix=".log",
                                                    delete=False)
        argv = [sys.executable, "-m", "tunnel_client", "run",
                "--control-plane.base-url", relay.base_url,
                "--control-plane.tunnel-id", relay.tunnel_id,
                "--control-plane.poll-timeout", poll_timeout,
                "--control-plane.api-key", "env:CONTROL_PLANE_API_KEY",
                "--health.listen-addr", "127.0.0.1:0",
                "--mcp.max-concurrent-requests", str(workers),
                "--log.format", "json", "--log.level", "debug"]
        if mcp_command:
            argv += ["--mcp.command", mcp_command]
        if mcp_url:
            argv += ["--mcp.server-url", mcp_url]
        argv += list(args)
        self.argv = argv
        environ = dict(os.environ)
        environ.update({"CONTROL_PLANE_API_KEY": api_key or relay.api_key,
                        "NO_PROXY": "*", "PYTHONPATH": ROOT})
        for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
            environ.pop(name, None)
        environ.update(env or {})
        self.proc = subprocess.Popen(argv, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     env=environ, cwd=cwd or ROOT)

    def wait_polling(self, timeout: float = 60.0):
        start = len(self.relay.polls)
        wait_for(lambda: len(self.relay.polls) > start or self.proc.poll() is not None,
                 timeout, message="the daemon's first poll")
        assert self.proc.poll() is None, "daemon exited early:\n" + self.output()
        return self

    def output(self) -> str:
        with open(self.log_file.name, errors="replace") as handle:
            return handle.read()

    def events(self):
        import json
        result = []
        for line in self.output().splitlines():
            try:
                result.append(json.loads(line))
            except ValueError:
                pass
        return result

    def signal(self, signum=signal.SIGTERM):
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 90.0) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()
        return self.proc.returncode

    def cleanup(self):
        self.stop()
        self.log_file.close()
        try:
            os.unlink(self.log_file.name)
        except OSError:
            pass
