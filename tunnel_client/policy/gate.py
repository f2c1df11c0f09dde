"""The gate between the router and a binding: decide, refuse or forward, shape the
result, and write the audit record before the terminal reply goes back.

It wraps any binding from outside (``handle(binding, command, deadline)``) and knows no
transport. Each command reads the policy once, so a reload (SIGHUP) changes the next
command and never one in flight.
"""

import collections
import contextlib
import dataclasses
import functools
import hashlib
import itertools
import math
import time
from typing import Any, Dict, Iterator, Optional

from tunnel_client import wire
from tunnel_client.observe.logs import get_logger
from tunnel_client.policy.audit import AuditTrail
from tunnel_client.policy.limits import Buckets
from tunnel_client.policy.lists import (HANDSHAKE_METHODS, LIST_METHODS, filter_list,
                                        read_only_hints, truthful_capabilities)
from tunnel_client.policy.rules import (ALLOW, ChannelPolicy, Decision, PolicySet, Subject,
                                        subject_of)

log = get_logger("policy")

DENIED_CODE = -32003
LIMITED_CODE = -32029
DENIED_MESSAGE = "Refused by the tunnel's policy"
LIMITED_MESSAGE = "Refused by the tunnel's policy: rate limit exceeded; retry later"
_DECIDED_KINDS = ("call", "notification")
_RECENT_FIELDS = ("time", "channel", "method", "name", "decision", "rule", "status")
VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
LOOKUP_INTERVAL = 30.0  # at most one tools/list of our own per channel this often
LOOKUP_PAGES = 10
LOOKUP_TIMEOUT = 5.0
# per-request headers that describe the caller's message, not our tools/list
_LOOKUP_DROPPED_HEADERS = ("mcp-method", "mcp-name", "content-length", "last-event-id")


def refusal(cmd: wire.Command, decision: Decision) -> wire.Reply:
    """The caller's answer: which rule refused, nothing about any other rule."""
    if cmd.kind == "notification":
        return wire.notify_ack(202)  # dropped, and acknowledged like any notification
    data: Dict[str, Any] = {"refused_by": "tunnel_policy", "rule": decision.rule,
                            "retryable": decision.kind == "limit"}
    if decision.kind == "limit":
        data["retry_after_ms"] = int(math.ceil((decision.retry_after or 0) * 1000))
        return wire.rpc_error(cmd.rpc_id, LIMITED_CODE, LIMITED_MESSAGE, 200, data)
    return wire.rpc_error(cmd.rpc_id, DENIED_CODE, DENIED_MESSAGE, 200, data)


