"""Harpoon's allowlist in process: exact-URL matching (query included) and the runtime
plaintext-http guard, the only one for targets registered by OAuth discovery."""

import base64
import json
import time

import pytest

from tests.support.servers import Scripted
from tunnel_client import wire
from tunnel_client.mcp.harpoon import INSTRUCTIONS, HarpoonBinding, HarpoonOptions
from tunnel_client.mcp.targets import (HostPolicy, Registry, RegistryError, Target, label_for,
                                       normalize_url, origin, rewrite_json)
from tunnel_client.net import TrustStore
from tunnel_client.observe.instruments import Instruments


@pytest.mark.parametrize("a,b", [
    ("HTTPS://API.Internal/v1/items?tenant=a", "https://api.internal/v1/items?tenant=a"),
    ("https://api.internal:443/v1", "https://api.internal/v1"),
    ("http://api.internal:80", "http://api.internal/"),
    ("https://[::1]:8443/x", "https://[::1]:8443/x")])
def test_urls_that_name_the_same_target_normalise_alike(a, b):
    assert normalize_url(a) == normalize_url(b)


@pytest.mark.parametrize("a,b", [
    ("https://api.internal/items?tenant=a", "https://api.internal/items?tenant=b"),
    ("https://api.internal/items?tenant=a", "https://api.internal/items"),
    ("https://api.internal/Items", "https://api.internal/items"),
    ("https://api.internal:8443/", "https://api.internal/"),
    ("http://api.internal/", "https://api.internal/")])
def test_urls_that_differ_beyond_case_and_default_port_are_different_targets(a, b):
    assert normalize_url(a) != normalize_url(b)


def test_a_different_query_is_not_the_registered_target():
    registry = Registry()
    registry.add(Target("tenant-a", "https://api.internal/items?tenant=a"))
    assert [t.label for t in registry.by_url("https://api.internal/items?tenant=a")] == \
        ["tenant-a"]
    assert registry.by_url("https://api.internal/items?tenant=b") == []
    assert label_for("https://api.internal/items?tenant=b", registry) is None
    assert rewrite_json({"next": "https://api.internal/items?tenant=b"}, registry) == \
        {"next": "https://api.internal/items?tenant=b"}
    assert rewrite_json({"next": "https://api.internal/items?tenant=a"}, registry) == \
        {"next": "harpoon://tenant-a"}


def rpc(binding, method, params=None, rpc_id=1, meta=None, command_type="jsonrpc"):
    """The one reply to a JSON-RPC request on the harpoon channel, as JSON."""
    message = {"jsonrpc": "2.0", "id": rpc_id, "method": method}
    if params is not None:
        message["params"] = params
    if meta:
        message.setdefault("params", {})["_meta"] = meta
    cmd = wire.parse_command({
        "request_id": "req_h", "shard_token": "shard", "command_type": command_type,
        "channel": wire.HARPOON_CHANNEL, "headers": {"Mcp-Session-Id": "s"},
        "jsonrpc": message}, time.monotonic())
    replies = list(binding.handle(cmd, wire.NO_DEADLINE))
    assert len(replies) == 1
    return replies[0]


def call(binding, label, **arguments):
    reply = rpc(binding, "tools/call", {"name": "call_target",
                                        "arguments": dict(arguments, label=label)})
    assert (reply.resp_type, reply.resp_code) == ("jsonrpc_response", 200)
    return reply.json()["result"]


@pytest.fixture
def internal():
    server = Scripted(lambda request: (200, {"Content-Type": "text/plain"}, b"inside"))
    yield server
    server.close()


def binding_for(url, **options):
    registry = Registry()
    # As OAuth discovery registers targets: straight into the registry, past the config
    # validation that refuses http:// URLs.
    registry.add(Target("discovered", url, category="oauth", source="oauth-discovery"))
    return HarpoonBinding(registry, HarpoonOptions(**options), ((), {"NO_PROXY": "*"},
                                                                TrustStore()))


