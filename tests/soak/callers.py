"""Steady caller load for the soak: MCP clients POSTing to the control plane's MCP URL,
each call carrying a payload no other call carries, every outcome written down.

Most calls are ``echo`` (JSON reply); one in five is ``count`` with a progress token and
an SSE reply, so progress notifications are checked for misrouting too.
"""

import itertools
import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import List, Optional

import requests

from tunnel_client.sse import SseParser

_numbers = itertools.count(1)


@dataclass
class CallRecord:
    caller: int
    rpc_id: int
    tool: str
    input: str
    token: Optional[str]
    sent: float  # time.monotonic()
    answered: Optional[float] = None
    status: Optional[int] = None
    message: Optional[dict] = None  # the final JSON-RPC message
    notes: List[dict] = field(default_factory=list)
    problem: str = ""  # transport trouble on the caller's side


class Caller(threading.Thread):
    def __init__(self, index: int, url: str, stop: threading.Event, seed: int,
                 pace: float = 0.01, timeout: float = 60.0):
        super().__init__(name="caller-%d" % index, daemon=True)
        self.index = index
        self.url = url
        self.stop = stop
        self.rng = random.Random(seed * 1000 + index)
        self.pace = pace
        self.timeout = timeout
        self.records: List[CallRecord] = []
        self.session = requests.Session()
        self.session.trust_env = False

    def run(self):
        while not self.stop.is_set():
            self.records.append(self.one_call())
            self.stop.wait(self.rng.uniform(0, 2 * self.pace))  # pacing, not synchronisation
        self.session.close()

    def one_call(self) -> CallRecord:
        n = next(_numbers)
        text = "soak-%d-%d-%08x" % (self.index, n, self.rng.getrandbits(32))
        streaming = self.rng.random() < 0.2
        tool, token = ("count", "tok-%d" % n) if streaming else ("echo", None)
        params = {"name": tool, "arguments": {"input": text}}
        if streaming:
            params["arguments"].update({"to": 3, "delay_ms": 20})
            params["_meta"] = {"progressToken": token}
        record = CallRecord(self.index, n, tool, text, token, time.monotonic())
        accept = "application/json, text/event-stream" if streaming else "application/json"
        try:
            resp = self.session.post(self.url, data=json.dumps(
                {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": params}),
                headers={"Content-Type": "application/json", "Accept": accept},
                timeout=self.timeout)
            record.answered = time.monotonic()
            record.status = resp.status_code
            if resp.headers.get("Content-Type", "").startswith("text/event-stream"):
                messages = [json.loads(e.data) for e in SseParser().feed(resp.content)]
                record.notes = [m for m in messages if "method" in m]
                finals = [m for m in messages if "method" not in m]
                record.message = finals[-1] if finals else None
                if len(finals) != 1:
                    record.problem = "%d final messages in one stream" % len(finals)
            else:
                record.message = resp.json()
        except (requests.RequestException, ValueError) as exc:
            record.answered = record.answered or time.monotonic()
            record.problem = "%s: %s" % (type(exc).__name__, exc)
        return record
