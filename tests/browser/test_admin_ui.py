"""The admin UI in headless chromium against a running daemon and the local control plane."""

import os
import sys

import pytest
import requests

from tests.browser.conftest import ARTIFACTS
from tests.browser.hostile_stub import MARKUP
from tests.browser.protected_server import (JWKS_MARKUP, OFF_ORIGIN_HOST,
                                            PUBLIC_TOKEN_ENDPOINT, protected_mcp)
from tests.support.calls import final, initialize, tool_call
from tests.support.daemon import stub_command, wait_for

pytestmark = pytest.mark.browser

SAMPLE_MS = 400  # the page samples /api/status, /metrics and the panels' APIs this often
CHANNEL_MARKUP = "<b>channel-markup</b>"
HOSTILE_COMMAND = " ".join([sys.executable, "-m", "tests.browser.hostile_stub",
                            "--server-name", CHANNEL_MARKUP])
DESCRIPTION_MARKUP = "<i>description-markup</i>"
BODY_MARKUP = b"<b>body-markup</b>"


def start_daemon(daemon, tmp_path, args=(), **kwargs):
    url_file = tmp_path / "health-url"
    instance = daemon(args=["--health.url-file", str(url_file)] + list(args), **kwargs)
    base = wait_for(lambda: url_file.exists() and url_file.read_text().strip(), 15,
                    message="the health URL file")
    return instance, base


def api(base, path):
    session = requests.Session()
    session.trust_env = False
    with session:
        return session.get(base + path, timeout=10)


def number(browser, css):
    value = browser.attribute(css, "data-value")
    return int(value) if value else None


def markup_elements(browser, scope):
    """Elements the daemon's strings would have created if the page parsed them as HTML."""
    return browser.execute("return document.querySelectorAll(arguments[0]).length;",
                           ", ".join("%s %s" % (scope, tag) for tag in ("b", "i", "img")))


def save_screenshot(browser, name):
    """The whole page at 1024 px wide, kept under artifacts/ for people to look at."""
    browser.execute("if (document.activeElement) { document.activeElement.blur(); }"
                    "window.scrollTo(0, 0);")  # clicks scroll the page; show it from the top
    height = browser.execute("return document.documentElement.scrollHeight;")
    browser.set_size(1024, min(max(int(height or 900), 600), 4000))
    browser.screenshot(os.path.join(ARTIFACTS, name))