def test_a_plaintext_http_target_is_refused_at_call_time(internal):
    binding = binding_for(internal.url)
    try:
        result = call(binding, "discovered")
    finally:
        binding.stop()
    assert result["isError"] is True
    assert "https is required" in result["content"][0]["text"]
    assert internal.requests == [], "the plaintext request must never be sent"


def test_a_plaintext_http_target_is_called_when_allowed(internal):
    binding = binding_for(internal.url, allow_plaintext_http=True)
    try:
        result = call(binding, "discovered")
    finally:
        binding.stop()
    assert result["structuredContent"]["status_code"] == 200
    assert len(internal.requests) == 1


# --- the harpoon MCP server ----------------------------------------------------------


@pytest.fixture
def harpoon():
    """harpoon(handler, url_suffix="", **options) -> (server, binding, registry)."""
    opened = []

    def start(handler, suffix="", **options):
        server = Scripted(handler)
        registry = Registry()
        registry.add(Target("api", server.url + suffix, description="the API",
                            category="config", tags=("Read", "v1")))
        binding = HarpoonBinding(registry, HarpoonOptions(**dict(
            {"allow_plaintext_http": True}, **options)), ((), {"NO_PROXY": "*"}, TrustStore()),
            instruments=Instruments())
        opened.append((server, binding))
        return server, binding, registry

    yield start
    for server, binding in opened:
        binding.stop()
        server.close()


def answer(status=200, body=b"ok", headers=None):
    return lambda request: (status, dict({"Content-Type": "text/plain"}, **(headers or {})),
                            body)


def test_the_server_introduces_itself(harpoon):
    server, binding, _ = harpoon(answer())
    init = rpc(binding, "initialize", {"protocolVersion": "2025-06-18"}).json()["result"]
    assert init["protocolVersion"] == "2025-06-18"
    assert init["capabilities"] == {"tools": {"listChanged": False}}
    assert init["serverInfo"]["name"] == "harpoon" and init["instructions"]
    odd = rpc(binding, "initialize", {"protocolVersion": "draft"}).json()["result"]
    assert odd["protocolVersion"] != "draft"
    assert rpc(binding, "ping").json() == {"jsonrpc": "2.0", "id": 1, "result": {}}
    names = [t["name"] for t in rpc(binding, "tools/list").json()["result"]["tools"]]
    assert names == ["list_targets", "call_target", "get_oauth_target_audience"]
    missing = rpc(binding, "resources/list").json()
    assert missing["error"] == {"code": -32601, "message": "Method not found: resources/list"}
    unknown = rpc(binding, "tools/call", {"name": "nope"}).json()
    assert unknown["error"] == {"code": -32602, "message": "Unknown tool: nope"}
    assert server.requests == []


def test_notifications_and_session_ends_are_acknowledged(harpoon):
    server, binding, _ = harpoon(answer())
    note = wire.parse_command({"request_id": "r", "shard_token": "s", "command_type": "jsonrpc",
                               "jsonrpc": {"jsonrpc": "2.0", "method": "notifications/x"}},
                              time.monotonic())
    assert list(binding.handle(note, wire.NO_DEADLINE)) == [wire.notify_ack(202)]
    end = wire.parse_command({"request_id": "r", "shard_token": "s",
                              "command_type": "session_termination",
                              "headers": {"Mcp-Session-Id": "s"}}, time.monotonic())
    assert list(binding.handle(end, wire.NO_DEADLINE)) == [wire.session_terminated(405)]


def test_list_targets_never_shows_urls_and_filters(harpoon):
    server, binding, registry = harpoon(answer())
    registry.add(Target("idp", "https://idp.internal/token", category="oauth",
                        source="oauth-discovery", tags=("token-endpoint",)))
    listed = rpc(binding, "tools/call", {"name": "list_targets", "arguments": {}}).json()[
        "result"]
    targets = listed["structuredContent"]["targets"]
    assert [t["label"] for t in targets] == ["api", "idp"]
    assert targets[0] == {"label": "api", "description": "the API", "category": "config",
                          "source": "config", "tags": ["Read", "v1"],
                          "allowed_methods": ["GET", "POST", "PUT"]}
    assert "http" not in json.dumps(listed)

    def labels(**filters):
        result = rpc(binding, "tools/call", {"name": "list_targets", "arguments": filters})
        return [t["label"] for t in result.json()["result"]["structuredContent"]["targets"]]
    assert labels(categories=["OAUTH"]) == ["idp"]
    assert labels(sources=["config"]) == ["api"]
    assert labels(tags=["read", "V1"]) == ["api"]
    assert labels(tags=["read", "other"]) == []
    assert labels(categories=["config"], sources=["oauth-discovery"]) == []


