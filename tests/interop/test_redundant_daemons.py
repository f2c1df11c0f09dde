"""Two ``tunnel-client run`` processes on one tunnel: every command is answered exactly once,
both share the work, and when one stops the other carries the load."""

import json
import threading

from tests.support.calls import final, initialize, tool_call
from tests.support.daemon import stub_command, wait_for

INSTANCE = "X-Tunnel-Client-Instance-Id"


def instance_of_last_poll(relay, other=None):
    def fresh():
        for poll in reversed(list(relay.polls)):
            instance = poll["headers"].get(INSTANCE)
            if instance and instance != other:
                return instance
        return None
    return wait_for(fresh, timeout=15, message="a poll from a new instance")


def submit_sleeps(relay, count, seconds, tag):
    return [relay.submit(tool_call("sleep", "%s-%d" % (tag, i), seconds=seconds))
            for i in range(count)]


def answers(relay, calls, timeout=20.0):
    """The final payload of every call, and which instance posted each one."""
    finals = []
    for call in calls:
        while True:
            payload = call.take(timeout)
            assert payload is not None, "no answer to %s" % call.request_id
            if payload.get("resp_type", "jsonrpc_response") != "jsonrpc_notify":
                finals.append(payload)
                break
    posters = {}
    for record in list(relay.responses):
        body = json.loads(record["body"])
        posters.setdefault(body["request_id"], []).append(record["headers"].get(INSTANCE))
    return finals, posters


def assert_answered_once(calls, finals, posters, seconds, tag):
    for i, (call, payload) in enumerate(zip(calls, finals)):
        assert payload["resp_json"]["id"] == "%s-%d" % (tag, i)
        assert payload["resp_json"]["result"]["structuredContent"] == {"slept": seconds}
        assert len(posters[call.request_id]) == 1, "answered %d times" % len(
            posters[call.request_id])
        assert call.deliveries == 1, "%s was polled %d times" % (call.request_id,
                                                                 call.deliveries)


def test_two_daemons_share_a_tunnel_and_one_carries_on_alone(relay, daemon):
    first = daemon(mcp_command=stub_command(), workers=3)
    first_id = instance_of_last_poll(relay)
    second = daemon(mcp_command=stub_command(), workers=3)
    second_id = instance_of_last_poll(relay, other=first_id)
    for rpc_id in (0, 1):  # each stdio child gets its handshake from whichever daemon polls
        assert final(relay, initialize(rpc_id))["resp_code"] == 200

    # More concurrent work than one daemon has workers: both must take a share.
    calls = submit_sleeps(relay, 12, 0.3, "both")
    finals, posters = answers(relay, calls)
    assert_answered_once(calls, finals, posters, 0.3, "both")
    served = {posters[c.request_id][0] for c in calls}
    assert served == {first_id, second_id}

    # Stop the first while it is busy: it finishes what it took, the second takes the rest.
    during = submit_sleeps(relay, 6, 0.5, "during")
    wait_for(lambda: all(c.deliveries for c in during[:4]), timeout=10,
             message="both daemons busy")
    first.signal()
    assert first.wait(30) == 0, first.output()[-3000:]
    after = submit_sleeps(relay, 8, 0.1, "after")
    finals, posters = answers(relay, during + after)
    assert_answered_once(during, finals[:6], posters, 0.5, "during")
    assert_answered_once(after, finals[6:], posters, 0.1, "after")
    assert {posters[c.request_id][0] for c in after} == {second_id}
    assert second.proc.poll() is None


def test_commands_reaching_a_stopping_daemon_are_served_not_failed(relay, daemon):
    relay.faults.release = threading.Event()  # a poll answer with commands: headers first
    try:
        stopping = daemon(mcp_command=stub_command(), workers=3, poll_timeout="10s")
        stopping_id = instance_of_last_poll(relay)
        caught = relay.submit(tool_call("echo", 0, input="late-0"))
        wait_for(relay.faults.held.is_set, timeout=10,
                 message="a poll answer whose command has not arrived yet")
        stopping.signal()
        wait_for(lambda: "stopping: polling stopped" in stopping.output(), timeout=10,
                 message="the drain to start")
    finally:
        relay.faults.release.set()  # the command now reaches a daemon that is stopping
    payload = caught.take(15)
    assert payload is not None, "the command that reached the stopping daemon was dropped"
    assert payload["resp_code"] == 200, payload["resp_json"]
    assert payload["resp_json"]["result"]["structuredContent"] == {"echoed": "late-0"}
    assert stopping.wait(30) == 0, stopping.output()[-3000:]
    _, posters = answers(relay, [])
    assert posters[caught.request_id] == [stopping_id]
    assert caught.deliveries == 1

    # Commands arriving after it left go to the daemon still running.
    relay.faults.release = None
    daemon(mcp_command=stub_command(), workers=3)
    later = [relay.submit(tool_call("echo", i, input="late-%d" % i)) for i in (1, 2)]
    finals, _ = answers(relay, later, timeout=15)
    assert [f["resp_json"]["result"]["structuredContent"] for f in finals] == [
        {"echoed": "late-1"}, {"echoed": "late-2"}]
