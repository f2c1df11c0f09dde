"""Session termination as a legacy-era caller sees it (needs the mcp SDK)."""

import asyncio
import json

import requests

from tests.interop import sdk_client
from tests.interop.peers import run
from tests.support.daemon import wait_for

LEGACY_VERSION = "2025-11-25"


def session_header(command):
    for name, values in (command.get("headers") or {}).items():
        if name.lower() == "mcp-session-id":
            return values[0]
    return None


def direct_status(server_url: str, session_id: str) -> int:
    """What the server itself answers to a request in that session, bypassing the tunnel."""
    resp = requests.post(server_url, timeout=10, stream=True, data=json.dumps(
        {"jsonrpc": "2.0", "id": 99, "method": "tools/list"}), headers={
        "Content-Type": "application/json", "Accept": "application/json, text/event-stream",
        "Mcp-Session-Id": session_id, "Mcp-Protocol-Version": LEGACY_VERSION},
        proxies={"http": None, "https": None})
    resp.close()
    return resp.status_code


def _open_and_close(relay, server_url, mode, action):
    """One SDK session through the tunnel, closed: (version, session id, the server's
    direct answer in that session while it was open, session_termination commands)."""
    before = len(relay.commands)
    live = {}

    async def tour(client):
        await action(client)
        sid = session_header(list(relay.commands)[-1])
        if server_url and sid:
            live["status"] = await asyncio.to_thread(direct_status, server_url, sid)
        return sid

    version, sid = run(sdk_client.session(relay.mcp_url, mode, tour))
    terminations = [c for c in list(relay.commands)[before:]
                    if c["command_type"] == "session_termination"]
    return version, sid, live.get("status"), terminations


def assert_close_ends_the_session(relay, server_url, mode, action):
    """A legacy-era session: live while the client uses it (an HTTP server answers 200 in
    it directly), gone once the client closes (its DELETE became one session_termination,
    answered 2xx, and the session is now refused: by the HTTP server itself, or through
    the tunnel, which keeps a stdio server's callers' sessions when ``server_url`` is None)."""
    version, sid, live, terminations = _open_and_close(relay, server_url, mode, action)
    assert version == LEGACY_VERSION, version
    assert sid, "the server's Mcp-Session-Id never reached the client"
    if server_url:
        assert live == 200, "the session was not usable directly: %r" % live
    assert [session_header(c) for c in terminations] == [sid]
    request_id = terminations[0]["request_id"]

    def posted():
        for record in list(relay.responses):
            body = json.loads(record["body"])
            if body.get("request_id") == request_id:
                return body
        return None

    answer = wait_for(posted, timeout=10, message="the session_termination response")
    assert answer["resp_type"] == "session_termination_response"
    assert 200 <= answer["resp_code"] < 300, answer
    assert direct_status(server_url or relay.mcp_url, sid) in (400, 404), \
        "the session outlived the DELETE"


def assert_sessionless_close(relay, server_url, mode, action):
    """The 2026-07-28 era has no sessions: no Mcp-Session-Id reaches the client, so closing
    it sends no DELETE and no session_termination is queued."""
    version, sid, _live, terminations = _open_and_close(relay, server_url, mode, action)
    assert sid is None and terminations == [], (version, sid)
