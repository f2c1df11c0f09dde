"""The stdio binding: MCP semantics over a supervised child process.

What this adds over a plain pipe (DESIGN.md section 7):

* JSON-RPC ids and progress tokens are remapped on the pipe, so concurrent callers that
  reuse ids never collide, requests are pipelined, and a late reply to a retired request
  is dropped instead of leaking into a later command.
* Legacy-era traffic always meets an initialized child: the first connector
  ``initialize`` is forwarded and cached, ``notifications/initialized`` is sent once per
  child, a duplicate ``initialize`` is answered from the cache, and a fresh or restarted
  child gets the handshake replayed before any queued request. Modern-era requests
  (2026-07-28) are forwarded untouched; a child that rejects the handshake is treated as
  modern-only and never blocked by it.
* Server-to-client requests get a prompt local answer.
* The child is supervised: a crash fails in-flight calls at once with a synthesized
  ``-32603``, the child restarts with backoff, a child that stops answering health pings
  is replaced, and one that cannot stay up makes the daemon exit non-zero.

The session never touches ``subprocess``; ``ChildProcess`` never reads MCP.
"""

import collections
import itertools
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, Mapping, Optional, Sequence

from tunnel_client import wire
from tunnel_client.errors import ChildGaveUp, ChildGone, StartupError
from tunnel_client.mcp import protocol as mcp
from tunnel_client.mcp.binding import Binding
from tunnel_client.mcp.childenv import child_environment  # noqa: F401 - moved there
from tunnel_client.mcp.process import ChildProcess
from tunnel_client.observe.health import Check
from tunnel_client.observe.instruments import Instruments
from tunnel_client.observe.logs import get_logger

log = get_logger("stdio")

MAX_BACKOFF = 30.0
RESTART_WAIT_CAP = 60.0  # a call with no deadline waits at most this long for a restart
WRITE_TIMEOUT = 30.0  # a child that does not read stdin for this long is stuck
SECRET_ENV = ("CONTROL_PLANE_API_KEY", "OPENAI_API_KEY", "OPENAI_ADMIN_KEY",
              "CLOUDFLARED_TUNNEL_TOKEN")

_EXPIRED = object()
_REPLACED = object()


@dataclass(frozen=True)
class StdioPolicy:
    restart_limit: int = 5
    restart_window: float = 60.0
    restart_backoff: float = 0.25
    health_interval: float = 30.0
    health_timeout: float = 10.0
    max_line: int = 64 << 20
    stop_grace: float = 5.0
    ttl: float = 600.0


class _Waiter:
    """One caller's mailbox: ("notify", msg), ("final", msg) or ("failure", TunnelFailure)."""

    __slots__ = ("queue", "original_id", "session_id", "tokens", "internal")

    def __init__(self, original_id=None, session_id=None, internal=False):
        self.queue = queue.Queue()
        self.original_id = original_id
        self.session_id = session_id
        self.tokens: Dict[str, object] = {}
        self.internal = internal


