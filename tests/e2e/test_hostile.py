"""Hostile input against a real daemon: bodies that never end, cross-site calls, secrets
looking for a way out. Each test drives ``tunnel-client run`` through the local control
plane (and its admin listener) the way an attacker or a broken peer would."""

import io
import json
import os
import socket
import tarfile
import threading

import pytest
import requests

from tests.support.calls import final, tool_call
from tests.support.daemon import admin_base, stub_command, wait_for
from tests.support.rawhttp import raw_request


# --- helpers -----------------------------------------------------------------------------


class RawServer:
    """A loopback TCP server whose every connection is handled by ``handler(conn)``; it
    records whether a client hung up before the handler had sent everything."""

    def __init__(self, handler):
        self.handler = handler
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.hung_up = threading.Event()
        self.finished = threading.Event()
        self.sent = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            request = read_request(conn)
            if self.handler(self, conn, request) is not False:
                self.finished.set()
        except OSError:
            self.hung_up.set()
        finally:
            conn.close()

    def send(self, conn, data: bytes):
        conn.sendall(data)
        self.sent += len(data)

    def close(self):
        self.sock.close()


def read_request(conn) -> bytes:
    """The request head and body (by Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def json_answer(conn, request: bytes):
    """A prompt answer to anything else (a probe, a notification)."""
    body = request.partition(b"\r\n\r\n")[2]
    try:
        rpc_id = json.loads(body).get("id")
    except ValueError:
        rpc_id = None
    if rpc_id is None:
        conn.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
        return
    payload = json.dumps({"jsonrpc": "2.0", "id": rpc_id, "result": {}}).encode()
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload))


def drip(total: int, interval: float, head: bytes, only: bytes = b""):
    """A handler sending ``head`` then one body byte every ``interval`` seconds, to requests
    containing ``only`` (the others get a prompt JSON answer)."""
    def handler(server, conn, request):
        if only not in request:
            json_answer(conn, request)
            return False
        server.send(conn, head)
        stop = threading.Event()
        for _ in range(total):
            stop.wait(interval)  # the pace of a hostile server, not synchronisation
            server.send(conn, b"x")
    return handler


@pytest.fixture
def raw_server():
    opened = []

    def start(handler):
        server = RawServer(handler)
        opened.append(server)
        return server

    yield start
    for server in opened:
        server.close()


def harpoon_result(relay, name, **arguments):
    payload = final(relay, tool_call(name, 1, **arguments), channel="harpoon")
    assert payload["resp_code"] == 200, payload
    return payload["resp_json"]


# --- 1. every remote body is bounded in bytes and in wall time ---------------------------


def test_harpoon_refuses_a_declared_oversized_body_before_reading_it(relay, daemon, raw_server):
    size = 50 * 1024 * 1024

    def huge(server, conn, request):
        server.send(conn, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                          b"Content-Length: %d\r\n\r\n" % size)
        block = b"x" * 65536
        for _ in range(size // len(block)):
            server.send(conn, block)

    server = raw_server(huge)
    daemon(mcp_command=stub_command(), args=[
        "--harpoon.allow-plaintext-http",
        "--harpoon.target", "label=huge,url=%s/huge" % server.url])
    result = harpoon_result(relay, "call_target", label="huge")["result"]
    assert result["isError"] is True and "exceeds size limit" in result["content"][0]["text"]
    wait_for(server.hung_up.is_set, message="the daemon hanging up on the 50 MB body")
    assert server.sent < size / 2


def test_harpoon_timeout_bounds_a_dripping_body_in_wall_time(relay, daemon, raw_server):
    server = raw_server(drip(400, 0.05, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                        b"Content-Length: 400\r\n\r\n"))
    daemon(mcp_command=stub_command(), args=[
        "--harpoon.allow-plaintext-http",
        "--harpoon.target", "label=slow,url=%s/slow" % server.url])
    result = harpoon_result(relay, "call_target", label="slow", timeout_ms=1000)["result"]
    assert result["isError"] is True and "timed out" in result["content"][0]["text"]
    assert not server.finished.is_set()


def test_http_binding_stops_reading_a_dripping_body_at_the_command_deadline(
        relay, daemon, raw_server):
    server = raw_server(drip(60, 0.5, b"HTTP/1.1 200 OK\r\nContent-Type: application/json"
                                        b"\r\nContent-Length: 60\r\n\r\n", only=b"tools/list"))
    daemon(mcp_url=server.url + "/mcp", args=["--mcp.connection-max-ttl", "60s"])
    call = relay.submit({"jsonrpc": "2.0", "id": 7, "method": "tools/list"},
                        response_timeout="2s")
    call.take(20)  # the relay's own timeout answer to the caller
    wait_for(server.hung_up.is_set, timeout=15,
             message="the daemon hanging up on the dripping body at its deadline")
    assert not server.finished.is_set()


# --- 3. no secret reaches the stdio child's environment ----------------------------------


def env_dumping_child(tmp_path):
    dump = tmp_path / "env.json"
    script = tmp_path / "envdump.py"
    script.write_text("import json, os, sys\n"
                      "json.dump(dict(os.environ), open(%r, 'w'))\n"
                      "sys.stdin.read()\n" % str(dump))
    return "python3 %s" % script, dump


def test_stdio_child_gets_no_secret_by_name_or_by_value(relay, daemon, tmp_path):
    command, dump = env_dumping_child(tmp_path)
    daemon(mcp_command=command, api_key="unused", env={
        "MY_KEY": relay.api_key + "\n",  # a Kubernetes secret file ends in a newline
        "CONTROL_PLANE_EXTRA_HEADERS": "X-Org-Token: env:ORG_TOKEN",
        "ORG_TOKEN": "org-token-value-1 ",
        "MCP_EXTRA_HEADERS": "X-Gateway-Credential: gateway-credential-1",
        "HTTPS_PROXY": "http://proxyuser:proxy-password-1@127.0.0.1:9",
        "SOMETHING_ELSE": "Bearer org-token-value-1",
        "HARMLESS": "kept"}, args=["--control-plane.api-key", "env:MY_KEY"])
    wait_for(lambda: dump.exists() and dump.stat().st_size > 0, message="env dump")
    env = json.loads(dump.read_text())
    for name in ("MY_KEY", "CONTROL_PLANE_EXTRA_HEADERS", "ORG_TOKEN", "MCP_EXTRA_HEADERS",
                 "HTTPS_PROXY", "SOMETHING_ELSE", "CONTROL_PLANE_API_KEY"):
        assert name not in env, name
    text = json.dumps(env)
    for secret in (relay.api_key, "org-token-value-1", "gateway-credential-1",
                   "proxy-password-1"):
        assert secret not in text
    assert env["HARMLESS"] == "kept" and "PATH" in env


# --- 4. every configured header value and registered secret is redacted everywhere ------


def test_raw_http_logging_redacts_configured_and_caller_header_values(
        relay, daemon, http_stub, url_file):
    instance = daemon(mcp_url=http_stub(), env={
        "MCP_EXTRA_HEADERS": "X-Gateway-Credential: gateway-credential-1"}, args=[
        "--log.http-raw-unsafe", "--health.url-file", url_file])
    payload = final(relay, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers={
        "X-Credential": "caller-credential-1", "X-Note": "crlf-value-1\r\n"})
    assert payload["resp_code"] == 200, payload
    wait_for(lambda: "raw http exchange" in instance.output(), message="a raw HTTP record")
    logs = requests.get(admin_base(url_file) + "/api/logs?limit=5000", timeout=5).text
    for text in (instance.output(), logs):
        assert "X-Credential" in text or "x-credential" in text.lower()
        for secret in ("gateway-credential-1", "caller-credential-1", relay.api_key):
            assert secret not in text
    assert not [e for e in instance.events() if e.get("level") == "WARN" and
                "crlf-value-1" in json.dumps(e)]


def test_exception_text_is_redacted_like_every_other_field():
    import io
    import logging

    from tunnel_client.observe.logs import REDACTOR, LogSetup, get_logger

    stream = io.StringIO()
    setup = LogSetup("debug", "json", stream=stream)
    try:
        REDACTOR.add_secret("registered-secret-value-1")
        try:
            raise ValueError("bad value: registered-secret-value-1")
        except ValueError:
            get_logger("test").exception("failed")
        logging.getLogger("tunnel_client").handlers[0].flush()
        assert "registered-secret-value-1" not in stream.getvalue()
        assert "registered-secret-value-1" not in json.dumps(setup.ring.recent(0))
        assert "[REDACTED]" in stream.getvalue()
    finally:
        setup.close()


# --- 5. configuration errors never echo a credential or a file's contents ----------------


def run_cli(*args, env=None):
    import subprocess
    import sys

    from tests.support.daemon import ROOT
    environ = dict(os.environ, PYTHONPATH=ROOT, **(env or {}))
    proc = subprocess.run([sys.executable, "-m", "tunnel_client"] + list(args), env=environ,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                          cwd=ROOT)
    return proc.returncode, proc.stdout.decode() + proc.stderr.decode()


@pytest.mark.parametrize("command", [["run"], ["doctor", "--json"]])
def test_a_bad_proxy_url_is_reported_without_its_password(command):
    code, output = run_cli(*command + ["--control-plane.tunnel-id",
                                       "tunnel_" + "1" * 32,
                                       "--http-proxy", "socks5://ops:proxy-password-1@p:1080"],
                           env={"CONTROL_PLANE_API_KEY": "sk-test-key-123456"})
    assert code != 0
    assert "http-proxy" in output and "proxy-password-1" not in output


def test_a_bad_harpoon_url_from_a_file_does_not_print_the_file(tmp_path):
    secret_file = tmp_path / "not-a-url"
    secret_file.write_text("file-contents-secret-1\n")
    code, output = run_cli("run", "--control-plane.tunnel-id", "tunnel_" + "1" * 32,
                           "--harpoon.target", "label=a,url=file:%s" % secret_file,
                           env={"CONTROL_PLANE_API_KEY": "sk-test-key-123456"})
    assert code != 0 and "harpoon" in output
    assert "file-contents-secret-1" not in output


# --- 6. the support bundle works with Harpoon targets; target URL secrets stay hidden -----


def test_support_bundle_with_a_harpoon_target_hides_its_query_secret(
        relay, daemon, raw_server, url_file):
    server = raw_server(lambda srv, conn, request: json_answer(conn, request))
    secret_url = "%s/api?token=query-secret-1&region=eu" % server.url
    instance = daemon(mcp_command=stub_command(), args=[
        "--health.url-file", url_file, "--harpoon.allow-plaintext-http",
        "--harpoon.target", "label=inventory,url=%s" % secret_url])
    base = admin_base(url_file)
    targets = requests.get(base + "/api/harpoon/targets", timeout=5)
    assert targets.status_code == 200 and "query-secret-1" not in targets.text
    assert "inventory" in targets.text
    export = requests.get(base + "/api/logs/export?minutes=5", timeout=20)
    assert export.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(export.content), mode="r:gz") as archive:
        contents = "".join(archive.extractfile(member).read().decode()
                           for member in archive.getmembers())
    assert "inventory" in contents and "query-secret-1" not in contents
    assert "RepresenterError" not in instance.output()


# --- 2. no cross-site request forgery against state-changing endpoints -----------------


def test_harpoon_http_transport_refuses_cross_site_and_non_json_posts(
        relay, daemon, raw_server, url_file):
    server = raw_server(lambda srv, conn, request: json_answer(conn, request))
    daemon(mcp_command=stub_command(), args=[
        "--health.url-file", url_file, "--harpoon.allow-plaintext-http",
        "--harpoon.additional-transport", "http-streamable",
        "--harpoon.target", "label=internal,url=%s/x" % server.url])
    base = admin_base(url_file)
    call = json.dumps(tool_call("call_target", 1, label="internal"))
    forged = [({"Content-Type": "text/plain"}, 415),
              ({"Content-Type": "application/json", "Origin": "https://evil.example"}, 403),
              ({"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403),
              ({"Content-Type": "application/json", "Origin": "null"}, 403)]
    for headers, status in forged:
        resp = requests.post(base + "/harpoon/mcp", data=call, headers=headers, timeout=5)
        assert resp.status_code == status, (headers, resp.status_code, resp.text)
    assert server.finished.is_set() is False  # the target was never called
    good = requests.post(base + "/harpoon/mcp", data=call, timeout=10, headers={
        "Content-Type": "application/json", "Origin": base})
    assert good.status_code == 200 and '"status_code": 202' in good.json()["result"][
        "content"][0]["text"]


def test_log_level_change_requires_same_origin_json(relay, daemon, url_file):
    daemon(mcp_command=stub_command(), args=["--health.url-file", url_file])
    base = admin_base(url_file)
    for headers in ({"Content-Type": "text/plain"},
                    {"Content-Type": "application/json", "Origin": "https://evil.example"}):
        resp = requests.put(base + "/api/log-level", data='{"level": "debug"}',
                            headers=headers, timeout=5)
        assert resp.status_code in (403, 415), resp.text
    assert requests.get(base + "/api/log-level", timeout=5).json()["level"] == "debug"
    resp = requests.put(base + "/api/log-level", json={"level": "info"}, timeout=5)
    assert resp.status_code == 200 and resp.json()["level"] == "info"


# --- 7. admin request bodies are framed strictly; idle connections cannot starve it ------


@pytest.mark.parametrize("head,status", [
    (b"Content-Length: -1\r\n", b"400"),
    (b"Content-Length: abc\r\n", b"400"),
    (b"", b"411"),
    (b"Content-Length: 99999999\r\n", b"413"),
    (b"Transfer-Encoding: chunked\r\n\r\nfffff\r\n" + b"x" * 10, b"413"),
    (b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", b"400"),
])
def test_admin_answers_badly_framed_bodies_promptly(relay, daemon, url_file, head, status):
    instance = daemon(mcp_command=stub_command(), args=["--health.url-file", url_file])
    port = int(admin_base(url_file).rsplit(":", 1)[1])
    if not head.endswith(b"\r\n\r\n" + b"x" * 10) and b"zz" not in head:
        head += b"\r\n"
    request = (b"PUT /api/log-level HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Content-Type: application/json\r\n" + head)
    answer = raw_request(port, request)
    assert answer.split(b" ")[1] == status, answer
    assert "Traceback" not in instance.output()


def test_idle_connections_are_capped_and_healthz_still_answers(relay, daemon, url_file):
    instance = daemon(mcp_command=stub_command(), args=["--health.url-file", url_file])
    base = admin_base(url_file)
    port = int(base.rsplit(":", 1)[1])
    idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(300)]
    try:
        assert requests.get(base + "/healthz", timeout=10).text == "live"
        threads = len(os.listdir("/proc/%d/task" % instance.proc.pid))
        assert threads < 100, threads
    finally:
        for conn in idle:
            conn.close()


# --- 8 and 10. Harpoon arguments: header names are tokens; bad types are -32602 ----------


@pytest.fixture
def harpoon_daemon(relay, daemon, raw_server):
    server = raw_server(lambda srv, conn, request: (srv.requests.append(request),
                                                   json_answer(conn, request))[1])
    server.requests = []
    instance = daemon(mcp_command=stub_command(), args=[
        "--harpoon.allow-plaintext-http", "--harpoon.target", "label=api,url=%s/x" % server.url])
    return instance, server


def invalid_params(relay, **arguments):
    payload = final(relay, tool_call("call_target", 1, label="api", **arguments),
                    channel="harpoon")
    assert payload["resp_code"] == 200, payload
    error = payload["resp_json"].get("error")
    assert error is not None and error["code"] == -32602, payload["resp_json"]
    return error["message"]


@pytest.mark.parametrize("name", ["Host ", "X-Forwarded-For\t", "Host:", "", "X Y", "Höst"])
def test_harpoon_header_names_must_be_tokens(relay, harpoon_daemon, name):
    instance, server = harpoon_daemon
    message = invalid_params(relay, headers={name: "evil.example"})
    assert "headers" in message
    assert not server.requests


@pytest.mark.parametrize("arguments,field", [
    ({"max_redirects": "abc"}, "max_redirects"),
    ({"max_redirects": None}, "max_redirects"),
    ({"timeout_ms": float("inf")}, "timeout_ms"),
    ({"timeout_ms": 1500.5}, "timeout_ms"),
    ({"method": ["GET", "POST"]}, "method"),
    ({"headers": {"X-Note": "caf\u00e9 \u2603"}}, "headers"),
    ({"headers": ["X-Note: 1"]}, "headers"),
    ({"body": {"a": 1}}, "body"),
    ({"follow_redirects": "no"}, "follow_redirects"),
    ({"max_response_bytes": None}, "max_response_bytes"),
])
def test_bad_harpoon_arguments_are_invalid_params_naming_the_field(
        relay, harpoon_daemon, arguments, field):
    instance, server = harpoon_daemon
    assert field in invalid_params(relay, **arguments)
    assert "Traceback" not in instance.output()
    assert not server.requests


# --- 9. OAuth auto-registration: same origin means scheme, host and port ----------------


def test_oauth_discovery_does_not_register_another_port_of_the_same_host(
        relay, daemon, scripted, url_file):
    holder = {}

    def handler(request):
        base = holder["base"]
        if request["path"] == "/.well-known/oauth-protected-resource/mcp":
            return 200, {"Content-Type": "application/json"}, json.dumps({
                "resource": base + "/mcp", "authorization_servers": [base]}).encode()
        if request["path"] == "/.well-known/oauth-authorization-server":
            return 200, {"Content-Type": "application/json"}, json.dumps({
                "issuer": base, "registration_endpoint": "http://127.0.0.1:6379/",
                "token_endpoint": base + "/token"}).encode()
        if request["path"].startswith("/.well-known/"):
            return 404, {}, b""
        return 401, {"WWW-Authenticate": 'Bearer resource_metadata="%s/.well-known/oauth-'
                     'protected-resource/mcp"' % base}, b""

    server = scripted(handler)
    holder["base"] = server.url.rsplit("/", 1)[0]
    daemon(mcp_url=server.url, args=["--harpoon.allow-plaintext-http",
                                     "--health.url-file", url_file])
    base = admin_base(url_file)
    wait_for(lambda: requests.get(base + "/api/oauth", timeout=2).json()["state"] == "ok",
             message="oauth discovery")
    oauth = requests.get(base + "/api/oauth", timeout=2).json()
    assert "oauth-token-endpoint-0" in oauth["registered_targets"], oauth
    assert any(":6379" in r for r in oauth["rejected_endpoints"]), oauth
    urls = [t["url"] for t in requests.get(base + "/api/harpoon/targets",
                                           timeout=2).json()["targets"]]
    assert not any(":6379" in url for url in urls)


# --- 11. configuration files: encoding, alias bombs, duplicate keys, exposed keys --------

BOMB = "".join("%s: &%s [%s]\n" % (name, name, ",".join(["*%s" % prev] * 9 if prev else
                                                       ['"lol"'] * 9))
               for prev, name in zip([""] + list("abcdefgh"), "abcdefghi"))


@pytest.mark.parametrize("content,expected", [
    (b"control_plane:\n  tunnel_id: \"tunnel_\xff\xfe\"\n", "not UTF-8"),
    (BOMB.encode(), "aliases expand"),
    (b"control_plane:\n  poll_timeout: 10s\n  poll_timeout: 20s\n", "lines 2 and 3"),
])
@pytest.mark.parametrize("command", [["run"], ["doctor"]])
def test_hostile_config_files_get_one_clear_line_naming_the_file(
        tmp_path, command, content, expected):
    config = tmp_path / "tunnel-client.yaml"
    config.write_bytes(content)
    code, output = run_cli(*command + ["--config", str(config)])
    assert code != 0
    assert "Traceback" not in output and expected in output and str(config) in output


def test_exposed_keys_are_warned_about_at_start(relay, daemon, tmp_path, url_file):
    key_file = tmp_path / "api-key"
    key_file.write_text(relay.api_key + "\n")
    key_file.chmod(0o644)
    config = tmp_path / "tunnel-client.yaml"
    config.write_text("mcp:\n  extra_headers:\n    X-Token: literal-token-value-1\n")
    instance = daemon(mcp_command=stub_command(), args=[
        "--config", str(config), "--control-plane.api-key", "file:%s" % key_file,
        "--health.url-file", url_file])
    wait_for(lambda: "tunnel-client started" in instance.output(), message="the start")
    warnings = [e["msg"] for e in instance.events() if e.get("level") == "WARN"]
    assert any(str(key_file) in w and "chmod 600" in w for w in warnings), warnings
    assert any("mcp.extra_headers" in w and str(config) in w for w in warnings), warnings
    assert "literal-token-value-1" not in instance.output()


# --- 12. listener edges: IPv6 loopback, remote UI only with a token ----------------------


def test_ui_answers_the_ipv6_loopback_url_it_logs(relay, daemon, url_file):
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    daemon(mcp_command=stub_command(), args=["--health.url-file", url_file,
                                             "--health.listen-addr", "[::1]:0"])
    base = admin_base(url_file)
    assert base.startswith("http://[::1]:")
    assert requests.get(base + "/ui", timeout=5).status_code == 200
    assert requests.get(base + "/api/status", timeout=5).json()["ui_url"] == base + "/ui"


def test_remote_ui_without_a_token_refuses_to_start():
    code, output = run_cli("run", "--control-plane.tunnel-id", "tunnel_" + "1" * 32,
                           "--mcp.command", stub_command(), "--allow-remote-ui",
                           "--health.listen-addr", "0.0.0.0:0",
                           env={"CONTROL_PLANE_API_KEY": "sk-test-key-123456"})
    assert code != 0 and "--admin-ui.token" in output and "Traceback" not in output


def test_remote_ui_requires_its_token_warns_and_shows_the_real_url(relay, daemon, url_file):
    token = "ui-token-0123456789abcdef"
    instance = daemon(mcp_command=stub_command(), env={"UI_TOKEN": token}, args=[
        "--health.url-file", url_file, "--health.listen-addr", "0.0.0.0:0",
        "--allow-remote-ui", "--admin-ui.token", "env:UI_TOKEN"])
    base = admin_base(url_file)
    remote = {"Host": "tunnel-host.example:%s" % base.rsplit(":", 1)[1]}
    assert requests.get(base + "/healthz", headers=remote, timeout=5).text == "live"
    denied = requests.get(base + "/api/status", headers=remote, timeout=5)
    assert denied.status_code == 401 and token not in denied.text
    wrong = dict(remote, Authorization="Bearer not-the-token-000000")
    assert requests.get(base + "/api/status", headers=wrong, timeout=5).status_code == 401
    allowed = dict(remote, Authorization="Bearer " + token)
    assert requests.get(base + "/api/status", headers=allowed, timeout=5).status_code == 200
    login = requests.get(base + "/ui?token=" + token, headers=remote, timeout=5,
                         allow_redirects=False)
    assert login.status_code == 303 and login.headers["Location"] == "/ui"
    cookie = login.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    with_cookie = dict(remote, Cookie=cookie.split(";")[0])
    assert requests.get(base + "/ui", headers=with_cookie, timeout=5).status_code == 200
    wait_for(lambda: "tunnel-client started" in instance.output(), message="the start")
    warnings = [e for e in instance.events() if e.get("level") == "WARN"]
    assert any("other hosts" in e["msg"] for e in warnings), warnings
    started = [e for e in instance.events() if e.get("msg") == "tunnel-client started"][0]
    assert "127.0.0.1" not in started["ui_url"] and started["ui_url"].endswith("/ui")
    assert token not in instance.output()
