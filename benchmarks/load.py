"""Load benchmark: what tunnel-client adds to every MCP call, against the same calls made
straight to the MCP server in the same run.

One ``tunnel-client run`` (its own process) polls the local control plane (its own
process); N caller threads send ``tools/call echo`` with a payload of B bytes through the
control plane's MCP URL. The same callers then talk to the MCP server directly: a stdio
client multiplexing one stub child, or POSTs to the HTTP stub. Reported per cell: req/s,
p50/p95/p99/max latency, the overhead ratio (tunneled/direct p50), the added latency
(tunneled - direct), the daemon's CPU per call (from /proc/<pid>/stat) and its RSS.

Knobs mirror the reference's single-client load benchmark (env or flags):
TUNNEL_CLIENT_LOAD_WORKERS (callers), TUNNEL_CLIENT_LOAD_MCP_CONCURRENCY (daemon workers,
--mcp.max-concurrent-requests), TUNNEL_CLIENT_LOAD_PAYLOAD_BYTES. The reference's
max_inflight has no counterpart: this client has no prefetch queue, in-flight work equals
the number of workers.

    python -m benchmarks.load                 # the sweep: c in 1,8,64 x 1 KiB,64 KiB,1 MiB
    python -m benchmarks.load --quick         # c in 1,16 x 1 KiB, short windows
"""

import argparse
import os
import sys
import threading
import time
from typing import List, Optional

from benchmarks import loadgen, procstat, report
from benchmarks.callers import HttpCaller, StdioDirect, http_session
from benchmarks.stack import (DaemonProcess, HttpStubProcess, RelayProcess, environment,
                              stub_argv)

KIB = 1024
MB = 1e6


def int_list(text: str) -> List[int]:
    return [int(item) for item in str(text).split(",") if item.strip()]


def parse_args(argv=None):
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transports", default="stdio,http",
                        help="stdio and/or http [default %(default)s]")
    parser.add_argument("--workers", "--concurrency", dest="concurrency", type=int_list,
                        default=int_list(env("TUNNEL_CLIENT_LOAD_WORKERS", "1,8,64")),
                        help="concurrent callers, a list [default 1,8,64]")
    parser.add_argument("--payload-bytes", type=int_list, default=int_list(env(
        "TUNNEL_CLIENT_LOAD_PAYLOAD_BYTES", "%d,%d,%d" % (KIB, 64 * KIB, 1024 * KIB))),
        help="echo payload sizes, a list [default 1 KiB, 64 KiB, 1 MiB]")
    parser.add_argument("--extra-cells", default="16:1024",
                        help="more CALLERS:BYTES cells, e.g. the throughput target's "
                             "[default %(default)s]; '' for none")
    parser.add_argument("--mcp-concurrency", type=int,
                        default=int(env("TUNNEL_CLIENT_LOAD_MCP_CONCURRENCY", "0")),
                        help="daemon workers; 0 = max(10, callers) [default 0]")
    parser.add_argument("--duration", type=float, default=3.0,
                        help="seconds measured per cell (after warm-up) [default %(default)s]")
    parser.add_argument("--warmup", type=float, default=0.7)
    parser.add_argument("--no-pipeline", action="store_true",
                        help="skip the 10 x 1-second stdio tool check")
    parser.add_argument("--quick", action="store_true",
                        help="c in 1,16 x 1 KiB, 1.5 s windows: a smoke run")
    parser.add_argument("--log-level", default="info", help="daemon log level")
    args = parser.parse_args(argv)
    if args.quick:
        args.concurrency, args.payload_bytes, args.extra_cells = [1, 16], [KIB], ""
        args.duration, args.warmup = 1.5, 0.5
    return args


def cells(args) -> List[tuple]:
    result = {(c, b) for c in args.concurrency for b in args.payload_bytes}
    for item in filter(None, args.extra_cells.split(",")):
        callers, _, size = item.partition(":")
        result.add((int(callers), int(size)))
    return sorted(result)


