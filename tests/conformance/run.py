"""Run the official MCP conformance suite against the MCP Python SDK's "everything" server,
directly and through the tunnel on both bindings, and print the checks passed.

    python -m tests.conformance.run --server-dir PYTHON_SDK_DIR --node NODE --cli CLI_JS

Each route gets one server (or one ``tunnel-client dev relay`` + ``tunnel-client run``)
that serves both spec versions in turn, as a tunnel in the field serves callers of both
eras. Results per run are kept under ``--out``; the checks that pass directly but not
through the tunnel are listed after the table.
"""

import argparse
import contextlib
import glob
import json
import os
import re
import secrets
import subprocess
import sys
import time

import requests

from tests.interop.peers import free_port
from tests.support.daemon import ROOT, stop_process, wait_for

VERSIONS = ("2025-11-25", "2026-07-28")
ROUTES = (("direct", "direct"), ("http", "tunnel, Streamable HTTP binding"),
          ("stdio", "tunnel, stdio binding"))
START_TIMEOUT = 30.0
TOTAL = re.compile(r"Total: (\d+) passed, (\d+) failed")


class Processes:
    """Subprocesses with their output in files under one directory, stopped in reverse."""

    def __init__(self, logs: str):
        self.logs = logs
        self.started = []

    def start(self, name: str, argv, env=None):
        log = open(os.path.join(self.logs, name + ".log"), "wb")
        environ = dict(os.environ, NO_PROXY="*", **(env or {}))
        for proxy in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
            environ.pop(proxy, None)
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=environ, cwd=ROOT)
        self.started.append((proc, log))
        return proc

    def stop(self):
        for proc, log in reversed(self.started):
            stop_process(proc)
            log.close()
        self.started = []


def answers(url: str) -> bool:
    """Anything answering HTTP at ``url`` (a 4xx to an empty GET is fine)."""
    try:
        requests.get(url, timeout=2, proxies={"http": None, "https": None}).close()
        return True
    except requests.RequestException:
        return False


def server_paths(server_dir: str) -> str:
    return os.pathsep.join(os.path.join(server_dir, *part) for part in (
        ("src",), ("src", "mcp-types"), ("examples", "servers", "everything-server")))


