"""The policy engine, list shaping and the gate around a binding (no transport)."""

import json

import pytest

from tunnel_client import wire
from tunnel_client.config import policy_schema
from tunnel_client.mcp.binding import Binding
from tunnel_client.observe.instruments import Instruments
from tunnel_client.policy.gate import DENIED_CODE, LIMITED_CODE, PolicyGate
from tunnel_client.policy.limits import TokenBucket
from tunnel_client.policy.rules import PolicySet


def compile_policy(spec, mode="enforce"):
    return PolicySet({"main": policy_schema.check({"main": spec})["main"]}, mode).get("main")


def call(tool, **arguments):
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}}


def msg(method, **params):
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}


# --- rules -------------------------------------------------------------------------------


def test_deny_wins_over_allow_and_the_first_matching_pattern_is_reported():
    p = compile_policy({"tools": {"allow": ["*"], "deny": ["drop_*", "drop_table"]}})
    assert p.decide(call("drop_table"), {}).rule == "tools.deny:drop_*"
    assert p.decide(call("select"), {}).allowed


def test_allow_list_denies_what_it_does_not_name_without_revealing_it():
    p = compile_policy({"tools": {"allow": ["search_*"]}, "prompts": {"allow": ["greet"]},
                        "resources": {"deny": ["file:///etc/*"]}})
    assert p.decide(call("search_docs"), {}).allowed
    assert p.decide(call("delete"), {}).rule == "tools.allow"
    assert p.decide(msg("prompts/get", name="other"), {}).rule == "prompts.allow"
    assert p.decide(msg("resources/read", uri="file:///etc/passwd"), {}).rule == \
        "resources.deny:file:///etc/*"
    assert p.decide(msg("resources/read", uri="file:///srv/a"), {}).allowed
    for climbing in ("file:///srv/../etc/passwd", "file:///srv/%2e%2e/etc/passwd",
                     "file:///srv/./a", "file:///srv/%252e%252e/x"):
        assert p.decide(msg("resources/read", uri=climbing), {}).rule == \
            "resources.dot_segments", climbing
    assert p.decide(msg("resources/read", uri="file:///srv/a..b/c.txt"), {}).allowed


def test_a_call_without_a_name_meets_the_item_rules_too():
    p = compile_policy({"tools": {"allow": ["search"]}})
    for message in (msg("tools/call"), {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                        "params": ["positional"]}):
        assert p.decide(message, {}).rule == "tools.allow"
    assert compile_policy({"tools": {"deny": ["*"]}}).decide(msg("tools/call"), {}).rule == \
        "tools.deny:*"
    assert not compile_policy({"preset": "read_only"}).decide(msg("tools/call"), {}).allowed


def test_method_rules_apply_to_requests_and_notifications():
    p = compile_policy({"methods": {"deny": ["sampling/*", "notifications/roots/*"]}})
    assert p.decide(msg("sampling/createMessage"), {}).rule == "methods.deny:sampling/*"
    note = {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}
    assert p.decide(note, {}).rule == "methods.deny:notifications/roots/*"
    assert p.decide(msg("tools/list"), {}).allowed


def test_read_only_preset_allows_reading_and_only_tools_annotated_read_only():
    p = compile_policy({"preset": "read_only"})
    hints = {"select": True, "update": False}
    for method in ("initialize", "server/discover", "tools/list", "resources/read",
                   "prompts/get", "ping"):
        assert p.decide(msg(method), hints).allowed, method
    assert p.decide(call("select"), hints).allowed
    assert p.decide(call("update"), hints).rule == "preset:read_only"
    assert p.decide(call("never_listed"), hints).rule == "preset:read_only"  # unknown: denied
    assert p.decide(msg("tasks/cancel"), hints).rule == "preset:read_only"


def test_an_explicit_allow_lets_one_write_tool_past_the_read_only_preset():
    p = compile_policy({"preset": "read_only", "tools": {"allow": ["create_ticket", "get_*"]}})
    assert p.decide(call("create_ticket"), {}).allowed
    assert p.decide(call("get_ticket"), {}).allowed
    assert p.decide(call("close_ticket"), {}).rule == "preset:read_only"
    assert p.decide(call("search"), {"search": True}).allowed  # the allow list only adds
    assert p.visible("tools", "create_ticket", {}) and p.visible("tools", "search",
                                                                 {"search": True})
    assert not p.visible("tools", "close_ticket", {})


