"""doctor against the local control plane, loopback MCP servers and a test proxy: one test
per outcome an operator meets, plus every exit code."""

import datetime
import json
import os
import subprocess
import sys

import pytest

from tests.support.daemon import ROOT, stub_command, wait_for
from tests.support.proxy import ForwardProxy
from tests.support.tinyproxy import Tinyproxy
from tests.support.tlsfront import TlsFront

TID = "tunnel_22222222222222222222222222222222"


def doctor(*args, env=None, home=None):
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("CONTROL_PLANE_", "MCP_", "OPENAI_", "HTTP", "TUNNEL_"))
               and k.lower() not in ("http_proxy", "https_proxy")}
    environ.update({"NO_PROXY": "*", "PYTHONPATH": ROOT, "HOME": home or "/nonexistent",
                    "KEY": "some-key"})
    environ.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "tunnel_client", "doctor"] + list(args),
                          capture_output=True, text=True, env=environ, timeout=60)
    return proc


def statuses(proc):
    found = {}
    for line in proc.stdout.splitlines()[1:]:
        parts = line.split(None, 2)
        if len(parts) >= 2 and parts[0] in ("OK", "WARN", "CRIT", "SKIP"):
            found[parts[1]] = (parts[0], parts[2] if len(parts) > 2 else "")
    return found


def base_args(relay, *extra):
    return ["--control-plane.base-url", relay.base_url, "--control-plane.tunnel-id",
            relay.tunnel_id, "--control-plane.api-key", "env:KEY",
            "--mcp.command", stub_command(), "--health.listen-addr", "127.0.0.1:0",
            "--lock-file", os.devnull + ".x"] + list(extra)


@pytest.fixture(autouse=True)
def private_lock(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))


def test_all_ok_against_the_local_control_plane(relay):
    proc = doctor(*base_args(relay)[:-2], env={"KEY": relay.api_key})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("TUNNEL-CLIENT OK - ")
    found = statuses(proc)
    assert found["control_plane"][0] == "OK" and "key accepted" in found["control_plane"][1]
    assert relay.api_key not in proc.stdout + proc.stderr


def test_quiet_prints_nothing_when_all_is_well(relay):
    proc = doctor("--quiet", *base_args(relay)[:-2], env={"KEY": relay.api_key})
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_bad_key_is_critical_and_says_key_rejected(relay):
    proc = doctor(*base_args(relay)[:-2], env={"KEY": "not-the-key"})
    assert proc.returncode == 2
    assert proc.stdout.startswith("TUNNEL-CLIENT CRITICAL - control_plane: key rejected")
    assert "not-the-key" not in proc.stdout


def test_key_without_the_tunnel_permission(relay):
    relay.add_key("limited-key", False)
    proc = doctor(*base_args(relay)[:-2], env={"KEY": "limited-key"})
    assert proc.returncode == 2
    assert "key lacks permission to use tunnel %s" % TID in statuses(proc)["control_plane"][1]


def test_unknown_tunnel_id(relay):
    args = base_args(relay)[:-2]
    args[args.index(relay.tunnel_id)] = "tunnel_" + "9" * 32
    proc = doctor(*args, env={"KEY": relay.api_key})
    assert proc.returncode == 2
    summary = statuses(proc)["control_plane"][1]
    assert "tunnel_%s" % ("9" * 32) in summary and "does not exist" in summary


def test_control_plane_unreachable_names_the_tcp_hop(relay):
    args = base_args(relay)[:-2]
    args[args.index(relay.base_url)] = "http://127.0.0.1:9"
    proc = doctor(*args, "--explain", env={"KEY": "k"})
    assert proc.returncode == 2
    status, summary = statuses(proc)["control_plane"]
    assert summary.startswith("TCP: TCP connect to control plane 127.0.0.1:9 failed: "
                              "connection_refused")
    assert "What to do next" in proc.stdout


