import os

import pytest

from tests.browser.webdriver import Browser, missing_tools

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARTIFACTS = os.path.join(ROOT, "artifacts", "browser")


@pytest.fixture
def browser(request):
    """Headless chromium at 1024 px wide; skips when Debian's packages are missing."""
    missing = missing_tools()
    if missing:
        pytest.skip("headless browser test needs %s on PATH (run `make browser-deps`)"
                    % " and ".join(missing))
    instance = Browser(width=1024, height=900)
    yield instance
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        try:
            for entry in instance.console():
                print("console %s: %s" % (entry.get("level"), entry.get("message")))
        except Exception as exc:  # diagnostics only; the test already failed
            print("console unavailable: %s" % exc)
        print("---- chromedriver log ----\n" + instance.log_text())
    instance.quit()
