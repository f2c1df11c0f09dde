"""Start-up times: ``tunnel-client --version``, ``doctor --offline``, and a daemon's way
from spawn to its first poll, its first answered command and /readyz.

Each short command runs ``--repeat`` times; the median is reported next to the floor,
``python -c pass`` measured in the same run. The daemon is timed against the local
control plane in this process, with one command queued before it starts, so "first
answered command" needs no caller racing the start.

    python -m benchmarks.startup
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

from benchmarks import report
from benchmarks.stack import PY, ROOT, DaemonProcess, environment, stub_argv, wait_for

TUNNEL_ID = "tunnel_22222222222222222222222222222222"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=10)
    return parser.parse_args(argv)


def entry_point() -> list:
    """The installed console script when there is one (what operators run), else -m."""
    script = os.path.join(os.path.dirname(PY), "tunnel-client")
    return [script] if os.access(script, os.X_OK) else [PY, "-m", "tunnel_client"]


def timed(argv, repeat: int, env=None):
    """(median ms, last exit code, last output) of running ``argv`` ``repeat`` times."""
    times, proc = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              env=env or environment(), cwd=ROOT)
        times.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(times), proc.returncode, proc.stdout.decode(errors="replace")


def slowest_imports(args, top: int = 8):
    """(module, cumulative ms) of the costliest imports, from ``python -X importtime``."""
    proc = subprocess.run([PY, "-X", "importtime", "-m", "tunnel_client"] + args,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          env=environment(), cwd=ROOT)
    found = []
    for line in proc.stderr.decode(errors="replace").splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2].rstrip()
            depth = (len(name) - len(name.lstrip())) // 2
            if depth <= 1:  # what the command itself pulls in, not their insides
                found.append((name.strip(), int(parts[1]) / 1000.0))
    return sorted(found, key=lambda item: -item[1])[:top]


def doctor_available(cli) -> bool:
    proc = subprocess.run(cli + ["doctor", "--help"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, env=environment(), cwd=ROOT)
    return proc.returncode == 0 and b"--offline" in proc.stdout


def daemon_start() -> dict:
    """Seconds from spawn to the first poll and to the first answered command."""
    from tunnel_client.devtools.relay import Relay

    relay = Relay(response_timeout="30s").start()
    call = relay.submit({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                         "params": {"name": "echo", "arguments": {"input": "first"}}})
    try:
        spawned = time.time()
        daemon = DaemonProcess(relay, 10)
        try:
            payload = call.take(30.0)
            answered = time.time()
            wait_for(lambda: relay.polls, 5, message="the first poll")
            first_poll = relay.polls[0]["time"]
        finally:
            daemon.stop()
    finally:
        relay.stop()
    if payload is None or "result" not in (payload.get("resp_json") or {}):
        raise RuntimeError("the first command was not answered: %r" % (payload,))
    return {"first_poll_s": first_poll - spawned, "first_answer_s": answered - spawned}


def daemon_ready() -> float:
    """Seconds from spawn to /readyz 200 with nothing queued (the usual start)."""
    from tunnel_client.devtools.relay import Relay

    relay = Relay(response_timeout="30s").start()
    try:
        daemon = DaemonProcess(relay, 10)
        try:
            return daemon.wait_ready()
        finally:
            daemon.stop()
    finally:
        relay.stop()


def main(argv=None) -> int:
    args = parse_args(argv)
    cli = entry_point()
    floor, _, _ = timed([PY, "-c", "pass"], args.repeat)
    version, code, out = timed(cli + ["--version"], args.repeat)
    if code != 0:
        raise SystemExit("--version failed:\n" + out)
    rows = [["python -c pass (the floor)", floor, ""],
            [" ".join(os.path.basename(a) for a in cli) + " --version", version,
             out.strip()]]
    summary = {"python_floor_ms": floor, "version_ms": version}
    if doctor_available(cli):
        env = environment({"CONTROL_PLANE_TUNNEL_ID": TUNNEL_ID,
                           "CONTROL_PLANE_API_KEY": "sk-bench-not-a-real-key",
                           "MCP_COMMAND": " ".join(stub_argv())})
        doctor, code, out = timed(cli + ["doctor", "--offline"], args.repeat, env)
        summary["doctor_offline_ms"] = doctor
        rows.append(["doctor --offline", doctor, "exit %d: %s" % (
            code, (out.strip().splitlines() or [""])[0][:60])])
    else:
        summary["doctor_offline_ms"] = "not available"
        rows.append(["doctor --offline", None, "not available in this build"])
    start = daemon_start()
    start["readyz_s"] = daemon_ready()
    summary.update(start)
    rows += [["run: spawn -> first poll", start["first_poll_s"] * 1000, ""],
             ["run: spawn -> first command answered", start["first_answer_s"] * 1000,
              "command queued before start"],
             ["run: spawn -> /readyz 200", start["readyz_s"] * 1000,
              "nothing queued"]]
    print(report.table(["what", "ms (median of %d)" % args.repeat, "note"], rows))
    imports = slowest_imports(["--version"])
    summary["version_imports_ms"] = dict(imports)
    print("\nWhat --version imports (cumulative ms, python -X importtime):")
    print(report.table(["module", "ms"], imports))
    report.save("startup", summary)
    report.print_targets(startup=summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
