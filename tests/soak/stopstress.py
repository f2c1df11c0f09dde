"""Start and stop the daemon many times, in every configuration the built-in samples
produce, sending SIGTERM in a random phase of its life; measure each stop.

A stop is the time from SIGTERM to the process's exit. With nothing in flight it must be
short whatever the daemon was doing (starting, probing the MCP server, discovering OAuth
metadata, waiting in a long poll, just after answering a call); with a call in flight it
must end within the drain budget, and the call must still get its answer.

Used by ``tests/soak/test_stop_stress.py`` (``make stop-stress``, ``make soak``) and by
hand: ``python -m tests.soak.stopstress --stops 200 --seed 3``.
"""

import argparse
import datetime
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from tests.support.calls import exchange, initialize, tool_call
from tests.support.daemon import ROOT, stub_command, wait_for
from tests.support.proxy import ForwardProxy
from tests.support.servers import Scripted, black_hole
from tunnel_client.devtools.relay import Relay

IDLE_BOUND = 2.0  # seconds: a stop with nothing in flight
DRAIN_BUDGET = 30.0  # the samples' shutdown.drain_timeout (the default)
HANG = 25.0  # a stop still running after this long is a hang: dump threads, then kill
HOLD_CAP = 60.0  # a held request is released after this long whatever happens

# configuration -> (sample, MCP target kind)
CONFIGS = {
    "stdio": "sample_mcp_stdio_local",
    "http": "sample_mcp_remote_no_auth",
    "http-oauth": "sample_mcp_with_dcr",
    "proxy": "sample_mcp_enterprise_proxy",
    "proxy-no-proxy-star": "sample_mcp_enterprise_proxy",
}

# phase -> configurations it applies to
PHASES = {
    "startup": None,  # SIGTERM at a random moment of start-up
    "probe": ("http", "proxy", "proxy-no-proxy-star"),  # MCP start-up probe held open
    "discovery": ("http-oauth",),  # an OAuth metadata request held open
    "unreachable": None,  # the control plane's address never answers: polls connecting
    "poll": None,  # idle, in a long poll
    "answered": None,  # right after a call was answered (the e2e test's moment)
    "call": None,  # a slow tool call in flight
}


@dataclass
class Stop:
    config: str
    phase: str
    seconds: float
    exit_code: Optional[int]
    in_flight: bool
    problem: str = ""
    log_path: str = ""
    phases: Dict[str, float] = field(default_factory=dict)

    @property
    def bound(self) -> float:
        return DRAIN_BUDGET if self.in_flight else IDLE_BOUND


class McpServer:
    """A loopback Streamable HTTP MCP server (JSON replies) whose requests can be held
    open, to stop the daemon while one of its requests waits. With ``oauth`` it asks for
    a bearer token and advertises OAuth metadata, like an OAuth-protected server."""

    def __init__(self, oauth: bool = False):
        self.oauth = oauth
        self.hold: Optional[Callable[[dict], bool]] = None
        self.held = threading.Event()  # a request matching ``hold`` arrived
        self.release = threading.Event()
        self.calls = threading.Event()  # a tools/call arrived
        self.server = Scripted(self._handle)
        self.url = self.server.url
        self.base = self.url.rsplit("/", 1)[0]

    def arm(self, hold: Optional[Callable[[dict], bool]]):
        self.release.set()  # let go of whatever the previous round held
        self.hold = hold
        self.held = threading.Event()
        self.calls = threading.Event()
        self.release = threading.Event()

    def _handle(self, request):
        hold, held, release = self.hold, self.held, self.release
        if hold is not None and hold(request):
            held.set()
            release.wait(HOLD_CAP)
        path = request["path"]
        if self.oauth and path.startswith("/.well-known/"):
            return self._document(path)
        if self.oauth and not request["headers"].get("authorization"):
            return 401, {"WWW-Authenticate": 'Bearer resource_metadata="%s/.well-known/'
                         'oauth-protected-resource/mcp"' % self.base}, b""
        if request["method"] != "POST":
            return 200 if request["method"] == "DELETE" else 405, {}, b""
        message = request["json"] or {}
        if "id" not in message:
            return 202, {}, b""
        method = message.get("method")
        if method == "initialize":
            result = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                      "serverInfo": {"name": "stop-stress", "version": "1"}}
        elif method == "tools/call":
            self.calls.set()
            seconds = float(message["params"]["arguments"].get("seconds", 0))
            release.wait(seconds)  # a slow tool; the round's end cuts it short
            result = {"content": [{"type": "text", "text": "slept"}]}
        else:
            result = {}
        body = json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result})
        return 200, {"Content-Type": "application/json"}, body.encode()

    def _document(self, path):
        documents = {
            "/.well-known/oauth-protected-resource/mcp": {
                "resource": self.url, "authorization_servers": [self.base]},
            "/.well-known/oauth-authorization-server": {
                "issuer": self.base, "authorization_endpoint": self.base + "/authorize",
                "token_endpoint": self.base + "/token",
                "registration_endpoint": self.base + "/register"},
        }
        if path not in documents:
            return 404, {}, b""
        return 200, {"Content-Type": "application/json"}, json.dumps(documents[path]).encode()

    def close(self):
        self.release.set()
        self.server.close()