def test_a_call_returns_status_headers_and_body(harpoon):
    server, binding, _ = harpoon(answer(201, b"created", {
        "X-Trace": "t1", "Set-Cookie": "sid=1", "Connection": "close"}))
    result = call(binding, "api", method="post", body="{\"a\": 1}",
                  headers={"X-Custom": "c", "Cookie": "leak", "Host": "evil",
                           "X-Forwarded-For": "1.2.3.4", "X-List": ["a", "b"]})
    data = result["structuredContent"]
    assert data["status_code"] == 201 and data["truncated"] is False
    assert base64.b64decode(data["body_base64"]) == b"created"
    assert data["body_size_bytes"] == 7
    assert data["headers"]["X-Trace"] == ["t1"]
    assert "Set-Cookie" not in data["headers"] and "Connection" not in data["headers"]
    assert result["content"][0]["type"] == "text"
    assert json.loads(result["content"][0]["text"]) == data
    [sent] = server.requests
    assert sent["method"] == "POST" and sent["body"] == b'{"a": 1}'
    assert sent["headers"]["x-custom"] == "c" and sent["headers"]["x-list"] == "a, b"
    assert "cookie" not in sent["headers"] and "x-forwarded-for" not in sent["headers"]
    assert sent["headers"]["host"].startswith("127.0.0.1:")
    assert sent["headers"]["user-agent"].startswith("tunnel-client-python/")
    assert sent["headers"]["accept-encoding"] == "identity"
    [record] = binding.calls()
    assert (record["label"], record["method"], record["status"], record["outcome"]) == (
        "api", "post", 201, "success")
    assert record["req_bytes"] == 8 and record["resp_bytes"] == 7
    assert "request_body" not in record
    assert binding.calls(label="other") == []
    calls, _latency, sizes = binding.metrics
    assert calls.value(label="api", status_class="2xx", outcome="success") == 1


def test_headers_a_connection_header_nominates_are_dropped(harpoon):
    server, binding, _ = harpoon(answer())
    call(binding, "api", headers={"Connection": "X-Secret, keep-alive", "X-Secret": "s",
                                  "X-Kept": "k"})
    headers = server.requests[0]["headers"]
    assert "x-secret" not in headers and headers["x-kept"] == "k"


@pytest.mark.parametrize("arguments,message", [
    ({"method": "DELETE"}, "invalid method"),
    ({"timeout_ms": 99}, "timeout must be at least 100ms"),
    ({"max_response_bytes": 0}, "max_response_bytes must be at least 1"),
    ({"max_response_bytes": 102401}, "max_response_bytes must be less than or equal to 102400"),
    ({"body": "x" * 102401}, "request body exceeds size limit"),
])
def test_invalid_calls_are_tool_errors_and_send_nothing(harpoon, arguments, message):
    server, binding, _ = harpoon(answer())
    result = call(binding, "api", **arguments)
    assert result == {"content": [{"type": "text", "text": "label api: " + message}],
                      "isError": True}
    assert server.requests == []
    assert binding.calls()[-1]["error"] == message
    assert binding.calls()[-1]["outcome"] == "invalid_input"


