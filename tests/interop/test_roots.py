"""Roots the operator controls, with the real @modelcontextprotocol/server-filesystem over
stdio: without mcp.roots it serves every directory on its command line; with them, only
the operator's, and a reload (SIGHUP) narrows or moves them while it runs."""

import signal

import pytest

pytest.importorskip("mcp", reason="the official mcp SDK needs Python >= 3.10")

from tests.interop import sdk_client  # noqa: E402
from tests.interop.peers import (  # noqa: E402
    ACTIVE_DAEMONS, filesystem_command, need_server_filesystem, run, tunnel)
from tests.support.daemon import wait_for  # noqa: E402

pytestmark = [pytest.mark.slow]


@pytest.fixture
def dirs(tmp_path):
    need_server_filesystem()
    made = {}
    for name in ("alpha", "beta"):
        made[name] = tmp_path / name
        made[name].mkdir()
    return made


def allowed(relay):
    async def tour(client):
        result = await client.call_tool("list_allowed_directories", {})
        return sdk_client.texts(sdk_client.dump(result))

    _, text = run(sdk_client.session(relay.mcp_url, "legacy", tour))
    return {line.strip().rsplit("/", 1)[-1] for line in text.splitlines()[1:] if line.strip()}


def test_without_operator_roots_the_server_keeps_its_command_line(dirs):
    with tunnel(mcp_command=filesystem_command(dirs["alpha"], dirs["beta"])) as relay:
        assert allowed(relay) == {"alpha", "beta"}


def test_operator_roots_narrow_the_server_and_a_reload_moves_them(dirs, tmp_path):
    config = tmp_path / "tunnel.yaml"
    config.write_text("mcp:\n  roots: ['file://%s']\n" % dirs["alpha"])
    with tunnel(mcp_command=filesystem_command(dirs["alpha"], dirs["beta"]),
                args=["--config", str(config)]) as relay:
        # The server asks for roots once initialized, and applies them a moment later.
        wait_for(lambda: allowed(relay) == {"alpha"}, timeout=20, interval=0.2,
                 message="the server taking the operator's roots")
        config.write_text("mcp:\n  roots: ['file://%s']\n" % dirs["beta"])
        ACTIVE_DAEMONS[-1].signal(signal.SIGHUP)
        wait_for(lambda: allowed(relay) == {"beta"}, timeout=20, interval=0.2,
                 message="the server taking the reloaded roots")