def test_proxy_refusing_connect_names_the_proxy_hop(relay):
    proxy = ForwardProxy(refuse_connect=True)
    try:
        args = base_args(relay)[:-2]
        args[args.index(relay.base_url)] = "https://control.example.test"
        proc = doctor(*args, "--http-proxy", proxy.url, env={"KEY": "k"})
    finally:
        proxy.close()
    assert proc.returncode == 2
    summary = statuses(proc)["control_plane"][1]
    assert summary.startswith("CONNECT: proxy http://127.0.0.1:") and \
        "refused CONNECT to control.example.test:443" in summary
    assert ("CONNECT", "control.example.test:443") in proxy.log


def test_mcp_http_server_down(relay):
    args = base_args(relay)[:-2]
    index = args.index("--mcp.command")
    args[index:index + 2] = ["--mcp.server-url", "http://127.0.0.1:9/mcp"]
    proc = doctor(*args, "--offline")
    assert proc.returncode == 2
    assert statuses(proc)["mcp_server"][1].startswith("http://127.0.0.1:9 unreachable: "
                                                       "connection_refused")


def test_mcp_http_server_requiring_oauth_is_fine(relay, http_stub):
    from tests.support.servers import Scripted
    server = Scripted(lambda r: (404, {}, b"") if r["path"].startswith("/.well-known/") else
                      (401, {"WWW-Authenticate": 'Bearer realm="mcp"'}, b""))
    try:
        args = base_args(relay)[:-2]
        index = args.index("--mcp.command")
        args[index:index + 2] = ["--mcp.server-url", server.url]
        proc = doctor(*args, "--offline")
    finally:
        server.close()
    assert proc.returncode == 0, proc.stdout
    assert "requires OAuth" in statuses(proc)["mcp_server"][1]
    assert statuses(proc)["oauth_metadata"] == ("OK", "OAuth metadata not advertised; all "
                                                "candidates returned HTTP 404 (fine for a server "
                                                "without OAuth)")


def test_stdio_command_missing(relay):
    args = base_args(relay)[:-2]
    args[args.index(stub_command())] = "/opt/nowhere/mcp-server --stdio"
    proc = doctor(*args, "--offline")
    assert proc.returncode == 2
    assert statuses(proc)["mcp_command"] == ("CRIT", "/opt/nowhere/mcp-server does not exist")


def test_stdio_script_with_a_missing_interpreter(relay, tmp_path):
    script = tmp_path / "server"
    script.write_text("#!/opt/missing/python9\nprint('hi')\n")
    script.chmod(0o755)
    args = base_args(relay)[:-2]
    args[args.index(stub_command())] = str(script)
    proc = doctor(*args, "--offline")
    assert statuses(proc)["mcp_command"] == ("CRIT", "/opt/missing/python9 does not exist")


def _client_cert(tmp_path, days):
    trustme = pytest.importorskip("trustme", minversion="0.9")
    now = datetime.datetime.now(datetime.timezone.utc)
    ca = trustme.CA()
    cert = ca.issue_cert("client.example", not_before=now - datetime.timedelta(days=30),
                         not_after=now + datetime.timedelta(days=days))
    cert_path, key_path = tmp_path / ("c%d.pem" % days), tmp_path / ("k%d.pem" % days)
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    key_path.chmod(0o600)  # as it should be: a readable key is a warning of its own
    return str(cert_path), str(key_path)


@pytest.mark.parametrize("days,status,code", [(5, "WARN", 1), (-2, "CRIT", 2), (200, "OK", 0)])
def test_certificate_expiry(relay, tmp_path, days, status, code):
    cert, key = _client_cert(tmp_path, days)
    proc = doctor(*base_args(relay)[:-2], "--offline", "--control-plane.client-cert", cert,
                  "--control-plane.client-key", key)
    assert proc.returncode == code, proc.stdout
    found = statuses(proc)["certificates"]
    assert found[0] == status
    if days < 0:
        assert "expired" in found[1]
    else:
        assert "in %d days" % (days - 1) in found[1] or "in %d days" % days in found[1]


def test_https_proxy_scheme_is_a_warning(relay):
    proc = doctor(*base_args(relay)[:-2], "--offline", "--http-proxy",
                  "https://proxy.example:3128")
    assert proc.returncode == 1
    assert proc.stdout.startswith("TUNNEL-CLIENT WARNING - proxy: http_proxy uses https://")


