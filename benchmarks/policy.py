"""What policy and audit add to a call: the daemon's CPU per call with a realistic policy
and the audit trail on, next to the same daemon without them, in the same run.

Both daemons serve the stdio stub through their own local control plane; 16 callers send
``tools/call echo`` with 1 KiB payloads. The policy allows a list of tools, denies others,
checks echo's arguments against a JSON Schema, applies a generous channel rate limit and
a per-tool one, and every call is recorded in a sealed, hash-chained audit file. Runs
alternate (baseline, policy, baseline, policy...) so a busy neighbour hurts both columns
alike; the median of the rounds is reported.

    python -m benchmarks.policy              # 16 callers x 1 KiB, 3 rounds (~40 s)
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile

import yaml

from benchmarks import loadgen, report
from benchmarks.callers import HttpCaller, http_session
from benchmarks.stack import DaemonProcess, RelayProcess

TARGET_MS = 0.2  # added daemon CPU per call the issue allows

POLICY = {"main": {
    "tools": {"allow": ["echo", "uppercase", "server_info", "search_*"],
              "deny": ["drop_*", "fail"]},
    "methods": {"deny": ["sampling/*", "elicitation/*"]},
    "arguments": {"echo": {"schema": {
        "type": "object", "required": ["input"],
        "properties": {"input": {"type": "string", "maxLength": 1 << 20}}}}},
    "max_argument_bytes": 4 << 20,
    "rate_limits": {"channel": {"rate": "100000/s", "burst": 100000},
                    "tools": {"echo": {"rate": "100000/s", "burst": 100000}}},
}}


def policy_args(workdir: str):
    key = os.path.join(workdir, "audit.key")
    with open(key, "wb") as handle:
        handle.write(os.urandom(32).hex().encode())
    os.chmod(key, 0o600)
    config = os.path.join(workdir, "config.yaml")
    with open(config, "w") as handle:
        yaml.safe_dump({"policy": {"channels": POLICY},
                        "audit": {"file": os.path.join(workdir, "audit.jsonl"),
                                  "key_file": key}}, handle)
    return ["--config", config]


def gate_cost(payload: int, calls: int = 5000) -> float:
    """Microseconds of CPU per call of the gate alone (policy and audit on), around an
    in-memory binding: the part of the difference above that is the gate's own work."""
    import time
    from tunnel_client import wire
    from tunnel_client.config import policy_schema
    from tunnel_client.observe.instruments import Instruments
    from tunnel_client.policy import AuditTrail, PolicyGate, PolicySet

    text = "x" * payload
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": "echo", "arguments": {"input": text}}}
    body = wire.dumps({"jsonrpc": "2.0", "id": 1, "result": {
        "content": [{"type": "text", "text": text}], "structuredContent": {"echoed": text}}})
    cmd = wire.Command("req_1", "shard_1", wire.CMD_JSONRPC, "main", 0.0, message=message,
                       headers={"Mcp-Session-Id": ["session-1"]})

    class Echo:
        def handle(self, cmd, deadline):
            yield wire.response(body, 200)

    workdir = tempfile.mkdtemp(prefix="bench-gate-")
    audit = AuditTrail(os.path.join(workdir, "audit.jsonl"), os.urandom(32))
    audit.open()
    gate = PolicyGate(PolicySet(policy_schema.check(POLICY)), audit, Instruments(), "bench")
    binding = Echo()
    try:
        for _ in range(200):
            list(gate.handle(binding, cmd, wire.NO_DEADLINE))
        started = time.process_time()
        for _ in range(calls):
            list(gate.handle(binding, cmd, wire.NO_DEADLINE))
        return (time.process_time() - started) / calls * 1e6
    finally:
        audit.close()
        shutil.rmtree(workdir, ignore_errors=True)


def one_run(callers: int, payload: int, args, extra=()) -> loadgen.LoadResult:
    relay = RelayProcess(response_timeout="120s")
    daemon = DaemonProcess(relay, max(10, callers), None, args.log_level, args=extra)
    try:
        daemon.wait_ready()
        session = http_session(relay.mcp_url)
        clients = [HttpCaller(relay.mcp_url, session) for _ in range(callers)]
        try:
            return loadgen.run([c.echo for c in clients], payload, args.duration, args.warmup,
                               min_calls=2 * callers, max_seconds=max(30.0, args.duration),
                               watch={"daemon": daemon.pid})
        finally:
            for client in clients:
                client.close()
    finally:
        daemon.stop()
        relay.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.policy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--callers", type=int, default=16)
    parser.add_argument("--payload-bytes", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    workdir = tempfile.mkdtemp(prefix="bench-policy-")
    runs = {"baseline": [], "policy + audit": []}
    try:
        extra = policy_args(workdir)
        for round_number in range(args.rounds):
            for name, flags in (("baseline", ()), ("policy + audit", extra)):
                result = one_run(args.callers, args.payload_bytes, args, flags)
                runs[name].append(result)
                print("round %d %-15s %7.1f calls/s  p50 %6.1f ms  daemon CPU %.3f ms/call"
                      "  errors %d" % (round_number + 1, name, result.rate,
                                       result.percentile(50), result.cpu_ms_per_call("daemon"),
                                       result.errors + result.misrouted), flush=True)
        with open(os.path.join(workdir, "audit.jsonl"), "rb") as handle:
            records = sum(1 for _ in handle)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    def median(name, measure):
        return statistics.median(measure(r) for r in runs[name])

    base = median("baseline", lambda r: r.cpu_ms_per_call("daemon"))
    with_policy = median("policy + audit", lambda r: r.cpu_ms_per_call("daemon"))
    rows = [[name, median(name, lambda r: r.rate), median(name, lambda r: r.percentile(50)),
             median(name, lambda r: r.percentile(99)),
             median(name, lambda r: r.cpu_ms_per_call("daemon"))] for name in runs]
    print("\nstdio, %d callers x %d B, median of %d rounds (%d audit records written):"
          % (args.callers, args.payload_bytes, args.rounds, records))
    print(report.table(["daemon", "req/s", "p50 ms", "p99 ms", "cpu ms/call"], rows))
    added = with_policy - base
    alone = gate_cost(args.payload_bytes)
    print("\npolicy + audit add %.3f ms of daemon CPU per call (target <= %.1f ms): %s"
          % (added, TARGET_MS, "met" if added <= TARGET_MS else "missed"))
    print("the gate alone, in process: %.0f us of CPU per call" % alone)
    report.save("policy", {"callers": args.callers, "payload_B": args.payload_bytes,
                           "rounds": args.rounds, "baseline_cpu_ms": base,
                           "policy_audit_cpu_ms": with_policy, "added_cpu_ms": added,
                           "gate_alone_us": alone, "audit_records": records, "rows": rows})
    bad = sum(r.errors + r.misrouted for results in runs.values() for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
