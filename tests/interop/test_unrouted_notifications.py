"""A notification a stdio server sends outside any call (server-everything announces
tools/list_changed right after the handshake) cannot reach a caller through the tunnel:
it is counted by method and the first of each kind is logged at info."""

import asyncio

import pytest

pytest.importorskip("mcp", reason="the official mcp SDK needs Python >= 3.10")

import requests  # noqa: E402

from tests.interop import sdk_client  # noqa: E402
from tests.interop.peers import (  # noqa: E402
    ACTIVE_DAEMONS, everything_stdio_command, need_server_everything, run, tunnel)
from tests.support.daemon import wait_for  # noqa: E402

pytestmark = [pytest.mark.sdk, pytest.mark.node, pytest.mark.slow]

SERIES = ('mcp_stdio_unrouted_notifications_total{channel="main",'
          'method="notifications/tools/list_changed"}')


def test_notifications_outside_a_call_are_counted_by_method(tmp_path):
    need_server_everything()
    url_file = tmp_path / "admin.url"

    def counted():
        base = wait_for(lambda: url_file.exists() and url_file.read_text().strip(),
                        message="the admin URL file")
        return wait_for(lambda: SERIES in requests.get(base + "/metrics", timeout=5).text,
                        message="the unrouted notification being counted")

    async def tour(client):
        # The server announces list_changed once the handshake ends. Nothing else may be in
        # flight until it is counted: a call in flight would (rightly) receive it instead.
        await asyncio.to_thread(counted)
        return await client.list_tools()

    with tunnel(mcp_command=everything_stdio_command(),
                args=["--health.url-file", str(url_file)]) as relay:
        tools = run(sdk_client.session(relay.mcp_url, "legacy", tour))[1]
        assert tools.tools
        logged = [line for line in ACTIVE_DAEMONS[-1].output().splitlines()
                  if "outside any single call" in line]
        assert '"level":"INFO"' in logged[0] and "tools/list_changed" in logged[0]