class StdioSession(Binding):
    """MCP over one supervised child lineage (the child and its restarts)."""

    transport = "stdio"
    proc_affinity = True

    def __init__(self, channel: str, argv: Sequence[str], env: Dict[str, str],
                 policy: StdioPolicy = StdioPolicy(), instruments: Optional[Instruments] = None,
                 on_fatal: Callable[[Exception], None] = lambda exc: None):
        self.channel = channel
        self.argv = list(argv)
        self.env = env
        self.policy = policy
        self.metrics = instruments or Instruments()
        self.on_fatal = on_fatal
        self.housekeeping = None
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self.child: Optional[ChildProcess] = None
        self.generation = 0
        self.state = "new"  # new | running | restarting | failed | stopped
        self.state_reason = "not started"
        self.state_since = time.time()
        self.pending: Dict[int, _Waiter] = {}
        self.tokens: Dict[str, _Waiter] = {}
        self.init_params: Optional[dict] = None
        self.init_result = None  # (generation, result) of the last successful handshake
        self.ready_gen = 0
        self.handshaking_gen = 0
        self.modern_only = False
        self.restarts = collections.deque()
        self.total_restarts = 0
        self.last_activity = time.monotonic()
        self.replied_gen = 0
        self._ping: Optional[int] = None
        self._kill_reason: Optional[str] = None
        self._fields = {"channel": channel}

    # --- lifecycle -----------------------------------------------------------------------

    def start(self, housekeeping):
        self.housekeeping = housekeeping
        self._spawn()
        if self.policy.health_interval > 0:
            housekeeping.call_later(self.policy.health_interval, self._health_tick,
                                    "stdio-health-" + self.channel)

    def _spawn(self):
        """Start the next generation. Its number and the "running" state are recorded
        before the process starts, so a child that exits at once is always noticed (its
        exit is then a transition from "running", not a race with it)."""
        with self._cond:
            self.generation += 1
            generation = self.generation
            child = ChildProcess(
                self.argv, self.env, self.channel, generation, self.policy.max_line,
                on_message=lambda msg: self._on_message(generation, msg),
                on_exit=lambda code: self._child_down(generation, _exit_text(code)),
                on_dropped=lambda reason: self.metrics.stdio_dropped_lines.inc(
                    channel=self.channel, reason=reason))
            self.child = child
            if self.state in ("new", "restarting"):
                self.state = "running"
                self.state_reason = "running"
                self.state_since = time.time()
            self.last_activity = time.monotonic()
            self._cond.notify_all()
        self.metrics.stdio_generation.set(generation, channel=self.channel)
        child.start()

    def stop(self):
        with self._cond:
            self.state = "stopped"
            self.state_reason = "stopped"
            child = self.child
            self._cond.notify_all()
        if child is not None:
            child.stop(self.policy.stop_grace)

    def _child_down(self, generation: int, reason: str):
        """The child of ``generation`` is gone: fail its calls, then restart or give up.

        One critical section moves the state on, so no call can register with a dead child
        between "its calls were failed" and "it is restarting".
        """
        now = time.monotonic()
        gave_up = None
        with self._cond:
            if generation != self.generation:
                return
            if self._kill_reason:
                reason, self._kill_reason = self._kill_reason, None
            waiters = list(self.pending.values())
            self.pending.clear()
            self.tokens.clear()
            self._ping = None
            stopping = self.state == "stopped"
            if not stopping:
                while self.restarts and now - self.restarts[0] > self.policy.restart_window:
                    self.restarts.popleft()
                self.state_since = time.time()
                if len(self.restarts) >= self.policy.restart_limit:
                    self.state = "failed"
                    self.state_reason = ("stdio server %s and was restarted %d times within "
                                         "%s; giving up" % (
                                             reason, len(self.restarts),
                                             _seconds(self.policy.restart_window)))
                    gave_up = ChildGaveUp("stdio MCP server for channel %s: %s"
                                          % (self.channel, self.state_reason))
                else:
                    self.restarts.append(now)
                    self.total_restarts += 1
                    delay = min(MAX_BACKOFF, self.policy.restart_backoff *
                                (2 ** (len(self.restarts) - 1)))
                    self.state = "restarting"
                    self.state_reason = ("stdio server %s; restart %d of %d within %s in "
                                         "%.2fs" % (reason, len(self.restarts),
                                                    self.policy.restart_limit,
                                                    _seconds(self.policy.restart_window), delay))
            self._cond.notify_all()
        for waiter in waiters:
            waiter.queue.put(("failure", wire.TunnelFailure("transport_closed", "eof", False)))
        if stopping:
            return
        if gave_up is not None:
            log.error(str(gave_up), extra=self._fields)
            self.on_fatal(gave_up)
            return
        log.warning("stdio MCP server is down; restarting",
                    extra=dict(self._fields, reason=reason, generation=generation,
                               retry_in_ms=int(delay * 1000), in_flight_failed=len(waiters)))
        self.metrics.stdio_restarts.inc(channel=self.channel, reason=_reason_kind(reason))
        self.housekeeping.call_later(delay, self._respawn, "stdio-restart-" + self.channel)

    def _respawn(self):
        with self._cond:
            if self.state != "restarting":
                return
        try:
            self._spawn()
        except StartupError as exc:
            self._child_down(self.generation, "could not start (%s)" % exc)

    # --- health --------------------------------------------------------------------------

    def health(self) -> Check:
        with self._cond:
            if self.state == "running":
                return Check(True, "stdio server running (pid %s, generation %d)"
                             % (self.child.pid if self.child else "?", self.generation),
                             self.state_since)
            return Check(False, "channel %s: %s" % (self.channel, self.state_reason),
                         self.state_since)

    def describe(self) -> dict:
        with self._cond:
            return {"name": self.channel, "transport_kind": "stdio",
                    "command": " ".join(self.argv), "state": self.state,
                    "reason": self.state_reason,
                    "pid": self.child.pid if self.child and self.child.alive else None,
                    "generation": self.generation, "restarts": self.total_restarts,
                    "handshake": "modern (none)" if self.modern_only else (
                        "done" if self.ready_gen == self.generation else "pending")}

    def _health_tick(self):
        interval = self.policy.health_interval
        with self._cond:
            if self.state == "stopped":
                return None
            idle = time.monotonic() - self.last_activity
            if self.state != "running" or self._ping is not None or idle < interval or \
                    any(not w.internal for w in self.pending.values()):
                return interval
            # A legacy server may ignore anything before its handshake; only ping a child
            # that has shown it answers.
            if not (self.modern_only or self.ready_gen == self.generation or
                    self.replied_gen == self.generation):
                return interval
            rpc_id = next(self._ids)
            waiter = self.pending[rpc_id] = _Waiter(internal=True)
            self._ping = rpc_id
            child, generation = self.child, self.generation
        try:
            child.send(wire.dumps({"jsonrpc": "2.0", "id": rpc_id, "method": mcp.PING}) + b"\n",
                       timeout=self.policy.health_timeout)
        except (ChildGone, TimeoutError):
            pass
        self.housekeeping.call_later(
            self.policy.health_timeout, lambda: self._ping_check(generation, rpc_id, waiter),
            "stdio-ping-check-" + self.channel)
        return interval

    def _ping_check(self, generation: int, rpc_id: int, waiter: _Waiter):
        with self._cond:
            self.pending.pop(rpc_id, None)
            if self._ping == rpc_id:
                self._ping = None
            current = generation == self.generation and self.state == "running"
            child = self.child
        try:
            kind, _ = waiter.queue.get_nowait()
        except queue.Empty:
            kind = None
        if kind == "final" or not current:
            return  # any JSON-RPC reply, an error included, proves the child is alive
        log.warning("stdio server did not answer a health ping; restarting it",
                    extra=dict(self._fields, timeout_s=self.policy.health_timeout))
        with self._cond:
            self._kill_reason = "did not answer a health ping within %s" % _seconds(
                self.policy.health_timeout)
        child.kill()

    # --- messages from the child ---------------------------------------------------------

    def _on_message(self, generation: int, msg):
        now = time.monotonic()
        with self._cond:
            if generation != self.generation:
                return
            self.last_activity = now
            self.replied_gen = generation
        self.metrics.stdio_last_exchange.set(time.time(), channel=self.channel)
        kind = wire.rpc_kind(msg)
        if kind == "response":
            with self._cond:
                waiter = self.pending.pop(msg.get("id"), None) \
                    if isinstance(msg.get("id"), int) else None
            if waiter is None:
                log.debug("dropping a reply for a retired or unknown request",
                          extra=dict(self._fields, rpc_id=msg.get("id")))
            else:
                waiter.queue.put(("final", msg))
        elif kind == "request":
            self._answer_locally(generation, msg)
        elif kind == "notification":
            self._route_notification(msg)
        else:
            log.warning("stdio server wrote a message that is not JSON-RPC; skipped it",
                        extra=self._fields)
            self.metrics.stdio_dropped_lines.inc(channel=self.channel, reason="not_jsonrpc")

    def _route_notification(self, msg):
        with self._cond:
            if msg.get("method") == mcp.PROGRESS:
                waiter = self.tokens.get(mcp.notification_token(msg))
            else:
                external = [w for w in self.pending.values() if not w.internal]
                # With one call in flight the notification is unambiguously its own;
                # with several, delivering it to any of them could misroute it.
                waiter = external[0] if len(external) == 1 else None
        if waiter is None:
            log.debug("dropping a notification no in-flight call owns",
                      extra=dict(self._fields, method=msg.get("method")))
            return
        if msg.get("method") == mcp.PROGRESS:
            msg = mcp.restore_progress_token(msg, waiter.tokens[mcp.notification_token(msg)])
        waiter.queue.put(("notify", msg))

    def _answer_locally(self, generation: int, request):
        self.metrics.stdio_local_answers.inc(channel=self.channel,
                                             method=str(request.get("method"))[:40])
        answer = wire.dumps(mcp.local_answer(request)) + b"\n"

        def send():
            with self._cond:
                child = self.child if generation == self.generation else None
            if child is not None:
                try:
                    child.send(answer, timeout=5.0)
                except (ChildGone, TimeoutError):
                    pass
        # Written from housekeeping, never from the reader: a child blocked on a full
        # stdout must not be able to deadlock its own reader.
        self.housekeeping.call_later(0, send, "stdio-local-answer")

    # --- commands ------------------------------------------------------------------------

    def handle(self, cmd: wire.Command, deadline: wire.Deadline) -> Iterator[wire.Reply]:
        if cmd.command_type == wire.CMD_SESSION_TERMINATION:
            yield wire.session_terminated(405)
            return
        if cmd.command_type != wire.CMD_JSONRPC:
            yield wire.Reply(wire.RESP_OAUTH_DISCOVERY, 400, wire.dumps(
                {"error": {"message": "oauth discovery needs an HTTP MCP binding",
                           "type": "invalid_request_error", "code": "unsupported_channel"}}))
            return
        msg = cmd.message
        kind = wire.rpc_kind(msg)
        if kind == "notification":
            yield from self._notification(cmd, msg)
        elif kind == "response":
            # Server-to-client requests were answered locally; nothing is waiting for this.
            log.info("dropping a JSON-RPC response from the caller; stdio server requests "
                     "are answered by the tunnel client", extra=self._fields)
            yield wire.notify_ack(202)
        elif msg["method"] == mcp.INITIALIZE and not mcp.is_modern(msg):
            yield from self._initialize(cmd, msg, deadline)
        else:
            for _attempt in (1, 2):
                if not mcp.is_modern(msg):
                    problem = self._ensure_handshake(deadline)
                    if problem is _EXPIRED:
                        return
                    if problem is not None:
                        yield wire.failure(msg["id"], problem)
                        return
                outcome = yield from self._exchange(cmd, msg, deadline)
                if outcome is not _REPLACED:
                    return
            yield wire.failure(msg["id"], wire.TunnelFailure("transport_closed", "closed_pipe",
                                                             False))

    def _notification(self, cmd, msg) -> Iterator[wire.Reply]:
        method = msg["method"]
        if method == mcp.INITIALIZED:
            # This client sends notifications/initialized itself, once per child.
            self.metrics.stdio_local_answers.inc(channel=self.channel, method=method)
            yield wire.notify_ack(202)
            return
        if method == mcp.CANCELLED:
            msg = self._translate_cancel(cmd, msg)
            if msg is None:
                yield wire.notify_ack(202)
                return
        with self._cond:
            child = self.child if self.state == "running" else None
        try:
            if child is None:
                raise ChildGone("stdio server is not running")
            child.send(wire.dumps(msg) + b"\n", timeout=WRITE_TIMEOUT)
        except (ChildGone, TimeoutError):
            yield wire.notify_ack(502)
            return
        yield wire.notify_ack(202)

    def _translate_cancel(self, cmd, msg):
        params = msg.get("params") if isinstance(msg.get("params"), dict) else {}
        target = params.get("requestId")
        session = cmd.header("Mcp-Session-Id")
        with self._cond:
            matches = [iid for iid, w in self.pending.items()
                       if not w.internal and w.original_id == target and
                       type(w.original_id) is type(target)]
            if len(matches) > 1:
                matches = [iid for iid in matches if self.pending[iid].session_id == session]
        if len(matches) != 1:
            return None
        return dict(msg, params=dict(params, requestId=matches[0]))

    def _wait_running(self, deadline: wire.Deadline):
        """With the lock held: wait out a restart. Returns None, _EXPIRED or a failure."""
        limit = deadline.sooner(RESTART_WAIT_CAP)
        while self.state in ("new", "restarting"):
            if limit.expired():
                if deadline.expired():
                    return _EXPIRED
                return wire.TunnelFailure("connect", "dial", False)
            self._cond.wait(limit.remaining())
        if self.state != "running":
            return wire.TunnelFailure("connect", "dial", False)
        return None

    def _ensure_handshake(self, deadline: wire.Deadline):
        """Make sure the current child is initialized (legacy era). None when ready."""
        while True:
            with self._cond:
                problem = self._wait_running(deadline)
                if problem is not None:
                    return problem
                generation = self.generation
                if self.modern_only or self.ready_gen == generation:
                    return None
                if self.handshaking_gen == generation:
                    if deadline.expired():
                        return _EXPIRED
                    self._cond.wait(deadline.remaining(cap=1.0))
                    continue
                self.handshaking_gen = generation
                params = self.init_params or mcp.default_initialize_params()
                child = self.child
            try:
                outcome = self._inject_handshake(child, generation, params)
            finally:
                with self._cond:
                    if self.handshaking_gen == generation:
                        self.handshaking_gen = 0
                    self._cond.notify_all()
            if outcome != "died":
                return None

    def _inject_handshake(self, child, generation, params) -> str:
        waiter = _Waiter(internal=True)
        with self._cond:
            rpc_id = next(self._ids)
            self.pending[rpc_id] = waiter
        request = {"jsonrpc": "2.0", "id": rpc_id, "method": mcp.INITIALIZE, "params": params}
        try:
            child.send(wire.dumps(request) + b"\n", timeout=self.policy.health_timeout)
            kind, payload = waiter.queue.get(timeout=self.policy.health_timeout)
        except ChildGone:
            return "died"
        except (TimeoutError, queue.Empty):
            with self._cond:
                self.pending.pop(rpc_id, None)
                if generation == self.generation:
                    self.ready_gen = generation
            log.warning("stdio server did not answer the injected initialize; forwarding "
                        "requests anyway", extra=dict(self._fields, generation=generation))
            return "unanswered"
        if kind == "failure":
            return "died"
        if "error" in payload:
            with self._cond:
                self.modern_only = True
            log.info("stdio server rejected initialize; treating it as a modern-era server "
                     "and forwarding without a handshake",
                     extra=dict(self._fields, error=payload.get("error")))
            return "rejected"
        return self._handshake_done(generation, payload.get("result"), "replayed")

    def _handshake_done(self, generation: int, result, how: str) -> str:
        with self._cond:
            child = self.child if generation == self.generation else None
        if child is None:
            return "died"
        try:
            child.send(wire.dumps({"jsonrpc": "2.0", "method": mcp.INITIALIZED}) + b"\n",
                       timeout=self.policy.health_timeout)
        except (ChildGone, TimeoutError):
            return "died"
        with self._cond:
            if generation == self.generation:
                self.init_result = (generation, result)
                self.ready_gen = generation
        log.info("stdio server initialized", extra=dict(self._fields, generation=generation,
                                                        handshake=how))
        return "done"

    def _initialize(self, cmd, msg, deadline) -> Iterator[wire.Reply]:
        """A connector's initialize: forward the first one per child, answer the rest from
        the cache with the caller's own id."""
        while True:
            with self._cond:
                if self.init_params is None:
                    self.init_params = msg.get("params") if isinstance(msg.get("params"),
                                                                       dict) else {}
                problem = self._wait_running(deadline)
                if problem is _EXPIRED:
                    return
                if problem is not None:
                    yield wire.failure(msg["id"], problem)
                    return
                generation = self.generation
                cached = self.init_result
                if self.ready_gen == generation and cached and cached[0] == generation:
                    break
                if self.handshaking_gen == generation:
                    if deadline.expired():
                        return
                    self._cond.wait(deadline.remaining(cap=1.0))
                    continue
                forward = not self.modern_only
                if forward:
                    self.handshaking_gen = generation
            if not forward:
                outcome = yield from self._exchange(cmd, msg, deadline)
            else:
                try:
                    def on_final(reply):
                        if "result" in reply:
                            self._handshake_done(generation, reply["result"], "forwarded")
                    outcome = yield from self._exchange(cmd, msg, deadline, on_final)
                finally:
                    with self._cond:
                        if self.handshaking_gen == generation:
                            self.handshaking_gen = 0
                        self._cond.notify_all()
            if outcome is not _REPLACED:
                return
        self.metrics.stdio_local_answers.inc(channel=self.channel, method=mcp.INITIALIZE)
        body = wire.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": cached[1]})
        yield wire.response(body, 200)

    def _exchange(self, cmd, msg, deadline: wire.Deadline, on_final=None
                  ) -> Iterator[wire.Reply]:
        """Send one request and yield its replies. Returns _REPLACED when the child died
        before the request was written and a new child is up: the caller may resend."""
        waiter = _Waiter(msg["id"], cmd.header("Mcp-Session-Id"))
        token = mcp.progress_token(msg)
        with self._cond:
            problem = self._wait_running(deadline)
            if problem is _EXPIRED:
                return
            if problem is not None:
                yield wire.failure(msg["id"], problem)
                return
            rpc_id = next(self._ids)
            internal_token = None
            if token is not None:
                internal_token = "tc-%d" % rpc_id
                waiter.tokens = {internal_token: token}
                self.tokens[internal_token] = waiter
            self.pending[rpc_id] = waiter
            child, generation = self.child, self.generation
            self.last_activity = time.monotonic()
        line = wire.dumps(mcp.with_id_and_token(msg, rpc_id, internal_token)) + b"\n"
        try:
            child.send(line, timeout=deadline.remaining(cap=WRITE_TIMEOUT))
            del line  # a large request should not stay in memory while the reply is awaited
        except ChildGone:
            self._forget(rpc_id, internal_token)
            # Nothing was written, so nothing ran: once the child is replaced the
            # request can safely go to the new one.
            if self._await_replacement(generation, deadline):
                return _REPLACED
            yield wire.failure(msg["id"], wire.TunnelFailure("transport_closed",
                                                             "closed_pipe", False))
            return
        except TimeoutError:
            self._forget(rpc_id, internal_token)
            if deadline.expired():
                return
            log.warning("stdio server stopped reading its input; restarting it",
                        extra=self._fields)
            with self._cond:
                self._kill_reason = "stopped reading its input"
            child.kill()
            yield wire.failure(msg["id"], wire.TunnelFailure("timeout", "timeout", False))
            return
        try:
            read_deadline = deadline.sooner(self.policy.ttl)
            while True:
                try:
                    kind, payload = waiter.queue.get(timeout=read_deadline.remaining())
                except queue.Empty:
                    self._retire(rpc_id, internal_token, child)
                    if deadline.expired():
                        log.info("command response deadline reached; dropping without "
                                 "posting a response",
                                 extra=dict(self._fields, request_id=cmd.request_id))
                        return
                    log.warning("MCP connection TTL reached; answering with a timeout",
                                extra=dict(self._fields, request_id=cmd.request_id))
                    yield wire.failure(msg["id"], wire.TunnelFailure("timeout", "timeout",
                                                                     False))
                    return
                if kind == "notify":
                    yield wire.notify(wire.dumps(payload), 200)
                elif kind == "final":
                    if on_final is not None:
                        on_final(payload)
                    yield wire.response(wire.dumps(mcp.replace_id(payload, msg["id"])), 200)
                    return
                else:
                    yield wire.failure(msg["id"], payload)
                    return
        finally:
            self._forget(rpc_id, internal_token)

    def _forget(self, rpc_id: int, internal_token):
        with self._cond:
            self.pending.pop(rpc_id, None)
            if internal_token is not None:
                self.tokens.pop(internal_token, None)

    def _await_replacement(self, generation: int, deadline: wire.Deadline) -> bool:
        """Wait until the child of ``generation`` has been replaced by a running one."""
        limit = deadline.sooner(RESTART_WAIT_CAP)
        with self._cond:
            while self.generation == generation or self.state != "running":
                if self.state in ("failed", "stopped") or limit.expired():
                    return False
                self._cond.wait(limit.remaining())
        return True

    def _retire(self, rpc_id: int, internal_token, child: ChildProcess):
        """Forget a request whose caller gave up; its late reply will be dropped."""
        self._forget(rpc_id, internal_token)
        try:
            child.send(wire.dumps(mcp.cancelled(rpc_id, "deadline reached")) + b"\n",
                       timeout=1.0)
        except (ChildGone, TimeoutError):
            pass


