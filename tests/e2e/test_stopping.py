"""The stop path: every phase logged with its duration, a thread dump when a stop overruns,
and nothing that merely waits for the network holding SIGTERM.

The stop times themselves are measured by the stop stress run (tests/soak/stopstress.py,
``make stop-stress``); these tests check what is logged and who is waited for.
"""

import signal

import pytest

from tests.support.calls import final, initialize, tool_call
from tests.support.daemon import stub_command, wait_for
from tests.support.servers import black_hole

PHASES = ["stop polling", "drain in-flight", "workers exit", "stop mcp bindings",
          "stop housekeeping", "stop admin server", "close connections"]


def phase_events(instance):
    return [e for e in instance.events() if "duration_ms" in e and "phase" in e]


def messages(instance):
    return [e.get("msg", "") for e in instance.events()]


def test_each_stop_phase_is_logged_with_its_duration(relay, daemon):
    instance = daemon(mcp_command=stub_command())
    final(relay, initialize())
    assert instance.stop() == 0
    events = phase_events(instance)
    assert [e["phase"] for e in events] == PHASES
    assert all(e["duration_ms"] >= 0 for e in events)
    last = instance.events()[-1]
    assert last["msg"] == "tunnel-client stopped" and last["slowest_phase"] in PHASES
    assert "stop requested (SIGTERM)" in messages(instance)
    assert not any(m.startswith("thread dump") for m in messages(instance))


def _slow_call_in_flight(relay, instance, seconds=20):
    final(relay, initialize())
    call = relay.submit(tool_call("sleep", 5, seconds=seconds))
    wait_for(lambda: call.deliveries > 0, message="the slow call taken by a worker")
    return call


def _stacks(instance):
    return {e["thread_name"]: e["stack"] for e in instance.events()
            if e.get("msg", "").startswith("thread ") and "stack" in e}


def test_a_second_sigterm_dumps_every_thread_stack_then_exits(relay, daemon):
    instance = daemon(mcp_command=stub_command())
    _slow_call_in_flight(relay, instance)
    instance.signal(signal.SIGTERM)
    wait_for(lambda: "stop phase stop polling: " in instance.output(),
             message="the drain under way")
    instance.signal(signal.SIGTERM)
    assert instance.wait(20) == 0
    dumps = [m for m in messages(instance) if m.startswith("thread dump")]
    assert dumps == ["thread dump: second stop request (SIGTERM)"]
    stacks = _stacks(instance)
    assert "MainThread" in stacks
    # The worker serving the slow call is seen where it waits: in the stdio binding.
    assert any("/mcp/stdio/" in "".join(stack) for name, stack in stacks.items()
               if name.startswith("worker-")), sorted(stacks)
    drain = [e for e in phase_events(instance) if e["phase"] == "drain in-flight"]
    assert drain[0]["abandoned"] == 1


def test_a_drain_budget_running_out_dumps_every_thread_stack(relay, daemon):
    instance = daemon(mcp_command=stub_command(), args=["--shutdown.drain-timeout", "1s"])
    _slow_call_in_flight(relay, instance)
    assert instance.stop() == 0
    assert "thread dump: the stop is still running after the drain budget (1s)" in \
        messages(instance)
    assert any(name.startswith("worker-") for name in _stacks(instance))


@pytest.fixture
def unanswered_port():
    """A TCP port a connect to waits on until its timeout, like a black-holed path."""
    port, held = black_hole()
    yield port
    for sock in held:
        sock.close()


def test_a_poll_still_connecting_does_not_hold_the_stop(relay, daemon, unanswered_port):
    # The poll would wait a minute for its connection; SIGTERM must not wait with it.
    instance = daemon(wait=False, mcp_command=stub_command(), args=[
        "--control-plane.base-url", "http://127.0.0.1:%d" % unanswered_port,
        "--control-plane.connect-timeout", "60s"])
    wait_for(lambda: "tunnel-client started" in instance.output(), message="the start")
    instance.signal(signal.SIGTERM)
    assert instance.wait(20) == 0
    workers = [e for e in phase_events(instance) if e["phase"] == "workers exit"][0]
    assert len(workers["left_opening_a_poll"]) == 1 and workers["still_running"] == []
