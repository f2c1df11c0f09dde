"""MCP callers for the load benchmark: the same ``tools/call echo`` through the tunnel or
straight to the MCP server, so tunneled and direct numbers come from one client code path.

``http.client`` rather than requests: the load generator shares the 2 cores with what it
measures, so it should spend as little CPU per call as it can.
"""

import http.client
import itertools
import json
import subprocess
import threading
from typing import Dict, List, Optional
from urllib.parse import urlsplit

ACCEPT = "application/json, text/event-stream"  # what the reference's load harness sends
_FILL = "x" * (4 << 20)
_numbers = itertools.count(1)


class CallFailed(Exception):
    pass


def unique_text(size: int) -> str:
    """``size`` characters that no other call in this process carries."""
    head = "%012d|" % next(_numbers)
    return head + _FILL[:max(0, size - len(head))]


def echo_call(rpc_id, text: str) -> dict:
    return {"jsonrpc": "2.0", "id": rpc_id, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"input": text}}}


def echoed(message: dict) -> str:
    """The text an echo result carries, or CallFailed with what came instead."""
    if "result" not in message:
        raise CallFailed("error reply: %s" % json.dumps(message.get("error"))[:300])
    return message["result"]["structuredContent"]["echoed"]


def last_sse_message(body: bytes) -> dict:
    data = [line[5:].strip() for line in body.split(b"\n") if line.startswith(b"data:")]
    if not data:
        raise CallFailed("SSE reply without data")
    return json.loads(data[-1])


class HttpCaller:
    """One keep-alive Streamable HTTP connection (a caller is one thread)."""

    def __init__(self, url: str, session_id: Optional[str] = None, timeout: float = 120.0):
        parts = urlsplit(url)
        self.path = parts.path or "/"
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        self.headers = {"Content-Type": "application/json", "Accept": ACCEPT}
        if session_id:
            self.headers["Mcp-Session-Id"] = session_id

    def post(self, message: dict):
        self.conn.request("POST", self.path, json.dumps(message).encode(), self.headers)
        resp = self.conn.getresponse()
        body = resp.read()
        return resp.status, resp.getheader("Content-Type", ""), resp.getheader(
            "Mcp-Session-Id"), body

    def request(self, message: dict) -> dict:
        status, media, _, body = self.post(message)
        if status != 200:
            raise CallFailed("HTTP %d: %s" % (status, body[:300]))
        return last_sse_message(body) if media.startswith("text/event-stream") \
            else json.loads(body)

    def echo(self, text: str) -> str:
        return echoed(self.request(echo_call(1, text)))

    def close(self):
        self.conn.close()


def http_session(url: str) -> Optional[str]:
    """An MCP session as a connector opens one: initialize, then notifications/initialized."""
    caller = HttpCaller(url)
    try:
        status, _, session, body = caller.post({
            "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "tunnel-client-bench", "version": "1"}}})
        if status != 200:
            raise CallFailed("initialize: HTTP %d %s" % (status, body[:200]))
        if session:
            caller.headers["Mcp-Session-Id"] = session
        caller.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return session
    finally:
        caller.close()


class StdioDirect:
    """A direct stdio MCP client: one child, requests multiplexed by JSON-RPC id, as an
    MCP host talks to a local server. It is the baseline for the stdio binding."""

    def __init__(self, argv: List[str], env: Optional[dict] = None):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._waiting: Dict[int, list] = {}
        threading.Thread(target=self._read, name="stdio-direct-reader", daemon=True).start()
        self._request({"jsonrpc": "2.0", "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "tunnel-client-bench", "version": "1"}}})
        self._write({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def _write(self, message: dict):
        line = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        with self._lock:
            self.proc.stdin.write(line)
            self.proc.stdin.flush()

    def _read(self):
        for line in self.proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            slot = self._waiting.pop(message.get("id"), None)
            if slot is not None:
                slot[1] = message
                slot[0].set()
        for slot in list(self._waiting.values()):
            slot[0].set()

    def _request(self, message: dict, timeout: float = 120.0) -> dict:
        rpc_id = next(self._ids)
        slot = [threading.Event(), None]
        self._waiting[rpc_id] = slot
        self._write(dict(message, id=rpc_id))
        if not slot[0].wait(timeout) or slot[1] is None:
            raise CallFailed("no reply from the stdio server")
        return slot[1]

    def echo(self, text: str) -> str:
        return echoed(self._request(echo_call(None, text)))

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
