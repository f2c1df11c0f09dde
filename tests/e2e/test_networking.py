"""Enterprise networking with real parts: a distro forward proxy (tinyproxy), real TLS
with throwaway CAs (trustme), mTLS, unix sockets, and a late-binding MCP sidecar."""

import os
import socketserver
import threading
from http.server import BaseHTTPRequestHandler

import pytest
import requests

from tests.support.calls import final, initialize, tool_call
from tests.support.daemon import stub_command, wait_for
from tests.support.tinyproxy import Tinyproxy, free_port
from tests.support.tlsfront import TlsFront

trustme = pytest.importorskip("trustme", minversion="0.9")
pytestmark = pytest.mark.proxy


@pytest.fixture
def ca(tmp_path):
    authority = trustme.CA()
    path = tmp_path / ("ca-%d.pem" % id(authority))
    authority.cert_pem.write_to_path(str(path))
    authority.path = str(path)
    return authority


@pytest.fixture
def fronts():
    opened = []

    def front(port, cert, **kwargs):
        instance = TlsFront(port, cert, **kwargs)
        opened.append(instance)
        return instance

    yield front
    for instance in opened:
        instance.close()


@pytest.fixture
def proxies(tmp_path):
    started = []

    def start(**kwargs):
        instance = Tinyproxy(tmp_path, **kwargs)
        started.append(instance)
        return instance

    yield start
    for instance in started:
        instance.stop()


def relay_port(relay):
    return relay.server.server_address[1]


def tls_args(front, *extra):
    return ["--control-plane.base-url", front.url] + list(extra)


def readyz(url_file):
    base = open(url_file).read().strip()
    resp = requests.get(base + "/readyz", timeout=2)
    return resp.status_code, resp.text


def test_control_plane_and_mcp_traffic_go_through_the_proxy(relay, daemon, http_stub, ca,
                                                            fronts, proxies):
    front = fronts(relay_port(relay), ca.issue_cert("localhost"))
    proxy = proxies()
    mcp_url = http_stub()
    daemon(mcp_url=mcp_url, args=tls_args(front, "--ca-bundle", ca.path,
                                          "--http-proxy", proxy.url))
    reply = final(relay, tool_call("echo", 1, input="via proxy"))
    assert reply["resp_json"]["result"]["structuredContent"] == {"echoed": "via proxy"}
    lines = proxy.requests()
    assert any(line.startswith("CONNECT localhost:%d " % front.port) for line in lines), lines
    assert any(line.startswith("POST %s" % mcp_url) for line in lines), lines


def test_proxy_outage_is_reported_and_the_daemon_recovers(relay, daemon, ca, fronts,
                                                          proxies, tmp_path):
    front = fronts(relay_port(relay), ca.issue_cert("localhost"))
    proxy = proxies()
    url_file = str(tmp_path / "admin-url")
    daemon(mcp_command=stub_command(), args=tls_args(
        front, "--ca-bundle", ca.path, "--http-proxy", proxy.url, "--health.url-file",
        url_file, "--health.poll-failure-grace", "1s", "--control-plane.poll-timeout", "1s"))
    wait_for(lambda: readyz(url_file)[0] == 200, message="ready through the proxy")
    proxy.stop()
    status, reason = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(readyz(url_file)),
                              timeout=20, message="503 while the proxy is down")
    assert "proxy http://127.0.0.1:%d" % proxy.port in reason
    proxy.start()
    wait_for(lambda: readyz(url_file)[0] == 200, timeout=30, message="recovery")
    assert final(relay, initialize())["resp_code"] == 200