@pytest.mark.parametrize("arguments,field", [
    ({"timeout_ms": "5"}, "timeout_ms"),
    ({"timeout_ms": True}, "timeout_ms"),
    ({"max_response_bytes": "1"}, "max_response_bytes"),
    ({"body": 5}, "body"),
    ({"headers": ["X-A"]}, "headers"),
    ({"headers": {"X-A": "a\r\nX-B: b"}}, "X-A"),
    ({"headers": {"X-A\n": "a"}}, "X-A"),  # `$` would have let the trailing newline pass
])
def test_arguments_of_the_wrong_type_are_invalid_params_and_send_nothing(
        harpoon, arguments, field):
    server, binding, _ = harpoon(answer())
    reply = rpc(binding, "tools/call", {"name": "call_target",
                                        "arguments": dict(arguments, label="api")}).json()
    assert reply["error"]["code"] == -32602 and field in reply["error"]["message"], reply
    assert server.requests == []


def test_unknown_and_missing_labels(harpoon):
    server, binding, _ = harpoon(answer())
    assert call(binding, "nope")["content"][0]["text"] == "label nope: unknown target"
    reply = rpc(binding, "tools/call", {"name": "call_target", "arguments": {}})
    assert reply.json()["result"]["content"][0]["text"] == "label : label is required"
    bad = rpc(binding, "tools/call", {"name": "call_target", "arguments": ["x"]})
    assert bad.json()["error"] == {"code": -32602,
                                   "message": "Invalid params: arguments must be an object"}


def test_a_response_over_the_limit_is_refused(harpoon):
    server, binding, _ = harpoon(answer(body=b"x" * 50))
    result = call(binding, "api", max_response_bytes=10)
    assert result["content"][0]["text"] == "label api: response exceeds size limit"
    assert binding.calls()[-1]["outcome"] == "response_too_large"
    assert call(binding, "api", max_response_bytes=50)["structuredContent"][
        "body_size_bytes"] == 50


def test_registered_urls_in_json_answers_become_labels(harpoon):
    def handler(request):
        return 200, {"Content-Type": "application/json",
                     "Location": handler.url + "/mcp"}, json.dumps(
            {"next": handler.url + "/mcp", "other": "https://public.example/x",
             "resource": handler.url + "/mcp"}).encode()
    server, binding, _ = harpoon(handler)
    handler.url = server.url[:-len("/mcp")]
    data = call(binding, "api")["structuredContent"]
    assert json.loads(base64.b64decode(data["body_base64"])) == {
        "next": "harpoon://api", "other": "https://public.example/x",
        "resource": handler.url + "/mcp"}
    assert data["headers"]["Location"] == ["harpoon://api"]


def test_redirects_are_followed_only_to_registered_targets(harpoon):
    def handler(request):
        if request["path"] == "/mcp":
            return 302, {"Location": "/next"}, b""
        if request["path"] == "/next":
            return 200, {"Content-Type": "text/plain"}, b"arrived"
        return 307, {"Location": "/elsewhere"}, b""
    server, binding, registry = harpoon(handler)
    base = server.url[:-len("/mcp")]
    registry.add(Target("next", base + "/next"))
    registry.add(Target("loop", base + "/loop"))
    data = call(binding, "api", method="POST", body="x")["structuredContent"]
    assert base64.b64decode(data["body_base64"]) == b"arrived"
    assert [r["method"] for r in server.requests] == ["POST", "GET"]  # 302 after POST: GET
    assert server.requests[1]["body"] == b""
    unfollowed = call(binding, "api", follow_redirects=False)["structuredContent"]
    assert unfollowed["status_code"] == 302
    blocked = call(binding, "loop")
    assert blocked["content"][0]["text"] == "label loop: redirect blocked"
    none = call(binding, "api", max_redirects=0)
    assert none["content"][0]["text"] == "label api: redirect limit exceeded"


def test_an_https_target_may_not_be_redirected_to_http(harpoon):
    server, binding, registry = harpoon(answer())
    registry.add(Target("secure", "https://127.0.0.1:9/x"))
    target = registry.get("secure")
    with pytest.raises(Exception) as refused:
        binding._redirect_target(target, server.url, "secure")
    assert "scheme mismatch" in str(refused.value)
    with pytest.raises(Exception, match="redirect blocked"):
        binding._redirect_target(registry.get("api"), server.url + "/../x", "api")


