"""The SDK's stdio MCPServer behind the tunnel, seen by SDK clients of both MCP eras in any
order, after its children are killed, asking its caller for sampling and elicitation, and
meeting caller values of every JSON type."""

import os
import signal

import pytest

pytest.importorskip("mcp", reason="the official mcp SDK needs Python >= 3.10")

from tests.interop import sdk_client  # noqa: E402
from tests.interop.peers import run, sdk_stdio_command, tunnel  # noqa: E402
from tests.support.calls import (  # noqa: E402
    exchange, final, initialize, notification, rpc, tool_call)

pytestmark = [pytest.mark.sdk, pytest.mark.slow]

LEGACY, MODERN = ("legacy", "2025-11-25"), ("auto", "2026-07-28")
FAST_RESTART = ["--mcp.stdio.restart-backoff", "50ms"]


def add_and_whoami(relay, mode):
    """One SDK client session: (protocol version, 1 + 2, pid of the server that answered)."""
    async def tour(client):
        add = (await client.call_tool("add", {"a": 1, "b": 2})).structured_content
        pid = sdk_client.texts(sdk_client.dump(await client.call_tool("whoami", {})))
        return add, int(pid)

    version, (add, pid) = run(sdk_client.session(relay.mcp_url, mode, tour))
    assert add == {"result": 3}
    return version, pid


def serve_both_eras(relay, first, second):
    pids = {}
    for mode, version in (first, second, first):
        seen, pid = add_and_whoami(relay, mode)
        assert seen == version
        assert pids.setdefault(mode, pid) == pid, "an era moved to another child"
    assert pids[first[0]] != pids[second[0]], "each era is served by its own child"
    return pids


@pytest.mark.parametrize("first, second", [(LEGACY, MODERN), (MODERN, LEGACY)],
                         ids=["legacy-first", "modern-first"])
def test_both_eras_in_either_order_and_again_after_the_children_are_killed(first, second):
    with tunnel(mcp_command=sdk_stdio_command(), args=FAST_RESTART) as relay:
        pids = serve_both_eras(relay, first, second)
        for pid in pids.values():
            os.kill(pid, signal.SIGKILL)
        # The order flips after the restart: the era a child served is kept by its lineage.
        again = serve_both_eras(relay, second, first)
        assert not set(again.values()) & set(pids.values())


def test_a_tool_asking_its_caller_for_sampling_and_elicitation_works_through_the_tunnel():
    async def tour(client):
        model = await client.call_tool("ask_model", {"prompt": "favourite colour?"})
        user = await client.call_tool("ask_user", {"question": "go ahead?"})
        return sdk_client.texts(sdk_client.dump(model)), sdk_client.texts(sdk_client.dump(user))

    with tunnel(mcp_command=sdk_stdio_command()) as relay:
        version, (model, user), asked = run(sdk_client.answering_session(
            relay.mcp_url, "legacy", tour))
    assert version == "2025-11-25"
    assert model == "model said: blue"
    assert user == "user accept: True"
    assert asked == [("sampling", "favourite colour?"), ("elicitation", "go ahead?")]


@pytest.mark.parametrize("token", [["a", 1], {"k": [None]}, 1.5, True, "", -7],
                         ids=["list", "object", "float", "bool", "empty", "negative"])
def test_a_progress_token_of_any_json_type_leaves_the_daemon_and_child_untouched(token):
    with tunnel(mcp_command=sdk_stdio_command()) as relay:
        final(relay, initialize(rpc_id=0))
        before = final(relay, tool_call("whoami", 1))["resp_json"]["result"]
        replies = exchange(relay, tool_call("slow", 2, progress=token, steps=2, delay=0.01))
        # The server sees a token of ours; the caller gets its own back, exactly.
        assert [(p["resp_json"]["params"]["progressToken"], p["resp_json"]["params"][
            "progress"]) for p in replies[:-1]] == [(token, 1), (token, 2)]
        assert replies[-1]["resp_json"]["result"]["structuredContent"] == {
            "result": "done after 2 steps"}
        after = final(relay, tool_call("whoami", 3))["resp_json"]["result"]
        assert after == before, "the child was replaced"
        assert final(relay, tool_call("add", 4, a=2, b=3))["resp_json"]["result"][
            "structuredContent"] == {"result": 5}


ENVELOPE = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "conformance", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {}}


def modern(method, rpc_id, meta=ENVELOPE, **params):
    return rpc(method, rpc_id, _meta=dict(meta), **params)


def test_modern_probes_after_a_legacy_session_reach_a_child_opened_in_the_modern_era():
    """The conformance suite's order: a whole legacy session, then 2026-07-28 probes whose
    first ones carry no envelope (a server/discover without _meta), then an initialize
    stamped with the envelope, then ordinary enveloped calls."""
    with tunnel(mcp_command=sdk_stdio_command()) as relay:
        # The full legacy sequence first; the boot child serves it.
        final(relay, initialize(rpc_id=0, version="2025-11-25"))
        assert final(relay, notification("notifications/initialized"))["resp_code"] == 202
        assert final(relay, rpc("tools/list", 1))["resp_json"]["result"]["tools"]
        legacy_pid = final(relay, tool_call("whoami", 2))["resp_json"]["result"]
        # The first 2026-07-28 requests lack the envelope or part of it: the server's own
        # answer for its 2026-07-28 era (-32602), not a legacy child's -32601.
        bare = final(relay, rpc("server/discover", 101, _meta={}))["resp_json"]
        assert bare["error"]["code"] == -32602, bare
        partial = dict(ENVELOPE)
        del partial["io.modelcontextprotocol/protocolVersion"]
        missing = final(relay, modern("server/discover", 102, meta=partial))["resp_json"]
        assert missing["error"]["code"] == -32602, missing
        found = final(relay, modern("server/discover", 105))["resp_json"]
        assert "2026-07-28" in found["result"]["supportedVersions"], found
        # An initialize stamped with the envelope is answered by the modern child as the
        # 2026-07-28 server answers it, never as a handshake.
        init = final(relay, modern("initialize", 500, protocolVersion="2026-07-28",
                                   capabilities={}, clientInfo={"name": "c", "version": "1"}))
        assert "error" in init["resp_json"], init
        listed = final(relay, modern("tools/list", 202))["resp_json"]
        assert "add" in [tool["name"] for tool in listed["result"]["tools"]], listed
        call = final(relay, tool_call("add", 3, meta=ENVELOPE, a=2, b=5))["resp_json"]
        assert call["result"]["structuredContent"] == {"result": 7}, call
        modern_pid = final(relay, tool_call("whoami", 4, meta=ENVELOPE))["resp_json"]
        assert modern_pid["result"]["content"] != legacy_pid["content"], \
            "each era has its own child"
        # And the legacy session is still served by its own child.
        again = final(relay, tool_call("whoami", 5))["resp_json"]["result"]
        assert again["content"] == legacy_pid["content"]