def test_proxy_basic_auth_and_a_wrong_password(relay, daemon, ca, fronts, proxies, tmp_path):
    front = fronts(relay_port(relay), ca.issue_cert("localhost"))
    proxy = proxies(credentials=("alice", "s3cret"))
    good = proxy.url.replace("http://", "http://alice:s3cret@")
    daemon(mcp_command=stub_command(), args=tls_args(front, "--ca-bundle", ca.path,
                                                     "--http-proxy", good))
    assert final(relay, initialize())["resp_code"] == 200
    url_file = str(tmp_path / "bad-url")
    bad = daemon(wait=False, mcp_command=stub_command(), args=tls_args(
        front, "--ca-bundle", ca.path, "--http-proxy",
        proxy.url.replace("http://", "http://alice:WRONGPASS@"),
        "--health.url-file", url_file))
    # tinyproxy answers bad credentials with 401, most proxies with 407: both read alike.
    wait_for(lambda: os.path.exists(url_file) and readyz(url_file)[0] == 503 and
             "rejected the credentials" in readyz(url_file)[1], timeout=20,
             message="the proxy's refusal in readiness")
    reason = readyz(url_file)[1]
    assert "proxy http://127.0.0.1:%d rejected the credentials" % proxy.port in reason
    assert "WRONGPASS" not in reason and "WRONGPASS" not in bad.output()


def test_no_proxy_is_honoured_for_the_environment_and_ignored_for_explicit(
        relay, daemon, ca, fronts, proxies):
    front = fronts(relay_port(relay), ca.issue_cert("localhost"))
    proxy = proxies()
    daemon(mcp_command=stub_command(), args=tls_args(front, "--ca-bundle", ca.path),
           env={"HTTPS_PROXY": proxy.url, "NO_PROXY": "localhost"})
    assert final(relay, initialize())["resp_code"] == 200
    assert not any("localhost" in line for line in proxy.requests()), "NO_PROXY bypassed"
    daemon(mcp_command=stub_command(), args=tls_args(
        front, "--ca-bundle", ca.path, "--control-plane.http-proxy", proxy.url),
        env={"NO_PROXY": "localhost"})
    wait_for(lambda: any(line.startswith("CONNECT localhost:") for line in proxy.requests()),
             message="the explicit proxy used despite NO_PROXY")


def test_unknown_ca_fails_with_the_fix_then_the_bundle_works_with_system_trust(
        relay, daemon, http_stub, fronts, tmp_path):
    system_ca, corporate_ca = trustme.CA(), trustme.CA()
    system_pem, corporate_pem = str(tmp_path / "system.pem"), str(tmp_path / "corp.pem")
    system_ca.cert_pem.write_to_path(system_pem)
    corporate_ca.cert_pem.write_to_path(corporate_pem)
    control = fronts(relay_port(relay), corporate_ca.issue_cert("localhost"))
    mcp = fronts(int(http_stub().split(":")[2].split("/")[0]), system_ca.issue_cert("localhost"))
    url_file = str(tmp_path / "url")
    daemon(wait=False, mcp_command=stub_command(), args=tls_args(
        control, "--health.url-file", url_file))
    wait_for(lambda: os.path.exists(url_file) and "unknown certificate authority" in
             readyz(url_file)[1], timeout=20, message="the unknown-CA reason")
    assert "ca_bundle" in readyz(url_file)[1]
    # The system store (SSL_CERT_FILE stands in for it) keeps working next to the bundle.
    daemon(mcp_url=mcp.url + "/mcp", args=tls_args(control, "--ca-bundle", corporate_pem),
           env={"SSL_CERT_FILE": system_pem})
    reply = final(relay, tool_call("echo", 1, input="both trusted"))
    assert reply["resp_json"]["result"]["structuredContent"] == {"echoed": "both trusted"}


def _client_pair(authority, tmp_path, name):
    cert = authority.issue_cert(name + ".client.example")
    cert_path, key_path = tmp_path / (name + "-cert.pem"), tmp_path / (name + "-key.pem")
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    return str(cert_path), str(key_path)


