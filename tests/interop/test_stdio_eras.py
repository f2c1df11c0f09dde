"""The SDK's stdio MCPServer behind the tunnel, seen by SDK clients of both MCP eras in any
order, after its children are killed, asking its caller for sampling and elicitation, and
meeting caller values of every JSON type."""

import os
import signal

import pytest

pytest.importorskip("mcp", reason="the official mcp SDK needs Python >= 3.10")

from tests.interop import sdk_client  # noqa: E402
from tests.interop.peers import run, sdk_stdio_command, tunnel  # noqa: E402
from tests.support.calls import exchange, final, initialize, tool_call  # noqa: E402
from tests.support.daemon import wait_for  # noqa: E402

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