def test_daemon_running_and_ready_is_ok_without_a_port_conflict(relay, daemon, tmp_path):
    url_file = str(tmp_path / "url")
    daemon(mcp_command=stub_command(), args=["--health.url-file", url_file])
    wait_for(lambda: os.path.exists(url_file), message="url file")
    proc = doctor(*base_args(relay)[:-2], "--url-file", url_file, "--require-daemon",
                  env={"KEY": relay.api_key})
    assert proc.returncode == 0, proc.stdout
    assert statuses(proc)["daemon"][1].startswith("running and ready at http://127.0.0.1:")


def test_daemon_running_but_not_ready_is_critical_with_its_reason(relay, daemon, tmp_path):
    url_file = str(tmp_path / "url")
    daemon(wait=False, mcp_command=stub_command(), api_key="wrong-key",
           args=["--health.url-file", url_file])
    wait_for(lambda: os.path.exists(url_file), message="url file")
    proc = doctor(*base_args(relay)[:-2], "--offline", "--url-file", url_file)
    assert proc.returncode == 2
    status, summary = statuses(proc)["daemon"]
    assert summary.startswith("running but not ready:") and "invalid_api_key" in summary


def test_daemon_missing_is_critical_only_when_required(relay):
    args = base_args(relay)[:-2] + ["--offline", "--url", "http://127.0.0.1:9"]
    assert doctor(*args).returncode == 0
    proc = doctor(*args, "--require-daemon")
    assert proc.returncode == 2 and "no daemon answering" in statuses(proc)["daemon"][1]


