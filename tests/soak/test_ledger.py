"""The soak's books must be able to fail: each broken promise is recognised as such.
(Fast; runs in ``make test``, unlike the soak itself.)"""

from tests.soak.callers import CallRecord
from tests.soak.ledger import classify


def call(status=200, message=None, tool="echo", notes=(), sent=10.0, answered=11.0, problem=""):
    record = CallRecord(0, 7, tool, "mine", "tok-7" if tool == "count" else None, sent,
                        answered, status, message, list(notes), problem)
    return record


def result(value, rpc_id=7):
    return {"jsonrpc": "2.0", "id": rpc_id, "result": {"structuredContent": value}}


def killed_reply(rpc_id=7):
    return {"jsonrpc": "2.0", "id": rpc_id, "error": {"code": -32603, "message": "Bad Gateway",
            "data": {"tunnel_failure": {"version": 1, "source": "transport_closed"}}}}


def progress(token):
    return {"jsonrpc": "2.0", "method": "notifications/progress",
            "params": {"progressToken": token, "progress": 1}}


def test_own_echo_is_ok_and_anyone_elses_is_misrouted():
    assert classify(call(message=result({"echoed": "mine"})), []) == "ok"
    assert classify(call(message=result({"echoed": "theirs"})), []) == "misrouted"
    assert classify(call(message=result({"echoed": "mine"}, rpc_id=8)), []) == "misrouted"


def test_a_foreign_progress_token_is_misrouted():
    good = call(tool="count", message=result({"count": 3}), notes=[progress("tok-7")])
    assert classify(good, []) == "ok"
    bad = call(tool="count", message=result({"count": 3}), notes=[progress("tok-9")])
    assert classify(bad, []) == "misrouted"


def test_a_synthesized_error_counts_only_when_a_kill_explains_it():
    assert classify(call(status=502, message=killed_reply()), [10.5]) == "killed"
    assert classify(call(status=502, message=killed_reply()), [10.5 - 5]) == "unexpected"
    assert classify(call(status=502, message=killed_reply()), [20.0]) == "unexpected"


def test_the_control_planes_timeout_or_no_answer_is_lost():
    timeout = {"jsonrpc": "2.0", "id": 7, "error": {"code": -32001, "message": "timed out"}}
    assert classify(call(status=504, message=timeout), []) == "lost"
    assert classify(call(status=None, answered=None, problem="ReadTimeout: x"), []) == "lost"


def test_any_other_answer_is_unexpected():
    other = {"jsonrpc": "2.0", "id": 7, "error": {"code": -32603, "message": "x"}}
    assert classify(call(status=502, message=other), [10.5]) == "unexpected"
