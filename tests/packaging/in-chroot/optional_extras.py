"""pytest plugin for the Debian 11 floor run (`-p optional_extras`).

The test extras hypothesis and mcp are optional: Debian 11 has neither at the versions
setup.cfg asks for (trustme arrives as a wheel from the host, but may be missing too). A
test, or a whole module at collection, that fails only because one of them cannot be
imported is reported as skipped with that reason. Every other failure stays a failure.
"""

import re

import pytest

OPTIONAL = ("hypothesis", "trustme", "mcp")
MISSING = re.compile(r"No module named '(%s)[.']" % "|".join(OPTIONAL))


def _reason(text):
    found = MISSING.search(text)
    return found and "needs %s (optional test extra, not on Debian 11)" % found.group(1)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.excinfo is not None and call.excinfo.errisinstance(ImportError):
        reason = _reason(str(call.excinfo.value))
        if reason:
            report.outcome = "skipped"
            report.longrepr = (str(item.fspath), item.location[1] or 0, "Skipped: " + reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        reason = _reason(str(report.longrepr))
        if reason:
            report.outcome = "skipped"
            report.longrepr = (str(collector.fspath), 0, "Skipped: " + reason)
