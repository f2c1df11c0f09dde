"""The official SDK client against @modelcontextprotocol/server-everything (npm), through
relay -> tunnel-client run -> server, over stdio and Streamable HTTP; compared with the
direct route. server-everything is a legacy-era server: the SDK's auto mode probes
server/discover, gets refused, and falls back to the 2025-11-25 handshake."""

import pytest
import requests

pytest.importorskip("mcp", reason="the official mcp SDK needs Python >= 3.10")

from tests.interop import sdk_client  # noqa: E402
from tests.interop.peers import (  # noqa: E402
    CALL_TIMEOUT, everything_stdio_command, need_server_everything, run, start_everything_http, tunnel)
from tests.interop.session_checks import assert_close_ends_the_session  # noqa: E402

pytestmark = [pytest.mark.sdk, pytest.mark.node, pytest.mark.slow]

ALWAYS_PRESENT_TOOLS = {
    "echo", "get-annotated-message", "get-env", "get-resource-links", "get-resource-reference",
    "get-structured-content", "get-sum", "get-tiny-image", "gzip-file-as-resource",
    "toggle-simulated-logging", "toggle-subscriber-updates", "trigger-long-running-operation"}
MODES = ["auto", "legacy"]


class Peer:
    def __init__(self, relay, direct, server=None):
        self.relay = relay
        self.direct = direct  # the same server without the tunnel: a URL or a command
        self.server = server


@pytest.fixture(scope="module", params=["stdio", "http"])
def peer(request):
    need_server_everything()
    if request.param == "stdio":
        with tunnel(mcp_command=everything_stdio_command()) as relay:
            yield Peer(relay, everything_stdio_command())
        return
    server = start_everything_http()
    try:
        with tunnel(mcp_url=server.url) as relay:
            yield Peer(relay, server.url, server)
    finally:
        server.stop()


@pytest.mark.parametrize("mode", MODES)
def test_the_tunnel_gives_the_same_answers_as_the_server_directly(peer, mode):
    version, tunneled = run(sdk_client.session(peer.relay.mcp_url, mode,
                                               sdk_client.everything_tour))
    assert version == "2025-11-25"
    assert ALWAYS_PRESENT_TOOLS <= {t["name"] for t in tunneled["tools"]["tools"]}
    assert sdk_client.texts(tunneled["sum"]) == "The sum of 2 and 40 is 42."
    assert sdk_client.texts(tunneled["echo"]) == "Echo: h\u00e9llo \u2713"
    assert tunneled["structured"] == {"keys": ["conditions", "humidity", "temperature"],
                                      "text_matches": True, "isError": False}
    assert tunneled["long"]["progress"] == [[1.0, 3.0, None], [2.0, 3.0, None],
                                            [3.0, 3.0, None]]
    assert "Steps: 3" in sdk_client.texts(tunneled["long"]["result"])
    assert tunneled["bad_arguments"]["isError"] is True
    assert "Invalid arguments for tool get-sum" in sdk_client.texts(tunneled["bad_arguments"])
    assert tunneled["unknown_tool"]["isError"] is True
    assert "no-such-tool not found" in sdk_client.texts(tunneled["unknown_tool"])
    assert "demo://resource/static/document/architecture.md" in [
        r["uri"] for r in tunneled["resources"]["resources"]]
    assert tunneled["static"]["contents"][0]["text"].startswith("# Everything Server")
    assert tunneled["dynamic"]["contents"][0]["text"] == \
        "Resource 1: This is a plaintext resource"
    assert {"simple-prompt", "args-prompt"} <= {p["name"] for p in
                                                tunneled["prompts"]["prompts"]}
    assert tunneled["simple"]["messages"][0]["content"]["text"] == \
        "This is a simple prompt without arguments."
    assert tunneled["args"]["messages"][0]["content"]["text"] == "What's weather in Lyon, RA?"

    direct_version, direct = run(sdk_client.session(peer.direct, mode,
                                                    sdk_client.everything_tour))
    assert direct_version == version
    assert tunneled == direct


@pytest.mark.parametrize("mode", MODES)
def test_twenty_concurrent_clients_get_only_their_own_answers(peer, mode):
    async def visit(client, index):
        steps = 1 + index % 4
        seen, on_progress = sdk_client.progress_log()
        echo = await client.call_tool("echo", {"message": "client-%d" % index})
        long = await client.call_tool("trigger-long-running-operation",
                                      {"duration": 0.05 * steps, "steps": steps},
                                      progress_callback=on_progress)
        total = await client.call_tool("get-sum", {"a": index, "b": 1000})
        return [sdk_client.texts(sdk_client.dump(r)) for r in (echo, long, total)] + [seen]

    results = run(sdk_client.crowd(peer.relay.mcp_url, mode, 20, visit), timeout=60)
    for index, (echo, long, total, seen) in enumerate(results):
        steps = 1 + index % 4
        assert echo == "Echo: client-%d" % index
        assert "Steps: %d." % steps in long
        assert total == "The sum of %d and 1000 is %d." % (index, index + 1000)
        assert seen == [(float(k), float(steps)) for k in range(1, steps + 1)], index


@pytest.mark.parametrize("mode", MODES)
def test_closing_the_client_ends_its_session(peer, mode):
    """server-everything serves the legacy era only, so every client ends up in a session:
    the HTTP server's, or over stdio the one the tunnel keeps for it."""
    assert_close_ends_the_session(peer.relay, peer.server.url if peer.server else None,
                                  mode, lambda c: c.call_tool("get-sum", {"a": 1, "b": 2}))


def test_an_upstream_error_sent_with_a_null_id_reaches_the_caller_intact():
    """server-everything answers a request outside any session (here the 2026-07-28
    ``server/discover``) with HTTP 400 and its own JSON-RPC error carrying ``"id": null``;
    through the tunnel the caller gets that error, under its own id."""
    need_server_everything()
    server = start_everything_http()
    try:
        with tunnel(mcp_url=server.url) as relay:
            direct = _post(server.url)
            tunneled = _post(relay.mcp_url)
    finally:
        server.stop()
    assert direct[0] == 400 and direct[1]["id"] is None
    assert direct[1]["error"]["code"] == -32000
    assert tunneled == (direct[0], dict(direct[1], id="discover-1"))


def _post(url):
    resp = requests.post(url, timeout=CALL_TIMEOUT, proxies={"http": None, "https": None},
                         json={"jsonrpc": "2.0", "id": "discover-1", "method": "server/discover",
                               "params": {}},
                         headers={"Accept": "application/json, text/event-stream"})
    return resp.status_code, resp.json()
