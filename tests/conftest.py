import os
import threading

import pytest

from tests.support.daemon import Daemon, LoggedProcess
from tunnel_client.devtools.relay import Relay


@pytest.fixture
def relay():
    server = Relay(response_timeout="20s").start()
    yield server
    server.stop()


@pytest.fixture
def daemon(relay, request):
    """Factory: daemon(mcp_command=..., args=[...]) -> a polling Daemon."""
    started = []

    def start(wait=True, **kwargs):
        instance = Daemon(relay, **kwargs)
        started.append(instance)
        if wait:
            instance.wait_polling()
        return instance

    yield start
    _stop_and_report(request, started)


@pytest.fixture
def spawned(request):
    """Factory: spawned(argv, env=..., name=...) -> a LoggedProcess (tests.support.daemon),
    for daemons a test starts itself: their output is kept in a file and printed in the
    report of a failed test, or of a stop that outlived its timeout."""
    started = []

    def start(argv, env=None, name="tunnel-client", cwd=None):
        process = LoggedProcess(argv, env, cwd, name)
        started.append(process)
        return process

    yield start
    _stop_and_report(request, started)


def _stop_and_report(request, processes):
    report = getattr(request.node, "rep_call", None)
    failed = report is not None and report.failed
    for process in processes:
        process.stop()
        if failed or process.overran:
            print(process.report())
        process.cleanup()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def http_stub():
    """Factory for in-process Streamable HTTP stub servers; returns the /mcp URL."""
    from tunnel_client.devtools.stub import StubOptions, make_http_server

    servers = []

    def start(**options):
        server = make_http_server(StubOptions(**options))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return "http://127.0.0.1:%d/mcp" % server.port

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def scripted():
    """Factory for loopback HTTP servers answering with handler(request) (support.servers)."""
    from tests.support.servers import Scripted

    opened = []

    def start(handler):
        server = Scripted(handler)
        opened.append(server)
        return server

    yield start
    for server in opened:
        server.close()


@pytest.fixture
def url_file(tmp_path):
    """Where a daemon started with --health.url-file writes its admin URL."""
    return str(tmp_path / "admin-url")


@pytest.fixture
def stub_log(tmp_path):
    path = tmp_path / "stub.jsonl"
    path.touch()
    return str(path)


def read_stub_log(path):
    import json
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


# Skipped groups and what turns each on, printed at the end of a run.
SKIP_GROUPS = (
    ("browser", "headless browser (admin UI)", "make browser-deps (root: apt chromium)"),
    ("proxy", "forward proxy", "make proxy-deps (root: apt tinyproxy)"),
    ("node", "npm MCP peers", "make peers (needs node >= 20 and npm)"),
    ("sdk", "official mcp SDK", "a Python >= 3.10 venv (make clean test)"),
)


def pytest_terminal_summary(terminalreporter):
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    counts = {}
    for report in skipped:
        keywords = getattr(report, "keywords", None) or {}  # collect reports lack it on pytest 6
        group = next((g for g in SKIP_GROUPS if g[0] in keywords), None)
        counts[group] = counts.get(group, 0) + 1
    terminalreporter.section("skipped, and how to run them")
    for group in SKIP_GROUPS:
        if group in counts:
            terminalreporter.line("%3d %-28s %s" % (counts[group], group[1], group[2]))
    if None in counts:
        terminalreporter.line("%3d %-28s %s" % (counts[None], "other",
                                                "reasons above (pytest -rs)"))


os.environ.setdefault("NO_PROXY", "*")