def size_label(size: int) -> str:
    if size >= 1 << 20 and size % (1 << 20) == 0:
        return "%dMiB" % (size >> 20)
    if size >= KIB and size % KIB == 0:
        return "%dKiB" % (size // KIB)
    return "%dB" % size


class Target:
    """One MCP server reachable directly and through a daemon."""

    def __init__(self, transport: str):
        self.transport = transport
        self.relay: Optional[RelayProcess] = None
        self.http = HttpStubProcess() if transport == "http" else None
        self.direct_stdio = StdioDirect(stub_argv(), environment()) \
            if transport == "stdio" else None
        self.direct_session = http_session(self.http.url) if self.http else None
        self.daemon: Optional[DaemonProcess] = None
        self.tunnel_session = None

    def start_daemon(self, workers: int, log_level: str):
        """A fresh control plane too: long-polls a stopped daemon left behind would take
        (and lose) the next daemon's commands until they time out."""
        self.stop_daemon()
        self.relay = RelayProcess(response_timeout="120s")
        self.daemon = DaemonProcess(self.relay, workers, self.http.url if self.http else None,
                                    log_level)
        self.daemon.wait_ready()
        self.tunnel_session = http_session(self.relay.mcp_url)

    def stop_daemon(self):
        if self.daemon is not None:
            self.daemon.stop()
            self.daemon = None
        if self.relay is not None:
            self.relay.stop()
            self.relay = None

    def server_pid(self, tunneled: bool) -> Optional[int]:
        if self.http:
            return self.http.pid
        if not tunneled:
            return self.direct_stdio.proc.pid
        kids = procstat.children(self.daemon.pid)
        return kids[0] if kids else None

    def direct_echoes(self, n: int):
        if self.direct_stdio:
            return [self.direct_stdio.echo] * n, []
        callers = [HttpCaller(self.http.url, self.direct_session) for _ in range(n)]
        return [c.echo for c in callers], callers

    def tunneled_echoes(self, n: int):
        callers = [HttpCaller(self.relay.mcp_url, self.tunnel_session) for _ in range(n)]
        return [c.echo for c in callers], callers

    def close(self):
        self.stop_daemon()
        if self.direct_stdio:
            self.direct_stdio.close()
        if self.http:
            self.http.stop()


def measure(echoes, closers, payload, args, watch) -> loadgen.LoadResult:
    try:
        return loadgen.run(echoes, payload, args.duration, args.warmup,
                           min_calls=2 * len(echoes), max_seconds=max(30.0, args.duration),
                           watch={k: v for k, v in watch.items() if v})
    finally:
        for caller in closers:
            caller.close()


def row_for(transport, workers, direct, tunneled) -> dict:
    d50, t50 = direct.percentile(50), tunneled.percentile(50)
    return {
        "transport": transport, "callers": tunneled.concurrency, "payload_B": tunneled.payload,
        "mcp_concurrency": workers, "calls": tunneled.calls, "rps": tunneled.rate,
        "p50_ms": t50, "p95_ms": tunneled.percentile(95), "p99_ms": tunneled.percentile(99),
        "max_ms": tunneled.percentile(100),
        "direct_calls": direct.calls, "direct_rps": direct.rate, "direct_p50_ms": d50,
        "direct_p95_ms": direct.percentile(95), "direct_p99_ms": direct.percentile(99),
        "ratio_p50": t50 / d50 if d50 else float("nan"),
        "added_p50_ms": t50 - d50, "added_p95_ms": tunneled.percentile(95) -
        direct.percentile(95), "added_p99_ms": tunneled.percentile(99) - direct.percentile(99),
        "daemon_cpu_ms_per_call": tunneled.cpu_ms_per_call("daemon"),
        "relay_cpu_ms_per_call": tunneled.cpu_ms_per_call("relay"),
        "server_cpu_ms_per_call": tunneled.cpu_ms_per_call("server"),
        "direct_server_cpu_ms_per_call": direct.cpu_ms_per_call("server"),
        "daemon_rss_mb": tunneled.peak_rss.get("daemon", 0) / MB,
        "errors": tunneled.errors + direct.errors,
        "misrouted": tunneled.misrouted + direct.misrouted,
        "first_error": tunneled.first_error or direct.first_error,
    }


COLUMNS = [("transport", "transport"), ("callers", "c"), ("payload", "payload"),
           ("rps", "req/s"), ("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99"),
           ("max_ms", "max"), ("direct_rps", "direct req/s"), ("direct_p50_ms", "direct p50"),
           ("ratio_p50", "x p50"), ("added_p50_ms", "+p50 ms"), ("added_p99_ms", "+p99 ms"),
           ("daemon_cpu_ms_per_call", "cpu ms/call"), ("daemon_rss_mb", "RSS MB"),
           ("errors", "err"), ("misrouted", "misrouted")]


def print_rows(rows):
    shown = [[size_label(r["payload_B"]) if key == "payload" else r[key] for key, _ in COLUMNS]
             for r in rows]
    print(report.table([title for _, title in COLUMNS], shown))


def pipelined_slow_tool(log_level: str, calls: int = 10) -> float:
    """Seconds for ``calls`` concurrent 1-second tool calls on one stdio server."""
    relay = RelayProcess(response_timeout="120s")
    daemon = DaemonProcess(relay, max(10, calls), None, log_level)
    try:
        daemon.wait_ready()
        session = http_session(relay.mcp_url)
        callers = [HttpCaller(relay.mcp_url, session) for _ in range(calls)]
        message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                   "params": {"name": "sleep", "arguments": {"seconds": 1}}}
        callers[0].request(message)  # the handshake and a warm connection first
        done, problems = [], []
        go = threading.Event()

        def one(caller):
            go.wait()
            try:
                reply = caller.request(message)
                done.append(time.monotonic()) if "result" in reply else problems.append(reply)
            except Exception as exc:  # reported below
                problems.append(exc)

        threads = [threading.Thread(target=one, args=(c,)) for c in callers]
        for thread in threads:
            thread.start()
        started = time.monotonic()
        go.set()
        for thread in threads:
            thread.join(60)
        for caller in callers:
            caller.close()
        if problems or len(done) != calls:
            raise RuntimeError("slow-tool check failed: %r" % problems[:3])
        return max(done) - started
    finally:
        daemon.stop()
        relay.stop()


