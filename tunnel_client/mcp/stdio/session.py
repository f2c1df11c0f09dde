"""One stdio child lineage serving callers: the rooms put together.

``Supervisor`` keeps a child running, ``PipeMux`` carries calls over its pipe,
``Handshake`` keeps legacy-era traffic initialized, ``Inbound`` sorts what the child
writes on its own, ``HealthPinger`` replaces a child that stops answering. This module only
walks one command through them.
"""

from typing import Callable, Iterator, Optional

from tunnel_client import wire
from tunnel_client.errors import ChildGone
from tunnel_client.mcp import protocol as mcp
from tunnel_client.mcp.binding import Binding
from tunnel_client.mcp.stdio.asks import Asks
from tunnel_client.mcp.stdio.handshake import Handshake
from tunnel_client.mcp.stdio.handshake_steps import (
    SESSION_HEADER, HandshakeSteps, OpenWith, Outcome)
from tunnel_client.mcp.stdio.inbound import Inbound
from tunnel_client.mcp.stdio.mux import Caller, Final, Gone, GoneReason, Notify, PipeMux
from tunnel_client.mcp.stdio.pinger import HealthPinger
from tunnel_client.mcp.stdio.policy import LOCAL_WRITE_TIMEOUT, WRITE_TIMEOUT, StdioPolicy
from tunnel_client.mcp.stdio import supervisor as sup
from tunnel_client.observe.health import Check
from tunnel_client.observe.instruments import Instruments
from tunnel_client.observe.logs import get_logger

log = get_logger("stdio")

CLOSED_PIPE = wire.TunnelFailure("transport_closed", "closed_pipe", False)
EOF_FAILURE = wire.TunnelFailure("transport_closed", "eof", False)
TIMEOUT = wire.TunnelFailure("timeout", "timeout", False)