def is_probe(request) -> bool:
    return (request["json"] or {}).get("id") == "tunnel-client-probe"


def is_discovery(request) -> bool:
    return request["path"].startswith("/.well-known/")


class Bench:
    """The parts every round shares: relay, MCP servers, proxy, a HOME with profiles."""

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.relay = Relay(response_timeout="40s").start()
        self.servers = {"http": McpServer(), "http-oauth": McpServer(oauth=True),
                        "proxy": McpServer(), "proxy-no-proxy-star": McpServer()}
        self.proxy = ForwardProxy()
        # Its upstream timing out (the 'unreachable' phase) is expected here, not news.
        self.proxy.server.handle_error = lambda request, client_address: None
        self.black_hole, self._fillers = black_hole()
        self.home = os.path.join(workdir, "home")
        os.makedirs(self.home)
        self.ca = os.path.join(workdir, "corp-ca.pem")
        self._write_ca()
        for config in CONFIGS:
            self._init_profile(config)

    def _write_ca(self):
        try:
            import trustme
            trustme.CA().cert_pem.write_to_path(self.ca)
        except ImportError:  # any PEM CA will do: the relay is plain HTTP
            shutil.copy(_system_ca(), self.ca)

    def env(self, config: str, unreachable: bool = False) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("CONTROL_PLANE_", "MCP_", "SHUTDOWN_"))
               and k.lower() not in ("http_proxy", "https_proxy", "no_proxy", "all_proxy")}
        env.update({"HOME": self.home, "PYTHONPATH": ROOT,
                    "CONTROL_PLANE_API_KEY": self.relay.api_key})
        if unreachable:  # the environment overrides the profile
            env["CONTROL_PLANE_BASE_URL"] = "http://127.0.0.1:%d" % self.black_hole
        if config != "proxy":
            env["NO_PROXY"] = "*"
        if config.startswith("proxy"):
            env.update({"ENTERPRISE_CA_BUNDLE": self.ca, "HTTPS_PROXY": self.proxy.url,
                        "HTTP_PROXY": self.proxy.url})
        return env

    def _init_profile(self, config: str):
        target = ["--mcp-command", stub_command()] if config == "stdio" else \
            ["--mcp-server-url", self.servers[config].url]
        proc = subprocess.run(
            [sys.executable, "-m", "tunnel_client", "init", "--sample", CONFIGS[config],
             "--profile", config, "--tunnel-id", self.relay.tunnel_id,
             "--control-plane-base-url", self.relay.base_url,
             "--health-listen-addr", "127.0.0.1:0"] + target,
            capture_output=True, text=True, env=self.env(config), timeout=60)
        assert proc.returncode == 0, proc.stderr

    def close(self):
        for server in self.servers.values():
            server.close()
        self.proxy.close()
        self.relay.stop()
        for sock in self._fillers:
            sock.close()


