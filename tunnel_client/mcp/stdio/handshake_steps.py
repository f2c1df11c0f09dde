"""The legacy-era handshake as a session performs it: replayed to a fresh child before
its first legacy request, or a connector's own ``initialize`` forwarded once per child and
answered from the cache afterwards. ``Handshake`` keeps the state; this sends.
"""

import enum
from typing import Iterator

from tunnel_client import wire
from tunnel_client.errors import ChildGone
from tunnel_client.mcp import protocol as mcp
from tunnel_client.mcp.stdio import supervisor as sup
from tunnel_client.mcp.stdio.handshake import Turn
from tunnel_client.mcp.stdio.mux import Expired, Gone
from tunnel_client.observe.logs import get_logger

log = get_logger("stdio")


class Outcome(enum.Enum):
    DONE = "done"
    REPLACED = "replaced"  # nothing was written and a new child is up: safe to resend


class HandshakeSteps:
    """Mixed into ``StdioSession`` (uses its supervisor, mux, handshake and _exchange)."""

    def _ensure_handshake(self, deadline):
        """Make sure the current child is initialized (legacy era): None when it is."""
        while True:
            running = self.supervisor.wait_running(deadline)
            if not isinstance(running, sup.Running):
                return running
            turn = self.handshake.begin(running.generation, deadline)
            if turn is Turn.READY:
                return None
            if turn is Turn.EXPIRED:
                return sup.Expired()
            try:
                if self._inject_handshake(running):
                    return None
            finally:
                self.handshake.end(running.generation)
            # The child died under the handshake: the next one gets it, or nobody does.
            if not self.supervisor.wait_replaced(running.generation, deadline):
                return sup.Expired() if deadline.expired() else sup.Unavailable(
                    wire.TunnelFailure("transport_closed", "closed_pipe", False))

    def _inject_handshake(self, running) -> bool:
        """Replay the handshake to this child; False when the child died meanwhile."""
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
            log.warning("stdio server did not answer the injected initialize; forwarding "
                        "requests anyway", extra=dict(self._fields,
                                                      generation=running.generation))
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
        self.handshake.declare(cmd.header("Mcp-Session-Id"), msg)
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
                outcome = yield from self._exchange(msg, deadline, caller, cmd.request_id)
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
                                                        cmd.request_id, on_final)
                finally:
                    self.handshake.end(generation)
            if outcome is Outcome.DONE:
                return
        self.metrics.stdio_local_answers.inc(channel=self.channel, method=mcp.INITIALIZE)
        yield wire.response(wire.dumps({"jsonrpc": "2.0", "id": msg["id"],
                                        "result": cached[1]}), 200)
