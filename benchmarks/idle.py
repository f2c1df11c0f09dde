"""Idle cost: CPU, wakeups and memory of a daemon with nothing to do.

A daemon with 10 workers (the default) long-polls the local control plane, which has no
commands. After a settle period (startup jobs: metadata fetch, first probes) we read
/proc at the start and end of a window: CPU time (utime + stime), context switches summed
over its threads (each is a wakeup) and RSS. The stdio MCP server is a separate process
and is reported on its own line, not added to the daemon.

    python -m benchmarks.idle --seconds 60
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import time

from benchmarks import procstat, report
from benchmarks.stack import DaemonProcess, HttpStubProcess, RelayProcess

MB = 1e6


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.idle", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="measured idle window [default %(default)s]")
    parser.add_argument("--settle", type=float, default=5.0,
                        help="seconds after readiness before measuring [default %(default)s]")
    parser.add_argument("--workers", type=int, default=10)
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    return parser.parse_args(argv)


def measure(pid: int, seconds: float) -> dict:
    before, tasks_before = procstat.sample(pid), procstat.task_switches(pid)
    started = time.monotonic()
    time.sleep(seconds)  # the measured idle window itself
    after, tasks_after = procstat.sample(pid), procstat.task_switches(pid)
    elapsed = time.monotonic() - started
    per_thread = {tid: (n - tasks_before.get(tid, 0)) / elapsed
                  for tid, n in tasks_after.items()}
    return {"seconds": elapsed,
            "cpu_percent": 100.0 * (after.cpu - before.cpu) / elapsed,
            "wakeups_per_s": (after.switches - before.switches) / elapsed,
            "rss_mb": after.rss / MB, "threads": after.threads, "fds": after.fds,
            "wakeups_by_thread": per_thread}


def thread_names(pid: int) -> dict:
    """tid -> Python thread name, from ``py-spy dump`` when py-spy is installed."""
    spy = shutil.which("py-spy", path=os.path.dirname(sys.executable)) or shutil.which("py-spy")
    if not spy:
        return {}
    dump = subprocess.run([spy, "dump", "--pid", str(pid)], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL).stdout.decode(errors="replace")
    return {int(m.group(1)): m.group(2)
            for m in re.finditer(r'Thread (\d+) \([^)]*\): "([^"]*)"', dump)}


def print_wakers(result: dict, names: dict):
    busy = sorted(((rate, tid) for tid, rate in result["wakeups_by_thread"].items()
                   if rate > 0), reverse=True)
    print("\nWakeups by thread (names from py-spy when installed: make bench-profile):")
    print(report.table(["thread", "wakeups/s"], [["%s (%d)" % (names.get(tid, "?"), tid), rate]
                                                 for rate, tid in busy] or [["none", 0.0]]))


def main(argv=None) -> int:
    args = parse_args(argv)
    relay = RelayProcess()
    stub = HttpStubProcess() if args.transport == "http" else None
    daemon = DaemonProcess(relay, args.workers, stub.url if stub else None)
    try:
        daemon.wait_ready()
        time.sleep(args.settle)  # let startup jobs finish before the window opens
        child = (procstat.children(daemon.pid) or [None])[0]
        child_before = procstat.sample(child) if child else None
        print("idle daemon: %d workers, %s MCP server, measuring %.0f s ..."
              % (args.workers, args.transport, args.seconds), flush=True)
        result = measure(daemon.pid, args.seconds)
        names = thread_names(daemon.pid)
        rows = [["daemon", result["cpu_percent"], result["wakeups_per_s"], result["rss_mb"],
                 result["threads"], result["fds"]]]
        if child:
            after = procstat.sample(child)
            rows.append(["stdio MCP server (not the daemon)",
                         100.0 * (after.cpu - child_before.cpu) / result["seconds"],
                         (after.switches - child_before.switches) / result["seconds"],
                         after.rss / MB, after.threads, after.fds])
    finally:
        daemon.stop()
        if stub:
            stub.stop()
        relay.stop()
    print(report.table(["process", "CPU % of a core", "wakeups/s", "RSS MB", "threads",
                        "fds"], rows))
    print_wakers(result, names)
    summary = dict(result, workers=args.workers, transport=args.transport,
                   wakeups_by_thread={names.get(t, str(t)): r for t, r in
                                      result["wakeups_by_thread"].items() if r > 0})
    report.save("idle", summary)
    report.print_targets(idle=summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
