"""Which child serves which MCP era, and the stdio binding built on that.

Real servers (the official SDK's stdio server among them) fix a connection's era at its
first request and refuse the other one, with codes that vary. So each era gets a child of
its own, decided by the request's era and never by what a server answers: the child
started at boot serves whichever era comes first, and a second child starts the first
time the other era arrives. A caller never fails because another era came first.
"""

import enum
import threading
from typing import Callable, Dict, Iterator, List, Optional

from tunnel_client import wire
from tunnel_client.errors import StartupError
from tunnel_client.mcp import protocol as mcp
from tunnel_client.mcp.binding import Binding
from tunnel_client.mcp.stdio.asks import Asks
from tunnel_client.mcp.stdio.policy import StdioPolicy
from tunnel_client.mcp.stdio.session import StdioSession
from tunnel_client.observe.health import Check
from tunnel_client.observe.instruments import Instruments
from tunnel_client.observe.logs import get_logger

log = get_logger("stdio")


class Era(enum.Enum):
    LEGACY = "legacy"        # initialize handshake, up to 2025-11-25
    MODERN = "2026-07-28"    # per-request version in _meta, server/discover


def era_of(msg) -> Era:
    return Era.MODERN if isinstance(msg, dict) and mcp.is_modern(msg) else Era.LEGACY


class EraRouter:
    """The children of one channel, by era; a child is claimed by the first era that
    needs it and keeps serving that era through its restarts."""

    def __init__(self, channel: str, new_session: Callable[[Era], StdioSession]):
        self.channel = channel
        self._new_session = new_session
        self._lock = threading.Lock()
        self._first: Optional[StdioSession] = None
        self._claimed: Dict[Era, StdioSession] = {}
        self.scheduler = None

    def start(self, scheduler):
        self.scheduler = scheduler
        first = self._new_session(None)
        first.start(scheduler)  # a missing executable is a startup error, not a late one
        with self._lock:
            self._first = first

    def sessions(self) -> List[StdioSession]:
        with self._lock:
            found = list(self._claimed.values())
            if self._first is not None and self._first not in found:
                found.insert(0, self._first)
            return found

    def child_for(self, era: Era) -> StdioSession:
        """The session serving ``era``, claiming the boot child or starting a new one.
        Raises StartupError when a new child cannot start."""
        with self._lock:
            session = self._claimed.get(era)
            if session is not None:
                return session
            if self._first is not None and self._first not in self._claimed.values():
                session = self._first
                session.era = era.value
                session.supervisor.claim(era.value)
                self._claimed[era] = session
                return session
            # Started under the lock: two callers of a new era must not start two children.
            session = self._new_session(era)
            session.start(self.scheduler)
            self._claimed[era] = session
        log.info("started a dedicated process for the %s era" % era.value,
                 extra={"channel": self.channel, "era": era.value})
        return session

    def owner_of_call(self, cmd) -> Optional[StdioSession]:
        """The session with a call this cancellation can name (the caller's id)."""
        params = cmd.message.get("params") if isinstance(cmd.message.get("params"), dict) \
            else {}
        for session in self.sessions():
            if session.mux.find_by_caller_id(params.get("requestId"),
                                             cmd.header("Mcp-Session-Id")):
                return session
        return None


class StdioBinding(Binding):
    """A stdio channel: one child per MCP era, started on demand."""

    transport = "stdio"
    proc_affinity = True

    def __init__(self, channel: str, argv, env, policy: StdioPolicy = StdioPolicy(),
                 instruments: Optional[Instruments] = None,
                 on_fatal: Callable[[Exception], None] = lambda exc: None):
        self.channel = channel
        self.asks = Asks()  # shared, so a caller's answer finds its child in any era
        self.roots = ()  # the operator's roots (mcp.roots) for this channel

        def new_session(era: Optional[Era]) -> StdioSession:
            session = StdioSession(channel, argv, env, policy, instruments, on_fatal,
                                   era.value if era else "", self.asks)
            session.roots = self.roots
            return session

        self.eras = EraRouter(channel, new_session)

    def set_roots(self, uris):
        """The operator's roots for this channel (at start, and again on reload)."""
        self.roots = tuple(uris)
        for session in self.sessions():
            session.set_roots(self.roots)

    def start(self, housekeeping):
        self.eras.start(housekeeping)

    def sessions(self) -> List[StdioSession]:
        return self.eras.sessions()

    @property
    def primary(self) -> StdioSession:
        return self.sessions()[0]

    def stop(self):
        for session in self.sessions():
            session.stop()

    def health(self) -> Check:
        checks = [s.health() for s in self.sessions()]
        if not checks:
            return Check(False, "channel %s: not started" % self.channel)
        bad = [c for c in checks if not c.ok]
        if bad:
            return bad[0]
        if len(checks) == 1:
            return checks[0]
        return Check(True, "; ".join("%s: %s" % (s.era or "unclaimed", c.reason)
                                     for s, c in zip(self.sessions(), checks)),
                     max(c.since or 0 for c in checks) or None)

    def describe(self) -> dict:
        children = [s.describe() for s in self.sessions()]
        if not children:
            return {"name": self.channel, "transport_kind": "stdio", "children": []}
        return dict(children[0], children=children)

    def handle(self, cmd: wire.Command, deadline: wire.Deadline) -> Iterator[wire.Reply]:
        msg = cmd.message if cmd.command_type == wire.CMD_JSONRPC else None
        kind = wire.rpc_kind(msg) if msg is not None else cmd.command_type
        if kind == "response":
            yield self.primary.caller_response(msg)
            return
        if kind == "notification" and msg["method"] == mcp.CANCELLED:
            owner = self.eras.owner_of_call(cmd)
            yield owner.notification(cmd, msg) if owner else wire.notify_ack(202)
            return
        if cmd.command_type == wire.CMD_SESSION_TERMINATION:
            yield from self._end_session(cmd, deadline)
            return
        if msg is None:
            yield from self.primary.handle(cmd, deadline)
            return
        try:
            session = self.eras.child_for(era_of(msg))
        except StartupError as exc:
            log.warning("could not start a stdio server for another MCP era",
                        extra={"channel": self.channel, "error": str(exc)})
            if kind == "request":
                yield wire.failure(msg["id"], wire.TunnelFailure("connect", "dial", False))
            else:
                yield wire.notify_ack(502)
            return
        yield from session.handle(cmd, deadline)

    def _end_session(self, cmd, deadline) -> Iterator[wire.Reply]:
        """A caller's DELETE: its session lives with the legacy-era child that opened it."""
        session_id = cmd.header("Mcp-Session-Id")
        for session in self.sessions():
            if session.handshake.has_session(session_id):
                yield from session.handle(cmd, deadline)
                return
        yield wire.session_terminated(404)
