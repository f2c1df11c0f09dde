"""The policy of one channel, compiled from its validated YAML, and its pure decisions.

Order of evaluation (the first rule that decides is the one reported):
deny lists (methods, then the item's kind), allow lists, the ``read_only`` preset, argument
rules. With the preset, an item allow list adds to what the preset allows instead of
restricting it, so "read-only plus create_ticket" is one line. Rate limits are applied by the gate afterwards,
since they consume tokens and this module has no state.
"""

import fnmatch
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple

from tunnel_client import wire
from tunnel_client.config.policy_schema import ITEM_KINDS, parse_rate
from tunnel_client.policy.quickschema import compile_quick

# The methods a read-only client needs: discovery, listing, reading, housekeeping.
READ_ONLY_METHODS = frozenset((
    "initialize", "ping", "server/discover", "tools/list", "tools/call", "prompts/list",
    "prompts/get", "resources/list", "resources/templates/list", "resources/read",
    "resources/subscribe", "resources/unsubscribe", "completion/complete",
    "logging/setLevel"))

# method -> (item kind, the params key naming the item)
ITEM_OF_METHOD = {
    "tools/call": ("tools", "name"),
    "prompts/get": ("prompts", "name"),
    "resources/read": ("resources", "uri"),
    "resources/subscribe": ("resources", "uri"),
    "resources/unsubscribe": ("resources", "uri"),
}


@dataclass(frozen=True)
class Decision:
    """``kind`` is allow, deny or limit; ``rule`` names the deciding rule ('' = default)."""

    kind: str
    rule: str = ""
    enforced: bool = True
    retry_after: Optional[float] = None
    detail: str = ""  # for the audit record and the log, never for the caller

    @property
    def allowed(self) -> bool:
        return self.kind == "allow"

    @property
    def refuses(self) -> bool:
        return not self.allowed and self.enforced

    @property
    def result(self) -> str:
        """Metric and audit label: allow, deny, limit, shadow_deny, shadow_limit."""
        if self.allowed or self.enforced:
            return self.kind
        return "shadow_" + self.kind


ALLOW = Decision("allow")


class Globs:
    """Ordered glob patterns (``*``, ``?``, ``[...]``; case-sensitive); first match wins."""

    def __init__(self, patterns):
        self.patterns = tuple(patterns or ())
        self._compiled = tuple((p, re.compile(fnmatch.translate(p)).match)
                               for p in self.patterns)

    def first(self, name: str) -> Optional[str]:
        for pattern, match in self._compiled:
            if match(name):
                return pattern
        return None

    def __bool__(self):
        return bool(self.patterns)


class RuleList:
    def __init__(self, section: str, spec: Optional[Mapping[str, Any]]):
        spec = spec or {}
        self.section = section
        self.allow = Globs(spec.get("allow"))
        self.deny = Globs(spec.get("deny"))

    def denied_by(self, name: str) -> Optional[str]:
        hit = self.deny.first(name)
        return None if hit is None else "%s.deny:%s" % (self.section, hit)

    def allowed_by(self, name: str) -> Tuple[bool, Optional[str]]:
        """(passes the allow list, the explicit allow pattern that matched if any)."""
        if not self.allow:
            return True, None
        hit = self.allow.first(name)
        return hit is not None, hit


class Subject(NamedTuple):
    """What a message asks for, as the rules see it (one per command: a tuple is cheap)."""

    method: str
    kind: Optional[str] = None  # tools | prompts | resources
    name: Optional[str] = None
    arguments: Any = None


def subject_of(message: Mapping[str, Any]) -> Subject:
    method = message.get("method") or ""
    params = message.get("params")
    item = ITEM_OF_METHOD.get(method)
    if item is None:
        return Subject(method)
    if not isinstance(params, dict):
        params = {}  # no name is the empty name: allow lists and the preset refuse it
    name = params.get(item[1])
    name = name if isinstance(name, str) else ""
    arguments = params.get("arguments") if method in ("tools/call", "prompts/get") else None
    return Subject(method, item[0], name, arguments)


