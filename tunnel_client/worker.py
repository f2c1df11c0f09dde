"""The worker: long-poll for one command, run it end to end, poll again.

A fixed pool of these is the whole concurrency model: no shared queue, no dispatcher. A
busy worker simply does not poll, so a replica never hoards work another replica could
take, and active MCP work never exceeds the pool size.
"""

import contextlib
import datetime
import threading
import time
from typing import Optional

from tunnel_client import wire
from tunnel_client.controlplane import PROBE, ControlPlane
from tunnel_client.errors import ControlPlaneError
from tunnel_client.mcp.router import Router
from tunnel_client.observe.health import PollHealth
from tunnel_client.observe.instruments import Instruments
from tunnel_client.observe.logs import get_logger
from tunnel_client.observe.metrics import method_label

log = get_logger("worker")


class InFlight:
    """Counts commands being handled, so shutdown can wait for them to finish."""

    def __init__(self, gauge=None):
        self._cond = threading.Condition()
        self.count = 0
        self.gauge = gauge

    @contextlib.contextmanager
    def track(self):
        with self._cond:
            self.count += 1
            if self.gauge is not None:
                self.gauge.set(self.count)
        try:
            yield
        finally:
            with self._cond:
                self.count -= 1
                if self.gauge is not None:
                    self.gauge.set(self.count)
                self._cond.notify_all()

    def wait_idle(self, timeout: float, hurry: Optional[threading.Event] = None) -> bool:
        end = time.monotonic() + timeout
        with self._cond:
            while self.count:
                left = end - time.monotonic()
                if left <= 0 or (hurry is not None and hurry.is_set()):
                    return False
                # Wake at least every 0.5 s to notice a second signal asking to hurry.
                self._cond.wait(min(left, 0.5))
            return True


class PollLog:
    """Logs poll trouble once per state change instead of once per failed poll."""

    def __init__(self):
        self._lock = threading.Lock()
        self.failing = False
        self.last_message = None

    def failure(self, error: ControlPlaneError, pause: float):
        with self._lock:
            repeat = self.failing and error.status == self.last_message
            self.failing, self.last_message = True, error.status
        fields = {"status_code": error.status, "error_code": error.code,
                  "error_kind": error.kind, "retry_in_ms": int(pause * 1000),
                  "tunnel_request_id": error.request_id}
        if error.detail and error.detail != error.summary:
            fields["detail"] = error.detail
        if error.is_auth:
            log.error("control plane refused the poll: %s" % error.summary, extra=fields)
        elif not repeat:
            log.warning("poll failed; backing off: %s" % error.summary, extra=fields)
        else:
            log.debug("poll failed; backing off: %s" % error.summary, extra=fields)

    def success(self):
        with self._lock:
            recovered, self.failing = self.failing, False
        if recovered:
            log.info("poller recovered; polling operational")


