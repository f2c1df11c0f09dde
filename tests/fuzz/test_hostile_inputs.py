"""Fuzzing the two surfaces a hostile caller reaches: Harpoon ``call_target`` arguments
(from the tunnel's callers) and admin listener request heads (from local users and web
pages). Whatever arrives, the answer is a well-formed reply, never a crash, and nothing the
block-list refuses reaches the wire."""

import json
import re
import time

import pytest
pytest.importorskip("hypothesis", minversion="6")

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.fuzz.strategies import JSON, finishes
from tests.support.rawhttp import raw_request
from tests.support.servers import Scripted
from tunnel_client import wire
from tunnel_client.mcp.harpoon import BLOCKED_HEADERS, HarpoonBinding, HarpoonOptions
from tunnel_client.mcp.targets import Registry, Target
from tunnel_client.net import TrustStore

# --- Harpoon arguments -------------------------------------------------------------------

HEADER_NAMES = st.one_of(
    st.sampled_from(["Host", "Host ", "host\t", " Host", "X-Forwarded-For\t", "Cookie",
                     "Connection", "X-Ok", "Content-Length", "Transfer-Encoding", "X:Y", "",
                     "Höst", "X-Note", "Proxy-Authorization", "TE"]),
    st.text(max_size=12))
HEADER_VALUES = st.one_of(
    st.sampled_from(["evil.example", "x\r\nHost: evil", "caf\u00e9", "\u2603", "", " ",
                     "close, Host", "1", "a\x00b"]),
    st.text(max_size=12), st.lists(st.text(max_size=6), max_size=3), JSON)
ARGUMENTS = st.fixed_dictionaries({"label": st.one_of(st.just("api"), JSON)}, optional={
    "method": st.one_of(st.sampled_from(["GET", "post", "PUT", "DELETE", "", "G\r\nET"]), JSON),
    "headers": st.one_of(st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=4), JSON),
    "body": st.one_of(st.text(max_size=40), JSON),
    "timeout_ms": st.one_of(st.integers(-5, 200000), st.sampled_from([float("inf"), 1e300,
                                                                      1500.5]), JSON),
    "max_response_bytes": st.one_of(st.integers(-5, 10 ** 12), JSON),
    "follow_redirects": st.one_of(st.booleans(), JSON),
    "max_redirects": st.one_of(st.integers(-5, 10 ** 6), st.sampled_from(["abc", "3"]), JSON)})


@pytest.fixture(scope="module")
def harpoon():
    server = Scripted(lambda request: (200, {"Content-Type": "application/json"}, b"{}"))
    registry = Registry()
    registry.add(Target("api", server.url))
    binding = HarpoonBinding(registry, HarpoonOptions(allow_plaintext_http=True),
                             ([], {"NO_PROXY": "*"}, TrustStore()))
    yield binding, server
    binding.stop()
    server.close()


def _canonical(name: str) -> str:
    return name.strip().lower()


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@example(arguments={"label": "api", "headers": {"Host ": "evil.example"}})
@example(arguments={"label": "api", "max_redirects": None})
@example(arguments={"label": "api", "method": ["GET"]})
@given(arguments=ARGUMENTS)
def test_call_target_answers_every_argument_shape(harpoon, arguments):
    binding, server = harpoon
    seen = len(server.requests)
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": "call_target", "arguments": arguments}}
    cmd = wire.parse_command({"request_id": "r", "shard_token": "s", "command_type": "jsonrpc",
                              "channel": "harpoon", "jsonrpc": message}, time.monotonic())
    replies = finishes(lambda: list(binding.handle(cmd, wire.Deadline.after(10))), 15)
    assert len(replies) == 1
    answer = json.loads(replies[0].body)
    if "error" in answer:
        assert answer["error"]["code"] == -32602, answer
    else:
        assert isinstance(answer["result"]["content"], list), answer
    for request in server.requests[seen:]:
        names = [_canonical(name) for name in request["headers"]]
        assert request["headers"].get("host", "").startswith("127.0.0.1:")
        assert not [n for n in names if n in BLOCKED_HEADERS and
                    n not in ("host", "user-agent", "accept-encoding", "content-length",
                              "connection")], names


# --- admin request heads -----------------------------------------------------------------

METHODS = st.sampled_from(["GET", "PUT", "POST", "HEAD", "DELETE", "OPTIONS", "BREW", "get"])
PATHS = st.one_of(st.sampled_from(["/api/log-level", "/harpoon/mcp", "/healthz", "/readyz",
                                   "/api/status", "/ui", "/api/logs/export?minutes=abc",
                                   "/assets/../../etc/passwd", "/api/harpoon/calls?limit=-1",
                                   "//", "/%00", "*"]),
                  st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126),
                          max_size=20).map(lambda p: "/" + p))
NAMES = st.sampled_from(["Content-Length", "Transfer-Encoding", "Content-Type", "Origin",
                         "Sec-Fetch-Site", "Host", "Authorization", "Cookie", "Expect",
                         "Connection", "X-Junk"])
VALUES = st.one_of(st.sampled_from([
    "-1", "abc", "99999999999999999999", "0", "5", "chunked", "gzip, chunked", " chunked",
    "application/json", "text/plain", "application/json; charset=utf-8",
    "https://evil.example", "null", "cross-site", "same-origin", "[::1]:1", "localhost",
    "100-continue", "Bearer x", "close"]),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=16))
HEADS = st.tuples(METHODS, PATHS, st.lists(st.tuples(NAMES, VALUES), max_size=5),
                  st.binary(max_size=64))
STATUS = re.compile(rb"^HTTP/1\.[01] (\d{3}) ")


@pytest.fixture(scope="module")
def admin_port(tmp_path_factory):
    from tests.support.daemon import Daemon, stub_command, wait_for
    from tunnel_client.devtools.relay import Relay

    relay = Relay(response_timeout="20s").start()
    url_file = str(tmp_path_factory.mktemp("admin") / "url")
    daemon = Daemon(relay, mcp_command=stub_command(), args=[
        "--health.url-file", url_file, "--harpoon.additional-transport", "http-streamable"])
    daemon.wait_polling()
    base = wait_for(lambda: open(url_file).read().strip() if __import__("os").path.exists(
        url_file) else None, message="the admin URL file")
    yield int(base.rsplit(":", 1)[1]), daemon
    daemon.cleanup()
    relay.stop()


def _exchange(port: int, data: bytes) -> bytes:
    return raw_request(port, data, close_write=True, until=b"\r\n")


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@example(head=("PUT", "/api/log-level", [("Content-Length", "-1")], b""))
@example(head=("POST", "/harpoon/mcp", [("Content-Type", "text/plain")], b"{}"))
@example(head=("PUT", "/api/log-level", [("Transfer-Encoding", "chunked")], b"zz\r\n"))
@given(head=HEADS)
def test_admin_answers_every_request_head_without_an_internal_error(admin_port, head):
    port, daemon = admin_port
    method, path, headers, body = head
    data = ("%s %s HTTP/1.1\r\n" % (method, path)).encode() + b"".join(
        ("%s: %s\r\n" % (name, value)).encode() for name, value in headers) + b"\r\n" + body
    answer = _exchange(port, data)
    match = STATUS.match(answer)
    if answer:  # the server may also just close on a request line it cannot parse
        assert match, answer[:200]
        assert match.group(1) != b"500", answer[:200]
    output = daemon.output()
    assert "Traceback" not in output, output[output.find("Traceback") - 300:][:3000]
    assert _exchange(port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").startswith(
        b"HTTP/1.1 200")
