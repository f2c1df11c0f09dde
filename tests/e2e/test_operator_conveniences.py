"""Conveniences operators expect: run --env-file, SIGHUP reloads the log settings (and says
what needs a restart), and run/doctor/health find the packaged files with no arguments."""

import json
import os
import signal
import subprocess
import sys

import requests

from tests.support.calls import final, initialize, tool_call
from tests.support.daemon import ROOT, stub_command, wait_for


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CONTROL_PLANE_", "MCP_", "LOG_", "HEALTH_"))}
    env.update({"PYTHONPATH": ROOT, "NO_PROXY": "*"})
    env.update(extra)
    return env


def events(path):
    found = []
    with open(path, errors="replace") as handle:
        for line in handle:
            try:
                found.append(json.loads(line))
            except ValueError:
                pass
    return found


def test_run_env_file_and_sighup_reload(relay, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("log:\n  level: info\n  format: json\ncontrol_plane:\n"
                      "  poll_timeout: 2s\n")
    env_file = tmp_path / "tunnel-client.env"
    env_file.write_text("CONTROL_PLANE_API_KEY=%s\nCONTROL_PLANE_TUNNEL_ID=%s\n"
                        % (relay.api_key, relay.tunnel_id))
    log_path = tmp_path / "daemon.log"
    url_file = tmp_path / "admin.url"
    with open(str(log_path), "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tunnel_client", "run", "--env-file", str(env_file),
             "--config", str(config), "--control-plane.base-url", relay.base_url,
             "--health.listen-addr", "127.0.0.1:0", "--health.url-file", str(url_file),
             "--mcp.command", stub_command()],
            stdout=out, stderr=subprocess.STDOUT, env=clean_env(), cwd=ROOT)
    try:
        # The key and tunnel id came from the env file only.
        final(relay, initialize())
        assert not [e for e in events(log_path) if e["msg"] == "command received"]
        config.write_text("log:\n  level: debug\n  format: json\ncontrol_plane:\n"
                          "  poll_timeout: 3s\n")
        proc.send_signal(signal.SIGHUP)
        applied = wait_for(lambda: [e for e in events(log_path)
                                    if e["msg"].startswith("reload: applied")], 10,
                           message="the reload line")[0]
        assert applied["applied"] == ["log.level"]
        assert applied["needs_restart"] == ["control_plane.poll_timeout"]
        warned = [e for e in events(log_path) if e["msg"].startswith("reload: changed settings")]
        assert warned and warned[0]["level"] == "WARN"
        assert "control_plane.poll_timeout" in warned[0]["msg"]
        final(relay, tool_call("echo", 1, input="x"))
        wait_for(lambda: [e for e in events(log_path) if e["msg"] == "command received"], 10,
                 message="debug lines after the reload")
        base = open(str(url_file)).read().strip()
        assert requests.get(base + "/api/log-level", timeout=2).json()["level"] == "debug"
        assert relay.api_key not in log_path.read_text()
    finally:
        proc.terminate()
        proc.wait(30)


def with_defaults(config_path, url_file, *argv):
    """The CLI with its packaged default paths pointed at test files."""
    code = ("import sys; import tunnel_client.config.profiles as p; "
            "import tunnel_client.cli.health as h; p.DEFAULT_CONFIG = %r; "
            "h.DEFAULT_URL_FILE = %r; from tunnel_client.cli import main; "
            "sys.exit(main(%r))" % (str(config_path), str(url_file), list(argv)))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=clean_env(KEY="k"), cwd=ROOT, timeout=60)