class Worker(threading.Thread):
    def __init__(self, index: int, controlplane: ControlPlane, router: Router,
                 stop: threading.Event, poll_health: PollHealth, inflight: InFlight,
                 instruments: Instruments, poll_log: PollLog, tunnel_id: str = "",
                 policy=None, access_log: bool = True, outcomes=None):
        super().__init__(name="worker-%d" % index, daemon=True)
        self.cp = controlplane
        self.router = router
        self.stop = stop
        self.poll_health = poll_health
        self.inflight = inflight
        self.metrics = instruments
        self.poll_log = poll_log
        self.tunnel_id = tunnel_id
        self.policy = policy  # the policy gate wrapping every binding, or None
        self.access_log = access_log
        self.outcomes = outcomes  # recent outcomes for the UI's "last minute" counts

    def run(self):
        gate = self.cp.gate
        while True:
            mode = gate.wait(self.stop)
            if mode is None:
                return
            sent_at = time.monotonic()
            try:
                commands, skipped = self.cp.poll(probe=mode == PROBE)
            except ControlPlaneError as error:
                if self.stop.is_set():
                    return  # an interrupted poll at shutdown is not a control-plane failure
                pause = gate.failure(error)
                self.poll_health.failed(
                    "control plane refused the poll: %s" % error.summary if error.is_auth
                    else error.summary, auth=error.is_auth, kind=error.kind,
                    detail=error.detail)
                self.poll_log.failure(error, pause)
                if self.outcomes is not None:
                    self.outcomes.record("poll_error")
                continue
            except Exception:  # never let one bad poll kill a worker
                log.exception("unexpected error while polling")
                gate.failure(ControlPlaneError("poll failed: internal error"))
                continue
            if gate.success(sent_at):  # a poll overtaken by a pause proves no recovery
                self.poll_health.succeeded()
                self.poll_log.success()
            for item in skipped:
                self.metrics.skipped.inc(drop_reason="invalid_command_type"
                                         if "command_type" in item.reason else "invalid_payload")
                log.warning("control-plane command dropped: %s" % item.reason,
                            extra={"request_id": item.request_id,
                                   "command_type": item.command_type})
            # Commands already taken from the service are handled even while stopping:
            # dropping them would leave their callers waiting for a timeout.
            for cmd in commands:
                with self.inflight.track():
                    self.handle(cmd)

    def handle(self, cmd: wire.Command):
        fields = {"request_id": cmd.request_id, "channel": cmd.channel,
                  "command_type": cmd.command_type}
        if cmd.method:
            fields["rpc_method"] = cmd.method
        if cmd.rpc_id is not None:
            fields["rpc_request_id"] = cmd.rpc_id
        age = _age(cmd.created_at) if cmd.created_at else None
        if age is not None:
            self.metrics.command_age.observe(age)
        enqueued = time.monotonic() - age if age is not None else None
        deadline = cmd.deadline
        if deadline.expired():
            self.metrics.expired.inc(stage="received")
            log.info("dropping command whose response deadline has passed", extra=fields)
            self._finish(cmd, Ended("expired", "received"))
            return
        log.debug("command received", extra=fields)
        binding = self.router.route(cmd.channel)
        if cmd.problem:
            log.warning("command cannot be executed: %s" % cmd.problem, extra=fields)
            ended = self._post_local(cmd, _invalid(cmd), deadline, "invalid_command")
        elif binding is None:
            self.metrics.unsupported_channel.inc(tunnel_id=self.tunnel_id, channel=cmd.channel,
                                                 command_type=cmd.command_type)
            log.warning("no MCP binding for channel; answering unsupported channel",
                        extra=fields)
            ended = self._post_local(cmd, wire.unsupported_channel(cmd), deadline,
                                     "unsupported_channel")
        else:
            ended = self._run(binding, cmd, deadline, fields)
        self._observe(cmd, ended.status, binding is not None, enqueued)
        self._finish(cmd, ended)

    def _run(self, binding, cmd, deadline, fields) -> "Ended":
        notify_failed = False
        replies = binding.handle(cmd, deadline) if self.policy is None \
            else self.policy.handle(binding, cmd, deadline)
        try:
            with contextlib.closing(replies):
                for reply in replies:
                    if deadline.expired():
                        self.metrics.expired.inc(stage="mcp")
                        log.info("command response deadline reached; dropping without "
                                 "posting a response", extra=fields)
                        return Ended("expired", "mcp")
                    if not reply.terminal and notify_failed:
                        continue
                    if reply.failure is not None:
                        log.warning("answering with a synthesized error", extra=dict(
                            fields, failure_source=reply.failure.source,
                            transport_error_kind=reply.failure.transport_error_kind,
                            upstream_status=reply.failure.upstream_status,
                            resp_code=reply.resp_code))
                    if reply.terminal:
                        return self._post_final(cmd, reply, deadline)
                    outcome = self.cp.post(cmd, reply, deadline)
                    if outcome == "gone":
                        log.info("caller is gone; abandoning the command", extra=fields)
                        return Ended("dropped", "caller_gone")
                    notify_failed = notify_failed or outcome != "ok"
        except Exception as exc:  # a binding bug must cost one command, not the worker
            log.exception("MCP binding failed", extra=fields)
            if cmd.kind == "call" and not deadline.expired():
                reply = wire.failure(cmd.rpc_id, wire.TunnelFailure("client_internal",
                                                                    "unknown", False))
                return self._post_final(cmd, reply, deadline)
            del exc
            return Ended("dropped", "client_internal")
        # The binding gave up without a terminal reply: its deadline passed while it waited.
        if deadline.expired():
            self.metrics.expired.inc(stage="mcp")
            log.info("command response deadline reached; dropping without posting a response",
                     extra=fields)
            return Ended("expired", "mcp")
        return Ended("dropped", "no_reply")

    def _post_local(self, cmd, reply, deadline, source: str) -> "Ended":
        """A reply the daemon makes itself (no binding ran): audited like any other."""
        if self.policy is not None:
            self.policy.record_local(cmd, reply, time.monotonic())
        return self._post_final(cmd, reply, deadline, source)

    def _post_final(self, cmd, reply, deadline, source: Optional[str] = None) -> "Ended":
        outcome = self.cp.post(cmd, reply, deadline)
        size = len(reply.body) if reply.body is not None else 0
        if outcome == "expired":
            self.metrics.expired.inc(stage="post")
            return Ended("expired", "post", size=size)
        if outcome == "gone":
            return Ended("dropped", "caller_gone", reply.resp_code, size)
        if outcome != "ok":
            return Ended("dropped", "post_failed", size=size)
        if reply.failure is not None:
            return Ended("failed", reply.failure.source, reply.resp_code, size)
        if source is not None:
            return Ended("failed", source, reply.resp_code, size)
        if _is_error(reply):
            return Ended("upstream_error", "", reply.resp_code, size)
        return Ended("ok", "", reply.resp_code, size)

    def _finish(self, cmd: wire.Command, ended: "Ended"):
        """Exactly one outcome per command: the counter, and the access-log line."""
        self.metrics.completed.inc(outcome=ended.outcome, source=ended.source)
        if self.outcomes is not None:
            self.outcomes.record(ended.outcome)
        if not self.access_log:
            return
        took = (time.monotonic() - cmd.received_at) * 1000
        method = (cmd.method or cmd.command_type)[:100]
        tool = _tool_name(cmd)
        status = ended.status if ended.status is not None else "-"
        log.info("%s%s %s -> %s %s%s" % (
            method, " " + tool if tool else "", cmd.channel, status, ended.outcome,
            " (%s)" % ended.source if ended.source else ""), extra={
            "access": True, "request_id": cmd.request_id, "channel": cmd.channel,
            "rpc_method": method, "tool": tool, "status": ended.status,
            "outcome": ended.outcome, "source": ended.source or None,
            "duration_ms": round(took, 1), "bytes": ended.size})

    def _observe(self, cmd: wire.Command, status: Optional[int], routed: bool,
                 enqueued: Optional[float]):
        labels = {"tunnel_id": self.tunnel_id,
                  "tunnel_service_status": str(status) if status is not None else "none",
                  "request_kind": cmd.kind, "request_method": method_label(cmd.method),
                  "channel": cmd.channel if routed else "unsupported"}
        now = time.monotonic()
        self.metrics.latency.observe((now - cmd.received_at) * 1000,
                                     latency_type="poll_to_response", **labels)
        if enqueued is not None:
            self.metrics.latency.observe((now - enqueued) * 1000,
                                         latency_type="enqueue_to_response", **labels)


