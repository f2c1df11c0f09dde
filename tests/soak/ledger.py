"""The soak's books: every call's outcome from the callers' side, checked against what the
control plane accepted and what the stdio server executed.

Outcomes: ``ok`` (the caller's own payload came back), ``killed`` (a synthesized -32603
for a call in flight when its server was SIGKILLed), ``lost`` (no answer, or the control
plane's timeout), ``misrouted`` (someone else's payload, id or progress token),
``unexpected`` (anything else, e.g. a -32603 with no kill during the call).
"""

import collections
import json
from typing import Dict, Iterable, List

from tests.soak.callers import CallRecord


def _error(message) -> dict:
    error = (message or {}).get("error")
    return error if isinstance(error, dict) else {}


def misrouted(record: CallRecord) -> str:
    message = record.message or {}
    if message.get("id") != record.rpc_id:
        return "reply id %r for call id %r" % (message.get("id"), record.rpc_id)
    for note in record.notes:
        token = (note.get("params") or {}).get("progressToken")
        if token != record.token:
            return "progress token %r on call with token %r" % (token, record.token)
    if len(record.notes) > 3:
        return "%d progress notifications for a count to 3" % len(record.notes)
    result = message.get("result")
    if isinstance(result, dict):
        got = result.get("structuredContent")
        want = {"echoed": record.input} if record.tool == "echo" else {"count": 3}
        if got != want:
            return "result %r, expected %r" % (got, want)
    return ""


# A call sent this soon after a SIGKILL can still be written to the dying server's pipe
# before the daemon sees it exit: in flight when its child died, though sent after the kill.
DEATH_NOTICE = 1.0


def classify(record: CallRecord, kills: List[float]) -> str:
    if record.problem or record.status is None:
        return "lost" if "Timeout" in record.problem or record.status is None else "unexpected"
    if record.message and ("result" in record.message or "error" in record.message):
        if misrouted(record):
            return "misrouted"
    if record.status == 200 and record.message and "result" in record.message:
        return "ok"
    error = _error(record.message)
    if error.get("code") == -32001 and record.status == 504:
        return "lost"  # the control plane's own timeout: the client never answered
    failure = (error.get("data") or {}).get("tunnel_failure") or {}
    if error.get("code") == -32603 and failure.get("source") == "transport_closed":
        killed_during = any(record.sent - DEATH_NOTICE <= k <= record.answered for k in kills)
        return "killed" if killed_during else "unexpected"
    return "unexpected"


def executions(path: str) -> collections.Counter:
    """How often the stdio servers ran each input (a line cut by SIGKILL is skipped)."""
    counts = collections.Counter()
    with open(path) as handle:
        for line in handle:
            try:
                counts[json.loads(line)["input"]] += 1
            except (ValueError, KeyError, TypeError):
                pass
    return counts


def audit(records: Iterable[CallRecord], kills: List[float], relay, executed_path: str
          ) -> Dict[str, object]:
    """Counts per outcome plus every broken promise, with examples."""
    records = list(records)
    ran = executions(executed_path)
    request_ids = {}
    for command in relay.commands:
        arguments = ((command.get("jsonrpc") or {}).get("params") or {}).get("arguments") or {}
        request_ids[arguments.get("input")] = command["request_id"]
    outcomes = collections.Counter()
    problems = collections.defaultdict(list)
    sent_inputs = set()
    for record in records:
        sent_inputs.add(record.input)
        outcome = classify(record, kills)
        outcomes[outcome] += 1
        if outcome in ("lost", "misrouted", "unexpected"):
            problems[outcome].append(_describe(record, kills))
        times_run = ran.get(record.input, 0)
        if outcome == "ok" and times_run != 1:
            problems["ok but executed %s" % ("twice or more" if times_run else "never")
                     ].append(_describe(record))
        if outcome == "killed" and times_run > 1:
            problems["killed but executed twice"].append(_describe(record))
        rid = request_ids.get(record.input)
        if rid is None:
            problems["never reached the control plane"].append(_describe(record))
            continue
        if outcome in ("ok", "killed") and relay.accepted_finals[rid] != 1:
            problems["answer accepted %d times" % relay.accepted_finals[rid]].append(
                _describe(record))
        if relay.refused_finals[rid]:
            problems["answered twice (second answer refused)"].append(_describe(record))
    strangers = [text for text in ran if text not in sent_inputs]
    if strangers:
        problems["executed but never sent"] = strangers[:5]
    redelivered = set(relay.lost_after_dequeue)
    return {"calls": len(records), "outcomes": dict(outcomes),
            "redelivered_after_lost_poll_reply": len(
                [r for r in records if request_ids.get(r.input) in redelivered]),
            "executions": sum(ran.values()), "problems": dict(problems)}


def _describe(record: CallRecord, kills: List[float] = ()) -> str:
    nearest = min(kills, key=lambda k: abs(k - record.sent), default=None)
    when = "" if nearest is None else " (sent %+.3fs from the nearest kill, answered after "\
        "%.3fs)" % (record.sent - nearest, (record.answered or record.sent) - record.sent)
    return "caller %d call %d (%s) status %s%s: %s" % (
        record.caller, record.rpc_id, record.tool, record.status, when,
        record.problem or json.dumps(record.message)[:240])