class ArgumentRule:
    def __init__(self, key: str, spec: Mapping[str, Any]):
        from jsonschema import Draft7Validator

        self.key = key
        self.match = Globs([key])
        self.validator = Draft7Validator(spec["schema"]) if "schema" in spec else None
        self.quick = compile_quick(spec["schema"]) if "schema" in spec else None
        self.max_bytes = spec.get("max_bytes")

    def schema_error(self, arguments):
        """The first way the arguments fail the schema, or None (also without a schema)."""
        if self.validator is None or (self.quick is not None and self.quick(arguments)):
            return None
        return next(iter(self.validator.iter_errors(arguments)), None)


class ChannelPolicy:
    def __init__(self, channel: str, spec: Mapping[str, Any], default_mode: str = "enforce"):
        self.channel = channel
        self.mode = spec.get("mode", default_mode)
        self.read_only = spec.get("preset") == "read_only"
        self.methods = RuleList("methods", spec.get("methods"))
        self.items = {kind: RuleList(kind, spec.get(kind)) for kind in ITEM_KINDS}
        self.arguments = [ArgumentRule(k, v) for k, v in (spec.get("arguments") or {}).items()]
        self.max_argument_bytes = spec.get("max_argument_bytes")
        limits = spec.get("rate_limits") or {}
        self.channel_rate = _rate(limits.get("channel"))
        self.tool_rates: List[Tuple[str, Globs, Tuple[float, float, int]]] = [
            (name, Globs([name]), _rate(r)) for name, r in (limits.get("tools") or {}).items()]
        self.audit_payloads = bool(spec.get("audit_payloads"))
        self.needs_arguments = bool(self.arguments or self.max_argument_bytes)

    @property
    def enforced(self) -> bool:
        return self.mode == "enforce"

    def decide(self, message: Mapping[str, Any], read_only_tools: Mapping[str, bool],
               subject: Optional[Subject] = None, size_bound: Optional[int] = None
               ) -> Decision:
        """The static decision (everything but rate limits) for one request or notice.
        ``size_bound``: the encoded message's size, when known; arguments are never larger,
        so a message within every size limit spares encoding its arguments again."""
        decision = self._decide(subject or subject_of(message), read_only_tools, size_bound)
        if decision.allowed or self.enforced:
            return decision
        return Decision(decision.kind, decision.rule, False, decision.retry_after,
                        decision.detail)

    def _decide(self, s: Subject, read_only_tools, size_bound=None) -> Decision:
        rule = self.methods.denied_by(s.method)
        if rule:
            return Decision("deny", rule)
        items = self.items[s.kind] if s.kind else None
        if items is not None:
            if s.kind == "resources" and (items.allow or items.deny) and \
                    _dot_segments(s.name):
                # file:///srv/../etc/passwd would match an allow of file:///srv/*
                return Decision("deny", "resources.dot_segments")
            rule = items.denied_by(s.name)
            if rule:
                return Decision("deny", rule)
        passes, _ = self.methods.allowed_by(s.method)
        if not passes:
            return Decision("deny", "methods.allow")
        explicit = None
        if items is not None:
            passes, explicit = items.allowed_by(s.name)
            if not passes and not self.read_only:  # with the preset, allow lists add
                return Decision("deny", "%s.allow" % s.kind)
        if self.read_only and not _read_only_ok(s, explicit, read_only_tools):
            return Decision("deny", "preset:read_only")
        if s.method == "tools/call":
            return self._arguments(s, size_bound)
        return ALLOW

    def _arguments(self, s: Subject, size_bound: Optional[int] = None) -> Decision:
        if not self.needs_arguments:
            return ALLOW
        arguments = {} if s.arguments is None else s.arguments
        sizes = []

        def too_big(limit) -> bool:
            if not limit or (size_bound is not None and size_bound <= limit):
                return False
            if not sizes:
                sizes.append(len(wire.dumps(arguments)))
            return sizes[0] > limit

        if too_big(self.max_argument_bytes):
            return Decision("deny", "max_argument_bytes",
                            detail="arguments are %d bytes" % sizes[0])
        for rule in self.arguments:
            if rule.match.first(s.name) is None:
                continue
            if too_big(rule.max_bytes):
                return Decision("deny", "arguments.%s.max_bytes" % rule.key,
                                detail="arguments are %d bytes" % sizes[0])
            error = rule.schema_error(arguments)
            if error is not None:
                # the path and the keyword only: argument values are payload, and
                # payloads stay out of records and logs unless the operator opts in
                where = "/".join(str(p) for p in error.absolute_path) or "arguments"
                return Decision("deny", "arguments.%s.schema" % rule.key,
                                detail="%s fails %s" % (where, error.validator))
        return ALLOW

    def schema_message(self, tool: str, arguments) -> Optional[str]:
        """The full validation message for one tool's arguments (for `policy explain`,
        where the operator typed the arguments themselves)."""
        for rule in self.arguments:
            if rule.match.first(tool) is not None:
                error = rule.schema_error(arguments)
                if error is not None:
                    where = "/".join(str(p) for p in error.absolute_path) or "arguments"
                    return "%s: %s" % (where, error.message)
        return None

    def visible(self, kind: str, name: str, read_only_tools: Mapping[str, bool]) -> bool:
        """Whether a listed tool, prompt or resource may be advertised to the caller."""
        items = self.items[kind]
        if items.denied_by(name):
            return False
        passes, explicit = items.allowed_by(name)
        if self.read_only and kind == "tools" and explicit is None:
            return bool(read_only_tools.get(name))
        return passes or self.read_only

    def method_allowed(self, method: str) -> bool:
        """Whether a whole method is open (used to keep advertised capabilities truthful)."""
        if self.methods.denied_by(method) or not self.methods.allowed_by(method)[0]:
            return False
        return not self.read_only or method in READ_ONLY_METHODS

    def rate_rules(self, s: Subject):
        """The (rule name, (tokens, per, burst)) buckets a call draws from, tool first."""
        rules = []
        if s.method == "tools/call" and s.name is not None:
            for name, match, rate in self.tool_rates:
                if match.first(s.name) is not None:
                    rules.append(("rate_limits.tools.%s" % name, rate))
                    break
        if self.channel_rate is not None:
            rules.append(("rate_limits.channel", self.channel_rate))
        return rules


