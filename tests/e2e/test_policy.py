"""Policy and audit end to end: relay -> tunnel-client run -> a real stdio or HTTP MCP
server, in both MCP eras. What the policy refuses never reaches the server (its own log
shows it absent); the audit trail verifies offline."""

import json
import os
import signal

import pytest
import requests
import yaml

from tests.conftest import read_stub_log
from tests.support.calls import final, initialize, rpc, tool_call
from tests.support.daemon import stub_command, wait_for
from tunnel_client.policy.audit import AuditTrail
from tunnel_client.policy.verify import verify

MODERN = {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}
KEY = b"an-audit-key-for-tests-0123456789"

POLICY = {
    "tools": {"deny": ["fail", "count"]},
    "prompts": {"deny": ["greeting"]},
    "arguments": {"echo": {"schema": {
        "type": "object", "properties": {"input": {"type": "string", "pattern": "^ok"}}}}},
    "rate_limits": {"tools": {"uppercase": {"rate": "1/h", "burst": 2}}},
}


@pytest.fixture
def setup(tmp_path):
    """Factory: a config file with this policy for main and an audit trail."""
    key = tmp_path / "audit.key"
    key.write_bytes(KEY)
    key.chmod(0o600)

    def write(policy, mode="enforce", policy_file=False):
        channels = {"main": policy}
        if policy_file:
            path = tmp_path / "policy.yaml"
            path.write_text(yaml.safe_dump(channels))
            channels = str(path)
        document = {"policy": {"mode": mode, "channels": channels},
                    "audit": {"file": str(tmp_path / "audit.jsonl"), "key_file": str(key)}}
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(document))
        return ["--config", str(path)]
    write.audit = str(tmp_path / "audit.jsonl")
    write.tmp = tmp_path
    return write


def start(daemon, http_stub, transport, stub_log, args):
    if transport == "stdio":
        return daemon(mcp_command=stub_command("--log", stub_log), args=args)
    return daemon(mcp_url=http_stub(log_path=stub_log), args=args)


def message(era, msg):
    if era == "modern":
        params = msg.setdefault("params", {})
        params["_meta"] = dict(params.get("_meta") or {}, **MODERN)
    return msg


def answer(relay, msg):
    payload = final(relay, msg)
    assert payload["resp_type"] == "jsonrpc_response", payload
    return payload["resp_json"]


def refused_rule(reply, code=-32003):
    error = reply["error"]
    assert error["code"] == code and error["message"].startswith(
        "Refused by the tunnel's policy"), reply
    assert error["data"]["refused_by"] == "tunnel_policy"
    return error["data"]["rule"]


def audit_records(path):
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.mark.parametrize("era", ["legacy", "modern"])
@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_policy_is_enforced_for_every_binding_and_era(relay, daemon, http_stub, stub_log,
                                                     setup, transport, era):
    start(daemon, http_stub, transport, stub_log, setup(POLICY))
    opening = rpc("server/discover", 0) if era == "modern" else initialize(0)
    caps = answer(relay, message(era, opening))["result"]["capabilities"]
    assert "tools" in caps and "prompts" in caps  # the methods stay open
    tools = answer(relay, message(era, rpc("tools/list", 1)))["result"]["tools"]
    names = [t["name"] for t in tools]
    assert "echo" in names and "fail" not in names and "count" not in names
    prompts = answer(relay, message(era, rpc("prompts/list", 2)))["result"]["prompts"]
    assert prompts == []

    allowed = answer(relay, message(era, tool_call("echo", 3, input="ok fine")))
    assert allowed["result"]["structuredContent"] == {"echoed": "ok fine"}  # unchanged
    assert refused_rule(answer(relay, message(era, tool_call("fail", 101)))) == \
        "tools.deny:fail"
    assert refused_rule(answer(relay, message(era, rpc("prompts/get", 102, name="greeting")))) \
        == "prompts.deny:greeting"
    assert refused_rule(answer(relay, message(era, tool_call("echo", 103, input="DROP")))) == \
        "arguments.echo.schema"
    for rpc_id in (4, 5):
        assert "result" in answer(relay, message(era, tool_call("uppercase", rpc_id, input="a")))
    limited = answer(relay, message(era, tool_call("uppercase", 104, input="a")))
    assert refused_rule(limited, -32029) == "rate_limits.tools.uppercase"
    assert limited["error"]["data"]["retryable"] is True

    seen = read_stub_log(stub_log)
    # Refused calls never reached the server (ids are remapped on a stdio pipe: count names)
    assert [e["name"] for e in seen if e["method"] == "tools/call"] == \
        ["echo", "uppercase", "uppercase"]
    assert "prompts/get" not in [e["method"] for e in seen]
    if era == "modern":
        assert all(e["meta"] for e in seen if e["method"] == "tools/call")

    records = [r for r in audit_records(setup.audit) if r["type"] == "command"]
    denied = {r["rule"]: r for r in records if r["decision"] != "allow"}
    assert set(denied) == {"tools.deny:fail", "prompts.deny:greeting",
                           "arguments.echo.schema", "rate_limits.tools.uppercase"}
    assert denied["tools.deny:fail"]["name"] == "fail"
    assert all(len(r["request_sha256"]) == 64 and "request" not in r for r in records)


