"""A compiled first look at a tool's arguments for the common subset of JSON Schema.

jsonschema walks a schema anew for every value, and on the call path that walk costs more
than the rest of the policy decision. Most argument schemas use a handful of keywords
(types, properties, required, lengths, patterns, bounds, items), so those are compiled once
into plain Python checks. The quick check only ever *passes* a value: whatever it does not
pass (a failure, a value it is unsure of, a schema with any other keyword) goes to
jsonschema, which alone decides and names the error. So a value the quick check passes is
one jsonschema passes too; tests/fuzz/test_policy_quickschema.py compares the two on
generated schemas and values.
"""

import re
from typing import Any, Callable, List, Optional

Check = Callable[[Any], bool]

_ANNOTATIONS = frozenset(("title", "description", "default", "examples", "$comment"))
_KEYWORDS = frozenset(("type", "properties", "required", "additionalProperties", "maxLength",
                       "minLength", "pattern", "minimum", "maximum", "items", "maxItems",
                       "minItems")) | _ANNOTATIONS


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# Conservative where drafts differ: 1.0 is an integer to draft 7, not here (jsonschema then
# decides), which can only send a value to jsonschema, never pass a wrong one.
_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": _is_number,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
}


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _sizes(schema, most: str, least: str, kind: type, checks: List[Check]) -> bool:
    """Length bounds (maxLength/minLength, maxItems/minItems) for values of ``kind``;
    False when a bound is not a count."""
    high, low = schema.get(most), schema.get(least)
    if (high is not None and not _count(high)) or (low is not None and not _count(low)):
        return False
    if high is not None:
        checks.append(lambda v: not isinstance(v, kind) or len(v) <= high)
    if low is not None:
        checks.append(lambda v: not isinstance(v, kind) or len(v) >= low)
    return True


def compile_quick(schema) -> Optional[Check]:
    """A check that passes only values valid under ``schema``, or None when the schema
    uses anything outside the subset (then every value goes to jsonschema)."""
    if not isinstance(schema, dict) or not set(schema) <= _KEYWORDS:
        return None
    checks: List[Check] = []

    kinds = schema.get("type")
    if kinds is not None:
        names = [kinds] if isinstance(kinds, str) else kinds
        if not isinstance(names, list) or not names or \
                not all(isinstance(n, str) and n in _TYPES for n in names):
            return None
        tests = [_TYPES[n] for n in names]
        checks.append(tests[0] if len(tests) == 1 else
                      lambda v: any(test(v) for test in tests))

    if "properties" in schema:
        properties = schema["properties"]
        if not isinstance(properties, dict):
            return None
        compiled = {}
        for name, sub in properties.items():
            check = compile_quick(sub)
            if check is None:
                return None
            compiled[name] = check
        items = tuple(compiled.items())

        def properties_fit(v) -> bool:
            if isinstance(v, dict):
                for name, check in items:
                    if name in v and not check(v[name]):
                        return False
            return True
        checks.append(properties_fit)

    if "required" in schema:
        required = schema["required"]
        if not isinstance(required, list) or not all(isinstance(n, str) for n in required):
            return None
        wanted = tuple(required)
        checks.append(lambda v: not isinstance(v, dict) or all(n in v for n in wanted))

    if "additionalProperties" in schema:
        extra = schema["additionalProperties"]
        if extra is not False:
            if extra is not True:
                return None  # a schema for the extra properties: jsonschema's job
        else:
            known = frozenset((schema.get("properties") or {}).keys())
            checks.append(lambda v: not isinstance(v, dict) or set(v) <= known)

    if not _sizes(schema, "maxLength", "minLength", str, checks):
        return None

    if "pattern" in schema:
        try:
            search = re.compile(schema["pattern"]).search
        except (TypeError, re.error):
            return None
        checks.append(lambda v: not isinstance(v, str) or search(v) is not None)

    if "minimum" in schema:
        low = schema["minimum"]
        if not _is_number(low):
            return None
        checks.append(lambda v: not _is_number(v) or not v < low)
    if "maximum" in schema:
        high = schema["maximum"]
        if not _is_number(high):
            return None
        checks.append(lambda v: not _is_number(v) or not v > high)

    if "items" in schema:
        each = compile_quick(schema["items"])
        if each is None:
            return None  # the tuple form, or an item schema outside the subset
        checks.append(lambda v: not isinstance(v, list) or all(each(item) for item in v))
    if not _sizes(schema, "maxItems", "minItems", list, checks):
        return None

    all_checks = tuple(checks)

    def fits(value) -> bool:  # a plain loop: this runs on every call
        for check in all_checks:
            if not check(value):
                return False
        return True
    return fits
