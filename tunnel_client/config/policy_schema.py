"""The ``policy.channels`` YAML section: its own draft-7 JSON Schema and the checks a
schema cannot express (argument schemas that must themselves be valid, rate syntax).

The policy room compiles what this returns; config stays a leaf and knows no engine.
"""

import copy
import re
from typing import Any, Dict, Tuple

MODES = ("enforce", "shadow")
PRESETS = ("read_only",)
ITEM_KINDS = ("tools", "prompts", "resources")
_RATE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$")
_PER = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0,
        "h": 3600.0, "hour": 3600.0}

_GLOBS = {"type": "array", "items": {"type": "string", "minLength": 1}}
_RULES = {"type": "object", "additionalProperties": False,
          "properties": {"allow": _GLOBS, "deny": _GLOBS}}
_RATE = {"type": "object", "additionalProperties": False, "required": ["rate"],
         "properties": {"rate": {"type": "string"},
                        "burst": {"type": "integer", "minimum": 1}}}
_BYTES = {"type": "integer", "minimum": 1}

CHANNEL_POLICY_SCHEMA: Dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "mode": {"enum": list(MODES)},
        "preset": {"enum": list(PRESETS)},
        "methods": _RULES, "tools": _RULES, "prompts": _RULES, "resources": _RULES,
        "arguments": {"type": "object", "additionalProperties": {
            "type": "object", "additionalProperties": False,
            "properties": {"schema": {"type": "object"}, "max_bytes": _BYTES}}},
        "max_argument_bytes": _BYTES,
        "rate_limits": {"type": "object", "additionalProperties": False, "properties": {
            "channel": _RATE, "tools": {"type": "object", "additionalProperties": _RATE}}},
        "audit_payloads": {"type": "boolean"},
    },
}

POLICY_CHANNELS_SCHEMA: Dict[str, Any] = {
    "type": "object", "propertyNames": {"pattern": "^[a-z0-9_-]{1,64}$"},
    "additionalProperties": CHANNEL_POLICY_SCHEMA,
}


def parse_rate(text: str) -> Tuple[float, float]:
    """``"10/s"``, ``"30/m"``, ``"100/h"`` -> (tokens, per seconds)."""
    match = _RATE_RE.match(str(text))
    if not match or float(match.group(1)) <= 0:
        raise ValueError('rate "%s" is not like 10/s, 30/m or 100/h' % text)
    return float(match.group(1)), _PER[match.group(2)]


def read_file(path: str) -> Any:
    """A policy file: YAML (JSON is YAML too) holding the channels mapping."""
    import yaml

    from tunnel_client.config import yaml_shape

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        # As for the main file: alias bombs and duplicate keys are refused before loading.
        shape = yaml_shape.problem(yaml.compose(text, Loader=loader))
        if shape:
            raise ValueError("policy file %s: %s" % (path, shape))
        return yaml.load(text, Loader=loader) or {}  # noqa: S506 - a safe loader
    except UnicodeDecodeError as exc:
        raise ValueError("policy file %s is not UTF-8 text (bad byte at offset %d)"
                         % (path, exc.start))
    except OSError as exc:
        raise ValueError("cannot read policy file %s: %s" % (path, exc.strerror or exc))
    except yaml.YAMLError as exc:
        raise ValueError("policy file %s is not valid YAML: %s"
                         % (path, str(exc).splitlines()[0]))


def check(document: Any) -> Dict[str, Any]:
    """The validated ``policy.channels`` mapping (a deep copy); ValueError naming the path."""
    from jsonschema import Draft7Validator

    errors = sorted(Draft7Validator(POLICY_CHANNELS_SCHEMA).iter_errors(document),
                    key=lambda e: list(e.absolute_path))
    if errors:
        error = errors[0]
        where = ".".join(str(p) for p in error.absolute_path) or "policy.channels"
        raise ValueError("%s: %s" % (where, error.message))
    channels = copy.deepcopy(document)
    for channel, spec in channels.items():
        for tool, rule in (spec.get("arguments") or {}).items():
            if "schema" in rule:
                try:
                    Draft7Validator.check_schema(rule["schema"])
                except Exception as exc:  # SchemaError; its message names the problem
                    raise ValueError("%s.arguments.%s.schema is not a valid JSON Schema: %s"
                                     % (channel, tool, getattr(exc, "message", exc)))
        limits = spec.get("rate_limits") or {}
        rates = [("channel", limits["channel"])] if "channel" in limits else []
        rates += [("tools.%s" % name, r) for name, r in (limits.get("tools") or {}).items()]
        for where, rate in rates:
            try:
                parse_rate(rate["rate"])
            except ValueError as exc:
                raise ValueError("%s.rate_limits.%s: %s" % (channel, where, exc))
    return channels