def test_read_only_preset_learns_from_tools_list(relay, daemon, setup, stub_log, tmp_path):
    daemon(mcp_command=stub_command("--log", stub_log), args=setup({"preset": "read_only"}))
    # The stub annotates no tool readOnlyHint: a call before any listing makes the gate
    # look the tools up itself, and is refused; the list advertises nothing callable.
    assert refused_rule(answer(relay, tool_call("echo", 1, input="x"))) == "preset:read_only"
    assert [e["method"] for e in read_stub_log(stub_log)].count("tools/list") == 1
    assert answer(relay, rpc("tools/list", 2))["result"]["tools"] == []
    assert answer(relay, rpc("resources/read", 3, uri="stub://readme"))["result"]["contents"]
    assert not [e for e in read_stub_log(stub_log) if e["method"] == "tools/call"]


def test_shadow_mode_records_without_blocking_and_a_reload_enforces(
        relay, daemon, setup, stub_log):
    args = setup({"tools": {"deny": ["echo"]}}, mode="shadow", policy_file=True)
    instance = daemon(mcp_command=stub_command("--log", stub_log), args=args)
    reply = answer(relay, tool_call("echo", 1, input="shadowed"))
    assert reply["result"]["structuredContent"] == {"echoed": "shadowed"}
    assert len(answer(relay, rpc("tools/list", 2))["result"]["tools"]) == 6  # not filtered
    shadow = [r for r in audit_records(setup.audit) if r.get("name") == "echo"]
    assert shadow[0]["decision"] == "shadow_deny" and shadow[0]["rule"] == "tools.deny:echo"

    # A call in flight across the reload finishes; the next one meets the new policy.
    slow = relay.submit(tool_call("sleep", 3, seconds=1), "main")
    wait_for(lambda: any(e["method"] == "tools/call" and e["name"] == "sleep"
                         for e in read_stub_log(stub_log)), message="the slow call to start")
    setup({"tools": {"deny": ["echo"]}}, mode="enforce", policy_file=True)
    instance.signal(signal.SIGHUP)
    wait_for(lambda: "policy reloaded" in instance.output(), message="the reload")
    assert "result" in slow.take(15)["resp_json"]
    assert refused_rule(answer(relay, tool_call("echo", 4, input="x"))) == "tools.deny:echo"
    calls = [e["name"] for e in read_stub_log(stub_log) if e["method"] == "tools/call"]
    assert calls == ["echo", "sleep"]


def test_a_bad_policy_edit_keeps_the_current_policy(relay, daemon, setup, stub_log):
    args = setup({"tools": {"deny": ["echo"]}}, policy_file=True)
    instance = daemon(mcp_command=stub_command(), args=args)
    (setup.tmp / "policy.yaml").write_text("main: {tools: {alow: [x]}}\n")
    instance.signal(signal.SIGHUP)
    wait_for(lambda: "policy reload failed" in instance.output(), message="the failed reload")
    assert refused_rule(answer(relay, tool_call("echo", 1, input="x"))) == "tools.deny:echo"


def test_the_trail_verifies_across_a_logrotate_reopen(relay, daemon, setup, tmp_path):
    instance = daemon(mcp_command=stub_command(), args=setup({}))
    answer(relay, tool_call("echo", 1, input="before"))
    rotated = setup.audit + ".1"
    import os
    os.rename(setup.audit, rotated)
    instance.signal(signal.SIGHUP)
    wait_for(lambda: os.path.exists(setup.audit), message="the reopened audit file")
    answer(relay, tool_call("echo", 2, input="after"))
    instance.stop()
    verdict = verify([setup.audit, rotated], KEY)
    assert verdict.ok, verdict.summary()
    assert audit_records(setup.audit)[0]["reason"] == "reopen"