class Round:
    """One daemon: start it, bring it to a phase, SIGTERM it, time the stop."""

    def __init__(self, bench: Bench, config: str, phase: str, rng: random.Random, index: int):
        self.bench = bench
        self.config = config
        self.phase = phase
        self.rng = rng
        self.server = bench.servers.get(config)
        self.log_path = os.path.join(bench.workdir, "round-%04d-%s-%s.log"
                                     % (index, config, phase))
        self.call = None

    def run(self) -> Stop:
        relay = self.bench.relay
        if self.server is not None:
            self.server.arm(is_probe if self.phase == "probe" else
                            is_discovery if self.phase == "discovery" else None)
        polls_before = len(relay.polls)
        with open(self.log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tunnel_client", "run", "--profile", self.config],
                env=self.bench.env(self.config, self.phase == "unreachable"), stdout=log,
                stderr=subprocess.STDOUT)
        try:
            problem = self._reach_phase(proc, polls_before)
            in_flight = self.phase == "call" and not problem
            started, signalled = time.monotonic(), time.time()
            proc.send_signal(signal.SIGTERM)
            code, overran = self._wait_exit(proc, DRAIN_BUDGET if in_flight else HANG)
            seconds = time.monotonic() - started
            exited = time.time()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if self.server is not None:
                self.server.release.set()
        problem = problem or overran
        if not problem and self.call is not None:
            problem = self._check_call_answered()
        phases = stop_phases(self.log_path)
        marks = stop_marks(self.log_path)
        # Outside the daemon's own phases: until its handler ran, and from its last log
        # line to the exit (interpreter shutdown) as this process saw it.
        if "requested" in marks:
            phases["(signal to handler)"] = max(0.0, marks["requested"] - signalled)
        if "stopped" in marks:
            phases["(stopped to exit)"] = max(0.0, exited - marks["stopped"])
        return Stop(self.config, self.phase, seconds, code, in_flight, problem,
                    self.log_path, phases)

    def _reach_phase(self, proc, polls_before: int) -> str:
        relay = self.bench.relay
        try:
            if self.phase == "startup":
                # Anywhere from before the signal handlers exist to the first polls.
                deadline = time.monotonic() + self.rng.uniform(0.0, 3.0)
                while time.monotonic() < deadline and proc.poll() is None:
                    time.sleep(0.01)
                return ""
            if self.phase == "unreachable":
                wait_for(lambda: _logged(self.log_path, "tunnel-client started") or
                         proc.poll() is not None, 20.0, message="the start")
                time.sleep(self.rng.uniform(0.0, 0.5))  # the moment of the SIGTERM
                return self._alive(proc)
            if self.phase in ("probe", "discovery"):
                wait_for(lambda: self.server.held.is_set() or proc.poll() is not None, 20.0,
                         message="a held %s request" % self.phase)
                return self._alive(proc)
            wait_for(lambda: len(relay.polls) > polls_before or proc.poll() is not None,
                     20.0, message="the first poll")
            if self.phase == "poll":
                # Answer one call first so some workers have reused connections, then
                # stop at a random moment of the idle long polls.
                exchange(relay, initialize(), timeout=20, headers=self._auth())
                time.sleep(self.rng.uniform(0.0, 0.5))  # the moment of the SIGTERM
                return self._alive(proc)
            if self.phase == "answered":
                exchange(relay, initialize(), timeout=20, headers=self._auth())
                return self._alive(proc)
            if self.phase == "call":
                exchange(relay, initialize(), timeout=20, headers=self._auth())
                seconds = round(self.rng.uniform(0.5, 3.0), 2)
                self.call = relay.submit(tool_call("sleep", 7, seconds=seconds), "main",
                                         self._auth())
                if self.server is not None:
                    wait_for(self.server.calls.is_set, 20.0, message="the call to arrive")
                else:
                    wait_for(lambda: self.call.deliveries > 0, 20.0, message="the call taken")
                return self._alive(proc)
        except AssertionError as exc:
            return "did not reach phase %s: %s" % (self.phase, exc)
        raise ValueError(self.phase)

    def _auth(self) -> Optional[dict]:
        return {"Authorization": "Bearer caller-token"} if self.config == "http-oauth" else None

    @staticmethod
    def _alive(proc) -> str:
        return "" if proc.poll() is None else "daemon exited early (%s)" % proc.returncode

    @staticmethod
    def _wait_exit(proc, limit: float):
        """The exit code, and a problem when the stop overran ``limit`` (a second SIGTERM
        then asks the daemon for its thread dump before it is killed)."""
        try:
            return proc.wait(limit), ""
        except subprocess.TimeoutExpired:
            pass
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return proc.returncode, "still running %.0fs after SIGTERM" % limit

    def _check_call_answered(self) -> str:
        payload = self.call.take(5.0)
        while payload is not None and payload.get("resp_type") == "jsonrpc_notify":
            payload = self.call.take(5.0)
        if payload is None:
            return "the call in flight at SIGTERM got no answer"
        if payload.get("resp_code") != 200:
            return "the call in flight at SIGTERM was answered %s" % payload.get("resp_code")
        return ""


def _logged(log_path: str, text: str) -> bool:
    with open(log_path, errors="replace") as handle:
        return text in handle.read()


def stop_phases(log_path: str) -> Dict[str, float]:
    """Seconds per stop phase, from the daemon's ``stop phase`` log events."""
    found = {}
    try:
        with open(log_path, errors="replace") as handle:
            for line in handle:
                if '"stop phase' not in line:
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if "phase" in event and "duration_ms" in event:
                    found[event["phase"]] = event["duration_ms"] / 1000.0
    except OSError:
        pass
    return found


