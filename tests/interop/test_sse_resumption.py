"""SSE resumption with a real server: the official SDK's MCPServer ends a call's stream
early (priming event, then close) and answers on the stream the client resumes with GET +
Last-Event-ID. Through the tunnel, tunnel-client resumes it and the caller (the official
SDK client) sees the same call as it does directly."""

import sys

import pytest

pytest.importorskip("mcp", reason="the official mcp SDK needs Python >= 3.10")

from tests.interop import sdk_client  # noqa: E402
from tests.interop.peers import HERE, PeerProcess, free_port, run, tunnel  # noqa: E402

pytestmark = [pytest.mark.sdk, pytest.mark.slow]


def interrupted_tour(client):
    return sdk_client.with_progress(client, "interrupted", {})


def test_a_call_whose_stream_the_server_ends_early_completes_through_the_tunnel():
    port = free_port()
    server = PeerProcess([sys.executable, HERE + "/sdk_polling_server.py", str(port)],
                         port=port)
    try:
        _, direct = run(sdk_client.session(server.url, "legacy", interrupted_tour))
        direct_gets = server.output().count('"GET /mcp')
        with tunnel(mcp_url=server.url) as relay:
            _, tunneled = run(sdk_client.session(relay.mcp_url, "legacy", interrupted_tour))
        tunnel_gets = server.output().count('"GET /mcp') - direct_gets
    finally:
        server.stop()
    assert sdk_client.texts(direct["result"]) == "answered after the stream ended"
    assert direct["progress"] == [[1.0, 2.0, "before the stream ended"],
                                  [2.0, 2.0, "after the stream ended"]]
    assert tunneled == direct
    assert direct_gets >= 1 and tunnel_gets >= 1  # both resumed the stream