def server_problem(args):
    """Why the server cannot run with ``--python``, in one line naming the fix; else None."""
    check = subprocess.run([args.python, "-c", "import mcp_everything_server.server"],
                           env=dict(os.environ, PYTHONPATH=server_paths(args.server_dir)),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL)
    if check.returncode == 0:
        return None
    last = (check.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
    return ("the everything server does not start with %s (%s): set CONFORMANCE_PYTHON to a "
            "Python >= 3.10 that has the MCP SDK's dependencies (pip install mcp)"
            % (args.python, last))


def start_http_server(procs: Processes, args) -> str:
    port = free_port()
    proc = procs.start("everything-server", [
        args.python, "-m", "mcp_everything_server", "--port", str(port)],
        env={"PYTHONPATH": server_paths(args.server_dir)})
    url = "http://127.0.0.1:%d/mcp" % port
    wait_for(lambda: answers(url) or proc.poll() is not None, START_TIMEOUT,
             message="the everything server on port %d" % port)
    if proc.poll() is not None:
        raise SystemExit("the everything server exited at start; see %s/everything-server.log"
                         % procs.logs)
    return url


def start_tunnel(procs: Processes, args, binding: str, target: str) -> str:
    """``tunnel-client dev relay`` and ``tunnel-client run`` for ``target``; the MCP URL."""
    key = secrets.token_urlsafe(24)
    details = os.path.join(procs.logs, "relay.json")
    tool = [sys.executable, "-m", "tunnel_client"]
    env = {"CONFORMANCE_RELAY_KEY": key}
    procs.start("relay", tool + ["dev", "relay", "--api-key", "env:CONFORMANCE_RELAY_KEY",
                                 "--url-file", details], env=env)
    wait_for(lambda: os.path.exists(details) and os.path.getsize(details), START_TIMEOUT,
             message="the relay's connection details")
    with open(details) as handle:
        relay = json.load(handle)
    health = free_port()
    argv = tool + ["run", "--control-plane.base-url", relay["control_plane_base_url"],
                   "--control-plane.tunnel-id", relay["tunnel_id"],
                   "--control-plane.api-key", "env:CONFORMANCE_RELAY_KEY",
                   "--health.listen-addr", "127.0.0.1:%d" % health,
                   "--mcp.max-concurrent-requests", "16"]
    argv += ["--mcp.server-url", target] if binding == "http" else ["--mcp.command", target]
    daemon = procs.start("tunnel-client", argv, env=env)
    ready = "http://127.0.0.1:%d/readyz" % health
    wait_for(lambda: _ok(ready) or daemon.poll() is not None, START_TIMEOUT,
             message="tunnel-client ready")
    if daemon.poll() is not None:
        raise SystemExit("tunnel-client exited at start; see %s/tunnel-client.log" % procs.logs)
    return relay["mcp_url"]


def _ok(url: str) -> bool:
    try:
        with requests.get(url, timeout=2, proxies={"http": None, "https": None}) as resp:
            return resp.status_code == 200
    except requests.RequestException:
        return False


def run_suite(args, url: str, version: str, out: str):
    """(passed, failed) from one conformance run; its output is kept in ``out``."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "conformance.log"), "wb") as log:
        try:
            subprocess.run([args.node, args.cli, "server", "--url", url, "--suite", "all",
                            "--spec-version", version, "-o", out], stdout=log,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=out,
                           timeout=args.timeout)
        except subprocess.TimeoutExpired:
            return None
    with open(os.path.join(out, "conformance.log"), errors="replace") as log:
        found = TOTAL.findall(log.read())
    if not found:
        return None
    passed, failed = found[-1]
    return int(passed), int(failed)


def passed_checks(out: str):
    """{"scenario: check id"} that succeeded in one run."""
    passed = set()
    for path in glob.glob(os.path.join(out, "*", "checks.json")):
        scenario = re.sub(r"-\d{4}-\d\d-\d\dT.*$", "", os.path.basename(os.path.dirname(path)))
        with open(path) as handle:
            for check in json.load(handle):
                if check.get("status") == "SUCCESS":
                    passed.add("%s: %s" % (scenario, check.get("id")))
    return passed


@contextlib.contextmanager
def route(name: str, args, logs: str):
    procs = Processes(logs)
    try:
        if name == "direct":
            yield start_http_server(procs, args)
        elif name == "http":
            yield start_tunnel(procs, args, "http", start_http_server(procs, args))
        else:
            command = "%s %s %s" % (args.python, os.path.join(ROOT, "tests", "conformance",
                                                              "stdio_server.py"),
                                    args.server_dir)
            yield start_tunnel(procs, args, "stdio", command)
    finally:
        procs.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-dir", required=True,
                        help="local copy of the modelcontextprotocol/python-sdk repository")
    parser.add_argument("--node", required=True, help="node >= 22")
    parser.add_argument("--cli", required=True, help="the conformance package's dist/index.js")
    parser.add_argument("--python", default=sys.executable,
                        help="Python (>= 3.10, with the SDK's dependencies) for the server")
    parser.add_argument("--out", default=os.path.join(ROOT, ".cache", "conformance",
                                                      "results"))
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    args = parser.parse_args(argv)
    for name in ("server_dir", "node", "cli", "out"):
        setattr(args, name, os.path.abspath(getattr(args, name)))
    if not os.path.isdir(os.path.join(args.server_dir, "examples", "servers",
                                      "everything-server")):
        print("%s has no examples/servers/everything-server: point --server-dir at a copy of "
              "the modelcontextprotocol/python-sdk repository" % args.server_dir)
        return 2
    problem = server_problem(args)
    if problem:
        print(problem)
        return 2
    stamp = time.strftime("%Y%m%dT%H%M%S")
    results, passes = {}, {}
    for name, _ in ROUTES:
        logs = os.path.join(args.out, stamp, name)
        os.makedirs(logs, exist_ok=True)
        with route(name, args, logs) as url:
            for version in VERSIONS:
                out = os.path.join(logs, version)
                results[name, version] = run_suite(args, url, version, out)
                passes[name, version] = passed_checks(out)
                print("%-6s %s: %s" % (name, version, _cell(results[name, version])),
                      flush=True)
    print()
    print("| conformance checks passed (the SDK's everything server) | %s |" %
          " | ".join(VERSIONS))
    print("| --- |" + " --- |" * len(VERSIONS))
    for name, label in ROUTES:
        print("| %s | %s |" % (label, " | ".join(_cell(results[name, v]) for v in VERSIONS)))
    for name, label in ROUTES[1:]:
        for version in VERSIONS:
            lost = sorted(passes["direct", version] - passes[name, version])
            if lost:
                print("\nPassing direct but not through the %s, %s:" % (label, version))
                print("\n".join("  " + check for check in lost))
    print("\nlogs and per-check results: %s" % os.path.join(args.out, stamp))
    return 0 if all(results.values()) else 1


def _cell(result) -> str:
    return "no result" if result is None else "%d/%d" % (result[0], sum(result))


if __name__ == "__main__":
    sys.exit(main())