def _seconds(value: float) -> str:
    return "%gs" % value


def _exit_text(code) -> str:
    if code is not None and code < 0:
        return "was killed by signal %d" % -code
    return "exited with code %s" % code


def _reason_kind(reason: str) -> str:
    if "health ping" in reason:
        return "health"
    if "input" in reason:
        return "stuck"
    if "could not start" in reason:
        return "spawn_failed"
    return "signal" if "signal" in reason else "exit"


UNSUPPORTED_PROTOCOL_VERSION = -32022


class StdioBinding(Binding):
    """A stdio channel: one child for every caller, unless the server refuses to serve both
    MCP eras on one connection.

    A server may lock a connection to the era of its first request (the 2026-07-28 one or
    the initialize handshake) and refuse the other with -32022. A stdio server normally
    gets one process per client, so when that refusal comes the refused era moves to a
    dedicated child, started on demand, and the refused request is sent there: it was
    refused, not executed. A server that serves both eras keeps a single process.
    """

    transport = "stdio"
    proc_affinity = True

    def __init__(self, channel: str, argv: Sequence[str], env: Dict[str, str],
                 policy: StdioPolicy = StdioPolicy(), instruments: Optional[Instruments] = None,
                 on_fatal: Callable[[Exception], None] = lambda exc: None):
        self.channel = channel
        self._new_session = lambda: StdioSession(channel, argv, env, policy, instruments,
                                                 on_fatal)
        self.primary = self._new_session()
        self._eras = {"legacy": self.primary, "modern": self.primary}
        self._lock = threading.Lock()
        self.housekeeping = None

    def start(self, housekeeping):
        self.housekeeping = housekeeping
        self.primary.start(housekeeping)

    def sessions(self):
        with self._lock:
            return list({id(s): s for s in [self.primary] + list(self._eras.values())}.values())

    def stop(self):
        for session in self.sessions():
            session.stop()

    def health(self) -> Check:
        for session in self.sessions():
            check = session.health()
            if not check.ok:
                return check
        return self.primary.health()

    def describe(self) -> dict:
        info = self.primary.describe()
        extra = [s.describe() for s in self.sessions() if s is not self.primary]
        if extra:
            info["era_children"] = [dict(e, era=era) for era, session in self._eras.items()
                                    for e in extra if session is not self.primary and
                                    e["generation"] == session.generation]
        return info

    def handle(self, cmd: wire.Command, deadline: wire.Deadline) -> Iterator[wire.Reply]:
        era = "modern" if cmd.command_type == wire.CMD_JSONRPC and \
            wire.rpc_kind(cmd.message) == "request" and mcp.is_modern(cmd.message) else "legacy"
        with self._lock:
            session = self._eras[era]
            shared = session is self.primary and self._eras["legacy"] is self._eras["modern"]
        if not shared:
            yield from session.handle(cmd, deadline)
            return
        for reply in session.handle(cmd, deadline):
            if reply.terminal and _refuses_era(reply):
                dedicated = self._dedicate(era)
                if dedicated is not None:
                    yield from dedicated.handle(cmd, deadline)
                    return
            yield reply

    def _dedicate(self, era: str) -> Optional[StdioSession]:
        with self._lock:
            if self._eras[era] is not self.primary:
                return self._eras[era]
            session = self._new_session()
        try:
            session.start(self.housekeeping)
        except StartupError as exc:
            log.warning("could not start a second stdio server for the %s era" % era,
                        extra={"channel": self.channel, "error": str(exc)})
            return None
        with self._lock:
            self._eras[era] = session
        log.info("stdio server refused the %s era on a connection already serving the other "
                 "one; started a dedicated process for it" % era, extra={"channel": self.channel})
        return session


def _refuses_era(reply: wire.Reply) -> bool:
    if reply.resp_type != wire.RESP_JSONRPC or reply.body is None or \
            b"%d" % UNSUPPORTED_PROTOCOL_VERSION not in reply.body:
        return False
    error = (reply.json() or {}).get("error")
    return isinstance(error, dict) and error.get("code") == UNSUPPORTED_PROTOCOL_VERSION
