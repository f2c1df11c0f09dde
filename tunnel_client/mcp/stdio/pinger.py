"""Health pings for an idle child: one that stops answering is replaced.

Any well-formed JSON-RPC reply counts as an answer, an error included. A child serving the
2026-07-28 era (which has no ``ping``) is probed with an enveloped ``server/discover``. A
child is pinged only when idle, and only after it has shown it answers (a legacy one may
ignore anything before its handshake).
"""

import threading
import time

from tunnel_client.errors import ChildGone
from tunnel_client.mcp import protocol as mcp
from tunnel_client.mcp.stdio import supervisor as sup
from tunnel_client.mcp.stdio.handshake_steps import modern_probe
from tunnel_client.mcp.stdio.mux import Final, Gone
from tunnel_client.observe.logs import get_logger

log = get_logger("stdio")


class HealthPinger:
    def __init__(self, session):
        self.session = session
        self.policy = session.policy
        self.scheduler = None
        self._lock = threading.Lock()
        self._in_flight = False

    def start(self, scheduler):
        self.scheduler = scheduler
        if self.policy.health_interval > 0:
            scheduler.call_later(self.policy.health_interval, self.tick,
                                 "stdio-health-" + self.session.channel)

    def tick(self):
        session = self.session
        interval = self.policy.health_interval
        if session.supervisor.state is sup.ChildState.STOPPED:
            return None
        running = session.supervisor.current()
        with self._lock:
            if running is None or self._in_flight:
                return interval
            generation = running.generation
            if time.monotonic() - session.inbound.idle_since() < interval or \
                    session.mux.busy(generation):
                return interval
            if not (session.handshake.ready(generation) or
                    session.inbound.replied_gen == generation):
                return interval
            # Each era's own probe: 2026-07-28 has no ping, and a legacy message must
            # never reach a child serving that era.
            probe = modern_probe() if session.modern else \
                {"jsonrpc": "2.0", "id": 0, "method": mcp.PING}
            call, line = session.mux.open(probe, generation)
            if line is None:
                return interval
            self._in_flight = True
        try:
            running.child.send(line, timeout=self.policy.health_timeout)
        except (ChildGone, TimeoutError):
            pass
        self.scheduler.call_later(self.policy.health_timeout,
                                  lambda: self._check(running, call),
                                  "stdio-ping-check-" + session.channel)
        return interval

    def _check(self, running, call):
        session = self.session
        session.mux.close(call)
        with self._lock:
            self._in_flight = False
        event = call.next(0)
        current = session.supervisor.current()
        if isinstance(event, (Final, Gone)) or current is None or \
                current.generation != running.generation:
            return
        log.warning("stdio server did not answer a health ping; restarting it",
                    extra={"channel": session.channel, "era": session.era,
                           "timeout_s": self.policy.health_timeout})
        session.supervisor.kill(running.generation, sup.DownReason.HEALTH,
                                "did not answer a health ping within %gs"
                                % self.policy.health_timeout)