def test_admin_ui_shows_live_state_and_changes_the_log_level(relay, daemon, browser, tmp_path):
    _, base = start_daemon(daemon, tmp_path, mcp_command=HOSTILE_COMMAND)
    browser.get("%s/ui?interval=%d" % (base, SAMPLE_MS))
    try:
        # Overview: the tunnel, readiness with every input and its time, the channel.
        wait_for(lambda: browser.text("#tunnel-id") == relay.tunnel_id, 10,
                 message="the tunnel id in the header")
        wait_for(lambda: browser.text("#readiness-badge") == "ready", 10, message="ready badge")
        assert browser.text("#readiness-state") == "Ready"
        inputs = {row: browser.text('#readiness-inputs tr[data-input="%s"]' % row)
                  for row in ("control_plane", "channel:main")}
        assert "ok" in inputs["control_plane"] and "polling" in inputs["control_plane"]
        since = browser.text('#readiness-inputs tr[data-input="control_plane"] td:last-child')
        assert "ago" in since, since
        wait_for(lambda: "healthy" in (browser.text('#channels tr[data-channel="main"]') or ""),
                 10, message="the main channel row")
        channel = browser.text('#channels tr[data-channel="main"]')
        assert "stdio" in channel and "pid " in channel

        # Without targets or an HTTP main, Harpoon and OAuth each say why in one line.
        wait_for(lambda: browser.text("#harpoon-state") == "off", 10, message="Harpoon off")
        assert "no harpoon targets registered" in browser.text("#harpoon-summary")
        assert not browser.execute("return document.getElementById('harpoon-targets-block')"
                                   ".offsetHeight || document.getElementById("
                                   "'harpoon-calls-block').offsetHeight;")
        assert browser.attribute("#oauth-state", "data-state") == "disabled"

        # Untrusted strings are shown as text, never parsed as markup.
        wait_for(lambda: MARKUP in browser.texts("#log-list .log-msg"), 10,
                 message="the stdio server's stderr line in the log view")
        assert CHANNEL_MARKUP in browser.text('#channels tr[data-channel="main"] .channel-target')
        assert browser.execute("return document.querySelectorAll("
                               "'#log-list img, #log-list b, #channels b').length;") == 0
        assert browser.execute("return window.__pwned === undefined;")

        # Live counters, the latency sparkline and a log line arriving over the stream.
        wait_for(lambda: browser.attribute("#logs", "data-stream") == "open", 10,
                 message="the log stream to open")
        wait_for(lambda: number(browser, "#counter-polled") is not None, 10,
                 message="the commands-polled counter")
        polled = number(browser, "#counter-polled")
        posted = number(browser, "#counter-posted")
        final(relay, initialize())
        reply = final(relay, tool_call("echo", rpc_id=7, text="from the browser test"))
        assert reply["resp_json"]["result"]["structuredContent"] == {
            "echoed": "from the browser test"}
        wait_for(lambda: number(browser, "#counter-polled") >= polled + 2, 10,
                 message="commands polled to go up by 2")
        wait_for(lambda: number(browser, "#counter-posted") >= posted + 2, 10,
                 message="responses posted to go up by 2")
        wait_for(lambda: int(browser.attribute("#latency-spark", "data-points") or 0) >= 1, 10,
                 message="a latency point")
        assert browser.text("#latency-last").endswith("ms")
        wait_for(lambda: any(reply["request_id"] in row for row in browser.texts(".log-row")),
                 10, message="the command's log line over the stream")

        # The runtime log level toggle talks to the daemon.
        assert api(base, "/api/log-level").json()["level"] == "debug"
        browser.click('#level-buttons button[data-level="info"]')
        wait_for(lambda: api(base, "/api/log-level").json()["level"] == "info", 10,
                 message="GET /api/log-level to say info")
        wait_for(lambda: browser.attribute('button[data-level="info"]', "aria-pressed") == "true",
                 5, message="the info button to be pressed")
        assert browser.attribute('button[data-level="debug"]', "aria-pressed") == "false"
        wait_for(lambda: "runtime log level updated" in browser.texts("#log-list .log-msg"), 10,
                 message="the level change in the log view")

        # The view filter hides lower levels without asking the daemon.
        assert "DEBUG" in browser.texts("#log-list .log-level")
        browser.click('#log-filter-level option[value="info"]')
        levels = set(browser.texts("#log-list .log-level"))
        assert "INFO" in levels and "DEBUG" not in levels, levels
        browser.click('#log-filter-level option[value="debug"]')
        assert "DEBUG" in browser.texts("#log-list .log-level")

        # The support bundle link follows the chosen window.
        assert browser.attribute("#bundle-link", "href") == "/api/logs/export?minutes=30"
        browser.click('#bundle-minutes option[value="60"]')
        assert browser.attribute("#bundle-link", "href") == "/api/logs/export?minutes=60"
        browser.click('#bundle-minutes option[value="30"]')
        bundle = api(base, browser.attribute("#bundle-link", "href"))
        assert bundle.status_code == 200 and bundle.content[:2] == b"\x1f\x8b"  # gzip

        # Legible at 1024 px: nothing wider than the window; no script or CSP errors.
        assert browser.execute("return document.documentElement.scrollWidth <= "
                               "document.documentElement.clientWidth;")
        assert browser.console_errors() == []
    finally:
        save_screenshot(browser, "admin-ui.png")


def test_admin_ui_shows_why_the_daemon_is_not_ready(relay, daemon, browser, tmp_path):
    instance, base = start_daemon(daemon, tmp_path, mcp_command=stub_command(),
                           api_key="not-the-relay-key", wait=False)
    wait_for(lambda: "401" in api(base, "/readyz").text or "403" in api(base, "/readyz").text,
             15, message="/readyz to report the rejected key")
    browser.get("%s/?interval=%d" % (base, SAMPLE_MS))
    try:
        wait_for(lambda: browser.text("#readiness-badge") == "not ready", 10,
                 message="the not-ready badge")
        assert browser.text("#readiness-state") == "Not ready"
        readyz = api(base, "/readyz")
        assert readyz.status_code == 503
        wait_for(lambda: browser.text("#readiness-reason") == readyz.text, 10,
                 message="the /readyz reason on the page")
        row = '#readiness-inputs tr[data-input="control_plane"]'
        assert browser.attribute(row, "class") == "row-bad"
        assert "failing" in browser.text(row)
        assert browser.text("#poll-last-success") == "never"
        assert browser.attribute("#poll-last-error", "class") == "text-bad"
    finally:
        save_screenshot(browser, "admin-ui-not-ready.png")

    # A daemon that went away: the page says so instead of showing old data as current.
    instance.stop()
    wait_for(lambda: browser.execute("return !document.getElementById('banner').hidden;"), 10,
             message="the unreachable banner")
    assert "Cannot reach" in browser.text("#banner")
    assert browser.text("#readiness-badge") == "unreachable"
    wait_for(lambda: browser.attribute("#logs", "data-stream") == "retrying", 10,
             message="the log stream to retry")


