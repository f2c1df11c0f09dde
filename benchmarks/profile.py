"""Where the daemon's CPU goes under load: py-spy samples the ``tunnel-client run``
process (only threads holding the GIL, i.e. running Python) while callers drive it, and
the samples are summed by function (inclusive and self) and by room (HTTP client, JSON,
logging, the daemon's own modules...).

    python -m benchmarks.profile --callers 16 --seconds 15 [--transport http]

py-spy comes from ``make bench-profile`` (a benchmark-only tool, not a test extra).
"""

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile

from benchmarks import loadgen, report
from benchmarks.callers import HttpCaller, http_session
from benchmarks.stack import DaemonProcess, HttpStubProcess, RelayProcess

ROOMS = [("HTTP client (requests/urllib3/http.client)", ("requests/", "urllib3/", "http/client",
                                                          "socket.py", "email/")),
         ("JSON", ("json/",)), ("logging", ("logging/", "logs.py")),
         ("metrics", ("metrics.py", "instruments.py")),
         ("threads and queues", ("threading.py", "queue.py")),
         ("stdio binding", ("mcp/stdio", "mcp/process")), ("HTTP binding", ("mcp/http",)),
         ("policy and audit", ("tunnel_client/policy/", "jsonschema/", "hashlib", "hmac")),
         ("wire / worker / control plane (own code)", ("tunnel_client/",))]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--callers", type=int, default=16)
    parser.add_argument("--payload-bytes", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--daemon-arg", action="append", default=[], metavar="ARG",
                        help="extra argument for tunnel-client run (repeat), e.g. "
                             "--daemon-arg=--config --daemon-arg=policy.yaml")
    return parser.parse_args(argv)


def py_spy() -> str:
    found = shutil.which("py-spy", path=os.path.dirname(sys.executable)) or \
        shutil.which("py-spy")
    if not found:
        raise SystemExit("py-spy is not installed: run `make bench-profile`")
    return found


def read_samples(path: str):
    """py-spy raw output: one 'frame;frame;... count' line per distinct stack."""
    with open(path) as handle:
        for line in handle:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if stack:
                yield [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")], int(count)


def summarize(samples, top: int):
    inclusive, own, rooms = collections.Counter(), collections.Counter(), collections.Counter()
    total = 0
    for frames, count in samples:
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
        rooms[room_of(frames)] += count
    share = lambda n: 100.0 * n / total if total else 0.0  # noqa: E731
    print("\n%d samples of the daemon running Python" % total)
    print("\nBy room (innermost frame in a known room; stdlib helpers count for their caller):")
    print(report.table(["room", "% of CPU"], [[r, share(n)] for r, n in rooms.most_common()]))
    print("\nInclusive (the function and what it calls):")
    print(report.table(["% of CPU", "function"],
                       [[share(n), f] for f, n in inclusive.most_common(top)]))
    print("\nSelf (innermost frame):")
    print(report.table(["% of CPU", "function"],
                       [[share(n), f] for f, n in own.most_common(top)]))


def room_of(frames) -> str:
    """The room of the innermost frame that belongs to one: stdlib helpers (typing, abc,
    urllib.parse...) count for the library or module that called them."""
    for frame in reversed(frames):
        for name, needles in ROOMS:
            if any(needle in frame for needle in needles):
                return name
    return "other (stdlib)"


def main(argv=None) -> int:
    args = parse_args(argv)
    spy = py_spy()
    relay = RelayProcess(response_timeout="120s")
    stub = HttpStubProcess() if args.transport == "http" else None
    daemon = DaemonProcess(relay, max(10, args.callers), stub.url if stub else None,
                           args=args.daemon_arg)
    out = tempfile.mktemp(prefix="bench-profile-", suffix=".txt")
    try:
        daemon.wait_ready()
        session = http_session(relay.mcp_url)
        callers = [HttpCaller(relay.mcp_url, session) for _ in range(args.callers)]
        recorder = subprocess.Popen(
            [spy, "record", "--pid", str(daemon.pid), "--rate", str(args.rate), "--gil",
             "--nonblocking", "--format", "raw", "--output", out,
             "--duration", str(int(args.seconds + 1))],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        result = loadgen.run([c.echo for c in callers], args.payload_bytes, args.seconds,
                             warmup=0.5, watch={"daemon": daemon.pid})
        _, errors = recorder.communicate(timeout=60)
        for caller in callers:
            caller.close()
    finally:
        daemon.stop()
        if stub:
            stub.stop()
        relay.stop()
    if not os.path.exists(out):
        raise SystemExit("py-spy recorded nothing: %s" % errors.decode(errors="replace"))
    print("%s, %d callers, %d-byte echo: %.0f calls/s, daemon CPU %.2f ms/call while sampled"
          % (args.transport, args.callers, args.payload_bytes, result.rate,
             result.cpu_ms_per_call("daemon")))
    summarize(list(read_samples(out)), args.top)
    os.unlink(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
