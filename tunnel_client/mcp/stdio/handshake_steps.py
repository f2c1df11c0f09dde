"""A child's opening as a session performs it, in the era the child serves.

Legacy era: the handshake, replayed to a fresh child before its first request, or a
connector's own ``initialize`` forwarded once per child and answered from the cache.

2026-07-28 era: servers that speak both eras on stdio (the official SDK's among them) fix
a connection's era at its first request, and only a request carrying the envelope's
protocol version (never an ``initialize``) opens the 2026-07-28 one. So a fresh child's
first request must be such a request: when the caller's is not (a ``server/discover``
without ``_meta``, an ``initialize`` stamped with the envelope...), the child is opened
with an enveloped ``server/discover`` of ours first. No legacy message ever reaches it.

``Handshake`` keeps the state of either; this sends.
"""

import enum
from dataclasses import dataclass
from typing import Iterator, Optional

from tunnel_client import CLIENT_NAME, __version__, wire
from tunnel_client.errors import ChildGone
from tunnel_client.mcp import protocol as mcp
from tunnel_client.mcp.stdio import supervisor as sup
from tunnel_client.mcp.stdio.handshake import Turn
from tunnel_client.mcp.stdio.mux import Expired, Gone
from tunnel_client.observe.logs import get_logger

log = get_logger("stdio")


MODERN_ERA = "2026-07-28"
SESSION_HEADER = "Mcp-Session-Id"


def opens_modern(msg: dict) -> bool:
    """Whether this request, written first, opens a connection in the 2026-07-28 era."""
    return msg.get("method") != mcp.INITIALIZE and mcp.MODERN_VERSION_KEY in mcp.meta(msg)


def modern_probe(caller_msg: Optional[dict] = None) -> dict:
    """An enveloped ``server/discover`` (the caller's protocol version when it names one)."""
    version = mcp.meta(caller_msg or {}).get(mcp.MODERN_VERSION_KEY)
    version = version if isinstance(version, str) else MODERN_ERA
    return {"jsonrpc": "2.0", "id": 0, "method": mcp.DISCOVER, "params": {"_meta": {
        mcp.MODERN_VERSION_KEY: version, mcp.CLIENT_CAPABILITIES_KEY: {},
        "io.modelcontextprotocol/clientInfo": {"name": CLIENT_NAME, "version": __version__}}}}


@dataclass(frozen=True)
class OpenWith:
    """The caller's own request opens this child: send it, then call ``opened``."""

    generation: int


class Outcome(enum.Enum):
    DONE = "done"
    REPLACED = "replaced"  # nothing was written and a new child is up: safe to resend


class HandshakeSteps:
    """Mixed into ``StdioSession`` (uses its supervisor, mux, handshake and _exchange)."""

    @property
    def modern(self) -> bool:
        return self.era == MODERN_ERA

    def _serves_modern(self, msg: Optional[dict]) -> bool:
        # A session outside an era router (era unset) goes by the request.
        return self.modern if self.era else bool(msg) and mcp.is_modern(msg)

    def _ensure_handshake(self, deadline, msg: Optional[dict] = None):
        """Make sure the current child is opened in its era: None when it is, ``OpenWith``
        when ``msg`` itself opens it (the caller then holds the turn until ``opened``)."""
        while True:
            running = self.supervisor.wait_running(deadline)
            if not isinstance(running, sup.Running):
                return running
            turn = self.handshake.begin(running.generation, deadline)
            if turn is Turn.READY:
                return None
            if turn is Turn.EXPIRED:
                return sup.Expired()
            modern = self._serves_modern(msg)
            if modern and opens_modern(msg):
                return OpenWith(running.generation)
            try:
                if self._inject_opening(running, msg, modern):
                    return None
            finally:
                self.handshake.end(running.generation)
            # The child died under the handshake: the next one gets it, or nobody does.
            if not self.supervisor.wait_replaced(running.generation, deadline):
                return sup.Expired() if deadline.expired() else sup.Unavailable(
                    wire.TunnelFailure("transport_closed", "closed_pipe", False))

    def opened(self, generation: int, how: str = "forwarded"):
        """This child got its 2026-07-28 opening request (the caller's own by default)."""
        self.handshake.done(generation, None)
        log.info("stdio server opened in the 2026-07-28 era",
                 extra=dict(self._fields, generation=generation, handshake=how))

    def _inject_opening(self, running, msg: Optional[dict], modern: bool) -> bool:
        """Open this child in its era; False when the child died meanwhile."""
        if modern:
            request = modern_probe(msg)
        else:
            request = self.for_child({"jsonrpc": "2.0", "id": 0, "method": mcp.INITIALIZE,
                                      "params": self.handshake.replay_params()})
        call, line = self.mux.open(request, running.generation)
        if line is None:
            return False
        timeout = self.policy.health_timeout
        try:
            running.child.send(line, timeout=timeout)
            event = call.next(timeout)
        except ChildGone:
            return False
        except TimeoutError:
            event = Expired()
        finally:
            self.mux.close(call)
        if isinstance(event, Gone):
            return False
        if isinstance(event, Expired):
            self.handshake.unanswered(running.generation)
            log.warning("stdio server did not answer the injected %s; forwarding requests "
                        "anyway" % request["method"],
                        extra=dict(self._fields, generation=running.generation))
            return True
        if modern:  # any answer, an error included, has opened the connection
            self.opened(running.generation, "injected")
            return True
        if "error" in event.message:
            self.handshake.rejected()
            log.info("stdio server rejected initialize; treating it as a modern-era server "
                     "and forwarding without a handshake",
                     extra=dict(self._fields, error=event.message.get("error")))
            return True
        return self._initialized(running.generation, event.message.get("result"), "replayed")

    def _initialized(self, generation: int, result, how: str) -> bool:
        if not self.write(generation, {"jsonrpc": "2.0", "method": mcp.INITIALIZED},
                          self.policy.health_timeout):
            return False
        self.handshake.done(generation, result)
        log.info("stdio server initialized", extra=dict(self._fields, generation=generation,
                                                        handshake=how))
        return True

    def _initialize(self, cmd, msg, deadline) -> Iterator[wire.Reply]:
        """A connector's initialize: forward the first one per child, answer the rest from
        the cache with the caller's own id."""
        self.handshake.remember(msg)
        session = {SESSION_HEADER: [self.handshake.open_session(msg)]}
        while True:
            running = self.supervisor.wait_running(deadline)
            if isinstance(running, sup.Expired):
                return
            if isinstance(running, sup.Unavailable):
                yield wire.failure(msg["id"], running.failure)
                return
            generation = running.generation
            caller = self._caller(cmd, msg)
            if self.handshake.modern_only:
                outcome = yield from self._exchange(msg, deadline, caller, cmd.request_id,
                                                    final_headers=session)
            else:
                turn = self.handshake.begin(generation, deadline, need_result=True)
                if turn is Turn.EXPIRED:
                    return
                if turn is Turn.READY:
                    cached = self.handshake.cached(generation)
                    if cached is not None:
                        break
                    continue
                try:
                    def on_final(reply):
                        if "result" in reply:
                            self._initialized(generation, reply["result"], "forwarded")
                    outcome = yield from self._exchange(self.for_child(msg), deadline, caller,
                                                        cmd.request_id, on_final,
                                                        final_headers=session)
                finally:
                    self.handshake.end(generation)
            if outcome is Outcome.DONE:
                return
        self.metrics.stdio_local_answers.inc(channel=self.channel, method=mcp.INITIALIZE)
        yield wire.response(wire.dumps({"jsonrpc": "2.0", "id": msg["id"],
                                        "result": cached[1]}), 200, session)