def test_audit_failure_deny_refuses_calls_and_readiness_says_why(relay, daemon, tmp_path):
    key = tmp_path / "key"
    key.write_bytes(KEY)
    trail = tmp_path / "audit.jsonl"
    url_file = str(tmp_path / "admin-url")
    instance = daemon(mcp_command=stub_command(), args=[
        "--audit.file", str(trail), "--audit.key-file", str(key),
        "--health.url-file", url_file])
    answer(relay, tool_call("echo", 1, input="recorded"))
    # logrotate moved the file and something unwritable took its place: the reopen fails
    trail.rename(tmp_path / "moved.jsonl")
    trail.mkdir()
    instance.signal(signal.SIGHUP)
    wait_for(lambda: "audit record could not be written" in instance.output(),
             message="the failed reopen")
    assert refused_rule(answer(relay, tool_call("echo", 2, input="x"))) == "audit.on_failure"
    base = wait_for(lambda: open(url_file).read().strip(), message="the admin URL")
    ready = requests.get(base + "/readyz", timeout=5)
    assert ready.status_code == 503 and "audit trail cannot be written" in ready.text
    trail.rmdir()
    assert "result" in answer(relay, tool_call("echo", 3, input="back"))
    assert requests.get(base + "/readyz", timeout=5).status_code == 200


def test_a_trail_written_by_hand_without_the_key_fails_verification(tmp_path):
    path = str(tmp_path / "a.jsonl")
    trail = AuditTrail(path, KEY)
    trail.open()
    trail.close()
    assert not verify([path], b"another-key-another-key-another").ok


def test_operator_surface_api_metrics_and_the_chain_head(relay, daemon, setup, tmp_path):
    from tests.support import prom
    url_file = str(tmp_path / "admin-url")
    daemon(mcp_command=stub_command(), args=setup({"tools": {"deny": ["fail"]}}) + [
        "--health.url-file", url_file])
    answer(relay, tool_call("echo", 1, input="ok"))
    refused_rule(answer(relay, tool_call("fail", 2)))
    base = wait_for(lambda: open(url_file).read().strip(), message="the admin URL")
    state = requests.get(base + "/api/audit", timeout=5).json()
    assert state["enabled"] and state["policy"] == {"main": {"mode": "enforce",
                                                             "read_only": False}}
    head = state["audit"]["head"]
    assert [d["decision"] for d in state["recent"]][:2] == ["deny", "allow"]
    metrics = prom.parse(requests.get(base + "/metrics", timeout=5).text)
    assert prom.value(metrics, "policy_decisions_total", channel="main",
                      rule="tools.deny:fail", result="deny") == 1
    assert prom.value(metrics, "audit_records_total") >= 3

    head_text = "%d:%s" % (head["seq"], head["digest"])
    key_file = str(setup.tmp / "audit.key")
    ok = audit_cli("verify", setup.audit, "--key-file", key_file, "--head", head_text)
    assert ok.returncode == 0 and ok.stdout.startswith("OK:"), ok.stdout + ok.stderr
    tail = audit_cli("tail", setup.audit, "-n", "5")
    assert "tools/call fail deny rule=tools.deny:fail" in tail.stdout
    with open(setup.audit, "rb") as handle:
        content = handle.read().splitlines(keepends=True)
    with open(setup.audit, "wb") as handle:
        handle.writelines(content[:-1])  # the last record cut away
    cut = audit_cli("verify", setup.audit, "--key-file", key_file, "--head", head_text)
    assert cut.returncode == 2 and "truncated" in cut.stdout, cut.stdout


def audit_cli(*args):
    import subprocess
    import sys
    from tests.support.daemon import ROOT
    return subprocess.run([sys.executable, "-m", "tunnel_client", "audit"] + list(args),
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_doctor_checks_the_audit_key_permissions_and_the_trail(tmp_path):
    import subprocess
    import sys
    from tests.support.daemon import ROOT
    key = tmp_path / "audit.key"
    key.write_bytes(KEY)
    key.chmod(0o644)
    trail = str(tmp_path / "audit.jsonl")
    audit = AuditTrail(trail, KEY)
    audit.open()
    audit.write({"request_id": "r1"})
    audit.close()
    argv = [sys.executable, "-m", "tunnel_client", "doctor", "--offline",
            "--mcp.command", stub_command(), "--audit.file", trail,
            "--audit.key-file", str(key)]

    def doctor_line():
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=60,
                              env=dict(os.environ, PYTHONPATH=ROOT))
        return [line for line in proc.stdout.splitlines() if " audit " in line][0]

    assert doctor_line().startswith("WARN") and "chmod 600" in doctor_line()
    key.chmod(0o600)
    assert doctor_line().startswith("OK") and "trail verifies (3 records)" in doctor_line()
    with open(trail, "rb") as handle:
        content = handle.read().replace(b'"r1"', b'"r2"')
    with open(trail, "wb") as handle:
        handle.write(content)
    assert doctor_line().startswith("CRIT") and "MAC does not match" in doctor_line()


