"""The response POST's retry rules against a loopback control plane, in process: which
statuses are retried for which replies, and the gate pause a Retry-After imposes."""

import threading
import time

import pytest

from tests.support.servers import Scripted
from tunnel_client import wire
from tunnel_client.controlplane import POLL, BackoffGate, ControlPlane
from tunnel_client.errors import ControlPlaneError
from tunnel_client.net import Route

TUNNEL = "tunnel_" + "c" * 32


@pytest.fixture
def answering():
    """answering(*statuses, headers=None) -> (server, control plane); the server answers
    response POSTs with the statuses in turn, then 200."""
    opened = []

    def start(*statuses, headers=None):
        queue = list(statuses)

        def handler(request):
            status = queue.pop(0) if queue else 200
            return status, (headers or {}) if status != 200 else {}, b"{}"

        server = Scripted(handler)
        base = server.url[:-len("/mcp")]
        plane = ControlPlane(Route("control-plane", base, None, "test"), TUNNEL, "sk-unit-key")
        opened.append((server, plane))
        return server, plane

    yield start
    for server, plane in opened:
        plane.close()
        server.close()


def command(rpc_id=1):
    return wire.parse_command({"request_id": "req_1", "shard_token": "shard",
                               "command_type": "jsonrpc", "channel": "main",
                               "jsonrpc": {"jsonrpc": "2.0", "id": rpc_id,
                                           "method": "tools/call"}}, time.monotonic())


def progress():
    return wire.notify(wire.dumps({"jsonrpc": "2.0", "method": "notifications/progress",
                                   "params": {"progressToken": "t", "progress": 1}}), 200)


def answer():
    return wire.response(wire.dumps({"jsonrpc": "2.0", "id": 1, "result": {}}), 200)


def posts(server):
    return [r for r in server.requests if r["method"] == "POST"]


@pytest.mark.parametrize("status", [408, 502, 503, 504])
def test_a_notification_post_is_never_retried_on_a_status_that_may_follow_delivery(
        answering, status):
    server, plane = answering(status)
    outcome = plane.post(command(), progress(), wire.NO_DEADLINE)
    assert outcome == "failed"
    assert len(posts(server)) == 1, "a notification must never be duplicated"


def test_a_notification_post_is_retried_on_429(answering):
    server, plane = answering(429)
    assert plane.post(command(), progress(), wire.NO_DEADLINE) == "ok"
    assert len(posts(server)) == 2


@pytest.mark.parametrize("status", [408, 502, 504])
def test_a_terminal_post_is_retried_with_the_same_body(answering, status):
    server, plane = answering(status)
    assert plane.post(command(), answer(), wire.NO_DEADLINE) == "ok"
    sent = posts(server)
    assert len(sent) == 2 and sent[0]["body"] == sent[1]["body"]
    assert sent[0]["headers"]["x-tunnel-shard-token"] == "shard"


@pytest.mark.parametrize("status", [400, 413, 500])
def test_a_terminal_post_is_not_retried_on_other_statuses(answering, status):
    server, plane = answering(status)
    assert plane.post(command(), answer(), wire.NO_DEADLINE) == "failed"
    assert len(posts(server)) == 1


def test_retry_after_on_a_503_response_post_pauses_the_polls(answering):
    server, plane = answering(503, headers={"Retry-After": "30"})
    assert plane.post(command(), progress(), wire.NO_DEADLINE) == "failed"  # not retried
    assert plane.gate.paused_for() > 20
    assert "Retry-After" in plane.gate.reason


def test_retry_after_on_a_429_response_post_pauses_the_polls(answering):
    # Retried only after Retry-After, which is beyond this deadline: the post gives up.
    server, plane = answering(429, 429, 429, headers={"Retry-After": "30"})
    assert plane.post(command(), answer(), wire.Deadline.after(5.0)) == "expired"
    assert len(posts(server)) == 1
    assert plane.gate.paused_for() > 20


def test_retry_after_on_another_status_does_not_pause_the_polls(answering):
    server, plane = answering(500, headers={"Retry-After": "30"})
    plane.post(command(), answer(), wire.NO_DEADLINE)
    assert plane.gate.paused_for() == 0


def test_a_failure_while_paused_does_not_count_again():
    gate = BackoffGate()
    gate.failure(ControlPlaneError("down", status=503))
    gate.failure(ControlPlaneError("down", status=503))
    assert gate.failures == 1
    assert gate.paused_for() > 0


def test_after_a_success_every_worker_polls_and_after_a_failure_one_probes():
    gate = BackoffGate()
    stop = threading.Event()
    assert gate.wait(stop) == "probe"
    gate.success()
    assert gate.wait(stop) == POLL and gate.wait(stop) == POLL
    stop.set()
    assert gate.wait(stop) is None

