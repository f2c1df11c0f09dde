"""The admin UI tells the truth: a nearly spent restart budget is a warning, not a green
"healthy"; Harpoon off reads "off"; error counts and their last-minute deltas come from the
daemon; and the page settles, so `chromium --headless --screenshot` finishes."""

import os
import subprocess
import tempfile

import pytest

from tests.browser.test_admin_ui import SAMPLE_MS, api, number, start_daemon
from tests.browser.webdriver import CHROMIUM, missing_tools
from tests.support.calls import final, initialize, tool_call
from tests.support.daemon import stub_command, wait_for

pytestmark = pytest.mark.browser


def test_nearly_spent_restart_budget_warns_and_errors_count_the_last_minute(
        relay, daemon, browser, tmp_path):
    _, base = start_daemon(daemon, tmp_path, mcp_command=stub_command("--test-tools"), args=[
        "--mcp.stdio.restart-limit", "5", "--mcp.stdio.restart-window", "10m",
        "--mcp.stdio.restart-backoff", "50ms"])
    final(relay, initialize())
    for n in range(4):
        crashed = final(relay, tool_call("crash", n + 1))
        assert crashed["resp_json"]["error"]["code"] == -32603
        wait_for(lambda: api(base, "/readyz").status_code == 200, 15,
                 message="the restarted server")
    wait_for(lambda: api(base, "/api/status").json()["channels"][0]
             .get("restart_budget", {}).get("used") == 4, 10, message="4 restarts counted")
    # The page opens after the failures: the last-minute delta must still show them.
    browser.get("%s/?interval=%d" % (base, SAMPLE_MS))
    row = '#channels tr[data-channel="main"]'
    wait_for(lambda: browser.attribute(row, "class") == "row-warn", 10,
             message="the channel row warning")
    assert "at risk" in browser.text(row + " .channel-health")
    assert "restarts 4 of 5" in browser.text(row + " .restart-budget")
    assert "restart budget nearly spent" in browser.text("#warnings")
    wait_for(lambda: number(browser, "#counter-errors") == 4, 10, message="4 errors")
    note = browser.text("#counter-errors .tile-rate")
    assert note.startswith("+4 in the last min"), note
    assert "4 failed" in note
    assert browser.text("#readiness-badge") == "ready"


def test_harpoon_off_is_shown_as_off(relay, daemon, browser, tmp_path):
    _, base = start_daemon(daemon, tmp_path, mcp_command=stub_command())
    channels = {c["name"]: c for c in api(base, "/api/status").json()["channels"]}
    assert channels["harpoon"]["healthy"] is None and channels["harpoon"]["state"] == "off"
    browser.get("%s/?interval=%d" % (base, SAMPLE_MS))
    row = '#channels tr[data-channel="harpoon"]'
    wait_for(lambda: browser.text(row + " .channel-health") == "off", 10,
             message="Harpoon off in the channel table")
    assert "healthy" not in browser.text(row)
    assert browser.text("#harpoon-state") == "off"


def test_the_page_settles_for_a_headless_screenshot(relay, daemon, tmp_path):
    if missing_tools():
        pytest.skip("needs chromium (run `make browser-deps`)")
    _, base = start_daemon(daemon, tmp_path, mcp_command=stub_command())
    final(relay, initialize())
    shot = str(tmp_path / "ui.png")
    profile = tempfile.mkdtemp(prefix="chromium-")
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--user-data-dir=" + profile, "--window-size=1024,900",
            # Virtual time advances only while the network is idle: a page holding an
            # open-ended request (a live log stream) never finishes the budget.
            "--virtual-time-budget=5000",
            "--screenshot=" + shot, base + "/ui"]
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=90)
    assert os.path.getsize(shot) > 1000, proc.stdout[-2000:]


def test_a_control_plane_failure_is_one_short_line_with_details_folded(relay, daemon,
                                                                       browser, tmp_path):
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _, base = start_daemon(daemon, tmp_path, mcp_command=stub_command(), wait=False, args=[
        "--control-plane.base-url", "http://127.0.0.1:%d" % port,
        "--health.poll-failure-grace", "1s"])
    browser.get("%s/?interval=%d" % (base, SAMPLE_MS))
    line = "connection refused by 127.0.0.1:%d" % port
    wait_for(lambda: (browser.text("#poll-last-error .poll-error-line") or "").startswith(line),
             15, message="the short poll error line")
    assert browser.text("#poll-last-error .poll-error-line") == line + " [connection_refused]"
    wait_for(lambda: line in (browser.text("#readiness-reason") or ""), 10,
             message="the readiness reason")
    visible = browser.execute("return document.body.innerText;")
    for noise in ("Max retries", "HTTPConnectionPool", "NewConnectionError"):
        assert noise not in visible
    # The library's text is one click away, folded.
    assert browser.execute("return document.querySelector('#poll-last-error details').open;") \
        is False
    browser.click("#poll-last-error details summary")
    assert "Max retries" in browser.text("#poll-last-error details pre")