def test_an_unreachable_target_is_a_request_error():
    registry = Registry()
    registry.add(Target("down", "http://127.0.0.1:9/x"))
    binding = HarpoonBinding(registry, HarpoonOptions(allow_plaintext_http=True),
                             ((), {"NO_PROXY": "*"}, TrustStore()))
    try:
        result = call(binding, "down")
        assert result["content"][0]["text"] == "label down: request failed"
        assert binding.calls()[-1]["outcome"] == "request_error"
    finally:
        binding.stop()


def test_the_oauth_audience_is_the_token_endpoints_exact_url(harpoon):
    server, binding, registry = harpoon(answer())
    registry.add(Target("token", "https://idp.internal/oauth/token", category="oauth",
                        tags=("auth-server-metadata", "token-endpoint")))
    registry.add(Target("meta", "https://idp.internal/.well-known/x", category="oauth",
                        tags=("auth-server-metadata",)))

    def audience(label):
        result = rpc(binding, "tools/call", {"name": "get_oauth_target_audience",
                                             "arguments": {"label": label}}).json()["result"]
        return result.get("structuredContent") or result["content"][0]["text"]
    assert audience("token") == {"audience": "https://idp.internal/oauth/token"}
    assert audience("meta") == "label meta: not an OAuth token endpoint target"
    assert audience("api") == "label api: not an OAuth token endpoint target"


def test_captured_payloads_are_redacted(harpoon):
    server, binding, _ = harpoon(answer(body=b"token=abcdefgh12345678"),
                                 capture_payloads=True)
    call(binding, "api", method="POST", body="password=hunter2hunter2")
    record = binding.calls()[-1]
    assert record["request_body"] == "password=[REDACTED]"
    assert record["response_body"] == "token=[REDACTED]"


def test_the_binding_describes_itself(harpoon):
    server, binding, registry = harpoon(answer())
    assert binding.routable and binding.health().ok
    assert binding.health().reason == "1 harpoon targets"
    assert binding.describe() == {"name": "harpoon", "transport_kind": "in-memory",
                                  "targets": 1, "server_kind": "builtin"}
    assert not HarpoonBinding(Registry(), HarpoonOptions(), ((), {}, TrustStore())).routable


def test_the_registry_refuses_duplicates_and_shared_urls_over_different_transports():
    registry = Registry()
    changes = []
    registry.on_change(lambda: changes.append(1))
    registry.add(Target("a", "https://x.internal/"))
    with pytest.raises(RegistryError, match='label "a" is already registered'):
        registry.add(Target("a", "https://y.internal/"))
    registry.add(Target("a", "https://y.internal/"), replace=True)
    assert registry.get("a").url == "https://y.internal/"
    with pytest.raises(RegistryError, match="share a URL but not a transport"):
        registry.add(Target("b", "https://Y.internal:443/", unix_socket="/run/s"))
    registry.add(Target("c", "https://y.internal/"))
    assert len(registry) == 2 and len(changes) == 3
    assert registry.free_label("a") == "a-1" and registry.free_label("z") == "z"
    registry.add(Target("a-1", "https://z.internal/"))
    assert registry.free_label("a") == "a-2"
    assert label_for("https://y.internal/", registry) == "a"
    assert label_for("not a url", registry) is None


@pytest.mark.parametrize("host,expected", [
    ("127.0.0.1", (True, "loopback address")), ("[::1]", (True, "loopback address")),
    ("10.1.2.3", (True, "private address")), ("fd00::1", (True, "private address")),
    ("localhost", (True, "localhost")), ("app.localhost.", (True, "localhost")),
    ("db.corp.internal", (True, "suffix corp.internal")),
    ("api-7.example.com", (True, "pattern ^api-[0-9]+\\.")),
    ("example.com", (False, "public host")), ("8.8.8.8", (False, "public host"))])
def test_which_hosts_count_as_private(host, expected):
    policy = HostPolicy(suffixes=(".Corp.Internal",), patterns=(r"^api-[0-9]+\.",))
    assert policy.is_private(host) == expected