def test_doctor_and_health_find_the_packaged_files_without_arguments(relay, daemon,
                                                                      tmp_path):
    url_file = tmp_path / "admin.url"
    config = tmp_path / "config.yaml"
    config.write_text("control_plane:\n  tunnel_id: %s\n  api_key: env:KEY\n"
                      "health:\n  listen_addr: 127.0.0.1:0\n  url_file: %s\n"
                      "mcp:\n  commands:\n    - command: %s\n"
                      % (relay.tunnel_id, url_file, stub_command()))
    doctor = with_defaults(config, url_file, "doctor", "--offline", "--lock-file",
                           str(tmp_path / "lock"))
    assert "OK    config           loaded %s (default path)" % config in doctor.stdout, \
        doctor.stdout + doctor.stderr
    daemon(mcp_command=stub_command(), args=["--health.url-file", str(url_file)])
    wait_for(lambda: url_file.exists() and url_file.read_text().strip(), 10)
    health = with_defaults(config, url_file, "health")
    assert health.returncode == 0, health.stdout + health.stderr
    assert "Locator:           %s" % url_file in health.stdout


def cli(*argv, env=None):
    return subprocess.run([sys.executable, "-m", "tunnel_client"] + list(argv),
                          capture_output=True, text=True, env=clean_env(**(env or {})),
                          cwd=ROOT, timeout=60)


def test_config_check_lists_every_problem_and_show_names_each_source(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("control_plane:\n  tunnel_id: tunnel_%s\nlog:\n  format: jsonish\n"
                      % ("2" * 32))
    bad = cli("config", "check", "--config", str(config), "--http-proxy", "http://p:x",
              env={"CONTROL_PLANE_POLL_TIMEOUT": "bogus"})
    assert bad.returncode == 1
    lines = bad.stdout.splitlines()
    assert len([l for l in lines if l.startswith("tunnel-client config: ")]) == 3, bad.stdout
    assert "%s:4 (log.format)" % config in bad.stdout
    assert lines[-1].endswith("has 3 problems")

    config.write_text("control_plane:\n  tunnel_id: tunnel_%s\n" % ("2" * 32))
    env_file = tmp_path / "env"
    env_file.write_text("CONTROL_PLANE_API_KEY=sk-very-secret-1\nMCP_COMMAND=server --stdio\n")
    good = cli("config", "check", "--config", str(config), "--env-file", str(env_file))
    assert good.returncode == 0 and good.stdout.strip().endswith("is valid"), good.stdout
    shown = cli("config", "show", "--config", str(config), "--env-file", str(env_file),
                "--json")
    settings = json.loads(shown.stdout)["settings"]
    assert settings["control_plane.api_key"] == {
        "value": "[REDACTED]", "source": "env", "from": "env CONTROL_PLANE_API_KEY"}
    assert settings["control_plane.tunnel_id"]["from"] == \
        "%s:2 (control_plane.tunnel_id)" % config
    assert settings["log.level"]["from"] == "default"
    assert "sk-very-secret-1" not in shown.stdout
    text = cli("config", "show", "--config", str(config), "--env-file", str(env_file))
    assert "[REDACTED]  (env CONTROL_PLANE_API_KEY)" in text.stdout
    assert "sk-very-secret-1" not in text.stdout


def test_a_taken_admin_port_names_its_holder_and_the_setting(tmp_path):
    import socket
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        proc = cli("run", "--control-plane.tunnel-id", "tunnel_" + "2" * 32,
                   "--control-plane.api-key", "env:KEY", "--mcp.command", stub_command(),
                   "--health.listen-addr", "127.0.0.1:%d" % port, env={"KEY": "k"})
    finally:
        holder.close()
    assert proc.returncode == 1
    line = proc.stderr.strip().splitlines()[-1]
    assert "Address already in use (held by " in line
    assert "(pid %d" % os.getpid() in line
    assert "health.listen_addr (--health.listen-addr, HEALTH_LISTEN_ADDR)" in line


def test_metrics_have_build_info_and_cpu_seconds_as_a_counter(relay, daemon, tmp_path):
    from tests.support import prom
    from tunnel_client import __version__
    url_file = tmp_path / "admin.url"
    daemon(mcp_command=stub_command(), args=["--health.url-file", str(url_file)])
    base = wait_for(lambda: url_file.exists() and url_file.read_text().strip(), 10)
    families = prom.parse(requests.get(base + "/metrics", timeout=2).text)
    assert families["process_cpu_seconds_total"]["type"] == "counter"
    assert prom.value(families, "tunnel_client_build_info", version=__version__) == 1
