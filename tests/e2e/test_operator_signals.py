"""Failures an operator must see: readiness transitions and outages in the log with their
reason, one short classified line instead of library text, and every command ending in
exactly one outcome counter with an access-log line."""

import socket

import requests

from tests.support import prom
from tests.support.calls import final, initialize, rpc, tool_call
from tests.support.daemon import admin_base, stub_command, wait_for


def messages(instance, prefix):
    return [e for e in instance.events() if str(e.get("msg", "")).startswith(prefix)]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_readiness_transitions_are_logged_with_their_reason(relay, daemon, url_file):
    instance = daemon(mcp_command=stub_command(), args=[
        "--health.url-file", url_file, "--health.poll-failure-grace", "1s",
        "--control-plane.poll-timeout", "500ms"])
    wait_for(lambda: messages(instance, "readiness: ready"), 15, message="ready logged")
    relay.faults.rates["poll-503"] = 1.0
    down = wait_for(lambda: messages(instance, "readiness: not ready: control plane failing"),
                    20, message="the outage logged")[0]
    assert down["level"] == "WARN" and "HTTP 503" in down["reason"]
    assert down["input"] == "control_plane" and " for " in down["reason"]
    # One line per state, not one per second of the outage.
    assert len(messages(instance, "readiness: not ready: control plane failing")) == 1
    relay.faults.rates.clear()
    wait_for(lambda: len(messages(instance, "readiness: ready")) >= 2, 20,
             message="recovery logged")


def test_unreachable_control_plane_is_one_classified_line(relay, daemon, url_file):
    port = closed_port()
    instance = daemon(wait=False, mcp_command=stub_command(), args=[
        "--health.url-file", url_file, "--health.poll-failure-grace", "1s",
        "--control-plane.base-url", "http://127.0.0.1:%d" % port])
    base = admin_base(url_file)
    expected = "control plane unreachable: connection refused by 127.0.0.1:%d for " % port
    wait_for(lambda: expected in requests.get(base + "/readyz", timeout=2).text, 15,
             message="the short reason on /readyz")
    reason = requests.get(base + "/readyz", timeout=2).text
    for noise in ("HTTPConnectionPool", "Max retries", "NewConnectionError", "poll failed"):
        assert noise not in reason, reason
    status = requests.get(base + "/api/status", timeout=2).json()
    poll = status["poll"]
    assert poll["last_error"] == "connection refused by 127.0.0.1:%d" % port
    assert poll["last_error_kind"] == "connection_refused"
    assert "Max retries" in poll["last_error_detail"]  # the library's text, kept for details
    families = prom.parse(requests.get(base + "/metrics", timeout=2).text)
    assert prom.value(families, "commands_poll_errors_total", error_kind="connection_refused")
    assert prom.value(families, "commands_poll_errors_total", error_kind="other") is None
    logged = wait_for(lambda: messages(instance, "readiness: not ready: control plane "
                                                 "unreachable: connection refused"), 10)
    assert "Max retries" not in logged[0]["msg"]


def completed(base):
    families = prom.parse(requests.get(base + "/metrics", timeout=2).text)
    found = {}
    for family in families.values():
        for name, labels, number in family["samples"]:
            if name == "commands_completed_total":
                found[(labels["outcome"], labels["source"])] = number
    return found


def test_every_command_ends_in_exactly_one_outcome_and_an_access_line(relay, daemon,
                                                                      url_file):
    instance = daemon(mcp_command=stub_command("--test-tools"), args=[
        "--health.url-file", url_file, "--mcp.stdio.restart-backoff", "100ms"])
    base = admin_base(url_file)
    final(relay, initialize())
    final(relay, tool_call("echo", 1, input="secret-payload-text"))
    final(relay, rpc("no/such/method", 2))
    crashed = final(relay, tool_call("crash", 3))
    assert crashed["resp_json"]["error"]["data"]["tunnel_failure"]["source"] == \
        "transport_closed"
    # A call the MCP server cannot finish before its response deadline.
    call = relay.submit(tool_call("sleep", 4, seconds=4), response_timeout="1s")
    expected = {("ok", ""): 2, ("upstream_error", ""): 1, ("failed", "transport_closed"): 1}
    counts = wait_for(lambda: (lambda c: c if sum(c.values()) == 5 else None)(completed(base)),
                      20, message="five outcomes")
    for key, number in expected.items():
        assert counts.get(key) == number, counts
    assert sum(n for (outcome, _), n in counts.items() if outcome == "expired") == 1, counts
    del call
    families = prom.parse(requests.get(base + "/metrics", timeout=2).text)
    assert prom.value(families, "commands_expired_total", stage="mcp") == 1
    recent = requests.get(base + "/api/status", timeout=2).json()["outcomes"]
    assert recent["last_window"].get("failed") == 1
    assert recent["last_window"].get("upstream_error") == 1
    assert recent["last_window"].get("expired") == 1

    lines = [e for e in instance.events() if e.get("access")]
    assert len(lines) == 5
    echo = [e for e in lines if e.get("tool") == "echo"][0]
    assert echo["level"] == "INFO" and echo["rpc_method"] == "tools/call"
    assert echo["channel"] == "main" and echo["status"] == 200 and echo["outcome"] == "ok"
    assert echo["bytes"] > 0 and echo["duration_ms"] >= 0 and echo["request_id"]
    assert echo["msg"].startswith("tools/call echo main -> 200 ok")
    assert "secret-payload-text" not in str(lines)


def test_access_log_can_be_switched_off(relay, daemon):
    instance = daemon(mcp_command=stub_command(), args=["--log.access", "false"])
    final(relay, initialize())
    final(relay, tool_call("echo", 1, input="x"))
    assert not [e for e in instance.events() if e.get("access")]


def test_an_undeliverable_answer_is_counted_as_dropped(relay, daemon, url_file):
    instance = daemon(mcp_command=stub_command(), args=["--health.url-file", url_file])
    base = admin_base(url_file)
    final(relay, initialize())
    relay.faults.push("response", "status:400")  # not retryable: the answer is lost
    relay.submit(tool_call("echo", 1, input="lost"))
    counts = wait_for(lambda: (lambda c: c if sum(c.values()) == 2 else None)(completed(base)),
                      15, message="two outcomes")
    assert counts == {("ok", ""): 1, ("dropped", "post_failed"): 1}, counts
    line = [e for e in instance.events() if e.get("access") and e.get("tool") == "echo"][0]
    assert line["outcome"] == "dropped" and line["source"] == "post_failed"
