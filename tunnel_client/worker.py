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
                  "retry_in_ms": int(pause * 1000), "tunnel_request_id": error.request_id}
        if error.is_auth:
            log.error("control plane refused the poll: %s" % error, extra=fields)
        elif not repeat:
            log.warning("poll failed; backing off: %s" % error, extra=fields)
        else:
            log.debug("poll failed; backing off: %s" % error, extra=fields)

    def success(self):
        with self._lock:
            recovered, self.failing = self.failing, False
        if recovered:
            log.info("poller recovered; polling operational")


class Worker(threading.Thread):
    def __init__(self, index: int, controlplane: ControlPlane, router: Router,
                 stop: threading.Event, poll_health: PollHealth, inflight: InFlight,
                 instruments: Instruments, poll_log: PollLog, tunnel_id: str = ""):
        super().__init__(name="worker-%d" % index, daemon=True)
        self.cp = controlplane
        self.router = router
        self.stop = stop
        self.poll_health = poll_health
        self.inflight = inflight
        self.metrics = instruments
        self.poll_log = poll_log
        self.tunnel_id = tunnel_id

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
                self.poll_health.failed(str(error), auth=error.is_auth)
                self.poll_log.failure(error, pause)
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
            return
        log.debug("command received", extra=fields)
        status = None
        binding = self.router.route(cmd.channel)
        if cmd.problem:
            log.warning("command cannot be executed: %s" % cmd.problem, extra=fields)
            status = self._post_final(cmd, _invalid(cmd), deadline, fields)
        elif binding is None:
            self.metrics.unsupported_channel.inc(tunnel_id=self.tunnel_id, channel=cmd.channel,
                                                 command_type=cmd.command_type)
            log.warning("no MCP binding for channel; answering unsupported channel",
                        extra=fields)
            status = self._post_final(cmd, wire.unsupported_channel(cmd), deadline, fields)
        else:
            status = self._run(binding, cmd, deadline, fields)
        self._observe(cmd, status, binding is not None, enqueued)

    def _run(self, binding, cmd, deadline, fields) -> Optional[int]:
        notify_failed = False
        replies = binding.handle(cmd, deadline)
        try:
            with contextlib.closing(replies):
                for reply in replies:
                    if deadline.expired():
                        self.metrics.expired.inc(stage="mcp")
                        log.info("command response deadline reached; dropping without "
                                 "posting a response", extra=fields)
                        return None
                    if not reply.terminal and notify_failed:
                        continue
                    if reply.failure is not None:
                        log.warning("answering with a synthesized error", extra=dict(
                            fields, failure_source=reply.failure.source,
                            transport_error_kind=reply.failure.transport_error_kind,
                            upstream_status=reply.failure.upstream_status,
                            resp_code=reply.resp_code))
                    outcome = self.cp.post(cmd, reply, deadline)
                    if reply.terminal:
                        return reply.resp_code if outcome in ("ok", "gone") else None
                    if outcome == "gone":
                        log.info("caller is gone; abandoning the command", extra=fields)
                        return None
                    notify_failed = notify_failed or outcome != "ok"
        except Exception as exc:  # a binding bug must cost one command, not the worker
            log.exception("MCP binding failed", extra=fields)
            if cmd.kind == "call" and not deadline.expired():
                reply = wire.failure(cmd.rpc_id, wire.TunnelFailure("client_internal",
                                                                    "unknown", False))
                return self._post_final(cmd, reply, deadline, fields)
            del exc
        return None

    def _post_final(self, cmd, reply, deadline, fields) -> Optional[int]:
        outcome = self.cp.post(cmd, reply, deadline)
        return reply.resp_code if outcome in ("ok", "gone") else None

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
