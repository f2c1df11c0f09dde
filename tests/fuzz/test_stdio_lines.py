"""Fuzzing what a stdio MCP server prints: a fake server (``cat`` of a fuzzed file) feeds
the real reader. Every line within the size limit that is JSON reaches the session, in
order, and nothing else; over-long lines, garbage and JSON that is not JSON-RPC are
skipped; the reader always reaches the end and the session survives whatever it reads."""

import json
import logging
import os
import tempfile
import threading

import pytest
pytest.importorskip("hypothesis", minversion="6")  # older ones lack what we use

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.strategies import JSON, dumps, rpc_messages
from tunnel_client.housekeeping import Housekeeping
from tunnel_client.mcp.process import ChildProcess
from tunnel_client.mcp.stdio import StdioPolicy, StdioSession
from tests.support.patience import PATIENCE

MAX_LINE = 64
LINES = st.one_of(
    rpc_messages().map(dumps), JSON.map(dumps), st.binary(max_size=80),
    st.integers(MAX_LINE - 2, MAX_LINE + 2).map(lambda n: b'"' + b"x" * (n - 2) + b'"'),
    st.sampled_from([b"", b"  ", b"\r", b"\t{}\r", b"\x00", b"\xff\xfe", b"NaN", b"[1,"]))
FILES = st.tuples(st.lists(LINES, max_size=12), st.booleans()).map(
    lambda pair: b"\n".join(pair[0]) + (b"\n" if pair[1] else b""))


class Trouble(logging.Handler):
    """Collects log records that mean a reader or a job blew up."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        if record.exc_info or "failed" in record.getMessage():
            self.records.append(record.getMessage())


@pytest.fixture
def trouble():
    handler = Trouble()
    logger = logging.getLogger("tunnel_client")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(previous)


def expected_messages(data: bytes, max_line: int):
    """The reader's contract, written independently: lines are split at \\n; a line whose
    content exceeds max_line is dropped whole; the rest is stripped and parsed as JSON, with
    NaN and Infinity (not JSON, but written by Python's json) read as null."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    found = []
    for line in lines:
        if len(line) > max_line or not line.strip():
            continue
        try:
            found.append(json.loads(line.strip(), parse_constant=lambda name: None))
        except ValueError:
            continue
    return found


def fake_server(data: bytes) -> str:
    handle = tempfile.NamedTemporaryFile(prefix="fuzz-stdio-", delete=False)
    handle.write(data)
    handle.close()
    return handle.name


def canonical(messages):
    return [json.dumps(m, sort_keys=True) for m in messages]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(FILES)
def test_reader_delivers_exactly_the_json_lines_within_the_limit(trouble, data):
    path = fake_server(data)
    received, exited = [], threading.Event()
    try:
        child = ChildProcess(["cat", path], dict(os.environ), "main", 1, MAX_LINE,
                             on_message=received.append, on_exit=lambda code: exited.set())
        child.start()
        assert exited.wait(PATIENCE), "the reader never reached the end of the output"
    finally:
        os.unlink(path)
    assert canonical(received) == canonical(expected_messages(data, MAX_LINE))
    assert not trouble.records


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(FILES)
def test_stdio_session_survives_anything_its_server_prints(trouble, data):
    path = fake_server(data)
    fatal = threading.Event()
    housekeeping = Housekeeping()
    housekeeping.start()
    # The fake server prints only once told to: a server that exits before the session
    # has registered it meets the race in test_server_exiting_at_once_is_noticed.
    binding = StdioSession("main", ["sh", "-c", 'read go; exec cat "$1"', "fake", path],
                           dict(os.environ),
                           StdioPolicy(restart_limit=0, health_interval=0, max_line=MAX_LINE),
                           on_fatal=lambda exc: fatal.set())
    try:
        binding.start(housekeeping)
        binding.child.send(b"go\n", timeout=5)
        # restart_limit=0: the server's exit at end of file is final, which proves the
        # reader read everything and supervision ran.
        assert fatal.wait(PATIENCE), "the session never saw its server exit"
    finally:
        binding.stop()
        housekeeping.stop()
        os.unlink(path)
    assert not trouble.records


def test_deeply_nested_line_is_skipped_like_any_other_bad_line(trouble):
    data = b"[" * 100000 + b"\n" + dumps({"jsonrpc": "2.0", "method": "x"}) + b"\n"
    path = fake_server(data)
    received, exited = [], threading.Event()
    try:
        child = ChildProcess(["cat", path], dict(os.environ), "main", 1, 1 << 20,
                             on_message=received.append, on_exit=lambda code: exited.set())
        child.start()
        assert exited.wait(PATIENCE)
    finally:
        os.unlink(path)
    assert received == [{"jsonrpc": "2.0", "method": "x"}]


def test_server_exiting_at_once_is_noticed(monkeypatch):
    original = ChildProcess.start

    def start_and_see_it_exit(self):
        original(self)
        self.wait_exited(5)  # the widest form of the race: the exit is seen during start

    monkeypatch.setattr(ChildProcess, "start", start_and_see_it_exit)
    fatal = threading.Event()
    housekeeping = Housekeeping()
    housekeeping.start()
    binding = StdioSession("main", ["true"], dict(os.environ),
                           StdioPolicy(restart_limit=0, health_interval=0),
                           on_fatal=lambda exc: fatal.set())
    try:
        binding.start(housekeeping)
        noticed, state = fatal.wait(2), binding.state
    finally:
        binding.stop()
        housekeeping.stop()
    assert noticed, "a server that exited at once still counts as %r" % state
