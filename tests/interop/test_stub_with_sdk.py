"""Our `dev mcp-stub` satisfies the official SDK client in both eras, directly (stdio and
HTTP) and through the tunnel: what operators try first must work with real clients."""

import threading

import pytest

pytest.importorskip("mcp", reason="the official mcp SDK needs Python >= 3.10")

from tests.interop import sdk_client  # noqa: E402
from tests.interop.peers import run, tunnel  # noqa: E402
from tests.support.daemon import stub_command  # noqa: E402
from tunnel_client.devtools.stub import StubOptions, make_http_server  # noqa: E402

pytestmark = [pytest.mark.sdk, pytest.mark.slow]

VERSIONS = {"auto": "2026-07-28", "legacy": "2025-11-25"}


async def stub_tour(client):
    return {
        "tools": sorted(t.name for t in (await client.list_tools()).tools),
        "echo": await sdk_client.tool(client, "echo", {"input": "hi"}),
        "count": await sdk_client.with_progress(client, "count", {"to": 3, "delay_ms": 1}),
        "fail": await sdk_client.tool(client, "fail", {"message": "nope"}),
        "resources": sdk_client.dump(await client.list_resources()),
        "templates": sdk_client.dump(await client.list_resource_templates()),
        "readme": sdk_client.dump(await client.read_resource("stub://readme")),
        "prompts": sdk_client.dump(await client.list_prompts()),
        "greeting": sdk_client.dump(await client.get_prompt("greeting", {"name": "Ada"})),
    }


@pytest.fixture(scope="module")
def stub_url():
    server = make_http_server(StubOptions())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d/mcp" % server.port
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_the_sdk_client_is_happy_with_the_stub_every_way(stub_url, mode):
    with tunnel(mcp_command=stub_command()) as relay:
        routes = {"tunnel": relay.mcp_url, "http": stub_url, "stdio": stub_command()}
        seen = {name: run(sdk_client.session(spec, mode, stub_tour))
                for name, spec in routes.items()}
    version, tour = seen["tunnel"]
    assert version == VERSIONS[mode]
    assert tour["tools"] == ["count", "echo", "fail", "server_info", "sleep", "uppercase"]
    assert tour["echo"]["structuredContent"] == {"echoed": "hi"}
    assert tour["count"]["progress"] == [[1.0, 3.0, "step 1/3"], [2.0, 3.0, "step 2/3"],
                                         [3.0, 3.0, "step 3/3"]]
    assert tour["fail"]["isError"] is True
    assert tour["readme"]["contents"][0]["text"] == "This resource came through the tunnel."
    assert tour["greeting"]["messages"][0]["content"]["text"] == "Say hello to Ada."
    assert seen["http"] == seen["tunnel"]
    assert seen["stdio"] == seen["tunnel"]