def harpoon_call(relay, rpc_id, **arguments):
    """call_target through the relay on the harpoon channel; the tool result."""
    reply = final(relay, tool_call("call_target", rpc_id, **arguments), channel="harpoon")
    assert reply["resp_code"] == 200, reply
    return reply["resp_json"]["result"]


def call_rows(browser):
    return browser.texts("#harpoon-calls tbody tr")


def test_admin_ui_shows_harpoon_targets_and_recent_calls(relay, daemon, browser, scripted,
                                                          tmp_path):
    internal = scripted(lambda request: (200, {"Content-Type": "text/html"}, BODY_MARKUP))
    internal_url = internal.url.replace("/mcp", "/inventory")
    _, base = start_daemon(daemon, tmp_path, mcp_command=stub_command(), args=[
        "--harpoon.allow-plaintext-http", "--harpoon.capture-payloads",
        "--harpoon.target", "label=internal,url=%s,desc=%s" % (internal_url, DESCRIPTION_MARKUP),
        "--harpoon.target", "label=spare,url=%s" % internal.url.replace("/mcp", "/spare")])
    browser.get("%s/ui?interval=%d" % (base, SAMPLE_MS))
    try:
        # The status line and one row per target, the URL and description as text.
        wait_for(lambda: browser.text("#harpoon-state") == "on", 10, message="Harpoon on")
        summary = browser.text("#harpoon-summary")
        assert "2 targets" in summary and "plaintext HTTP allowed" in summary, summary
        assert "payload capture on" in summary and "no calls since start" in summary, summary
        row = browser.text('#harpoon-targets tr[data-label="internal"]')
        assert internal_url in row and DESCRIPTION_MARKUP in row and "config" in row, row
        assert "No calls yet" in browser.text("#harpoon-calls-empty")

        # Calls through the relay appear newest first with status, latency and outcome.
        assert harpoon_call(relay, 1, label="internal", method="POST", body="ping")[
            "structuredContent"]["status_code"] == 200
        refused = harpoon_call(relay, 2, label="internal", method="DELETE")
        assert refused["isError"] is True
        wait_for(lambda: len(call_rows(browser)) == 2, 10, message="two calls in the table")
        newest, oldest = call_rows(browser)
        assert "internal" in newest and "DELETE" in newest and "invalid method" in newest
        assert browser.attribute("#harpoon-calls tbody tr:first-child", "class") == "row-bad"
        assert "POST" in oldest and "success" in oldest and " ms" in oldest
        assert browser.text("#harpoon-calls tbody tr:last-child .call-status") == "200"
        wait_for(lambda: "2 calls since start, 1 not successful" in
                 browser.text("#harpoon-summary"), 10, message="totals from /metrics")

        # Captured payloads unfold as text and stay unfolded when a new call redraws.
        browser.click("#harpoon-calls tbody tr:last-child .payload summary")
        payload = browser.text("#harpoon-calls tbody tr:last-child .payload")
        assert "ping" in payload and BODY_MARKUP.decode() in payload, payload
        harpoon_call(relay, 3, label="internal")
        wait_for(lambda: len(call_rows(browser)) == 3, 10, message="the third call")
        assert browser.execute("return document.querySelector("
                               "'#harpoon-calls tbody tr:last-child .payload').open;")
        assert markup_elements(browser, "#harpoon-card") == 0

        # The target filter narrows the table to one label.
        browser.click('#harpoon-call-filter option[value="spare"]')
        assert call_rows(browser) == []
        assert "No calls to spare" in browser.text("#harpoon-calls-empty")
        browser.click('#harpoon-call-filter option[value=""]')
        assert len(call_rows(browser)) == 3

        # A stdio main channel has no OAuth discovery: one line says why.
        assert browser.attribute("#oauth-state", "data-state") == "disabled"
        assert browser.text("#oauth-state") == "Disabled"
        assert "HTTP main channel" in browser.text("#oauth-reason")
        assert browser.execute("return document.getElementById('oauth-found').offsetHeight;") == 0

        assert browser.execute("return document.documentElement.scrollWidth <= "
                               "document.documentElement.clientWidth;")
        assert browser.console_errors() == []
    finally:
        save_screenshot(browser, "admin-ui-harpoon.png")


