import pytest

from tests.interop.peers import ACTIVE_DAEMONS


@pytest.fixture(autouse=True)
def daemon_log_on_failure(request):
    """Module-scoped tunnels outlive a test: show their daemon's log when one fails."""
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for daemon in ACTIVE_DAEMONS:
            print("---- daemon log (%s) ----\n%s" % (" ".join(daemon.argv[-4:]),
                                                     daemon.output()[-20000:]))
