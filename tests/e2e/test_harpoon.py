"""Harpoon (allowlisted callouts by label) and OAuth discovery, through the local control
plane with a real daemon, real TLS and scripted internal endpoints."""

import base64
import json
import os
import subprocess
import sys

import pytest
import requests

from tests.support.calls import final, initialize, rpc, tool_call
from tests.support.daemon import ROOT, stub_command, wait_for
from tests.support.tlsfront import TlsFront

trustme = pytest.importorskip("trustme", minversion="0.9")


def harpoon(relay, name, rpc_id=1, **arguments):
    payload = final(relay, tool_call(name, rpc_id, **arguments), channel="harpoon")
    assert payload["resp_code"] == 200, payload
    return payload["resp_json"]["result"]


def structured(result):
    assert not result.get("isError"), result
    return result["structuredContent"]


def error_text(result):
    assert result.get("isError") is True, result
    return result["content"][0]["text"]


@pytest.fixture
def internal_https(scripted, tmp_path):
    """An internal HTTPS API behind TLS with a throwaway CA; returns (url base, ca path)."""
    ca = trustme.CA()
    ca_path = str(tmp_path / "internal-ca.pem")
    ca.cert_pem.write_to_path(ca_path)

    def handler(request):
        path = request["path"]
        if path == "/big":
            return 200, {"Content-Type": "text/plain"}, b"x" * 5000
        if path == "/bounce":
            return 302, {"Location": "https://localhost:%d/elsewhere" % front.port}, b""
        if path == "/plain-bounce":
            return 302, {"Location": "http://localhost:%d/ok" % front.port}, b""
        if path == "/hop":
            return 302, {"Location": "/ok"}, b""
        body = json.dumps({"path": path, "method": request["method"],
                           "headers": request["headers"],
                           "body": request["body"].decode()}).encode()
        return 200, {"Content-Type": "application/json"}, body

    backend = scripted(handler)
    front = TlsFront(int(backend.url.split(":")[2].split("/")[0]), ca.issue_cert("localhost"))
    yield "https://localhost:%d" % front.port, ca_path, backend
    front.close()


def test_harpoon_channel_serves_mcp_and_calls_a_registered_https_endpoint(
        relay, daemon, internal_https):
    base, ca_path, backend = internal_https
    daemon(mcp_command=stub_command(), args=[
        "--ca-bundle", ca_path,
        "--harpoon.target", "label=inventory,url=%s/ok,desc=Inventory API" % base,
        "--harpoon.target", "label=hop,url=%s/hop" % base,
        "--harpoon.target", "label=big,url=%s/big" % base,
        "--harpoon.target", "label=bounce,url=%s/bounce" % base,
        "--harpoon.target", "label=plain-bounce,url=%s/plain-bounce" % base,
        "--harpoon.max-response-bytes", "4096"])
    init = final(relay, initialize(), channel="harpoon")["resp_json"]["result"]
    assert init["serverInfo"]["name"] == "harpoon"
    assert relay.polls[-1]["headers"]["X-Tunnel-MCP-Server-Info"] == (
        '{"version":1,"channels":[{"name":"main","proc_affinity":true},'
        '{"name":"harpoon","proc_affinity":true}]}')
    tools = final(relay, rpc("tools/list", 2), channel="harpoon")["resp_json"]["result"]
    assert [t["name"] for t in tools["tools"]] == ["list_targets", "call_target",
                                                   "get_oauth_target_audience"]
    listed = structured(harpoon(relay, "list_targets"))["targets"]
    assert {t["label"] for t in listed} == {"inventory", "hop", "big", "bounce", "plain-bounce"}
    assert all("url" not in t for t in listed) and base not in json.dumps(listed)
    call = structured(harpoon(relay, "call_target", label="inventory", method="POST",
                              body="a=1", headers={"Content-Type": "text/plain",
                                                   "X-Forwarded-For": "1.2.3.4",
                                                   "Cookie": "s=1", "X-Trace": "t-1"}))
    assert call["status_code"] == 200 and call["truncated"] is False
    echoed = json.loads(base64.b64decode(call["body_base64"]))
    assert echoed["path"] == "/ok" and echoed["method"] == "POST" and echoed["body"] == "a=1"
    seen = echoed["headers"]
    assert seen["x-trace"] == "t-1" and "x-forwarded-for" not in seen and "cookie" not in seen
    assert seen["user-agent"].startswith("tunnel-client-python/")
    # A redirect to another registered URL is followed; anything else is refused.
    assert structured(harpoon(relay, "call_target", label="hop"))["status_code"] == 200
    assert error_text(harpoon(relay, "call_target", label="bounce")) == \
        "label bounce: redirect blocked"
    assert error_text(harpoon(relay, "call_target", label="plain-bounce")) == (
        "label plain-bounce: redirect blocked: scheme mismatch (allowlisted https, "
        "redirected to http)")
    assert error_text(harpoon(relay, "call_target", label="big")) == \
        "label big: response exceeds size limit"
    assert error_text(harpoon(relay, "call_target", label="nope")) == "label nope: unknown target"
    assert error_text(harpoon(relay, "call_target", label="inventory", method="DELETE")) == \
        "label inventory: invalid method"
    assert error_text(harpoon(relay, "call_target", label="inventory", timeout_ms=50)) == \
        "label inventory: timeout must be at least 100ms"
    assert not any(r["path"] == "/elsewhere" for r in backend.requests)