def test_argument_schema_and_size_rules():
    p = compile_policy({"arguments": {"run_query": {
        "schema": {"type": "object", "required": ["sql"],
                   "properties": {"sql": {"type": "string", "pattern": "^\\s*(?i:select)\\b"}}},
        "max_bytes": 200}}, "max_argument_bytes": 1000})
    assert p.decide(call("run_query", sql="SELECT 1"), {}).allowed
    denied = p.decide(call("run_query", sql="DELETE FROM t"), {})
    assert denied.rule == "arguments.run_query.schema" and denied.detail == "sql fails pattern"
    assert "DELETE" not in denied.detail  # argument values are payload: never in records
    assert p.decide(call("run_query", sql="SELECT " + "x" * 300), {}).rule == \
        "arguments.run_query.max_bytes"
    assert p.decide(call("other", blob="y" * 2000), {}).rule == "max_argument_bytes"
    assert p.decide(call("other", blob="y"), {}).allowed
    # the encoded message's size bounds the arguments': small messages skip encoding them
    big = call("other", blob="y" * 2000)
    assert p.decide(big, {}, size_bound=len(json.dumps(big))).rule == "max_argument_bytes"
    assert p.decide(call("other", blob="y"), {}, size_bound=90).allowed


def test_shadow_mode_decides_the_same_but_does_not_refuse():
    p = compile_policy({"tools": {"deny": ["*"]}}, mode="shadow")
    decision = p.decide(call("x"), {})
    assert decision.rule == "tools.deny:*" and not decision.refuses
    assert decision.result == "shadow_deny"


def test_schema_errors_name_the_path():
    with pytest.raises(ValueError, match="main.tools"):
        policy_schema.check({"main": {"tools": {"alow": ["x"]}}})
    with pytest.raises(ValueError, match="rate_limits.channel"):
        policy_schema.check({"main": {"rate_limits": {"channel": {"rate": "ten"}}}})
    with pytest.raises(ValueError, match="arguments.q.schema is not a valid JSON Schema"):
        policy_schema.check({"main": {"arguments": {"q": {"schema": {"type": "nope"}}}}})


def test_token_bucket_refuses_over_the_burst_and_refills_with_time():
    now = [0.0]
    bucket = TokenBucket(2, 1.0, 2, clock=lambda: now[0])
    assert bucket.take() is None and bucket.take() is None
    wait = bucket.take()
    assert wait == pytest.approx(0.5)
    now[0] += 0.5
    assert bucket.take() is None


# --- the gate around a binding -----------------------------------------------------------


class Recorder(Binding):
    """A binding that answers from a table and remembers what reached it."""

    channel = "main"

    def __init__(self, results):
        self.results = results
        self.seen = []

    def handle(self, cmd, deadline):
        self.seen.append(cmd.message)
        if cmd.kind == "notification":
            yield wire.notify_ack(202)
            return
        result = self.results.get(cmd.method, {})
        yield wire.response(wire.dumps({"jsonrpc": "2.0", "id": cmd.rpc_id,
                                        "result": result}), 200)


def command(message, channel="main"):
    return wire.Command("req_1", "shard_1", "jsonrpc", channel, 0.0, message=message)


def run(gate, binding, message):
    replies = list(gate.handle(binding, command(message), wire.NO_DEADLINE))
    return replies[-1]


TOOLS = {"tools": [
    {"name": "select", "annotations": {"readOnlyHint": True}},
    {"name": "update", "annotations": {"readOnlyHint": False}},
    {"name": "drop_table"}], "nextCursor": "page2"}


def test_denied_calls_never_reach_the_binding_and_get_the_documented_error():
    gate = PolicyGate(PolicySet({"main": {"tools": {"deny": ["drop_*"]}}}))
    binding = Recorder({})
    reply = run(gate, binding, call("drop_table"))
    error = reply.json()["error"]
    assert error["code"] == DENIED_CODE and "tunnel's policy" in error["message"]
    assert error["data"] == {"refused_by": "tunnel_policy", "rule": "tools.deny:drop_*",
                             "retryable": False}
    assert binding.seen == []
    note = {"jsonrpc": "2.0", "method": "notifications/x"}
    gate = PolicyGate(PolicySet({"main": {"methods": {"deny": ["notifications/x"]}}}))
    assert run(gate, binding, note).resp_type == wire.RESP_NOTIFY_ACK
    assert binding.seen == []


def test_lists_are_filtered_with_the_cursor_kept_and_hints_learned():
    gate = PolicyGate(PolicySet({"main": {"preset": "read_only"}}))
    binding = Recorder({"tools/list": TOOLS})
    listed = run(gate, binding, msg("tools/list")).json()["result"]
    assert [t["name"] for t in listed["tools"]] == ["select"]
    assert listed["nextCursor"] == "page2"
    assert "result" in run(gate, binding, call("select")).json()
    assert run(gate, binding, call("update")).json()["error"]["code"] == DENIED_CODE


