"""The legacy-era handshake of one child lineage, and what callers declared in theirs.

The first connector ``initialize`` is kept and forwarded; its result is cached per child
generation, so a duplicate ``initialize`` from another caller is answered from the cache
and a fresh or restarted child gets the handshake replayed before any queued request.
``notifications/initialized`` goes to each child exactly once. A child that rejects the
handshake serves without it (a 2026-07-28-only server): the target's answer always wins.

Each caller's ``initialize`` opens a session of its own (an ``Mcp-Session-Id`` the caller
sends back, as to a Streamable HTTP server), under which its declared capabilities are
kept until it ends the session.

This room only keeps state; the session does the sending.
"""

import enum
import secrets
import threading
from collections import OrderedDict
from typing import Any, FrozenSet, Optional

from tunnel_client import wire
from tunnel_client.mcp import protocol as mcp

MAX_SESSIONS = 1024  # callers' declared capabilities remembered by Mcp-Session-Id


class Turn(enum.Enum):
    READY = "ready"      # the child is initialized (or needs no handshake)
    MINE = "mine"        # the caller must perform the handshake now, then call end()
    EXPIRED = "expired"  # the deadline passed while another caller was handshaking


class Handshake:
    def __init__(self):
        self._cond = threading.Condition()
        self.params: Optional[dict] = None
        self._result = None  # (generation, result) of the last successful handshake
        self._ready_gen = 0
        self._busy_gen = 0
        self.modern_only = False
        self._by_session: "OrderedDict[str, FrozenSet[str]]" = OrderedDict()
        self._declared_by_all: Optional[FrozenSet[str]] = None
        self._ended: "OrderedDict[str, None]" = OrderedDict()  # ended sessions, by id

    # --- the child's handshake --------------------------------------------------------------

    def remember(self, msg: dict):
        """A connector's initialize: keep the first one's params for replays."""
        params = msg.get("params")
        with self._cond:
            if self.params is None:
                self.params = params if isinstance(params, dict) else {}

    def replay_params(self) -> dict:
        with self._cond:
            return self.params if self.params is not None else mcp.default_initialize_params()

    def ready(self, generation: int) -> bool:
        with self._cond:
            return self.modern_only or self._ready_gen == generation

    def cached(self, generation: int):
        """The result of this child's handshake, when it has one (else None)."""
        with self._cond:
            if self._result is not None and self._result[0] == generation and \
                    self._ready_gen == generation:
                return self._result
            return None

    def begin(self, generation: int, deadline: wire.Deadline, need_result=False) -> Turn:
        """Wait while another caller handshakes with this child; then say whose turn it is.

        With ``need_result`` (a connector's initialize) the child counts as ready only
        with a cached result to answer from; one whose handshake went unanswered is tried
        again.
        """
        with self._cond:
            while True:
                if need_result:
                    ready = self._result is not None and self._result[0] == generation \
                        and self._ready_gen == generation
                else:
                    ready = self.modern_only or self._ready_gen == generation
                if ready:
                    return Turn.READY
                if self._busy_gen != generation:
                    self._busy_gen = generation
                    return Turn.MINE
                if deadline.expired():
                    return Turn.EXPIRED
                self._cond.wait(deadline.remaining(cap=1.0))

    def end(self, generation: int):
        with self._cond:
            if self._busy_gen == generation:
                self._busy_gen = 0
            self._cond.notify_all()

    def done(self, generation: int, result: Any):
        with self._cond:
            self._result = (generation, result)
            self._ready_gen = max(self._ready_gen, generation)
            self._cond.notify_all()

    def unanswered(self, generation: int):
        """The child ignored the handshake: forward anyway rather than block forever."""
        with self._cond:
            self._ready_gen = max(self._ready_gen, generation)
            self._cond.notify_all()

    def rejected(self):
        with self._cond:
            self.modern_only = True
            self._cond.notify_all()

    def state(self, generation: int) -> str:
        with self._cond:
            if self.modern_only:
                return "modern (none)"
            return "done" if self._ready_gen == generation else "pending"

    # --- what callers declared ---------------------------------------------------------------

    def declare(self, session_id: Optional[str], msg: dict):
        """Record the capabilities a caller's initialize declared."""
        caps = mcp.initialize_capabilities(msg)
        with self._cond:
            self._declared_by_all = caps if self._declared_by_all is None \
                else self._declared_by_all & caps
            if session_id:
                self._by_session[session_id] = caps
                self._by_session.move_to_end(session_id)
                while len(self._by_session) > MAX_SESSIONS:
                    self._by_session.popitem(last=False)

    def open_session(self, msg: dict) -> str:
        """A caller's initialize: a new session id (visible ASCII) for the caller to send
        back, under which what it declared is remembered, as a Streamable HTTP server
        would give it."""
        session_id = secrets.token_hex(16)
        self.declare(session_id, msg)
        return session_id

    def end_session(self, session_id: Optional[str]) -> bool:
        """A caller ended its session: forget it; False when it was not known here."""
        with self._cond:
            if not session_id or self._by_session.pop(session_id, None) is None:
                return False
            self._ended[session_id] = None
            while len(self._ended) > MAX_SESSIONS:
                self._ended.popitem(last=False)
            return True

    def has_session(self, session_id: Optional[str]) -> bool:
        """Whether a caller's session with this id is open here."""
        with self._cond:
            return bool(session_id) and session_id in self._by_session

    def ended(self, session_id: Optional[str]) -> bool:
        with self._cond:
            return bool(session_id) and session_id in self._ended

    def capabilities(self, session_id: Optional[str]) -> FrozenSet[str]:
        """What the caller behind a legacy-era request declared. Without a session id the
        callers cannot be told apart, so only what every caller declared counts."""
        with self._cond:
            if session_id and session_id in self._by_session:
                return self._by_session[session_id]
            return self._declared_by_all or frozenset()
