"""Validation against the project's description of the wire (tests/contract/wire.schema.json).

The schema file is draft 7 and is validated with ``Draft7Validator``, so this also runs on
jsonschema 3.2 (the Debian 11 floor). ``definitions`` hold the message shapes,
``operations`` each endpoint's query, headers and answers, ``request_headers`` the headers
every request carries.
"""

import glob
import json
import os
import re
from typing import Mapping, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SCHEMA_PATH = os.path.join(ROOT, "tests", "contract", "wire.schema.json")

_SCHEMA = None


def wire_schema() -> dict:
    global _SCHEMA
    if _SCHEMA is None:
        with open(SCHEMA_PATH) as handle:
            _SCHEMA = json.load(handle)
    return _SCHEMA


def schema_errors(name: str, instance):
    """Every way ``instance`` breaks the wire schema's definition ``name`` (sorted)."""
    from jsonschema import Draft7Validator

    definitions = wire_schema()["definitions"]
    if name not in definitions:
        raise KeyError("no definition %r in %s" % (name, SCHEMA_PATH))
    schema = {"$ref": "#/definitions/%s" % name, "definitions": definitions}
    return sorted(e.message for e in Draft7Validator(schema).iter_errors(instance))


def assert_valid(name: str, instance):
    errors = schema_errors(name, instance)
    assert not errors, "%s does not match the wire schema: %s" % (name, errors)


def tunnel_failure_errors(failure):
    return schema_errors("tunnel_failure", failure)


def operation(name: str) -> dict:
    return wire_schema()["operations"][name]


def documented(name: str, status: int) -> Optional[dict]:
    """The answer an operation may give with ``status``, or None when it lists none."""
    return operation(name)["answers"].get(str(status))


def stable_error_codes():
    return wire_schema()["stable_error_codes"]["codes"]


def header_errors(name: str, headers: Mapping[str, str]):
    """What is wrong with the request headers of one call to operation ``name``."""
    declared = dict(wire_schema()["request_headers"])
    declared.pop("description", None)
    declared.update(operation(name).get("headers", {}))
    sent = {k.lower(): v for k, v in headers.items()}
    errors = []
    for header, rule in declared.items():
        value = sent.get(header.lower())
        if value is None:
            if rule.get("required"):
                errors.append("%s is missing" % header)
            continue
        if "pattern" in rule and not re.match(rule["pattern"], value):
            errors.append("%s does not match %s" % (header, rule["pattern"]))
        if "maxLength" in rule and len(value.encode("utf-8")) > rule["maxLength"]:
            errors.append("%s is longer than %d bytes" % (header, rule["maxLength"]))
    return errors


def published_contract_path() -> Optional[str]:
    """The control plane's published OpenAPI document, when one sits beside the checkout
    (``<parent>/contract/openapi.json`` or ``<parent>/*/contract/openapi.json``) or
    TUNNEL_CLIENT_CONTRACT names it. Only the agreement test uses it."""
    named = os.environ.get("TUNNEL_CLIENT_CONTRACT")
    if named:
        return named if os.path.isfile(named) else None
    parent = os.path.dirname(ROOT)
    for pattern in ("contract/openapi.json", "*/contract/openapi.json"):
        found = sorted(glob.glob(os.path.join(parent, pattern)))
        if found:
            return found[0]
    return None
