"""A StdioSession over the stub server for the stdio room tests, and request builders.
The ``child`` fixture (conftest.py) makes them."""

import contextlib
import json
import os
import signal
import sys
import threading

from tunnel_client import wire
from tunnel_client.housekeeping import Housekeeping
from tunnel_client.mcp.stdio.policy import StdioPolicy
from tunnel_client.mcp.stdio.session import StdioSession
from tests.support.patience import PATIENCE


class Scheduler(Housekeeping):
    """Housekeeping that keeps what each named job was scheduled with and returned."""

    def __init__(self):
        super().__init__("test")
        self.jobs = []  # [name, delay, what the job returned (once it ran)]

    def call_later(self, delay, job, name=""):
        entry = [name, delay, "not run"]
        self.jobs.append(entry)

        def run():
            entry[2] = job()
            return entry[2]
        super().call_later(delay, run, name)


class Child:
    """A session over the stub server, with the log of what the stub received."""

    def __init__(self, tmp_path, *flags, era="", **policy):
        self.log_path = str(tmp_path / "stub.jsonl")
        argv = [sys.executable, "-m", "tunnel_client.devtools.stub", "--log", self.log_path]
        self.scheduler = Scheduler()
        self.scheduler.start()
        self.session = StdioSession(
            "main", argv + list(flags), dict(os.environ),
            StdioPolicy(**dict({"health_interval": 0, "restart_backoff": 0.01,
                                "stop_grace": 0.5}, **policy)), era=era)
        self.session.start(self.scheduler)

    def run(self, msg, session_id=None, timeout=PATIENCE, ctype=wire.CMD_JSONRPC):
        headers = {"Mcp-Session-Id": [session_id]} if session_id else {}
        cmd = wire.Command("r-%s" % (msg or {}).get("id"), "tok", ctype, "main", 0.0,
                           headers, msg)
        return list(self.session.handle(cmd, wire.Deadline.after(timeout)))

    def received(self):
        try:
            with open(self.log_path) as handle:
                return [json.loads(line) for line in handle]
        except FileNotFoundError:
            return []

    def wait_received(self, method, timeout=PATIENCE / 2):
        """What the stub logged once ``method`` is among it (bounded polling)."""
        deadline = wire.Deadline.after(timeout)
        while not deadline.expired():
            found = [m for m in self.received() if m["method"] == method]
            if found:
                return found
            threading.Event().wait(0.01)
        return []

    def close(self):
        self.session.stop()
        self.scheduler.stop()


def initialize(rpc_id="init-1", version="2025-06-18"):
    return {"jsonrpc": "2.0", "id": rpc_id, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": {},
        "clientInfo": {"name": "tester", "version": "1"}}}


def call(rpc_id, name="echo", **arguments):
    return {"jsonrpc": "2.0", "id": rpc_id, "method": "tools/call",
            "params": {"name": name, "arguments": arguments}}


def only(replies):
    assert len(replies) == 1, replies
    return replies[0]


@contextlib.contextmanager
def paused(pid):
    """The process stays alive but runs (and reads) nothing until the block ends."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass  # replaced meanwhile


class Session:
    """A session over any argv (the ``session`` fixture stops it after the test)."""

    def __init__(self, argv, era="", **policy):
        self.scheduler = Housekeeping("test")
        self.scheduler.start()
        self.session = StdioSession("main", argv, dict(os.environ), StdioPolicy(**dict(
            {"health_interval": 0, "restart_backoff": 0.01, "stop_grace": 0.5}, **policy)),
            era=era)
        self.session.start(self.scheduler)

    def run(self, msg, timeout=PATIENCE):
        cmd = wire.Command("r", "tok", wire.CMD_JSONRPC, "main", 0.0, {}, msg)
        return list(self.session.handle(cmd, wire.Deadline.after(timeout)))

    def close(self):
        self.session.stop()
        self.scheduler.stop()


# Stays up but closes its input, then says so: every later write to it fails.
DEAF = ("import os, signal\nos.close(0)\n"
        "print('{\"jsonrpc\": \"2.0\", \"method\": \"notifications/deaf\"}', flush=True)\n"
        "signal.pause()\n")


def deaf(session, **kw):
    """A session (from the ``session`` fixture) over a child that has closed its input."""
    s = session([sys.executable, "-c", DEAF], stop_grace=0.1, **kw)
    said = s.session.metrics.stdio_unrouted_notifications
    deadline = wire.Deadline.after(PATIENCE / 2)
    while not said.value(channel="main", method="notifications/deaf") and \
            not deadline.expired():
        threading.Event().wait(0.01)
    return s