class Paged(Recorder):
    """tools/list in two pages."""

    def handle(self, cmd, deadline):
        self.seen.append(cmd.message)
        if cmd.method == "tools/list":
            cursor = (cmd.message.get("params") or {}).get("cursor")
            page = {"tools": [{"name": "b", "annotations": {"readOnlyHint": True}}]} \
                if cursor else {"tools": [{"name": "a"}], "nextCursor": "2"}
            yield wire.response(wire.dumps({"jsonrpc": "2.0", "id": cmd.rpc_id,
                                            "result": page}), 200)
            return
        yield from Recorder.handle(self, cmd, deadline)


def test_a_tool_called_before_any_listing_is_looked_up_once():
    # 2026-07-28 clients cache tools/list: the first call may come before any listing
    gate = PolicyGate(PolicySet({"main": {"preset": "read_only"}}))
    binding = Paged({})
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "progressToken": 1}
    modern = call("b")
    modern["params"]["_meta"] = meta
    assert "result" in run(gate, binding, modern).json()
    lists = [m for m in binding.seen if m["method"] == "tools/list"]
    assert [m["params"].get("cursor") for m in lists] == [None, "2"]  # every page
    assert all(m["params"]["_meta"] == {"io.modelcontextprotocol/protocolVersion":
                                        "2026-07-28"} for m in lists)
    assert binding.seen[-1]["params"]["name"] == "b"
    # a guessed name is refused without asking the server again
    assert run(gate, binding, call("guessed")).json()["error"]["data"]["rule"] == \
        "preset:read_only"
    assert len([m for m in binding.seen if m["method"] == "tools/list"]) == 2
    assert run(gate, binding, call("a")).json()["error"]["code"] == DENIED_CODE


def test_capabilities_stay_truthful_in_both_eras():
    gate = PolicyGate(PolicySet({"main": {"methods": {"deny": ["prompts/*"]}}}))
    caps = {"capabilities": {"tools": {}, "prompts": {}, "resources": {"subscribe": True}}}
    binding = Recorder({"initialize": caps, "server/discover": caps})
    for method in ("initialize", "server/discover"):
        result = run(gate, binding, msg(method)).json()["result"]
        assert set(result["capabilities"]) == {"tools", "resources"}


def test_rate_limits_refuse_with_a_retryable_error_per_tool_and_channel():
    gate = PolicyGate(PolicySet({"main": {"rate_limits": {
        "channel": {"rate": "1/h", "burst": 2}, "tools": {"slow": {"rate": "1/h", "burst": 1}}}}}),
        instruments=Instruments())
    binding = Recorder({})
    assert "result" in run(gate, binding, call("slow")).json()
    error = run(gate, binding, call("slow")).json()["error"]
    assert error["code"] == LIMITED_CODE
    assert error["data"]["rule"] == "rate_limits.tools.slow" and error["data"]["retryable"]
    assert error["data"]["retry_after_ms"] > 0
    assert "result" in run(gate, binding, call("fast")).json()
    assert run(gate, binding, call("fast")).json()["error"]["data"]["rule"] == \
        "rate_limits.channel"
    assert gate.metrics.policy_decisions.value(channel="main", rule="rate_limits.channel",
                                               result="limit") == 1
    assert len(binding.seen) == 2


def test_shadow_mode_forwards_everything_and_filters_nothing():
    gate = PolicyGate(PolicySet({"main": {"tools": {"deny": ["*"]}}}, "shadow"))
    binding = Recorder({"tools/list": TOOLS})
    assert "result" in run(gate, binding, call("update")).json()
    assert len(run(gate, binding, msg("tools/list")).json()["result"]["tools"]) == 3
    assert [d["decision"] for d in gate.snapshot()["recent"]][::-1] == ["shadow_deny", "allow"]


def test_reload_swaps_the_policy_for_the_next_command_only():
    gate = PolicyGate(PolicySet({}))
    binding = Recorder({})
    replies = gate.handle(binding, command(call("x")), wire.NO_DEADLINE)
    gate.reload(PolicySet({"main": {"tools": {"deny": ["x"]}}}))
    assert "result" in list(replies)[-1].json()  # began under the old policy
    assert run(gate, binding, call("x")).json()["error"]["data"]["rule"] == "tools.deny:x"


def test_unpoliced_channels_pass_through_untouched():
    gate = PolicyGate(PolicySet({"other": {"tools": {"deny": ["*"]}}}))
    binding = Recorder({"tools/list": TOOLS})
    reply = run(gate, binding, msg("tools/list"))
    assert json.loads(reply.body)["result"] == TOOLS
