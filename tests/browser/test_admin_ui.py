"""The admin UI in headless chromium against a running daemon and the local control plane."""

import os
import sys

import pytest
import requests

from tests.browser.conftest import ARTIFACTS
from tests.browser.hostile_stub import MARKUP
from tests.support.calls import final, initialize, tool_call
from tests.support.daemon import stub_command, wait_for

pytestmark = pytest.mark.browser

SAMPLE_MS = 400  # the page samples /api/status and /metrics this often (?interval=)
CHANNEL_MARKUP = "<b>channel-markup</b>"
HOSTILE_COMMAND = " ".join([sys.executable, "-m", "tests.browser.hostile_stub",
                            "--server-name", CHANNEL_MARKUP])


def start_daemon(daemon, tmp_path, **kwargs):
    url_file = tmp_path / "health-url"
    instance = daemon(args=["--health.url-file", str(url_file)], **kwargs)
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


def save_screenshot(browser, name):
    """The whole page at 1024 px wide, kept under artifacts/ for people to look at."""
    browser.execute("if (document.activeElement) { document.activeElement.blur(); }")
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
