"""The hot path in isolation: CPU per control-plane request for the daemon's own
ControlPlane.poll/post next to leaner ways of sending the same bytes with the same
libraries (requests with a prepared request, urllib3's pool, http.client).

Measured with this thread's CPU clock against the local control plane in another process,
so only the client's cost counts. It is the evidence behind the proposals in
benchmarks/README.md, not a target.

    python -m benchmarks.hotpath --requests 2000
"""

import argparse
import http.client
import logging
import sys
import time
from urllib.parse import urlsplit

from benchmarks import report
from benchmarks.stack import RelayProcess


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hotpath", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    return parser.parse_args(argv)


def cpu_ms_per_call(function, n: int) -> float:
    for _ in range(min(50, n)):
        function()  # warm connections and caches
    started = time.thread_time()
    for _ in range(n):
        function()
    return (time.thread_time() - started) * 1000.0 / n


def variants(relay):
    from tunnel_client import wire
    from tunnel_client.controlplane import ControlPlane
    from tunnel_client.net import TrustStore, resolve_route

    route = resolve_route("control-plane", relay.base_url, [], {}, TrustStore())
    cp = ControlPlane(route, relay.tunnel_id, relay.api_key, poll_timeout=0.001,
                      instance_id="0" * 32)
    cmd = wire.parse_poll_body(wire.dumps({"commands": [{
        "request_id": "req_bench", "shard_token": "shard_bench", "command_type": "jsonrpc",
        "channel": "main", "jsonrpc": {"jsonrpc": "2.0", "id": 1, "method": "ping"}}]}),
        time.monotonic())[0][0]
    reply = wire.response(wire.dumps({"jsonrpc": "2.0", "id": 1, "result": {
        "content": [{"type": "text", "text": "x" * 1024}]}}), 200)
    body = wire.encode_response(cmd, reply)
    headers = dict(cp._headers({"Content-Type": "application/json",
                                "X-Tunnel-Shard-Token": cmd.shard_token}))
    deadline = wire.Deadline(None)
    session = cp.sessions.get()
    kwargs = route.request_kwargs()

    def requests_post():
        session.post(cp.response_url, data=body, headers=headers, timeout=(10, 30),
                     **kwargs).close()

    import requests
    prepared = session.prepare_request(requests.Request("POST", cp.response_url, data=body,
                                                        headers=headers))

    def requests_send_prepared():
        session.send(prepared.copy(), timeout=(10, 30), allow_redirects=False, **kwargs).close()

    pool = session.get_adapter(cp.response_url).poolmanager.connection_from_url(cp.response_url)
    path = urlsplit(cp.response_url).path

    def urllib3_pool():
        resp = pool.urlopen("POST", path, body=body, headers=headers, retries=False,
                            preload_content=False, timeout=30)
        resp.read()
        resp.release_conn()

    parts = urlsplit(cp.response_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)

    def http_client():
        conn.request("POST", path, body, headers)
        conn.getresponse().read()

    return [
        ("ControlPlane.poll (empty, 204)", lambda: cp.poll()),
        ("ControlPlane.post (1 KiB reply)", lambda: cp.post(cmd, reply, deadline)),
        ("requests Session.post, same bytes", requests_post),
        ("requests Session.send of a prepared copy", requests_send_prepared),
        ("urllib3 pool.urlopen from the session's adapter", urllib3_pool),
        ("http.client keep-alive connection", http_client),
        ("wire.encode_response (1 KiB reply)", lambda: wire.encode_response(cmd, reply)),
    ]


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.getLogger("tunnel_client").setLevel(logging.CRITICAL)  # 404s are expected here
    relay = RelayProcess()
    try:
        rows = []
        for name, function in variants(relay):
            rows.append([name, cpu_ms_per_call(function, args.requests)])
    finally:
        relay.stop()
    base = rows[1][1]
    print(report.table(["client CPU per request (this thread)", "ms", "vs ControlPlane.post"],
                       [[n, ms, "%.0f%%" % (100.0 * ms / base)] for n, ms in rows]))
    report.save("hotpath", {"rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