def stop_marks(log_path: str) -> Dict[str, float]:
    """Wall-clock times of the stop request and the end of the stop in the daemon's log."""
    marks = {}
    try:
        with open(log_path, errors="replace") as handle:
            for line in handle:
                for mark, text in (("requested", '"stop requested'),
                                   ("stopped", '"tunnel-client stopped')):
                    if text in line:
                        try:
                            stamp = json.loads(line)["time"]
                        except (ValueError, KeyError):
                            continue
                        marks[mark] = datetime.datetime.strptime(
                            stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                            tzinfo=datetime.timezone.utc).timestamp()
    except OSError:
        pass
    return marks


def plan(stops: int, rng: random.Random, only: Optional[List[str]] = None) -> List[tuple]:
    pairs = [(config, phase) for phase, configs in PHASES.items()
             for config in CONFIGS if configs is None or config in configs
             if not only or config in only or phase in only]
    rounds = [pairs[i % len(pairs)] for i in range(stops)]
    rng.shuffle(rounds)
    return rounds


def run(stops: int, seed: int, workdir: str, progress=None, only=None) -> List[Stop]:
    rng = random.Random(seed)
    bench = Bench(workdir)
    results = []
    try:
        for index, (config, phase) in enumerate(plan(stops, rng, only)):
            stop = Round(bench, config, phase, rng, index).run()
            if not stop.problem and stop.seconds <= (stop.bound if stop.in_flight
                                                     else IDLE_BOUND / 4):
                _forget(stop)
            results.append(stop)
            if progress is not None:
                progress(index, stop)
    finally:
        bench.close()
    return results


def _forget(stop: Stop):
    """Keep the logs of the stops worth reading only."""
    try:
        os.unlink(stop.log_path)
    except OSError:
        pass
    stop.log_path = ""


def report(results: List[Stop]) -> str:
    lines = ["%-22s %-12s %5s %9s %9s %9s" % ("config", "phase", "stops", "worst_s",
                                              "median_s", "bound_s")]
    groups: Dict[tuple, List[Stop]] = {}
    for stop in results:
        groups.setdefault((stop.config, stop.phase), []).append(stop)
    for (config, phase), stops in sorted(groups.items()):
        times = sorted(s.seconds for s in stops)
        lines.append("%-22s %-12s %5d %9.2f %9.2f %9.1f" % (
            config, phase, len(stops), times[-1], times[len(times) // 2], stops[0].bound))
    idle = [s.seconds for s in results if not s.in_flight]
    busy = [s.seconds for s in results if s.in_flight]
    lines.append("worst stop with nothing in flight: %.2fs over %d stops" % (
        max(idle or [0.0]), len(idle)))
    lines.append("worst stop with a call in flight: %.2fs over %d stops" % (
        max(busy or [0.0]), len(busy)))
    worst = max(results, key=lambda s: s.seconds - s.bound, default=None)
    if worst is not None and worst.phases:
        lines.append("slowest stop's phases (%s/%s, %.2fs): %s" % (
            worst.config, worst.phase, worst.seconds, ", ".join(
                "%s %.3fs" % item for item in worst.phases.items())))
    return "\n".join(lines)


def failures(results: List[Stop]) -> List[str]:
    found = []
    for stop in results:
        if stop.problem or stop.seconds > stop.bound:
            found.append("%s/%s: stop took %.2fs (bound %.1fs)%s; log %s" % (
                stop.config, stop.phase, stop.seconds, stop.bound,
                " - " + stop.problem if stop.problem else "", stop.log_path))
    return found


def _system_ca() -> str:
    from tunnel_client.net.routes import system_ca_files
    return list(system_ca_files())[0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stops", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", help="directory for the logs of slow stops")
    parser.add_argument("--only", action="append",
                        help="only this configuration or phase (repeat the flag)")
    args = parser.parse_args(argv)
    workdir = args.keep or tempfile.mkdtemp(prefix="stop-stress-")
    os.makedirs(workdir, exist_ok=True)

    def progress(index, stop):
        mark = "!" if stop.problem or stop.seconds > stop.bound else " "
        print("%s%4d %-22s %-12s %6.2fs exit %s %s" % (
            mark, index, stop.config, stop.phase, stop.seconds, stop.exit_code,
            stop.problem), flush=True)

    results = run(args.stops, args.seed, workdir, progress, args.only)
    print(report(results))
    problems = failures(results)
    for line in problems:
        print("FAIL " + line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