class PolicyGate:
    def __init__(self, policies: PolicySet, audit: Optional[AuditTrail] = None,
                 instruments=None, tunnel_id: str = "", recent: int = 200):
        self.policies = policies
        self.audit = audit
        self.metrics = instruments
        self.tunnel_id = tunnel_id
        self.buckets = Buckets()
        self.hints: Dict[str, Dict[str, bool]] = {}  # channel -> tool -> readOnlyHint
        self._looked_up: Dict[str, float] = {}  # channel -> when we last listed its tools
        self._lookup_ids = itertools.count(1)
        self.recent = collections.deque(maxlen=recent)

    # --- lifecycle -----------------------------------------------------------------------

    def start(self):
        if self.audit is not None:
            self.audit.open()

    def reload(self, policies: PolicySet):
        """Swap the policy; calls in flight finish under the one they started with."""
        self.policies = policies
        wanted = set()
        for policy in policies.channels.values():
            for rule, rate in _all_rates(policy):
                wanted.add((policy.channel, rule) + tuple(rate))
        self.buckets.keep_only(wanted)
        if self.audit is not None:
            self.audit.reopen()

    def close(self):
        if self.audit is not None:
            self.audit.close()

    # --- the command path ----------------------------------------------------------------

    def decide(self, policy: Optional[ChannelPolicy], cmd: wire.Command,
               subject: Optional[Subject] = None, request: Optional[bytes] = None
               ) -> Decision:
        decision = ALLOW
        kind = cmd.kind
        if policy is not None and kind in _DECIDED_KINDS:
            subject = subject or subject_of(cmd.message)
            decision = policy.decide(cmd.message, self.hints.get(cmd.channel, {}), subject,
                                     None if request is None else len(request))
            if decision.allowed and kind == "call":
                decision = self._take_tokens(policy, subject)
        if self.audit is not None and kind in _DECIDED_KINDS and self.audit.refusing:
            decision = Decision("deny", "audit.on_failure")
        if policy is not None and self.metrics is not None:
            self.metrics.policy_decisions.inc(channel=cmd.channel, rule=decision.rule or
                                              "default", result=decision.result)
        return decision

    def handle(self, binding, cmd: wire.Command, deadline: wire.Deadline
               ) -> Iterator[wire.Reply]:
        policy = self.policies.get(cmd.channel)  # read once: reloads affect the next command
        # encoded once: the audit digests it, and it bounds the arguments' size
        request = wire.dumps(cmd.message) if cmd.message is not None and (
            self.audit is not None or (policy is not None and policy.needs_arguments)) \
            else None
        ex = Exchange(cmd, policy, request)
        ex.decision = self.decide(policy, cmd, ex.subject, request)
        if ex.decision.rule == "preset:read_only" and ex.subject.method == "tools/call" and \
                ex.subject.name not in self.hints.get(cmd.channel, {}) and \
                self._learn_tools(binding, cmd, deadline):
            ex.decision = self.decide(policy, cmd, ex.subject, request)
        if not ex.decision.allowed:
            fields = {"channel": cmd.channel, "request_id": cmd.request_id,
                      "rpc_method": cmd.method, "rule": ex.decision.rule}
            if ex.decision.detail:
                fields["detail"] = ex.decision.detail
            log.info("policy %s" % ex.decision.result, extra=fields)
        return self._replies(binding, ex, deadline)

    def _replies(self, binding, ex: "Exchange", deadline: wire.Deadline):
        if ex.decision.refuses:
            reply = refusal(ex.cmd, ex.decision)
            ex.sent(reply)
            self._record(ex, reply)
            yield reply
            return
        replies = binding.handle(ex.cmd, deadline)
        recorded = False
        try:
            for reply in replies:
                if reply.terminal:
                    if ex.policy is not None:
                        reply = self._shape(ex.policy, ex.cmd, reply)
                    ex.sent(reply)
                    recorded = True
                    self._record(ex, reply)  # before the reply is posted
                else:
                    ex.sent(reply)
                yield reply
        finally:
            close = getattr(replies, "close", None)
            if close is not None:
                close()
            if not recorded:  # deadline passed or the caller went away: no terminal reply
                self._record(ex, None)

    def record_local(self, cmd: wire.Command, reply: wire.Reply, started: float):
        """Commands answered without a binding (unsupported channel, invalid) are audited
        too: one record per command."""
        ex = Exchange(cmd, None, None, started)
        ex.decision = Decision("allow", "no_binding")
        ex.sent(reply)
        self._record(ex, reply)

    def _learn_tools(self, binding, cmd: wire.Command, deadline: wire.Deadline) -> bool:
        """A caller may call a tool it listed before this daemon started (2026-07-28
        clients cache lists): ask the server's tools/list ourselves, at most once per
        LOOKUP_INTERVAL per channel, so guessed names cannot make us hammer the server."""
        now = time.monotonic()
        last = self._looked_up.get(cmd.channel)
        if last is not None and now - last < LOOKUP_INTERVAL:
            return False
        self._looked_up[cmd.channel] = now
        params = cmd.message.get("params") if isinstance(cmd.message, dict) else None
        meta = params.get("_meta") if isinstance(params, dict) else None
        base = {"_meta": {VERSION_KEY: meta[VERSION_KEY]}} \
            if isinstance(meta, dict) and VERSION_KEY in meta else {}
        headers = {k: v for k, v in cmd.headers.items()
                   if k.lower() not in _LOOKUP_DROPPED_HEADERS}
        if any(k.lower() == "mcp-method" for k in cmd.headers):
            headers["Mcp-Method"] = ["tools/list"]
        learned, cursor = {}, None
        for _ in range(LOOKUP_PAGES):
            message = {"jsonrpc": "2.0", "id": "tunnel-policy-%d" % next(self._lookup_ids),
                       "method": "tools/list"}
            page = dict(base, cursor=cursor) if cursor else dict(base)
            if page:
                message["params"] = page
            lookup = dataclasses.replace(cmd, message=message, headers=headers,
                                         request_id=cmd.request_id + ":tools-list")
            result = _result_of(binding, lookup, deadline.sooner(LOOKUP_TIMEOUT))
            if result is None:
                break
            learned.update(read_only_hints(result))
            cursor = result.get("nextCursor")
            if not isinstance(cursor, str) or not cursor:
                break
        log.info("read-only hints looked up for an unlisted tool", extra={
            "channel": cmd.channel, "request_id": cmd.request_id, "tools": len(learned)})
        self.hints.setdefault(cmd.channel, {}).update(learned)
        return bool(learned)

    # --- results -------------------------------------------------------------------------

    def _shape(self, policy: ChannelPolicy, cmd: wire.Command, reply: wire.Reply
               ) -> wire.Reply:
        method = cmd.method
        if (method not in LIST_METHODS and method not in HANDSHAKE_METHODS) or \
                reply.body is None or reply.resp_type != wire.RESP_JSONRPC:
            return reply
        try:
            msg = wire.loads(reply.body)
        except ValueError:
            return reply
        result = msg.get("result") if isinstance(msg, dict) else None
        if not isinstance(result, dict):
            return reply
        if method == "tools/list":
            self.hints.setdefault(cmd.channel, {}).update(read_only_hints(result))
        if not policy.enforced:
            return reply  # shadow mode shows everything
        if method in LIST_METHODS:
            changed = filter_list(method, result, policy, self.hints.get(cmd.channel, {}))
        else:
            changed = truthful_capabilities(result, policy)
        if changed is None:
            return reply
        msg = dict(msg, result=changed)
        return wire.Reply(reply.resp_type, reply.resp_code, wire.dumps(msg), reply.headers,
                          reply.failure)

    def _take_tokens(self, policy: ChannelPolicy, subject: Subject) -> Decision:
        for rule, rate in policy.rate_rules(subject):
            wait = self.buckets.bucket(policy.channel, rule, rate).take()
            if wait is not None:
                return Decision("limit", rule, policy.enforced, wait)
        return ALLOW

    # --- audit ---------------------------------------------------------------------------

    def _record(self, ex: "Exchange", reply: Optional[wire.Reply]):
        cmd, decision = ex.cmd, ex.decision
        fields = {
            "tunnel_id": self.tunnel_id, "channel": cmd.channel, "request_id": cmd.request_id,
            "command_type": cmd.command_type, "session": _session(cmd),
            "method": cmd.method, "name": ex.subject.name if ex.subject else None,
            "decision": decision.result, "rule": decision.rule or None,
            "status": reply.resp_code if reply is not None else None,
            "rpc_error": _rpc_error_code(reply), "failure":
                reply.failure.source if reply is not None and reply.failure else None,
            "duration_ms": round((time.monotonic() - ex.started) * 1000, 3),
        }
        if self.audit is not None:
            request = ex.request
            if request is None:
                request = wire.dumps(cmd.message) if cmd.message is not None else b""
            fields.update({"bytes_in": len(request), "bytes_out": ex.bytes_out,
                           "request_sha256": hashlib.sha256(request).hexdigest(),
                           "reply_sha256": ex.digest.hexdigest() if reply is not None
                           else None})
            if decision.detail:
                fields["detail"] = decision.detail
            if ex.policy is not None and ex.policy.audit_payloads:
                fields["request"] = cmd.message
                fields["reply"] = _payload(reply)
            self.audit.write(fields)
        if ex.policy is not None or self.audit is not None:
            # a tuple per call; the dicts are built only when someone asks (snapshot)
            self.recent.append((time.time(), cmd.channel, fields["method"], fields["name"],
                                fields["decision"], fields["rule"], fields["status"]))

    def snapshot(self, limit: int = 100) -> Dict[str, Any]:
        """For /api/audit and the UI: the chain head and the most recent decisions."""
        audit = self.audit
        return {
            "policy": {name: {"mode": p.mode, "read_only": p.read_only}
                       for name, p in self.policies.channels.items()},
            "audit": None if audit is None else {
                "file": audit.path, "head": audit.chain_head(), "on_failure": audit.on_failure,
                "writable": audit.failing is None, "error": audit.failing,
                "write_failures": audit.failures, "syslog": audit.syslog},
            "recent": [dict(zip(_RECENT_FIELDS, entry))
                       for entry in list(self.recent)[-limit:][::-1]],
        }