class StdioSession(HandshakeSteps, Binding):
    """MCP over one supervised child lineage (a child and its restarts)."""

    transport = "stdio"
    proc_affinity = True

    def __init__(self, channel: str, argv, env, policy: StdioPolicy = StdioPolicy(),
                 instruments: Optional[Instruments] = None,
                 on_fatal: Callable[[Exception], None] = lambda exc: None,
                 era: str = "", asks: Optional[Asks] = None):
        self.channel = channel
        self.argv = list(argv)
        self.policy = policy
        self.era = era
        self.roots = ()  # the operator's roots (file:// URIs); empty: ask the caller
        self.metrics = instruments or Instruments()
        self.mux = PipeMux()
        self.handshake = Handshake()
        self.asks = asks if asks is not None else Asks()
        self.scheduler = None
        self.supervisor = sup.Supervisor(
            channel, argv, env, policy, self.metrics,
            on_message=lambda gen, msg: self.inbound.on_message(gen, msg),
            on_down=lambda gen: self.mux.fail_generation(gen, GoneReason.CHILD_EXITED),
            on_fatal=on_fatal, label=era)
        self.inbound = Inbound(channel, self.mux, self.asks, self.metrics, self,
                               lambda: self.supervisor.generation, self._answer_later)
        self.pinger = HealthPinger(self)

    @property
    def _fields(self) -> dict:
        return {"channel": self.channel, "era": self.era}

    # --- lifecycle and status ---------------------------------------------------------------

    def start(self, scheduler):
        self.scheduler = scheduler
        self.supervisor.start(scheduler)
        self.pinger.start(scheduler)

    def stop(self):
        self.supervisor.stop()

    @property
    def child(self):
        return self.supervisor.child

    @property
    def state(self) -> str:
        return self.supervisor.state.value

    def health(self) -> Check:
        info = self.supervisor.snapshot()
        if info["state"] == sup.ChildState.RUNNING.value:
            return Check(True, "stdio server running (pid %s, generation %d)"
                         % (info["pid"] or "?", info["generation"]), info["since"])
        return Check(False, "channel %s: %s" % (self.channel, info["reason"]), info["since"])

    def describe(self) -> dict:
        info = self.supervisor.snapshot()
        info.pop("since")
        return dict(info, name=self.channel, transport_kind="stdio",
                    command=" ".join(self.argv), era=self.era or None,
                    handshake=self.handshake.state(info["generation"]))

    def set_roots(self, uris):
        """New operator roots; an initialized child hears that its roots changed."""
        uris = tuple(uris)
        if uris == self.roots:
            return
        self.roots = uris
        running = self.supervisor.current()
        if running is not None and not self.modern and not self.handshake.modern_only and \
                self.handshake.ready(running.generation):
            self.write(running.generation, {"jsonrpc": "2.0",
                                             "method": mcp.ROOTS_LIST_CHANGED})
            log.info("told the stdio server its roots changed",
                     extra=dict(self._fields, roots=len(uris)))

    def for_child(self, initialize: dict) -> dict:
        """An initialize as the child gets it: declaring roots when the tunnel has some."""
        return mcp.with_roots_capability(initialize) if self.roots else initialize

    # --- writes the tunnel client makes on its own ------------------------------------------

    def write(self, generation: int, msg: dict, timeout: float = LOCAL_WRITE_TIMEOUT) -> bool:
        running = self.supervisor.current()
        if running is None or running.generation != generation:
            return False
        try:
            running.child.send(wire.dumps(msg) + b"\n", timeout=timeout)
            return True
        except (ChildGone, TimeoutError):
            return False

    def _answer_later(self, generation: int, msg: dict):
        # Written from the scheduler, never from the reader: a child blocked on a full
        # stdout must not be able to deadlock its own reader.
        self.scheduler.call_later(0, lambda: self.write(generation, msg) and None,
                                  "stdio-local-answer")

    def answer_child(self, generation: int, child_id, response: dict) -> bool:
        """A caller's answer to a relayed request, back to the child under its own id."""
        return self.write(generation, mcp.replace_id(response, child_id), WRITE_TIMEOUT)

    # --- commands ---------------------------------------------------------------------------

    def handle(self, cmd: wire.Command, deadline: wire.Deadline) -> Iterator[wire.Reply]:
        if cmd.command_type == wire.CMD_SESSION_TERMINATION:
            ended = self.handshake.end_session(cmd.header(SESSION_HEADER))
            yield wire.session_terminated(204 if ended else 404)
            return
        if cmd.command_type != wire.CMD_JSONRPC:
            yield wire.Reply(wire.RESP_OAUTH_DISCOVERY, 400, wire.dumps(
                {"error": {"message": "oauth discovery needs an HTTP MCP binding",
                           "type": "invalid_request_error", "code": "unsupported_channel"}}))
            return
        msg = cmd.message
        kind = wire.rpc_kind(msg)
        if kind != "response" and self.handshake.ended(cmd.header(SESSION_HEADER)):
            # As a Streamable HTTP server answers a session it has ended.
            yield wire.rpc_error(msg.get("id"), -32600, "Session not found", 404) \
                if kind == "request" else wire.notify_ack(404)
            return
        if kind == "notification":
            yield self.notification(cmd, msg)
        elif kind == "response":
            yield self.caller_response(msg)
        elif msg["method"] == mcp.INITIALIZE and not mcp.is_modern(msg):
            yield from self._initialize(cmd, msg, deadline)
        else:
            yield from self._request(cmd, msg, deadline)

    def caller_response(self, msg: dict) -> wire.Reply:
        ask = self.asks.take(msg.get("id"))
        if ask is None or not ask.session.answer_child(ask.generation, ask.child_id, msg):
            log.info("dropping a response from the caller that answers no open server "
                     "request", extra=self._fields)
        return wire.notify_ack(202)

    def notification(self, cmd, msg) -> wire.Reply:
        method = msg["method"]
        if method == mcp.INITIALIZED:
            # This client sends notifications/initialized itself, once per child.
            self.metrics.stdio_local_answers.inc(channel=self.channel, method=method)
            return wire.notify_ack(202)
        if method == mcp.CANCELLED:
            msg = self.translate_cancel(cmd, msg)
            if msg is None:
                return wire.notify_ack(202)
        running = self.supervisor.current()
        if running is None or not self.write(running.generation, msg, WRITE_TIMEOUT):
            return wire.notify_ack(502)
        return wire.notify_ack(202)

    def translate_cancel(self, cmd, msg) -> Optional[dict]:
        params = msg.get("params") if isinstance(msg.get("params"), dict) else {}
        calls = self.mux.find_by_caller_id(params.get("requestId"),
                                           cmd.header("Mcp-Session-Id"))
        if len(calls) != 1:
            return None
        return dict(msg, params=dict(params, requestId=calls[0].rpc_id))

    def _caller(self, cmd, msg) -> Caller:
        session_id = cmd.header("Mcp-Session-Id")
        caps = mcp.request_capabilities(msg) if mcp.is_modern(msg) else \
            self.handshake.capabilities(session_id)
        return Caller(msg.get("id"), session_id, caps)

    def _request(self, cmd, msg, deadline) -> Iterator[wire.Reply]:
        for _attempt in (1, 2):
            problem = self._ensure_handshake(deadline, msg)
            if isinstance(problem, sup.Expired):
                return
            if isinstance(problem, sup.Unavailable):
                yield wire.failure(msg["id"], problem.failure)
                return
            on_sent = self.opened if isinstance(problem, OpenWith) else None
            try:
                outcome = yield from self._exchange(msg, deadline, self._caller(cmd, msg),
                                                    cmd.request_id, on_sent=on_sent)
            finally:
                if on_sent is not None:
                    self.handshake.end(problem.generation)
            if outcome is Outcome.DONE:
                return
        yield wire.failure(msg["id"], CLOSED_PIPE)

    def _exchange(self, msg, deadline: wire.Deadline, caller: Caller, request_id,
                  on_final=None, on_sent=None, final_headers=None) -> Iterator[wire.Reply]:
        """Send one request and yield its replies; returns an ``Outcome``. ``on_sent``
        hears the generation the request was written to; ``final_headers`` go with a
        successful result."""
        running = self.supervisor.wait_running(deadline)
        if isinstance(running, sup.Expired):
            return Outcome.DONE
        if isinstance(running, sup.Unavailable):
            yield wire.failure(msg["id"], running.failure)
            return Outcome.DONE
        call, line = self.mux.open(msg, running.generation, caller)
        if line is None:  # that child exited just now: the next one may take it
            if self.supervisor.wait_replaced(running.generation, deadline):
                return Outcome.REPLACED
            yield wire.failure(msg["id"], CLOSED_PIPE)
            return Outcome.DONE
        self.inbound.touch()
        try:
            try:
                running.child.send(line, timeout=deadline.remaining(cap=WRITE_TIMEOUT))
                del line  # a large request should not stay in memory while awaited
                if on_sent is not None:
                    on_sent(running.generation)
            except ChildGone:
                # Nothing was written, so nothing ran: the next child may take it.
                self.mux.close(call)
                if self.supervisor.wait_replaced(running.generation, deadline):
                    return Outcome.REPLACED
                yield wire.failure(msg["id"], CLOSED_PIPE)
                return Outcome.DONE
            except TimeoutError:
                if deadline.expired():
                    return Outcome.DONE
                log.warning("stdio server stopped reading its input; restarting it",
                            extra=self._fields)
                self.supervisor.kill(running.generation, sup.DownReason.STUCK,
                                     "stopped reading its input")
                yield wire.failure(msg["id"], TIMEOUT)
                return Outcome.DONE
            read_deadline = deadline.sooner(self.policy.ttl)
            while True:
                event = call.next(read_deadline.remaining())
                if isinstance(event, Notify):
                    yield wire.notify(wire.dumps(event.message), 200)
                elif isinstance(event, Final):
                    if on_final is not None:
                        on_final(event.message)
                    headers = final_headers if "result" in event.message else None
                    yield wire.response(wire.dumps(mcp.replace_id(event.message,
                                                                  msg["id"])), 200, headers)
                    return Outcome.DONE
                elif isinstance(event, Gone):
                    yield wire.failure(msg["id"], EOF_FAILURE)
                    return Outcome.DONE
                else:
                    self._retire(call)
                    if deadline.expired():
                        log.info("command response deadline reached; dropping without "
                                 "posting a response",
                                 extra=dict(self._fields, request_id=request_id))
                        return Outcome.DONE
                    log.warning("MCP connection TTL reached; answering with a timeout",
                                extra=dict(self._fields, request_id=request_id))
                    yield wire.failure(msg["id"], TIMEOUT)
                    return Outcome.DONE
        finally:
            self.mux.close(call)

    def _retire(self, call):
        """Forget a request whose caller gave up; its late reply will be dropped."""
        self.mux.close(call)
        self.write(call.generation, mcp.cancelled(call.rpc_id, "deadline reached"), 1.0)
