"""Start the stdio MCP server for real: spawn it, ask ``initialize`` (or
``server/discover`` for a server that only speaks the 2026 revision), stop it cleanly.

Finding the executable is not enough: ``python3 -m no_such_module`` resolves fine and
exits at once. This is the check cron can run while no daemon is up, and ``init`` runs
before it writes a profile.
"""

import collections
import json
import queue
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import List, Mapping, Optional, Sequence

from tunnel_client import __version__

LEGACY_VERSION = "2025-06-18"
MODERN_VERSION = "2026-07-28"
STDERR_LINES = 8


@dataclass
class StartResult:
    ok: bool
    summary: str
    evidence: List[str] = field(default_factory=list)


def _initialize(rpc_id: int) -> dict:
    return {"jsonrpc": "2.0", "id": rpc_id, "method": "initialize", "params": {
        "protocolVersion": LEGACY_VERSION, "capabilities": {},
        "clientInfo": {"name": "tunnel-client-doctor", "version": __version__}}}


def _discover(rpc_id: int) -> dict:
    return {"jsonrpc": "2.0", "id": rpc_id, "method": "server/discover", "params": {"_meta": {
        "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "tunnel-client-doctor",
                                               "version": __version__}}}}


class _Child:
    def __init__(self, argv: Sequence[str], environ: Mapping[str, str]):
        self.proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=dict(environ), start_new_session=True)
        self.lines: "queue.Queue[Optional[bytes]]" = queue.Queue()
        self.stderr = collections.deque(maxlen=STDERR_LINES)
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines.put),
                         daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self._keep_err),
                         daemon=True).start()

    @staticmethod
    def _read(stream, sink):
        for line in iter(stream.readline, b""):
            sink(line)
        sink(None)

    def _keep_err(self, line):
        if line is not None:
            self.stderr.append(line.decode("utf-8", "replace").rstrip()[:300])

    def send(self, message: dict) -> bool:
        try:
            self.proc.stdin.write(json.dumps(message).encode() + b"\n")
            self.proc.stdin.flush()
            return True
        except OSError:
            return False

    def reply(self, rpc_id: int, deadline: float) -> Optional[dict]:
        """The JSON-RPC reply with ``rpc_id``; None at EOF or when time is up."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                return None
            try:
                message = json.loads(line)
            except ValueError:
                continue  # a log line on stdout; the daemon skips these too
            if isinstance(message, dict) and message.get("id") == rpc_id and (
                    "result" in message or "error" in message):
                return message

    def stop(self, grace: float) -> str:
        """Close stdin, then SIGTERM, then SIGKILL: how it went, in words."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        for how, action in (("when its input closed", None),
                            ("after SIGTERM", signal.SIGTERM), ("after SIGKILL", signal.SIGKILL)):
            if action is not None and self.proc.poll() is None:
                try:
                    self.proc.send_signal(action)
                except OSError:
                    pass
            try:
                code = self.proc.wait(grace)
                return "stopped %s (exit %s)" % (how, code)
            except subprocess.TimeoutExpired:
                continue
        return "did not stop even after SIGKILL"


def check(argv: Sequence[str], environ: Mapping[str, str], timeout: float = 10.0,
          stop_grace: float = 2.0) -> StartResult:
    started = time.monotonic()
    deadline = started + timeout
    try:
        child = _Child(argv, environ)
    except OSError as exc:
        return StartResult(False, "cannot start %s: %s" % (argv[0], exc.strerror or exc))
    evidence = ["spawned pid %d" % child.proc.pid]
    try:
        answer, method = None, "initialize"
        if child.send(_initialize(1)):
            answer = child.reply(1, deadline)
        if answer is not None and "error" in answer and child.send(_discover(2)):
            # A server on the 2026 revision may refuse initialize; ask it the modern way.
            discovered = child.reply(2, deadline)
            if discovered is not None and "result" in discovered:
                answer, method = discovered, "server/discover"
    finally:
        stopped = child.stop(stop_grace)
    evidence.append(stopped)
    evidence += ["stderr: %s" % line for line in child.stderr]
    took = time.monotonic() - started
    if answer is None:
        code = child.proc.returncode
        if code is not None and took < timeout:
            return StartResult(False, "%s exited with code %s before answering initialize%s"
                               % (argv[0], code, ": " + child.stderr[-1] if child.stderr
                                  else ""), evidence)
        return StartResult(False, "%s started but did not answer initialize within %gs"
                           % (argv[0], timeout), evidence)
    if "result" in answer:
        info = answer["result"].get("serverInfo") if isinstance(answer["result"], dict) \
            else None
        name = "%s %s" % (info.get("name", "?"), info.get("version", "")) \
            if isinstance(info, dict) else "an MCP server"
        return StartResult(True, "started, answered %s (%s), %s" % (method, name.strip(),
                                                                    stopped), evidence)
    error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
    return StartResult(True, "started and answered %s with JSON-RPC error %s, %s" % (
        method, error.get("code"), stopped), evidence)
