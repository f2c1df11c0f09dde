"""A caller's cancellation reaches the MCP server naming the request as the server knows it.

Through the local control plane to a stdio server that logs every message it receives;
independent of how the stdio binding numbers the requests it forwards."""

from tests.conftest import read_stub_log
from tests.support.calls import exchange, final, initialize, notification, tool_call
from tests.support.daemon import stub_command, wait_for


def received(log, method):
    return [e for e in read_stub_log(log) if e["method"] == method]


def test_a_callers_cancellation_names_the_id_the_server_saw(relay, daemon, stub_log):
    daemon(mcp_command=stub_command("--test-tools", "--log", stub_log), workers=4)
    final(relay, initialize())
    caller_id = "caller-call-to-cancel"
    slow = relay.submit(tool_call("sleep", caller_id, seconds=4), response_timeout="30s")
    wait_for(lambda: received(stub_log, "tools/call"), message="the call reaching the server")
    [forwarded] = received(stub_log, "tools/call")
    ack = exchange(relay, notification("notifications/cancelled", requestId=caller_id,
                                       reason="the user gave up"))
    assert ack[-1]["resp_type"] == "notify_ack"
    wait_for(lambda: received(stub_log, "notifications/cancelled"),
             message="the cancellation reaching the server")
    [cancelled] = received(stub_log, "notifications/cancelled")
    assert cancelled["requestId"] == forwarded["id"], (
        "the server was told to cancel %r, but knows the call as %r"
        % (cancelled["requestId"], forwarded["id"]))
    slow.take(15)  # let the sleep end before the daemon stops


def test_a_cancellation_of_an_unknown_request_is_not_forwarded_with_a_callers_id(
        relay, daemon, stub_log):
    daemon(mcp_command=stub_command("--test-tools", "--log", stub_log), workers=2)
    final(relay, initialize())
    exchange(relay, notification("notifications/cancelled", requestId="never-sent"))
    final(relay, tool_call("echo", "after", input="x"))  # the cancellation came before this
    for entry in received(stub_log, "notifications/cancelled"):
        assert entry["requestId"] != "never-sent"