_DOT_SEGMENT = re.compile(r"(^|/)\.{1,2}(/|$)")


def _dot_segments(uri: str) -> bool:
    """True when a URI's path climbs (``..``) or idles (``.``), percent-encoded or not."""
    from urllib.parse import unquote

    return bool(_DOT_SEGMENT.search(uri) or _DOT_SEGMENT.search(unquote(unquote(uri))))


def _read_only_ok(s: Subject, explicit: Optional[str], read_only_tools) -> bool:
    if explicit is not None:
        return True
    if s.method.startswith("notifications/"):
        return True
    if s.method not in READ_ONLY_METHODS:
        return False
    if s.method == "tools/call":
        return read_only_tools.get(s.name) is True  # unknown means denied
    return True


def _rate(spec) -> Optional[Tuple[float, float, int]]:
    if not spec:
        return None
    tokens, per = parse_rate(spec["rate"])
    burst = int(spec.get("burst") or max(1, int(tokens)))
    return tokens, per, burst


class PolicySet:
    """Every channel's compiled policy; a channel with none allows everything."""

    def __init__(self, channels: Optional[Mapping[str, Any]], default_mode: str = "enforce"):
        self.channels: Dict[str, ChannelPolicy] = {
            name: ChannelPolicy(name, spec, default_mode)
            for name, spec in (channels or {}).items()}

    def get(self, channel: str) -> Optional[ChannelPolicy]:
        return self.channels.get(channel)

    def __bool__(self):
        return bool(self.channels)
