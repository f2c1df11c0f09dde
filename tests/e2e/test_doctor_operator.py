"""doctor as the cron check, against real proxies and servers: network and configuration
faults are CRITICAL with the hop named (UNKNOWN only when doctor itself cannot run), the
stdio server is really started, every configuration problem shows in one run with its
source, proxy authentication advice names the schemes, and empty values count as unset."""

import json
import socket

import pytest

from tests.e2e.test_doctor import TID, base_args, doctor, statuses
from tests.support.daemon import stub_command
from tests.support.proxy import ForwardProxy
from tests.support.tinyproxy import Tinyproxy


@pytest.fixture(autouse=True)
def private_lock(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))


def https_target(relay, *extra):
    args = base_args(relay)[:-2]
    args[args.index(relay.base_url)] = "https://control.example.test"
    return args + list(extra)


def test_a_proxy_that_never_answers_connect_is_critical_naming_the_hop(relay):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel completes the handshake; nobody ever answers
    try:
        port = silent.getsockname()[1]
        proc = doctor(*https_target(relay, "--http-proxy", "http://127.0.0.1:%d" % port,
                                    "--timeout", "4"), env={"KEY": "k"})
    finally:
        silent.close()
    assert proc.returncode == 2, proc.stdout
    summary = statuses(proc)["control_plane"][1]
    assert summary.startswith("CONNECT: proxy http://127.0.0.1:%d accepted the TCP connection "
                              "but did not answer CONNECT to control.example.test:443" % port)


def test_a_proxy_url_with_a_bad_port_is_critical_not_unknown(relay):
    proc = doctor(*https_target(relay, "--http-proxy", "http://proxy:notaport"),
                  env={"KEY": "k"})
    assert proc.returncode == 2, proc.stdout
    assert "UNKNOWN" not in proc.stdout
    assert "invalid http-proxy" in proc.stdout and "--http-proxy" in proc.stdout
    # The same mistake in the environment (not validated as a setting) names the hop.
    proc = doctor(*https_target(relay), env={"KEY": "k", "HTTPS_PROXY":
                                             "http://127.0.0.1:notaport", "NO_PROXY": ""})
    assert proc.returncode == 2, proc.stdout
    assert statuses(proc)["control_plane"][1].startswith(
        "proxy: proxy URL http://127.0.0.1:notaport (from HTTPS_PROXY) has an invalid port")


def test_the_stdio_server_is_really_started(relay):
    args = base_args(relay)[:-2]
    index = args.index("--mcp.command")
    args[index + 1] = "python3 -m no_such_module"
    proc = doctor(*args, "--offline", "--explain")
    assert proc.returncode == 2, proc.stdout
    status, summary = statuses(proc)["mcp_command"]
    assert status == "CRIT"
    assert summary.startswith("python3 exited with code 1 before answering initialize")
    assert "no_such_module" in summary

    proc = doctor(*base_args(relay)[:-2], "--offline")
    status, summary = statuses(proc)["mcp_command"]
    assert status == "OK" and summary.startswith("started, answered initialize (mcp-stub")
    assert "stopped when its input closed" in summary

    args[index + 1] = stub_command("--modern-only")
    status, summary = statuses(doctor(*args, "--offline"))["mcp_command"]
    assert status == "OK" and "answered server/discover" in summary, summary