def sweep(transport: str, plan, args) -> List[dict]:
    """Every cell of ``plan`` on one transport; a daemon per caller count."""
    rows = []
    target = Target(transport)
    try:
        for callers in sorted({c for c, _ in plan}):
            workers = args.mcp_concurrency or max(10, callers)
            target.start_daemon(workers, args.log_level)
            for payload in [b for c, b in plan if c == callers]:
                echoes, closers = target.direct_echoes(callers)
                direct = measure(echoes, closers, payload, args,
                                 {"server": target.server_pid(False)})
                echoes, closers = target.tunneled_echoes(callers)
                tunneled = measure(echoes, closers, payload, args, {
                    "daemon": target.daemon.pid, "relay": target.relay.pid,
                    "server": target.server_pid(True)})
                rows.append(row_for(transport, workers, direct, tunneled))
                print_rows(rows[-1:])
                sys.stdout.flush()
    finally:
        target.close()
    return rows


def main(argv=None) -> int:
    args = parse_args(argv)
    transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    plan = cells(args)
    print("load benchmark on %d cores, Python %s; cells: %s" % (
        os.cpu_count(), sys.version.split()[0],
        ", ".join("c=%d/%s" % (c, size_label(b)) for c, b in plan)), flush=True)
    rows = []
    summary = {"targets": {}, "args": vars(args)}
    for transport in transports:
        rows += sweep(transport, plan, args)
    if "stdio" in transports and not args.no_pipeline:
        seconds = pipelined_slow_tool(args.log_level)
        summary["targets"]["pipelined_10x1s_s"] = seconds
        print("\n10 concurrent calls of a 1-second tool on one stdio server: %.2f s" % seconds)
    print("\nAll cells (latency in ms; x p50 = tunneled/direct; +p50 = tunneled - direct; "
          "cpu = the daemon's own CPU per call):")
    print_rows(rows)
    summary["targets"].update(targets_from(rows))
    summary["rows"] = rows
    path = report.save("load", summary, rows)
    print("\nCSV: %s" % path)
    chart(rows, path[:-4] + ".png")
    report.print_targets(load=summary)
    bad = sum(r["errors"] + r["misrouted"] for r in rows)
    if bad:
        print("\n%d calls failed or were misrouted; first: %s" % (bad, next(
            r["first_error"] for r in rows if r["first_error"])))
    return 1 if bad else 0


def targets_from(rows) -> dict:
    def cell(transport, callers, payload):
        for r in rows:
            if (r["transport"], r["callers"], r["payload_B"]) == (transport, callers, payload):
                return r
        return None

    found = {}
    c1 = cell("stdio", 1, KIB)
    if c1:
        found["added_p50_ms_c1_1k"] = c1["added_p50_ms"]
    c16 = cell("stdio", 16, KIB)
    if c16:
        found["rate_c16_1k"] = c16["rps"]
        found["cpu_ms_c16_1k"] = c16["daemon_cpu_ms_per_call"]
    c64 = cell("stdio", 64, KIB)
    if c64:
        found["rss_mb_c64_1k"] = c64["daemon_rss_mb"]
    big = [r["daemon_rss_mb"] for r in rows if r["callers"] == 64]
    if big:
        found["rss_mb_c64_peak"] = max(big)
    return found


def chart(rows, path: str):
    """A PNG when matplotlib happens to be installed; the text table stands otherwise."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no chart; the table above is the result)")
        return
    transports = sorted({r["transport"] for r in rows})
    figure, axes = plt.subplots(len(transports), 2, figsize=(11, 4 * len(transports)),
                                squeeze=False)
    for i, transport in enumerate(transports):
        for payload in sorted({r["payload_B"] for r in rows}):
            mine = sorted((r for r in rows if r["transport"] == transport and
                           r["payload_B"] == payload), key=lambda r: r["callers"])
            if len(mine) < 2:
                continue
            xs = [r["callers"] for r in mine]
            axes[i][0].plot(xs, [r["p50_ms"] for r in mine], marker="o",
                            label="tunneled %s" % size_label(payload))
            axes[i][0].plot(xs, [r["direct_p50_ms"] for r in mine], linestyle="--",
                            label="direct %s" % size_label(payload))
            axes[i][1].plot(xs, [r["rps"] for r in mine], marker="o",
                            label="tunneled %s" % size_label(payload))
            axes[i][1].plot(xs, [r["direct_rps"] for r in mine], linestyle="--",
                            label="direct %s" % size_label(payload))
        for j, what in enumerate(("p50 latency (ms)", "calls/s")):
            axes[i][j].set_xscale("log", base=2)
            axes[i][j].set_yscale("log")
            axes[i][j].set_xlabel("concurrent callers")
            axes[i][j].set_title("%s: %s" % (transport, what))
            axes[i][j].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    print("chart: %s" % path)


if __name__ == "__main__":
    sys.exit(main())
