"""The pipe multiplexer: many callers' requests over one child's stdin/stdout.

Every request gets a fresh integer id on the pipe and every progress token a fresh string,
so callers that reuse ids (0, 1, ...) or send tokens of any JSON type never collide, and a
late reply to a retired request is dropped instead of leaking into a later call. Each call
has its own mailbox; what arrives there is typed (``Notify``, ``Final``, ``Gone``) and a
wait that runs out yields ``Expired``.

The caller's values are only ever stored as values, never used as keys or compared by
hash, so no id, token or ``_meta`` value can break the reader.
"""

import enum
import itertools
import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, List, Optional, Union

from tunnel_client import wire
from tunnel_client.mcp import protocol as mcp


SUBSCRIPTION_ID_KEY = "io.modelcontextprotocol/subscriptionId"


class GoneReason(enum.Enum):
    CHILD_EXITED = "child_exited"


@dataclass(frozen=True)
class Notify:
    message: dict


@dataclass(frozen=True)
class Final:
    message: dict


@dataclass(frozen=True)
class Gone:
    reason: GoneReason


@dataclass(frozen=True)
class Expired:
    """Nothing arrived before the wait ran out."""


Event = Union[Notify, Final, Gone, Expired]


@dataclass(frozen=True)
class Caller:
    """Who sent a call, as far as the tunnel can tell."""

    original_id: Any = None
    session_id: Optional[str] = None
    capabilities: FrozenSet[str] = frozenset()


@dataclass(eq=False)
class Call:
    """One request on the pipe: its pipe id, its caller and its mailbox."""

    rpc_id: int
    generation: int
    caller: Optional[Caller]  # None for the tunnel client's own requests (handshake, ping)
    token: Optional[str] = None
    caller_token: Any = None
    mailbox: "queue.Queue" = field(default_factory=queue.Queue)

    @property
    def internal(self) -> bool:
        return self.caller is None

    def next(self, timeout: Optional[float]) -> Event:
        try:
            return self.mailbox.get(timeout=timeout)
        except queue.Empty:
            return Expired()


class PipeMux:
    def __init__(self):
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: Dict[int, Call] = {}
        self._tokens: Dict[str, Call] = {}
        self._dead = 0  # every generation up to this one has exited

    def open(self, msg: dict, generation: int, caller: Optional[Caller] = None):
        """Register a request for the child of ``generation``.

        Returns the call and the line to write, or ``Gone`` when that child has already
        exited (its calls were failed; this one must not wait for an answer that cannot
        come).
        """
        token = mcp.progress_token(msg) if caller is not None else None
        with self._lock:
            if generation <= self._dead:
                return Gone(GoneReason.CHILD_EXITED), None
            rpc_id = next(self._ids)
            call = Call(rpc_id, generation, caller)
            if token is not None:
                call.token, call.caller_token = "tc-%d" % rpc_id, token.value
                self._tokens[call.token] = call
            self._pending[rpc_id] = call
        try:
            line = wire.dumps(mcp.with_id_and_token(msg, rpc_id, call.token)) + b"\n"
        except Exception:
            self.close(call)
            raise
        return call, line

    def close(self, call: Call):
        """Forget a call (answered, abandoned or failed); a late reply is then dropped."""
        with self._lock:
            self._pending.pop(call.rpc_id, None)
            if call.token is not None:
                self._tokens.pop(call.token, None)

    def fail_generation(self, generation: int, reason: GoneReason) -> int:
        """The child of ``generation`` exited: every call on it gets ``Gone`` now."""
        with self._lock:
            self._dead = max(self._dead, generation)
            doomed = [c for c in self._pending.values() if c.generation <= generation]
            for call in doomed:
                self._pending.pop(call.rpc_id, None)
                if call.token is not None:
                    self._tokens.pop(call.token, None)
        for call in doomed:
            call.mailbox.put(Gone(reason))
        return sum(1 for call in doomed if not call.internal)

    # --- what the child wrote ---------------------------------------------------------------

    def deliver_response(self, msg: dict) -> bool:
        rpc_id = msg.get("id")
        if type(rpc_id) is not int:  # ours are plain ints; anything else is not ours
            return False
        with self._lock:
            call = self._pending.pop(rpc_id, None)
            if call is not None and call.token is not None:
                self._tokens.pop(call.token, None)
        if call is None:
            return False
        call.mailbox.put(Final(msg))
        return True

    def deliver_progress(self, msg: dict) -> bool:
        token = mcp.notification_token(msg)
        if type(token) is not str:  # ours are strings; a server inventing others is ignored
            return False
        with self._lock:
            call = self._tokens.get(token)
        if call is None:
            return False
        call.mailbox.put(Notify(mcp.restore_progress_token(msg, call.caller_token)))
        return True

    def deliver_subscription(self, msg: dict) -> bool:
        """A notification tagged with the id of a ``subscriptions/listen`` in flight (the
        2026-07-28 server tags each frame of a listen stream with that request's id): to
        that call, tagged with its caller's own id."""
        meta = mcp.meta(msg)
        rpc_id = meta.get(SUBSCRIPTION_ID_KEY)
        if type(rpc_id) is not int:  # ours are plain ints
            return False
        with self._lock:
            call = self._pending.get(rpc_id)
        if call is None or call.internal:
            return False
        params = dict(msg["params"], _meta=dict(meta, **{
            SUBSCRIPTION_ID_KEY: call.caller.original_id}))
        call.mailbox.put(Notify(dict(msg, params=params)))
        return True

    def sole_caller_call(self, generation: int) -> Optional[Call]:
        """The one caller's call in flight on this child, if there is exactly one: only
        then can a message the child sends on its own be attributed to a call."""
        with self._lock:
            calls = [c for c in self._pending.values()
                     if not c.internal and c.generation == generation]
        return calls[0] if len(calls) == 1 else None

    def find_by_caller_id(self, original_id, session_id: Optional[str]) -> List[Call]:
        """Calls whose caller used ``original_id`` (same JSON type and value)."""
        with self._lock:
            calls = [c for c in self._pending.values() if not c.internal and
                     type(c.caller.original_id) is type(original_id) and
                     c.caller.original_id == original_id]
        if len(calls) > 1:
            calls = [c for c in calls if c.caller.session_id == session_id]
        return calls

    def busy(self, generation: int) -> bool:
        with self._lock:
            return any(not c.internal and c.generation == generation
                       for c in self._pending.values())
