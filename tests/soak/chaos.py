"""The misbehaving side of the soak: a local control plane that keeps books and can lose a
poll reply after dequeuing it, and a scheduler that injects faults and kills the stdio
server on a seeded, recorded timetable.

What the faults are, and why each survives by design:

* poll 503 bursts, poll 429 + Retry-After, poll connections dropped before a command is
  taken: the shared backoff gate pauses every worker; nothing was dequeued, nothing lost.
* a poll reply lost *after* the command was dequeued: the client never saw the command, so
  no client can answer it; the relay redelivers it (as a service with a delivery lease
  would) and the ledger counts it separately. Without redelivery such a call is lost by
  the service, not by the client: that is the honest meaning of "no call lost".
* response-POST bursts of 503s or dropped connections, at most POST_ATTEMPTS - 1 = 2 long
  and at least RESPONSE_BURST_GAP apart: a terminal reply is POSTed at most 3 times with
  ~0.2 s and ~0.4 s between attempts, so a burst of 2 can fail two attempts of one POST
  and the third still lands. A burst of 3 on one POST exhausts the attempts and loses
  that reply by design (the caller then sees the control plane's timeout).
* SIGKILL of the stdio server: calls in flight get a synthesized -32603; the server is
  restarted and the handshake replayed before the next call.
"""

import collections
import os
import random
import signal
import threading
import time
from typing import Callable, List, Optional

from tunnel_client.devtools.relay import Relay

RESPONSE_BURST_GAP = 2.0  # seconds; longer than a POST's whole retry span (~0.6 s)
POLLS_BETWEEN_FAULTS = 6  # polls the relay answers after a poll fault before the next one


class ChaosRelay(Relay):
    """The local control plane plus bookkeeping of every reply it accepted or refused."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._book_lock = threading.Lock()
        self.accepted_finals = collections.Counter()  # request_id -> finals accepted
        self.refused_finals = collections.Counter()  # request_id -> finals answered 404
        self.lost_after_dequeue: List[str] = []
        self._lose = 0

    def lose_next_poll_reply(self):
        with self._book_lock:
            self._lose += 1

    def stop_losing(self):
        with self._book_lock:
            self._lose = 0

    def take_commands(self, *args, **kwargs):
        taken = super().take_commands(*args, **kwargs)
        with self._book_lock:
            lose = bool(taken) and self._lose > 0
            if lose:
                self._lose -= 1
                self.lost_after_dequeue.extend(c["request_id"] for c in taken)
        if lose:
            self.requeue(taken)  # redeliver first, as a delivery lease expiring would
            raise ConnectionResetError("injected: poll reply lost after dequeue")
        return taken

    def accept_response(self, payload, shard_token):
        status, answer = super().accept_response(payload, shard_token)
        if isinstance(payload, dict) and payload.get("resp_type", "jsonrpc_response") != \
                "jsonrpc_notify" and isinstance(payload.get("request_id"), str):
            with self._book_lock:
                book = self.accepted_finals if status == 200 else self.refused_finals
                book[payload["request_id"]] += 1
        return status, answer


class Chaos(threading.Thread):
    """Injects one fault every 0.3-1.2 s and kills the stdio server every ``kill_every``."""

    def __init__(self, relay: ChaosRelay, child_pid: Callable[[], Optional[int]],
                 seed: int, kill_every: float, before_kill: Callable[[], None]):
        super().__init__(name="chaos", daemon=True)
        self.relay = relay
        self.child_pid = child_pid
        self.rng = random.Random(seed)
        self.kill_every = kill_every
        self.before_kill = before_kill
        self.stop = threading.Event()
        self.injected = collections.Counter()
        self.kills: List[float] = []  # time.monotonic() of each SIGKILL
        self._last_response_burst = 0.0
        self._polls_at_fault = 0

    def run(self):
        next_kill = time.monotonic() + self.kill_every
        while not self.stop.wait(self.rng.uniform(0.3, 1.2)):
            now = time.monotonic()
            if now >= next_kill:
                self._kill()
                next_kill = now + self.kill_every
                continue
            self._fault(now)

    def _fault(self, now: float):
        faults = self.relay.faults
        kind = self.rng.choice(["poll-503", "poll-429", "poll-drop", "poll-lost",
                                "response-burst", "response-burst"])
        if kind.startswith("poll-") and (faults.pending("poll") or
                                         len(self.relay.polls) - self._polls_at_fault <
                                         POLLS_BETWEEN_FAULTS):
            # Poll faults are episodes with healthy polls between them. While the client
            # backs off (one probe per step) a timetable faster than its probes would fail
            # every probe: a lasting outage, which this soak does not mean to model.
            return
        if kind.startswith("poll-"):
            self._polls_at_fault = len(self.relay.polls)
        if kind == "poll-503":
            faults.push("poll", *["status:503"] * self.rng.randint(1, 4))
        elif kind == "poll-429":
            faults.push("poll", "status:429:1")
        elif kind == "poll-drop":
            faults.push("poll", *["drop"] * self.rng.randint(1, 2))
        elif kind == "poll-lost":
            self.relay.lose_next_poll_reply()
        elif now - self._last_response_burst >= RESPONSE_BURST_GAP:
            burst = [self.rng.choice(["status:503", "drop"]) for _ in range(
                self.rng.randint(1, 2))]
            faults.push("response", *burst)
            self._last_response_burst = now
        else:
            return
        self.injected[kind] += 1

    def _kill(self):
        pid = self.child_pid()
        if pid is None:
            return
        self.before_kill()
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        self.kills.append(time.monotonic())
        self.injected["sigkill"] += 1

    def finish(self):
        """Stop injecting and discard faults not yet applied, so the drain is clean."""
        self.stop.set()
        self.join(10)
        self.relay.faults.script.clear()
        self.relay.stop_losing()