class Ended:
    """How one command ended: ``outcome`` is ok, upstream_error (the MCP server answered
    with a JSON-RPC error), failed (a reply the tunnel client synthesized; ``source`` says
    why), expired (its deadline passed; ``source`` is the stage) or dropped (no answer was
    delivered; ``source`` says why)."""

    __slots__ = ("outcome", "source", "status", "size")

    def __init__(self, outcome: str, source: str = "", status: Optional[int] = None,
                 size: int = 0):
        self.outcome, self.source, self.status, self.size = outcome, source, status, size


def _is_error(reply: wire.Reply) -> bool:
    """A JSON-RPC error response from the MCP server (cheap check before parsing)."""
    body = reply.body
    if reply.resp_type != wire.RESP_JSONRPC or not body or b'"error"' not in body:
        return reply.resp_code >= 400
    try:
        data = reply.json()
    except ValueError:
        return reply.resp_code >= 400
    return isinstance(data, dict) and "error" in data and "result" not in data


def _tool_name(cmd: wire.Command) -> str:
    """The tool or prompt a call names (bounded; never arguments)."""
    if cmd.method not in ("tools/call", "prompts/get") or not isinstance(cmd.message, dict):
        return ""
    params = cmd.message.get("params")
    name = params.get("name") if isinstance(params, dict) else None
    return name[:100] if isinstance(name, str) else ""


def _invalid(cmd: wire.Command) -> wire.Reply:
    if cmd.command_type == wire.CMD_SESSION_TERMINATION:
        return wire.session_terminated(400)
    return wire.rpc_error(None, -32600, "Invalid Request: %s" % cmd.problem, 400)


def _age(created_at: str) -> Optional[float]:
    """Seconds since an RFC 3339 timestamp, or None when it cannot be parsed."""
    text = created_at.strip().replace("Z", "+00:00").replace("z", "+00:00")
    if "." in text:
        head, _, rest = text.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits):]
        text = "%s.%s%s" % (head, (digits + "000000")[:6], zone)
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, time.time() - when.timestamp())