def test_every_configuration_problem_is_reported_with_its_source(relay, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("control_plane:\n  tunnel_id: %s\nlog:\n  format: jsonish\n" % TID)
    proc = doctor("--config", str(path), "--http-proxy", "http://proxy:notaport",
                  "--mcp.command", stub_command(), "--control-plane.api-key", "env:KEY",
                  "--health.listen-addr", "127.0.0.1:0",
                  env={"CONTROL_PLANE_POLL_TIMEOUT": "bogus"})
    assert proc.returncode == 2, proc.stdout
    problems = [line for line in proc.stdout.splitlines() if line.startswith("CRIT  config")]
    assert len(problems) == 3, proc.stdout
    text = "\n".join(problems)
    assert "--http-proxy" in text
    assert "CONTROL_PLANE_POLL_TIMEOUT" in text
    assert "%s:4 (log.format)" % path in text
    assert "(+2 more)" in proc.stdout.splitlines()[0]
    # Checks that do not depend on the broken settings still ran.
    assert statuses(proc)["mcp_command"][0] == "OK"
    assert statuses(proc)["control_plane"][0] == "SKIP"


def test_every_problem_of_a_broken_file_is_listed_with_its_line(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("control_plane:\n  tunel_id: x\n  poll_timeout: 5\nlog:\n  levl: debug\n")
    proc = doctor("--config", str(path))
    assert proc.returncode == 2
    problems = [line for line in proc.stdout.splitlines() if line.startswith("CRIT  config")]
    assert len(problems) == 3, proc.stdout
    assert "%s:2: unknown key control_plane.tunel_id" % path in problems[0]
    assert "%s:3: control_plane.poll_timeout" % path in problems[1]
    assert "%s:5: unknown key log.levl" % path in problems[2]


def test_proxy_wanting_negotiate_or_ntlm_is_named(relay):
    proxy = ForwardProxy(credentials=("user", "pass"), offer=("Negotiate", "NTLM"))
    try:
        url = proxy.url.replace("http://", "http://user:wrong@")
        proc = doctor(*https_target(relay, "--http-proxy", url, "--explain"), env={"KEY": "k"})
    finally:
        proxy.close()
    assert proc.returncode == 2, proc.stdout
    summary = statuses(proc)["control_plane"][1]
    assert "offers Negotiate, NTLM" in summary and "supports only Basic" in summary
    assert "wrong" not in proc.stdout
    assert "cntlm" in proc.stdout


def test_tinyproxy_rejecting_basic_credentials_says_check_the_password(relay, tmp_path):
    proxy = Tinyproxy(tmp_path, credentials=("user", "secret"))
    try:
        url = "http://user:wrong@127.0.0.1:%d" % proxy.port
        proc = doctor(*https_target(relay, "--http-proxy", url, "--explain"), env={"KEY": "k"})
    finally:
        proxy.stop()
    assert proc.returncode == 2, proc.stdout
    summary = statuses(proc)["control_plane"][1]
    assert "rejected the credentials in the proxy URL (40" in summary
    assert "wrong" not in proc.stdout


def test_dns_failure_without_a_proxy_suggests_the_proxy_settings(relay):
    args = base_args(relay)[:-2]
    args[args.index(relay.base_url)] = "https://control.invalid"
    proc = doctor(*args, "--explain", env={"KEY": "k"})
    assert proc.returncode == 2, proc.stdout
    assert statuses(proc)["control_plane"][1].startswith("DNS: cannot resolve control plane "
                                                         "control.invalid")
    assert "HTTPS_PROXY" in proc.stdout and "no proxy is configured" in proc.stdout


def test_an_empty_env_value_counts_as_unset_and_doctor_says_which_source_won(relay,
                                                                           tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("mcp:\n  commands:\n    - command: %s\n" % stub_command())
    env_file = tmp_path / "tunnel-client.env"
    env_file.write_text("MCP_COMMAND=\nCONTROL_PLANE_API_KEY=\n")
    args = base_args(relay)[:-2]
    index = args.index("--mcp.command")
    del args[index:index + 2]
    proc = doctor("--config", str(config), "--env-file", str(env_file), "--offline", *args)
    found = statuses(proc)
    assert found["mcp_command"][0] == "OK", proc.stdout
    sources = found["sources"][1]
    assert "CONTROL_PLANE_API_KEY, MCP_COMMAND set but empty (counts as unset)" in sources
    report = json.loads(doctor("--config", str(config), "--env-file", str(env_file),
                               "--offline", "--json", *args).stdout)
    evidence = [c for c in report["checks"] if c["id"] == "sources"][0]["evidence"]
    assert "MCP command: %s:2 (mcp.commands)" % config in evidence
    assert "MCP_COMMAND is set but empty: counts as unset" in evidence


def init(tmp_path, *args):
    import os
    import subprocess
    import sys
    from tests.support.daemon import ROOT
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTROL_PLANE_", "MCP_"))}
    env.update({"HOME": str(tmp_path), "PYTHONPATH": ROOT, "XDG_CONFIG_HOME": ""})
    return subprocess.run([sys.executable, "-m", "tunnel_client", "init"] + list(args),
                          capture_output=True, text=True, env=env, timeout=60)


def test_init_starts_the_command_defaults_to_stdio_and_takes_run_spellings(tmp_path):
    # The run spellings work, and the command is really started before a profile is written.
    broken = init(tmp_path, "--control-plane.tunnel-id", TID, "--mcp.command",
                  "python3 -m no_such_module")
    assert broken.returncode == 1
    assert "mcp-command did not start: python3 exited with code 1" in broken.stderr
    made = init(tmp_path, "--control-plane.tunnel-id", TID, "--mcp.command", stub_command())
    assert made.returncode == 0, made.stderr
    assert "Sample: sample_mcp_stdio_local" in made.stdout  # not the OAuth (DCR) sample
    assert "answered initialize" in made.stdout
    # A sample's required flags are required.
    missing = init(tmp_path, "--tunnel-id", TID, "--sample", "sample_mcp_remote_no_auth")
    assert missing.returncode == 1 and "needs --mcp-server-url" in missing.stderr
