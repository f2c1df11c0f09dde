"""Harpoon's allowlist in process: exact-URL matching (query included) and the runtime
plaintext-http guard, the only one for targets registered by OAuth discovery."""

import json
import time

import pytest

from tests.support.servers import Scripted
from tunnel_client import wire
from tunnel_client.mcp.harpoon import HarpoonBinding, HarpoonOptions
from tunnel_client.mcp.targets import Registry, Target, label_for, normalize_url, rewrite_json
from tunnel_client.net import TrustStore


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


def call(binding, label):
    cmd = wire.parse_command({
        "request_id": "req_h", "shard_token": "shard", "command_type": "jsonrpc",
        "channel": wire.HARPOON_CHANNEL, "jsonrpc": {
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "call_target", "arguments": {"label": label}}}},
        time.monotonic())
    replies = list(binding.handle(cmd, wire.NO_DEADLINE))
    return json.loads(replies[-1].body)["result"]


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