def test_plaintext_targets_need_the_flag(relay):
    env = dict(os.environ, CONTROL_PLANE_API_KEY=relay.api_key, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-m", "tunnel_client", "run",
                           "--control-plane.tunnel-id", relay.tunnel_id, "--mcp.command", "x",
                           "--harpoon.target", "label=a,url=http://10.0.0.5/api"],
                          capture_output=True, text=True, env=env, timeout=30)
    assert proc.returncode == 1
    assert 'invalid harpoon target url "http://10.0.0.5/api": https is required' in proc.stderr


def test_harpoon_without_targets_is_an_unsupported_channel(relay, daemon):
    daemon(mcp_command=stub_command())
    payload = final(relay, initialize(), channel="harpoon")
    assert payload["resp_code"] == 400
    assert payload["resp_json"]["error"]["message"] == 'Bad Request: unsupported channel "harpoon"'
    assert relay.polls[-1]["headers"]["X-Tunnel-MCP-Server-Info"] == \
        '{"version":1,"channels":[{"name":"main","proc_affinity":true}]}'


def _protected_mcp(scripted, registration_host="127.0.0.1"):
    """An OAuth-protected MCP server: 401 with resource_metadata, PRMD, AS metadata with a
    customer-host registration endpoint, a public token endpoint and a poisoned off-origin
    private revocation endpoint."""
    holder = {}

    def handler(request):
        base = holder["base"]
        path = request["path"]
        if path == "/.well-known/oauth-protected-resource/mcp":
            return 200, {"Content-Type": "application/json"}, json.dumps({
                "resource": base + "/mcp", "authorization_servers": [base],
                "scopes_supported": ["read"]}).encode()
        if path == "/.well-known/oauth-authorization-server":
            return 200, {"Content-Type": "application/json"}, json.dumps({
                "issuer": base, "authorization_endpoint": base + "/authorize",
                "registration_endpoint": "http://%s:%s/register" % (
                    registration_host, base.rsplit(":", 1)[1]),
                "token_endpoint": "https://idp.example.com/oauth/token",
                "revocation_endpoint": "http://10.1.2.3/revoke"}).encode()
        if path == "/register":
            return 201, {"Content-Type": "application/json"}, b'{"client_id":"c-1"}'
        if path.startswith("/.well-known/"):
            return 404, {}, b""
        if request["headers"].get("authorization") == "Bearer good-token":
            reply = {"jsonrpc": "2.0", "id": (request["json"] or {}).get("id"),
                     "result": {"tools": []}}
            return 200, {"Content-Type": "application/json"}, json.dumps(reply).encode()
        return 401, {"WWW-Authenticate": 'Bearer resource_metadata="%s/.well-known/oauth-'
                     'protected-resource/mcp"' % base}, b""

    server = scripted(handler)
    holder["base"] = server.url.rsplit("/", 1)[0]
    return server


