"""The JSON Schema (draft 7) of the YAML configuration file, derived from the registry.

Strict: every object rejects unknown keys, so a misspelt key is an error naming its path.
Draft 7 and ``Draft7Validator`` work on jsonschema 3.2 (Debian 11, RHEL 9) through 4.x.
"""

import copy
from typing import Any, Dict, List

from tunnel_client.config.settings import SETTINGS

# Sections the Go client accepts that this client does not implement. They are allowed in
# the file so one profile serves both clients, and rejected by the loader only when set to
# something other than their defaults.
FOREIGN_SECTIONS = {
    "cloudflared": {"token": {"type": "string"}, "managed": {"type": "boolean"},
                    "path": {"type": "string"}, "ready_timeout": {"type": "string"}},
}


def _object(properties=None) -> Dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "properties": properties or {}}


def build_schema() -> Dict[str, Any]:
    root = _object({"config_version": {"enum": [1]}})
    root["$schema"] = "http://json-schema.org/draft-07/schema#"
    root["title"] = "tunnel-client configuration"
    for s in SETTINGS:
        if not s.yaml:
            continue
        node = root
        for part in s.key.split(".")[:-1]:
            node = node["properties"].setdefault(part, _object())
        fragment = copy.deepcopy(dict(s.schema))
        fragment["description"] = s.doc
        node["properties"][s.attr] = fragment
    for section, props in FOREIGN_SECTIONS.items():
        root["properties"][section] = _object(copy.deepcopy(props))
    return root


SCHEMA = build_schema()


def validation_problems(document: Any) -> List[str]:
    """One line per problem, each naming the key path; empty when the document is valid."""
    from jsonschema import Draft7Validator

    problems = []
    validator = Draft7Validator(SCHEMA)
    for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(p) for p in error.absolute_path)
        if error.validator == "additionalProperties":
            known = set(error.schema.get("properties", {}))
            for key in sorted(k for k in error.instance if k not in known):
                full = "%s.%s" % (where, key) if where else str(key)
                hint = ", ".join(sorted(known)) or "none"
                problems.append("unknown key %s (known keys here: %s)" % (full, hint))
        elif error.validator == "type":
            problems.append("%s: expected %s, got %s" % (
                where or "document", _type_words(error.validator_value),
                type(error.instance).__name__.replace("NoneType", "nothing")))
        elif error.validator == "enum" and where == "config_version":
            problems.append("unsupported config_version %r; this client reads version 1"
                            % (error.instance,))
        elif error.validator == "required":
            problems.append("%s: %s" % (where or "document", error.message))
        else:
            problems.append("%s: %s" % (where or "document", error.message))
    return problems


def _type_words(value) -> str:
    words = {"string": "a string", "boolean": "true or false", "integer": "an integer",
             "array": "a list", "object": "a mapping", "number": "a number"}
    if isinstance(value, list):
        return " or ".join(words.get(v, v) for v in value)
    return words.get(value, value)
