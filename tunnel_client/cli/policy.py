"""``tunnel-client policy``: check a configuration's policy; explain one decision."""

import json
import os

from tunnel_client import config, wire
from tunnel_client.errors import ConfigError
from tunnel_client.policy import policies_of
from tunnel_client.policy.gate import refusal
from tunnel_client.policy.rules import ITEM_OF_METHOD, subject_of


def add_parser(sub):
    parser = sub.add_parser("policy", help="check a policy; explain what it decides",
                            description="The per-channel policy enforced at the tunnel "
                                        "(docs/policy.md).")
    commands = parser.add_subparsers(dest="policy_command", metavar="COMMAND")
    parser.set_defaults(func=lambda args: parser.print_help() or 0)
    check = commands.add_parser("check", help="validate the policy of a configuration file",
                                description="Exit 0 when CONFIG and its policy are valid, 1 "
                                            "with one line naming the problem otherwise.")
    check.add_argument("config", metavar="CONFIG")
    check.set_defaults(func=run_check)
    explain = commands.add_parser(
        "explain", help="say what the policy would do with one request",
        description="Exit 0 when the request would be forwarded (shadow mode included), "
                    "1 when it would be refused. Rate limits are listed, not spent.")
    explain.add_argument("--config", help="configuration file (default: the usual lookup)")
    explain.add_argument("--channel", default=wire.MAIN_CHANNEL)
    explain.add_argument("--method", required=True, help="JSON-RPC method, e.g. tools/call")
    explain.add_argument("--tool", help="tool name (tools/call)")
    explain.add_argument("--prompt", help="prompt name (prompts/get)")
    explain.add_argument("--uri", help="resource URI (resources/read)")
    explain.add_argument("--args", help="the call's arguments as a JSON object")
    explain.add_argument("--read-only-tool", action="append", default=[], metavar="NAME",
                         help="treat NAME as annotated readOnlyHint: true (repeat)")
    explain.add_argument("--json", action="store_true", help="print the decision as JSON")
    explain.set_defaults(func=run_explain)


def _load(path):
    return config.load({"--config": path}, os.environ, require_runtime=False)


def run_check(args) -> int:
    if not os.path.isfile(args.config):
        raise ConfigError("%s is not a file; give the configuration file to check"
                          % args.config)
    cfg = _load(args.config)
    policies = policies_of(cfg)
    if not policies:
        print("OK: %s has no policy: every channel allows everything" % args.config)
    for name, p in sorted(policies.channels.items()):
        parts = ["mode %s" % p.mode]
        if p.read_only:
            parts.append("read_only preset")
        for section in [p.methods] + list(p.items.values()):
            if section.allow or section.deny:
                parts.append("%s: %d allow, %d deny" % (section.section,
                                                        len(section.allow.patterns),
                                                        len(section.deny.patterns)))
        if p.arguments or p.max_argument_bytes:
            parts.append("%d argument rules" % (len(p.arguments) + bool(p.max_argument_bytes)))
        if p.channel_rate or p.tool_rates:
            parts.append("%d rate limits" % (len(p.tool_rates) + bool(p.channel_rate)))
        print("OK: channel %s: %s" % (name, "; ".join(parts)))
    if cfg.audit.file:
        print("audit: %s (key %s, on failure %s%s)" % (
            cfg.audit.file, cfg.audit.key_file, cfg.audit.on_failure,
            ", copied to syslog" if cfg.audit.syslog else ""))
    return 0


def _message(args) -> dict:
    params = {}
    item = ITEM_OF_METHOD.get(args.method)
    value = {"tools": args.tool, "prompts": args.prompt, "resources": args.uri}.get(
        item[0]) if item else None
    if item and value is None:
        raise ConfigError("%s needs --%s" % (args.method, {"tools": "tool", "prompts": "prompt",
                                                           "resources": "uri"}[item[0]]))
    if item:
        params[item[1]] = value
    if args.args is not None:
        try:
            params["arguments"] = json.loads(args.args)
        except ValueError as exc:
            raise ConfigError("--args is not JSON: %s" % exc) from None
    message = {"jsonrpc": "2.0", "id": 1, "method": args.method}
    if params:
        message["params"] = params
    return message


def run_explain(args) -> int:
    cfg = _load(args.config)
    message = _message(args)
    policy = policies_of(cfg).get(args.channel)
    if policy is None:
        result = {"channel": args.channel, "decision": "allow", "rule": None,
                  "why": "no policy for this channel: everything is allowed"}
        _print(args, result)
        return 0
    decision = policy.decide(message, {name: True for name in args.read_only_tool})
    rates = [{"rule": rule, "rate": "%g per %gs" % (rate[0], rate[1]), "burst": rate[2]}
             for rule, rate in policy.rate_rules(subject_of(message))]
    result = {"channel": args.channel, "mode": policy.mode, "decision": decision.result,
              "rule": decision.rule or None, "rate_limits": rates}
    if decision.detail:
        result["detail"] = decision.detail
        if decision.rule.endswith(".schema"):
            arguments = (message.get("params") or {}).get("arguments") or {}
            result["detail"] = policy.schema_message(args.tool or "", arguments) or \
                decision.detail
    if decision.refuses:
        cmd = wire.Command("explain", "explain", wire.CMD_JSONRPC, args.channel, 0.0,
                           message=message)
        result["caller_sees"] = refusal(cmd, decision).json()
    _print(args, result)
    return 1 if decision.refuses else 0


def _print(args, result):
    if args.json:
        print(json.dumps(result, indent=2))
        return
    verdict = {"allow": "forwarded", "deny": "refused", "limit": "refused (rate limit)",
               "shadow_deny": "forwarded (shadow mode: would be refused)",
               "shadow_limit": "forwarded (shadow mode: would be rate limited)"}
    print("%s: %s" % (verdict.get(result["decision"], result["decision"]),
                      "rule %s" % result["rule"] if result.get("rule") else
                      result.get("why", "no rule refuses it")))
    if result.get("detail"):
        print("detail: %s" % result["detail"])
    for rate in result.get("rate_limits") or ():
        print("rate limit: %s (%s, burst %d)" % (rate["rule"], rate["rate"], rate["burst"]))
    if "caller_sees" in result:
        print("caller sees: %s" % json.dumps(result["caller_sees"]))