def test_loopback_and_private_can_be_excluded():
    policy = HostPolicy(include_loopback=False, include_private=False)
    assert policy.is_private("127.0.0.1") == (False, "loopback address")
    assert policy.is_private("localhost") == (False, "localhost")
    assert policy.is_private("192.168.1.1") == (False, "private address")


def test_origin_and_target_views():
    assert origin("HTTPS://Api.Internal:443/x?y") == "https://api.internal"
    target = Target("t", "https://a.internal/x", unix_socket="/run/a.sock")
    assert target.as_dict() == dict(target.listing(), url="https://a.internal/x",
                                    unix_socket="/run/a.sock", inclusion_reason="configured")


def test_the_handshake_answers_exactly(harpoon):
    from tunnel_client import __version__
    server, binding, _ = harpoon(answer())
    init = rpc(binding, "initialize", {"protocolVersion": "2025-06-18"})
    assert (init.resp_type, init.resp_code) == ("jsonrpc_response", 200)
    assert init.json() == {"jsonrpc": "2.0", "id": 1, "result": {
        "protocolVersion": "2025-06-18", "capabilities": {"tools": {"listChanged": False}},
        "serverInfo": {"name": "harpoon", "title": "Harpoon (Constrained HTTP Client)",
                       "version": __version__},
        "instructions": INSTRUCTIONS}}
    assert rpc(binding, "initialize", "not a dict").json()["result"]["protocolVersion"] == \
        "2025-11-25"
    discover = rpc(binding, "server/discover", rpc_id="d")
    assert discover.json() == {"jsonrpc": "2.0", "id": "d", "result": {
        "supportedVersions": ["2026-07-28"], "capabilities": {"tools": {"listChanged": False}},
        "instructions": INSTRUCTIONS, "cacheScope": "private", "ttlMs": 0,
        "resultType": "complete"}}
    modern = rpc(binding, "ping", meta={"io.modelcontextprotocol/protocolVersion": "2026-07-28"})
    assert modern.json()["result"] == {"resultType": "complete"}
    error = rpc(binding, "nope", rpc_id="e")
    assert (error.resp_code, error.json()["id"]) == (200, "e")


def test_harpoon_metrics_are_named_and_labelled():
    instruments = Instruments()
    HarpoonBinding(Registry(), HarpoonOptions(), ((), {}, TrustStore()), instruments=instruments)
    text = instruments.registry.render()
    for line in ("# HELP harpoon_call_total Harpoon calls.",
                 "# HELP harpoon_call_latency_milliseconds Harpoon call latency.",
                 "# HELP harpoon_response_size_bytes Harpoon response sizes."):
        assert line in text


def test_harpoon_metrics_count_calls_latency_and_sizes(harpoon):
    server, binding, _ = harpoon(answer(body=b"x" * 300))
    call(binding, "api")
    call(binding, "api", method="DELETE")
    text = binding_metrics_text(binding)
    assert 'harpoon_call_total{label="api",status_class="2xx",outcome="success"} 1' in text
    assert 'harpoon_call_total{label="api",status_class="none",outcome="invalid_input"} 1' \
        in text
    assert 'harpoon_response_size_bytes_bucket{label="api",le="1024"} 1' in text
    assert 'harpoon_response_size_bytes_bucket{label="api",le="256"} 0' in text
    assert 'harpoon_call_latency_milliseconds_count{label="api"} 2' in text


def binding_metrics_text(binding):
    return "\n".join(line for metric in binding.metrics for line in metric.render())


def test_limits_at_their_boundaries(harpoon):
    server, binding, _ = harpoon(answer(body=b"y"))
    assert call(binding, "api", timeout_ms=100)["structuredContent"]["status_code"] == 200
    assert call(binding, "api", max_response_bytes=1)["structuredContent"][
        "body_size_bytes"] == 1
    assert call(binding, "api", method="POST", body="z" * 102400)["structuredContent"][
        "status_code"] == 200
    assert server.requests[-1]["method"] == "POST"
    assert len(server.requests[-1]["body"]) == 102400