def endpoint_row(browser, key):
    return browser.text('#oauth-endpoints tr[data-endpoint="%s"]' % key) or ""


def test_admin_ui_shows_oauth_discovery_and_its_harpoon_targets(relay, daemon, browser,
                                                                scripted, tmp_path):
    server = protected_mcp(scripted)
    _, base = start_daemon(daemon, tmp_path, mcp_url=server.url,
                           args=["--harpoon.allow-plaintext-http"])
    browser.get("%s/ui?interval=%d" % (base, SAMPLE_MS))
    try:
        wait_for(lambda: browser.attribute("#oauth-state", "data-state") == "ok", 15,
                 message="OAuth discovery on the page")
        facts = browser.text("#oauth-facts")
        assert server.url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp") in facts
        assert "WWW-Authenticate" in facts and "tools.read tools.call" in facts, facts

        # Each endpoint says how the tunnel reaches it.
        assert "harpoon://oauth-registration-endpoint-0" in endpoint_row(browser,
                                                                         "registration_endpoint")
        token = endpoint_row(browser, "token_endpoint")
        assert PUBLIC_TOKEN_ENDPOINT in token and "directly" in token, token
        assert "rejected" in endpoint_row(browser, "revocation_endpoint")
        assert JWKS_MARKUP in endpoint_row(browser, "jwks_uri")
        registered = browser.texts("#oauth-registered li")
        assert any("harpoon://oauth-registration-endpoint-0" in item and
                   server.url.replace("/mcp", "/register") in item for item in registered)
        rejected = browser.texts("#oauth-rejected li")
        assert any(OFF_ORIGIN_HOST in item and "off the MCP server's origin" in item
                   for item in rejected), rejected
        assert markup_elements(browser, "#oauth-card") == 0

        # The registered endpoints are Harpoon targets of category oauth.
        wait_for(lambda: browser.text("#harpoon-state") == "on", 10, message="Harpoon on")
        target = browser.text('#harpoon-targets tr[data-label="oauth-registration-endpoint-0"]')
        assert target and "oauth" in target and "registration-endpoint" in target, target
        assert browser.console_errors() == []
    finally:
        save_screenshot(browser, "admin-ui-oauth.png")


def test_admin_ui_shows_policy_decisions_and_the_audit_chain_head(relay, daemon, browser,
                                                                 tmp_path):
    key = tmp_path / "audit.key"
    key.write_text("k" * 32)
    config = tmp_path / "config.yaml"
    config.write_text("policy:\n  channels:\n    main:\n      tools: {deny: ['<b>*']}\n"
                      "audit:\n  file: %s\n  key_file: %s\n" % (tmp_path / "audit.jsonl", key))
    _, base = start_daemon(daemon, tmp_path, mcp_command=stub_command(),
                           args=["--config", str(config)])
    browser.get("%s/ui?interval=%d" % (base, SAMPLE_MS))
    try:
        wait_for(lambda: browser.text("#policy-state") == "on", 10, message="policy on")
        assert "main: enforce" in browser.text("#policy-summary")
        # a caller-chosen name is shown as text, never parsed as markup
        refused = final(relay, tool_call(CHANNEL_MARKUP, 1))["resp_json"]
        assert refused["error"]["data"]["rule"] == "tools.deny:<b>*"
        final(relay, tool_call("echo", 2, input="fine"))
        wait_for(lambda: len(browser.texts("#policy-decisions tbody tr")) == 2, 10,
                 message="two decisions in the panel")
        newest = browser.texts("#policy-decisions tbody tr")[0]
        oldest = browser.texts("#policy-decisions tbody tr")[1]
        assert "echo" in newest and "allow" in newest
        assert CHANNEL_MARKUP in oldest and "deny" in oldest and "tools.deny:<b>*" in oldest
        head = api(base, "/api/audit").json()["audit"]["head"]
        wait_for(lambda: ("chain head %d:%s" % (head["seq"], head["digest"][:16])) in
                 browser.text("#policy-summary"), 10, message="the chain head")
        assert markup_elements(browser, "#policy-card") == 0
        assert browser.console_errors() == []
    finally:
        save_screenshot(browser, "admin-ui-policy.png")