class Exchange:
    """One command on its way through the gate: what the audit record is made of."""

    __slots__ = ("cmd", "policy", "request", "started", "subject", "decision", "bytes_out",
                 "digest")

    def __init__(self, cmd: wire.Command, policy: Optional[ChannelPolicy],
                 request: Optional[bytes], started: Optional[float] = None):
        self.cmd = cmd
        self.policy = policy
        self.request = request
        self.started = time.monotonic() if started is None else started
        self.subject = subject_of(cmd.message) if cmd.message else None
        self.decision = ALLOW
        self.bytes_out = 0
        self.digest = hashlib.sha256()  # over every reply body posted, in order

    def sent(self, reply: wire.Reply):
        if reply.body:
            self.bytes_out += len(reply.body)
            self.digest.update(reply.body)


def _result_of(binding, cmd: wire.Command, deadline: wire.Deadline) -> Optional[dict]:
    """The ``result`` of a request we send to a binding ourselves, or None."""
    try:
        with contextlib.closing(binding.handle(cmd, deadline)) as replies:
            for reply in replies:
                if reply.terminal and reply.body:
                    msg = wire.loads(reply.body)
                    result = msg.get("result") if isinstance(msg, dict) else None
                    return result if isinstance(result, dict) else None
    except Exception:  # a failed lookup leaves the tool unknown, and unknown is denied
        log.warning("read-only hints lookup failed", exc_info=True)
    return None


def _all_rates(policy: ChannelPolicy):
    rates = [("rate_limits.tools.%s" % name, rate) for name, _, rate in policy.tool_rates]
    if policy.channel_rate is not None:
        rates.append(("rate_limits.channel", policy.channel_rate))
    return rates


def _session(cmd: wire.Command) -> Optional[str]:
    session = cmd.header("Mcp-Session-Id")
    return _session_digest(session) if session else None


@functools.lru_cache(maxsize=1024)  # a session makes many calls: hash its id once
def _session_digest(session: str) -> str:
    return hashlib.sha256(session.encode("utf-8")).hexdigest()[:32]


def _rpc_error_code(reply: Optional[wire.Reply]) -> Optional[int]:
    if reply is None or not reply.body or b'"error"' not in reply.body:
        return None
    try:
        error = wire.loads(reply.body).get("error")
    except (ValueError, AttributeError):
        return None
    return error.get("code") if isinstance(error, dict) else None


def _payload(reply: Optional[wire.Reply]):
    if reply is None or reply.body is None:
        return None
    try:
        return wire.loads(reply.body)
    except ValueError:
        return reply.body.decode("utf-8", "replace")