def test_mtls_to_the_mcp_server_and_the_control_plane(relay, daemon, http_stub, ca, fronts,
                                                      tmp_path):
    clients = trustme.CA()
    cert, key = _client_pair(clients, tmp_path, "tunnel")
    control = fronts(relay_port(relay), ca.issue_cert("localhost"), client_ca=clients)
    mcp = fronts(int(http_stub().split(":")[2].split("/")[0]), ca.issue_cert("localhost"),
                 client_ca=clients)
    daemon(mcp_url=mcp.url + "/mcp", args=tls_args(
        control, "--ca-bundle", ca.path, "--control-plane.client-cert", cert,
        "--control-plane.client-key", key, "--mcp.client-cert", cert, "--mcp.client-key", key))
    reply = final(relay, tool_call("echo", 1, input="mutual"))
    assert reply["resp_json"]["result"]["structuredContent"] == {"echoed": "mutual"}
    url_file = str(tmp_path / "no-cert-url")
    daemon(wait=False, mcp_command=stub_command(), args=tls_args(
        control, "--ca-bundle", ca.path, "--health.url-file", url_file))
    wait_for(lambda: os.path.exists(url_file) and readyz(url_file)[0] == 503 and
             "tls" in readyz(url_file)[1].lower(), timeout=20, message="TLS refusal")
    assert control.handshake_errors


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _Recorder.seen.append(dict(self.headers.items()))
        import json
        message = json.loads(body)
        reply = json.dumps({"jsonrpc": "2.0", "id": message.get("id"),
                            "result": {"over": "unix socket"}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


def test_unix_socket_mcp_server_keeps_the_logical_url(relay, daemon, tmp_path):
    path = str(tmp_path / "mcp.sock")

    class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

    server = Server(path, _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        daemon(mcp_url="url=http://mcp.internal:8000/mcp,unix-socket=%s" % path,
               env={"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"})
        reply = final(relay, {"jsonrpc": "2.0", "id": 5, "method": "tools/list"})
        assert reply["resp_json"]["result"] == {"over": "unix socket"}
        assert _Recorder.seen[-1]["Host"] == "mcp.internal:8000"
    finally:
        server.shutdown()
        server.server_close()


def test_startup_wait_holds_the_first_poll_until_the_sidecar_listens(relay, daemon):
    from tunnel_client.devtools.stub import StubOptions, make_http_server

    port = free_port()
    instance = daemon(wait=False, mcp_url="http://127.0.0.1:%d/mcp" % port,
                      args=["--mcp.startup-wait-timeout", "20s"])
    wait_for(lambda: "stdio" in instance.output() or "tunnel-client started" in
             instance.output(), message="daemon started")
    assert relay.polls.__len__() == 0, "no poll before the MCP server listens"
    server = make_http_server(StubOptions(), port=port)
    listening_at = __import__("time").time()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        wait_for(lambda: len(relay.polls) > 0, timeout=15, message="the first poll")
        assert relay.polls[0]["time"] >= listening_at
        assert final(relay, tool_call("echo", 1, input="late"))["resp_code"] == 200
        assert "MCP server is listening; starting the poller" in instance.output()
    finally:
        server.shutdown()
        server.server_close()


def test_proxy_health_is_visible_and_does_not_gate_readiness(relay, daemon, ca, fronts,
                                                             proxies, tmp_path):
    front = fronts(relay_port(relay), ca.issue_cert("localhost"))
    proxy = proxies()
    url_file = str(tmp_path / "admin-url")
    daemon(mcp_command=stub_command(), args=tls_args(
        front, "--ca-bundle", ca.path, "--http-proxy", proxy.url, "--health.url-file",
        url_file, "--proxy.check-interval", "300ms"))
    base = open(url_file).read().strip()
    wait_for(lambda: requests.get(base + "/api/status", timeout=2).json()["proxy_health"][0][
        "state"] == "healthy", message="a healthy proxy check")
    metrics = requests.get(base + "/metrics", timeout=2).text
    assert 'proxy_health_state{route="control-plane",proxy="http://127.0.0.1:%d"} 1' % \
        proxy.port in metrics