def test_policy_check_and_explain_commands(tmp_path):
    import subprocess
    import sys
    from tests.support.daemon import ROOT
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump({"policy": {"channels": {"main": {
        "preset": "read_only", "tools": {"deny": ["drop_*"]},
        "arguments": {"run_query": {"schema": {
            "type": "object", "properties": {"sql": {"pattern": "^SELECT"}}}}}}}}}))

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "tunnel_client", "policy"] + list(args),
                              capture_output=True, text=True, cwd=ROOT, timeout=60,
                              env=dict(os.environ, PYTHONPATH=ROOT))
    ok = cli("check", str(config_file))
    assert ok.returncode == 0 and "channel main: mode enforce; read_only preset" in ok.stdout
    explain = ["explain", "--config", str(config_file), "--method", "tools/call"]
    refused = cli(*explain, "--tool", "drop_users")
    assert refused.returncode == 1 and "rule tools.deny:drop_*" in refused.stdout
    query = cli(*explain, "--tool", "run_query", "--read-only-tool", "run_query",
                "--args", '{"sql": "DELETE FROM t"}')
    assert query.returncode == 1 and "arguments.run_query.schema" in query.stdout
    query = cli(*explain, "--tool", "run_query", "--read-only-tool", "run_query",
                "--args", '{"sql": "SELECT 1"}')
    assert query.returncode == 0 and query.stdout.startswith("forwarded")
    config_file.write_text("policy:\n  channels:\n    main:\n      tools: {alow: [x]}\n")
    bad = cli("check", str(config_file))
    assert bad.returncode == 1 and "main.tools" in bad.stderr and "alow" in bad.stderr


def test_the_harpoon_channel_is_policed_like_any_binding(relay, daemon, setup, scripted):
    backend = scripted(lambda request: (200, {"Content-Type": "text/plain"}, b"ok"))
    args = setup({"preset": "read_only", "tools": {"allow": ["call_target"]},
                  "arguments": {"call_target": {"schema": {
                      "properties": {"method": {"enum": ["GET"]}}}}}})
    # the policy is the harpoon channel's, not main's
    config = yaml.safe_load(open(args[1]))
    config["policy"]["channels"] = {"harpoon": config["policy"]["channels"]["main"]}
    with open(args[1], "w") as handle:
        yaml.safe_dump(config, handle)
    daemon(mcp_command=stub_command(), args=args + [
        "--harpoon.allow-plaintext-http", "true",
        "--harpoon.target", "label=inventory,url=%s" % backend.url])

    def call(msg):
        return final(relay, msg, channel="harpoon")["resp_json"]
    tools = call(rpc("tools/list", 1))["result"]["tools"]
    assert [t["name"] for t in tools] == ["list_targets", "call_target",
                                          "get_oauth_target_audience"]
    assert call(tool_call("call_target", 2, label="inventory"))["result"]["structuredContent"][
        "status_code"] == 200
    assert refused_rule(call(tool_call("call_target", 3, label="inventory", method="POST"))) \
        == "arguments.call_target.schema"
    assert len(backend.requests) == 1  # the refused POST never left the tunnel
    assert "result" in answer(relay, tool_call("echo", 4, input="main is not policed"))


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_capabilities_stay_truthful_in_both_eras(relay, daemon, http_stub, stub_log, setup,
                                                 transport):
    start(daemon, http_stub, transport, stub_log, setup({"methods": {"deny": ["prompts/*"]}}))
    legacy = answer(relay, initialize(0))["result"]["capabilities"]
    modern = answer(relay, message("modern", rpc("server/discover", 1)))["result"]
    assert "prompts" not in legacy and "tools" in legacy and "resources" in legacy
    assert "prompts" not in modern["capabilities"] and "tools" in modern["capabilities"]
    assert modern["supportedVersions"] == ["2026-07-28"]  # the rest of the result untouched
    assert refused_rule(answer(relay, message("modern", rpc("prompts/list", 2)))) == \
        "methods.deny:prompts/*"
