"""Validation against the control-plane contract (../shared/contract/openapi.json).

Draft 7 validation with the OpenAPI components as the root document, so it also runs on
jsonschema 3.2 (the Debian 11 floor).
"""

import json
import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
CANDIDATES = [
    os.environ.get("TUNNEL_CLIENT_CONTRACT", ""),
    os.path.join(HERE, "..", "..", "..", "shared", "contract", "openapi.json"),
]


def load_contract():
    for path in CANDIDATES:
        if path and os.path.isfile(path):
            with open(path) as handle:
                return json.load(handle)
    pytest.skip("contract/openapi.json not found next to the checkout (set "
                "TUNNEL_CLIENT_CONTRACT)")


_CONTRACT = None


def contract():
    global _CONTRACT
    if _CONTRACT is None:
        _CONTRACT = load_contract()
    return _CONTRACT


def schema_errors(component: str, instance):
    from jsonschema import Draft7Validator

    doc = contract()
    schema = {"$ref": "#/components/schemas/%s" % component, "components": doc["components"]}
    return sorted(e.message for e in Draft7Validator(schema).iter_errors(instance))


def assert_valid(component: str, instance):
    errors = schema_errors(component, instance)
    assert not errors, "%s does not match the contract: %s" % (component, errors)


def tunnel_failure_errors(failure):
    from jsonschema import Draft7Validator

    payload = contract()["components"]["schemas"]["TunnelResponsePayload"]
    schema = dict(payload["properties"]["resp_json"]["x-tunnel-failure-schema"])
    schema.pop("$schema", None)
    return sorted(e.message for e in Draft7Validator(schema).iter_errors(failure))
