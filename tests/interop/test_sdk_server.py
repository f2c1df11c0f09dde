"""The official SDK client against the SDK's MCPServer, through relay -> tunnel-client run ->
server, over stdio and Streamable HTTP, in both MCP eras; compared with the direct route."""

import pytest

pytest.importorskip("mcp", reason="the official mcp SDK needs Python >= 3.10")

from tests.interop import sdk_client  # noqa: E402
from tests.interop.peers import (  # noqa: E402
    run, sdk_stdio_command, start_sdk_http, tunnel)
from tests.interop.session_checks import (  # noqa: E402
    assert_close_ends_the_session, assert_sessionless_close)
from tunnel_client.devtools.mcpclient import McpClient  # noqa: E402

pytestmark = [pytest.mark.sdk, pytest.mark.slow]

VERSIONS = {"auto": "2026-07-28", "legacy": "2025-11-25"}


class Peer:
    def __init__(self, relay, mode, direct, server=None):
        self.relay = relay
        self.mode = mode      # the SDK client's mode: "auto" (2026-07-28 here) or "legacy"
        self.direct = direct  # the same server without the tunnel: a URL or a command
        self.server = server


# One tunnel per era keeps each comparison with the direct route simple; both eras through
# one tunnel are in test_stdio_eras.py.
@pytest.fixture(scope="module", params=["stdio-auto", "stdio-legacy", "http-auto",
                                        "http-legacy"])
def peer(request):
    transport, mode = request.param.split("-")
    if transport == "stdio":
        with tunnel(mcp_command=sdk_stdio_command()) as relay:
            yield Peer(relay, mode, sdk_stdio_command())
        return
    server = start_sdk_http()
    try:
        with tunnel(mcp_url=server.url) as relay:
            yield Peer(relay, mode, server.url, server)
    finally:
        server.stop()


def test_the_tunnel_gives_the_same_answers_as_the_server_directly(peer):
    mode = peer.mode
    version, tunneled = run(sdk_client.session(peer.relay.mcp_url, mode,
                                               sdk_client.sdk_peer_tour))
    assert version == VERSIONS[mode]
    assert {t["name"] for t in tunneled["tools"]["tools"]} == {
        "add", "echo", "whoami", "slow", "explode", "ask_model", "ask_user"}
    assert tunneled["add"]["structuredContent"] == {"result": 42}
    assert sdk_client.texts(tunneled["echo"]) == "h\u00e9llo \u2713 \"quoted\""
    assert tunneled["slow"]["progress"] == [[1.0, 3.0, "step 1/3"], [2.0, 3.0, "step 2/3"],
                                            [3.0, 3.0, "step 3/3"]]
    assert sdk_client.texts(tunneled["slow"]["result"]) == "done after 3 steps"
    assert tunneled["tool_error"]["isError"] is True
    assert "on purpose" in sdk_client.texts(tunneled["tool_error"])
    assert tunneled["bad_arguments"].get("isError") or tunneled["bad_arguments"].get(
        "rpc_error")
    assert tunneled["unknown_tool"].get("isError") or tunneled["unknown_tool"].get(
        "rpc_error")
    assert tunneled["notes"]["contents"][0]["text"] == "notes served by the SDK peer"
    assert tunneled["item"]["contents"][0]["text"] == "item 42"
    assert [r["uri"] for r in tunneled["resources"]["resources"]] == ["peer://notes"]
    assert [p["name"] for p in tunneled["prompts"]["prompts"]] == ["review"]
    assert tunneled["review"]["messages"][0]["content"]["text"] == \
        "Please review the tunnel carefully."

    direct_version, direct = run(sdk_client.session(peer.direct, mode,
                                                    sdk_client.sdk_peer_tour))
    assert direct_version == version
    assert tunneled == direct


def test_twenty_concurrent_clients_get_only_their_own_answers(peer):
    async def visit(client, index):
        steps = 1 + index % 4
        seen, on_progress = sdk_client.progress_log()
        echo = await client.call_tool("echo", {"text": "client-%d" % index})
        slow = await client.call_tool("slow", {"steps": steps, "delay": 0.01},
                                      progress_callback=on_progress)
        add = await client.call_tool("add", {"a": index, "b": 1000})
        return (sdk_client.texts(sdk_client.dump(echo)), sdk_client.texts(sdk_client.dump(slow)),
                seen, add.structured_content)

    results = run(sdk_client.crowd(peer.relay.mcp_url, peer.mode, 20, visit), timeout=60)
    for index, (echo, slow, seen, add) in enumerate(results):
        steps = 1 + index % 4
        assert echo == "client-%d" % index
        assert slow == "done after %d steps" % steps
        assert seen == [(float(k), float(steps)) for k in range(1, steps + 1)], index
        assert add == {"result": index + 1000}


def has_server_session(peer) -> bool:
    """Only a legacy-era client gets a session (an Mcp-Session-Id): from an HTTP server, or
    from the tunnel for a stdio server."""
    return peer.mode == "legacy"


def test_closing_the_client_ends_its_session_at_the_server(peer):
    if not has_server_session(peer):
        pytest.skip("no server session in this era over this transport")
    assert_close_ends_the_session(peer.relay, peer.server.url if peer.server else None,
                                  peer.mode,
                                  lambda c: c.call_tool("add", {"a": 1, "b": 2}))


def test_closing_a_client_without_a_server_session_sends_no_termination(peer):
    if has_server_session(peer):
        pytest.skip("this client has a server session")
    assert_sessionless_close(peer.relay, peer.server.url if peer.server else None,
                             peer.mode, lambda c: c.call_tool("add", {"a": 1, "b": 2}))


def test_our_dev_call_client_works_with_the_sdk_server(peer):
    """`tunnel-client dev call` (McpClient) in the same era, tunneled and, over HTTP, direct."""
    modern = peer.mode == "auto"
    urls = [peer.relay.mcp_url] + ([peer.server.url] if peer.server else [])
    for url in urls:
        client = McpClient(url, modern=modern, timeout=20)
        client.initialize()
        notes = []
        slow = client.call_tool("slow", {"steps": 2, "delay": 0.01}, progress=True,
                                on_notification=notes.append)
        assert slow.text == "done after 2 steps", url
        assert [n["params"]["progress"] for n in notes] == [1, 2], url
        read = client.request("resources/read", {"uri": "peer://items/7"}).result
        assert read["contents"][0]["text"] == "item 7"
        assert client.request("prompts/get", {"name": "review", "arguments": {
            "subject": "x"}}).result["messages"][0]["content"]["text"] == \
            "Please review x carefully."
        client.close()