def test_oauth_discovery_registers_private_endpoints_and_rewrites_them(relay, daemon, scripted,
                                                                       tmp_path):
    server = _protected_mcp(scripted)
    url_file = str(tmp_path / "admin")
    daemon(mcp_url=server.url, args=["--harpoon.allow-plaintext-http",
                                     "--health.url-file", url_file])
    base = open(url_file).read().strip()
    wait_for(lambda: requests.get(base + "/api/oauth", timeout=2).json()["state"] == "ok",
             message="oauth discovery")
    oauth = requests.get(base + "/api/oauth", timeout=2).json()
    assert oauth["metadata_source"] == "www_authenticate"
    assert "oauth-registration-endpoint-0" in oauth["registered_targets"]
    assert any("10.1.2.3" in r for r in oauth["rejected_endpoints"])
    targets = {t["label"]: t for t in requests.get(base + "/api/harpoon/targets",
                                                   timeout=2).json()["targets"]}
    assert targets["oauth-registration-endpoint-0"]["url"].endswith("/register")
    assert not any("idp.example.com" in t["url"] for t in targets.values()), "public stays out"
    assert not any("10.1.2.3" in t["url"] for t in targets.values()), "off-origin refused"
    assert requests.get(base + "/readyz", timeout=2).status_code == 200
    metadata = structured(harpoon(relay, "call_target", label="oauth-auth-server-metadata-0"))
    document = json.loads(base64.b64decode(metadata["body_base64"]))
    assert document["registration_endpoint"] == "harpoon://oauth-registration-endpoint-0"
    assert document["token_endpoint"] == "https://idp.example.com/oauth/token"
    registered = structured(harpoon(relay, "call_target", label="oauth-registration-endpoint-0",
                                    method="POST", body="{}"))
    assert registered["status_code"] == 201
    # The connector's bearer token reaches the protected server; the 401 passes through.
    denied = final(relay, rpc("tools/list", 1))
    assert denied["resp_code"] == 401 and "resource_metadata" in denied["resp_headers"][
        "Www-Authenticate"][0]
    allowed = final(relay, rpc("tools/list", 2), headers={"Authorization": "Bearer good-token"})
    assert allowed["resp_json"]["result"] == {"tools": []}
    # An explicit oauth_discovery command answers with the PRMD document itself.
    prmd = final(relay, None, command_type="oauth_discovery")
    assert prmd["resp_type"] == "oauth_discovery_response" and prmd["resp_code"] == 200
    assert prmd["resp_json"]["authorization_servers"] == [server.url.rsplit("/", 1)[0]]


def test_nothing_on_the_harpoon_channel_reaches_the_main_server(relay, daemon, scripted):
    main_requests = []
    main = scripted(lambda r: (main_requests.append(r) or 200, {"Content-Type":
                                                               "application/json"},
                              json.dumps({"jsonrpc": "2.0", "id": (r["json"] or {}).get("id"),
                                          "result": {}}).encode()))
    internal = scripted(lambda r: (200, {"Content-Type": "text/plain"}, b"internal"))
    daemon(mcp_url=main.url, args=["--harpoon.allow-plaintext-http", "--harpoon.target",
                                   "label=internal,url=%s" % internal.url.replace("/mcp", "/x")])
    before = len(main.requests)
    final(relay, initialize(), channel="harpoon")
    final(relay, rpc("tools/list", 2), channel="harpoon")
    structured(harpoon(relay, "call_target", 3, label="internal"))
    final(relay, None, command_type="session_termination", channel="harpoon",
          headers={"Mcp-Session-Id": "s"})
    calls = [r for r in main.requests[before:] if (r["json"] or {}).get("method")]
    assert calls == [], "harpoon traffic leaked to the main MCP server: %r" % calls


def test_a_plain_server_without_oauth_metadata_is_ready_and_not_advertised(
        relay, daemon, http_stub, tmp_path):
    url_file = str(tmp_path / "admin")
    daemon(mcp_url=http_stub(), args=["--health.url-file", url_file])
    base = open(url_file).read().strip()
    wait_for(lambda: requests.get(base + "/api/oauth", timeout=2).json()["state"] ==
             "not_advertised", message="discovery finished")
    assert requests.get(base + "/readyz", timeout=2).status_code == 200


def test_harpoon_is_also_served_on_the_admin_listener_when_asked(relay, daemon, scripted,
                                                                 tmp_path):
    internal = scripted(lambda r: (200, {"Content-Type": "text/plain"}, b"hi"))
    url_file = str(tmp_path / "admin")
    daemon(mcp_command=stub_command(), args=[
        "--health.url-file", url_file, "--harpoon.allow-plaintext-http",
        "--harpoon.additional-transport", "http-streamable",
        "--harpoon.target", "label=local,url=%s" % internal.url])
    base = open(url_file).read().strip()
    reply = requests.post(base + "/harpoon/mcp", timeout=5, json={
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "list_targets", "arguments": {}}}).json()
    assert reply["result"]["structuredContent"]["targets"][0]["label"] == "local"
