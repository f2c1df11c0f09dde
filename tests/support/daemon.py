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


def admin_base(url_file: str) -> str:
    """The admin listener's base URL, once the daemon has written it to ``url_file``."""
    wait_for(lambda: os.path.exists(url_file) and open(url_file).read().strip(),
             message="the admin URL file")
    return open(url_file).read().strip()


class LoggedProcess:
    """A subprocess whose stdout and stderr go to a file, so a failed test can show them.

    ``stop()`` is what systemd does, plus a diagnosis: SIGTERM, and if the process is still
    there after the timeout a second SIGTERM (the daemon then logs every thread's stack)
    before SIGKILL.
    """

    def __init__(self, argv, env=None, cwd=None, name: str = "tunnel-client"):
        self.argv = list(argv)
        self.name = name
        self.overran = False  # a stop outlived its timeout
        self.log_file = tempfile.NamedTemporaryFile(prefix=name + "-", suffix=".log",
                                                    delete=False)
        self.proc = subprocess.Popen(self.argv, stdout=self.log_file,
                                     stderr=subprocess.STDOUT, env=env, cwd=cwd or ROOT)

    def output(self) -> str:
        with open(self.log_file.name, errors="replace") as handle:
            return handle.read()

    def report(self, limit: int = 20000) -> str:
        """The tail of the output, headed for a failure report."""
        return "---- output of %s (pid %d, exit %s) ----\n%s" % (
            self.name, self.proc.pid, self.proc.returncode, self.output()[-limit:])

    def signal(self, signum=signal.SIGTERM):
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 90.0) -> int:
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.overran = True
        self.proc.send_signal(signal.SIGTERM)  # asks for the thread dump
        try:
            self.proc.wait(5.0)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        code = self.proc.wait()
        with open(self.log_file.name, "a") as handle:
            handle.write("\n[test harness] still running %gs after SIGTERM; a second SIGTERM "
                         "was sent, exit status %s\n" % (timeout, code))
        return code

    def cleanup(self):
        self.stop()
        self.log_file.close()
        try:
            os.unlink(self.log_file.name)
        except OSError:
            pass


class Daemon(LoggedProcess):
    def __init__(self, relay, args=(), env=None, mcp_command=None, mcp_url=None,
                 workers: int = 4, poll_timeout: str = "2s", api_key=None, cwd=None):
        self.relay = relay
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
        environ = dict(os.environ)
        environ.update({"CONTROL_PLANE_API_KEY": api_key or relay.api_key,
                        "NO_PROXY": "*", "PYTHONPATH": ROOT})
        for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
            environ.pop(name, None)
        environ.update(env or {})
        super().__init__(argv, environ, cwd)

    def wait_polling(self, timeout: float = 60.0):
        start = len(self.relay.polls)
        wait_for(lambda: len(self.relay.polls) > start or self.proc.poll() is not None,
                 timeout, message="the daemon's first poll")
        assert self.proc.poll() is None, "daemon exited early:\n" + self.output()
        return self

    def events(self):
        import json
        result = []
        for line in self.output().splitlines():
            try:
                result.append(json.loads(line))
            except ValueError:
                pass
        return result