def test_the_call_history_keeps_the_last_hundred(harpoon):
    server, binding, _ = harpoon(answer())
    for _ in range(101):
        call(binding, "api", method="DELETE")
    assert len(binding.calls()) == 100 and len(binding.calls(limit=5)) == 5
    assert len(binding.calls(limit=500)) == 100 and len(binding.calls(limit=0)) == 1


@pytest.mark.parametrize("status,method,followed,then", [
    (301, "GET", True, "GET"), (301, "POST", True, "GET"), (302, "POST", True, "GET"),
    (303, "POST", True, "GET"), (307, "POST", True, "POST"), (308, "POST", True, "POST"),
    (304, "GET", False, None), (300, "GET", False, None)])
def test_redirect_statuses(harpoon, status, method, followed, then):
    def handler(request):
        if request["path"] == "/mcp":
            return status, {"Location": "/next"}, b""
        return 200, {"Content-Type": "text/plain"}, b"arrived"
    server, binding, registry = harpoon(handler)
    registry.add(Target("next", server.url[:-len("/mcp")] + "/next"))
    data = call(binding, "api", method=method, body="b")["structuredContent"]
    if followed:
        assert data["status_code"] == 200
        assert [r["method"] for r in server.requests] == [method, then]
        dropped = status == 303 or (status in (301, 302) and method == "POST")
        assert server.requests[1]["body"] == (b"" if dropped else b"b")
    else:
        assert data["status_code"] == status and len(server.requests) == 1


def test_one_redirect_is_allowed_with_a_limit_of_one(harpoon):
    def handler(request):
        if request["path"] == "/mcp":
            return 302, {"Location": "/next"}, b""
        return 200, {"Content-Type": "text/plain"}, b"arrived"
    server, binding, registry = harpoon(handler, max_redirects=1)
    registry.add(Target("next", server.url[:-len("/mcp")] + "/next"))
    assert call(binding, "api")["structuredContent"]["status_code"] == 200
    assert call(binding, "api", max_redirects=5)["structuredContent"]["status_code"] == 200
    failed = call(binding, "api", max_redirects=0)
    assert failed["content"][0]["text"] == "label api: redirect limit exceeded"
    assert binding.calls()[-1]["outcome"] == "request_error"


@pytest.mark.parametrize("arguments,message", [
    ({"label": 5}, "Invalid params: label must be a string"),
    ({"method": ["GET"]}, "Invalid params: method must be a string"),
    ({"body": {}}, "Invalid params: body must be a string"),
    ({"timeout_ms": 1.5}, "Invalid params: timeout_ms must be an integer"),
    ({"max_response_bytes": "9"}, "Invalid params: max_response_bytes must be an integer"),
    ({"max_redirects": None}, "Invalid params: max_redirects must be an integer"),
    ({"follow_redirects": 1}, "Invalid params: follow_redirects must be a boolean"),
    ({"headers": "X-A: b"}, "Invalid params: headers must be an object of strings"),
    ({"headers": {"X A": "b"}}, 'Invalid params: headers: "X A" is not a valid header name'),
    ({"headers": {"X-A": ["b", 2]}},
     "Invalid params: headers: the value of X-A must be a string of visible Latin-1 characters"),
])
def test_each_bad_argument_is_named_exactly_and_nothing_is_sent(harpoon, arguments, message):
    server, binding, _ = harpoon(answer())
    reply = rpc(binding, "tools/call", {"name": "call_target",
                                        "arguments": dict({"label": "api"}, **arguments)})
    assert reply.json()["error"] == {"code": -32602, "message": message}
    assert server.requests == []


def test_repeated_header_values_are_joined_as_http_joins_them(harpoon):
    server, binding, _ = harpoon(answer())
    result = call(binding, "api", headers={"X-Many": ["a", "b"], "X-One": "c"})
    assert not result.get("isError"), result
    headers = {k.lower(): v for k, v in server.requests[0]["headers"].items()}
    assert headers["x-many"] == "a, b" and headers["x-one"] == "c"