def test_a_broken_config_is_critical_and_json_reports_it(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("control_plane:\n  tunel_id: x\n")
    proc = doctor("--config", str(path), "--json")
    assert proc.returncode == 2
    report = json.loads(proc.stdout)
    assert report["status"] == "CRITICAL" and report["exit_code"] == 2
    assert report["checks"][0]["id"] == "config"
    assert "unknown key control_plane.tunel_id" in report["checks"][0]["summary"]


def test_overlapping_runs_are_unknown(relay, tmp_path):
    import fcntl
    lock_path = str(tmp_path / "doctor.lock")
    with open(lock_path, "w") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        proc = doctor(*base_args(relay)[:-2], "--offline", "--lock-file", lock_path)
    assert proc.returncode == 3
    assert proc.stdout.startswith("TUNNEL-CLIENT UNKNOWN - another doctor run holds")


def test_env_file_gives_doctor_what_systemd_gives_the_daemon(relay, tmp_path):
    env_file = tmp_path / "tunnel-client.env"
    env_file.write_text("# secrets\nCONTROL_PLANE_API_KEY=%s\nCONTROL_PLANE_TUNNEL_ID=%s\n"
                        "MCP_COMMAND='%s'\n" % (relay.api_key, relay.tunnel_id, stub_command()))
    proc = doctor("--env-file", str(env_file), "--control-plane.base-url", relay.base_url,
                  "--health.listen-addr", "127.0.0.1:0")
    assert proc.returncode == 0, proc.stdout
    bad = doctor("--env-file", str(tmp_path / "missing.env"))
    assert bad.returncode == 3 and "cannot read env file" in bad.stdout


@pytest.mark.parametrize("sample", ["sample_mcp_stdio_local", "sample_mcp_remote_no_auth",
                                    "sample_mcp_with_dcr", "sample_mcp_enterprise_proxy"])
def test_init_then_doctor_then_run_from_a_clean_home(relay, http_stub, spawned, tmp_path,
                                                     sample):
    home = str(tmp_path / "home")
    os.makedirs(home)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTROL_PLANE_", "MCP_"))}
    env.update({"HOME": home, "PYTHONPATH": ROOT, "NO_PROXY": "*",
                "CONTROL_PLANE_API_KEY": relay.api_key})
    target = ["--mcp-command", stub_command()] if "stdio" in sample else \
        ["--mcp-server-url", http_stub()]
    proxy = front = None
    base_url = relay.base_url
    if "enterprise" in sample:
        # The control plane behind TLS signed by the corporate CA, reached through a real
        # forward proxy with CONNECT: the CA bundle and the proxy both have work to do.
        trustme = pytest.importorskip("trustme", minversion="0.9")
        authority = trustme.CA()
        ca_path = tmp_path / "corp-ca.pem"
        authority.cert_pem.write_to_path(str(ca_path))
        front = TlsFront(relay.server.server_address[1], authority.issue_cert("localhost"))
        base_url = front.url
        proxy = Tinyproxy(tmp_path)
        env.update({"ENTERPRISE_CA_BUNDLE": str(ca_path), "HTTPS_PROXY": proxy.url})
    init = subprocess.run([sys.executable, "-m", "tunnel_client", "init", "--sample", sample,
                           "--tunnel-id", relay.tunnel_id, "--control-plane-base-url",
                           base_url, "--health-listen-addr", "127.0.0.1:0"] + target,
                          capture_output=True, text=True, env=env, timeout=30)
    assert init.returncode == 0, init.stderr
    assert "tunnel-client run --profile %s" % sample in init.stdout
    profile = os.path.join(home, ".config", "tunnel-client", sample + ".yaml")
    assert oct(os.stat(profile).st_mode & 0o777) == "0o600"
    assert oct(os.stat(os.path.dirname(profile)).st_mode & 0o777) == "0o700"
    assert relay.api_key not in open(profile).read()
    check = subprocess.run([sys.executable, "-m", "tunnel_client", "doctor", "--profile",
                            sample, "--offline"], capture_output=True, text=True, env=env,
                           timeout=30)
    assert check.returncode == 0, check.stdout
    again = subprocess.run([sys.executable, "-m", "tunnel_client", "init", "--sample", sample,
                            "--tunnel-id", relay.tunnel_id] + target,
                           capture_output=True, text=True, env=env, timeout=30)
    assert again.returncode == 1 and "already exists; pass --force" in again.stderr
    from tests.support.calls import final, initialize
    # The daemon's output goes to a file the failure report prints (the spawned fixture).
    run = spawned([sys.executable, "-m", "tunnel_client", "run", "--profile", sample],
                  env=env, name="tunnel-client-" + sample)
    try:
        try:
            assert final(relay, initialize(), timeout=20)["resp_code"] == 200
        finally:
            code = run.stop(20)
        assert code == 0, "the daemon did not stop cleanly on SIGTERM (exit %s)" % code
    finally:
        if proxy is not None:
            proxy.stop()
            front.close()
    if proxy is not None:
        lines = proxy.requests()
        assert any(line.startswith("CONNECT localhost:%d " % front.port) for line in lines), \
            lines
        assert not any("/poll" in line for line in lines), "a poll went through in the clear"


def test_topics_only_mention_flags_that_exist():
    import re

    from tunnel_client.cli import build_parser
    from tunnel_client.cli.help import TOPICS_DIR
    parser = build_parser()
    known = set()
    for action in parser._subparsers._group_actions[0].choices.values():
        for sub in [action] + [a for group in getattr(action, "_subparsers", None) and
                               action._subparsers._group_actions or []
                               for a in group.choices.values()]:
            for act in sub._actions:
                known.update(act.option_strings)
    for name in os.listdir(TOPICS_DIR):
        text = open(os.path.join(TOPICS_DIR, name)).read()
        for flag in set(re.findall(r"(?<![\w-])--[a-z][a-z0-9.-]*[a-z0-9]", text)):
            assert flag in known, "%s mentions %s, which no command accepts" % (name, flag)


def test_a_key_file_others_can_read_is_a_warning_for_cron_too(relay, tmp_path):
    key_file = tmp_path / "api-key"
    key_file.write_text(relay.api_key + "\n")
    key_file.chmod(0o644)
    args = base_args(relay, "--offline")
    args[args.index("env:KEY")] = "file:%s" % key_file
    proc = doctor(*args)
    found = statuses(proc)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert found["secrets"][0] == "WARN" and str(key_file) in found["secrets"][1] and \
        "chmod 600" in found["secrets"][1], found
    key_file.chmod(0o600)
    proc = doctor(*args)
    assert statuses(proc)["secrets"] == ("OK", "1 key file(s) readable by their owner only")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert relay.api_key not in proc.stdout + proc.stderr
