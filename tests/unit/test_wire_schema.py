"""The project's description of the wire (tests/contract/wire.schema.json) is sound, and it
says what the control plane's published OpenAPI document says whenever that document is
beside the checkout (or named by TUNNEL_CLIENT_CONTRACT)."""

import json

import pytest

from tests.support.contract import published_contract_path, schema_errors, wire_schema

# Our definition -> the published component it describes.
COMPONENTS = {
    "poll_body": "PolledCommandList",
    "jsonrpc_command": "JsonRpcPolledCommand",
    "session_termination_command": "SessionTerminationPolledCommand",
    "response_payload": "TunnelResponsePayload",
    "response_type": "ResponsePayloadType",
    "response_ack": "TunnelResponseAck",
    "tunnel_metadata": "TunnelClientMetadata",
    "error_body": "APIErrorBody",
    "error_response": "APIErrorResponse",
}
# Published parts this client has no use for (the managed Cloudflare companion).
NOT_USED_COMPONENTS = {"ManagedCloudflareRuntimeResponse", "CloudflareTunnelResponse"}
NOT_USED_PATHS = {"/v1/tunnels/{tunnel_id}/cloudflare/runtime"}

ANNOTATIONS = {"title", "description", "default", "examples", "example", "discriminator",
               "format", "$schema"}
TYPE_KEYWORDS = {
    "string": {"pattern", "minLength", "maxLength"},
    "integer": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"},
    "number": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"},
    "object": {"properties", "required", "additionalProperties"},
    "array": {"items", "minItems", "maxItems"},
}


def _order(value):
    return json.dumps(value, sort_keys=True)


def canonical(node, resolve):
    """A schema reduced to what it accepts: annotations dropped, references resolved, and
    ``"type": [a, b]`` spelled as the ``anyOf`` of one alternative per type, so the two
    ways of writing "string or null" compare equal."""
    if isinstance(node, bool):
        return node
    if "$ref" in node:  # draft 7: the reference replaces its siblings
        return canonical(resolve(node["$ref"]), resolve)
    out = {}
    for key, value in node.items():
        if key in ANNOTATIONS or key.startswith("x-"):
            continue
        if key == "properties":
            out[key] = {name: canonical(sub, resolve) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "if", "then", "else", "not"):
            out[key] = canonical(value, resolve)
        elif key == "allOf":
            out[key] = [canonical(sub, resolve) for sub in value]
        elif key in ("anyOf", "oneOf"):
            out[key] = sorted((canonical(sub, resolve) for sub in value), key=_order)
        elif key in ("required", "enum"):
            out[key] = sorted(value, key=_order)
        else:
            out[key] = value
    if isinstance(out.get("type"), list):
        types = out.pop("type")
        moved = {k for t in types for k in TYPE_KEYWORDS.get(t, ())} & set(out)
        alternatives = [dict({k: out[k] for k in TYPE_KEYWORDS.get(t, ()) if k in out},
                             type=t) for t in types]
        out = {k: v for k, v in out.items() if k not in moved}
        out["anyOf"] = sorted(alternatives, key=_order)
    if set(out) == {"anyOf"} and len(out["anyOf"]) == 1:
        return out["anyOf"][0]
    return out


def differences(ours, theirs, path=""):
    if isinstance(ours, dict) and isinstance(theirs, dict):
        for key in sorted(set(ours) | set(theirs)):
            if key not in theirs:
                yield "%s/%s: only in ours" % (path, key)
            elif key not in ours:
                yield "%s/%s: only in the published document" % (path, key)
            else:
                yield from differences(ours[key], theirs[key], "%s/%s" % (path, key))
    elif ours != theirs:
        yield "%s: ours %s, published %s" % (path, json.dumps(ours), json.dumps(theirs))


def _resolver(doc):
    def resolve(ref):
        node = doc
        for part in ref.lstrip("#/").split("/"):
            node = node[part]
        return node
    return resolve


# --- always: the schema file itself ---------------------------------------------------------


def test_the_wire_schema_is_a_valid_draft_7_schema_and_its_examples_validate():
    from jsonschema import Draft7Validator

    schema = wire_schema()
    Draft7Validator.check_schema(schema)
    examples = 0
    for name, definition in schema["definitions"].items():
        for example in definition.get("examples", []):
            assert not schema_errors(name, example), (name, example)
            examples += 1
    assert examples >= 4


def test_every_operation_names_defined_bodies_and_stable_codes():
    schema = wire_schema()
    codes = set(schema["stable_error_codes"]["codes"])
    for name, operation in schema["operations"].items():
        bodies = [operation.get("body")] + [a.get("body") for a in operation["answers"].values()]
        for body in filter(None, bodies):
            assert body in schema["definitions"], (name, body)
        for status, answer in operation["answers"].items():
            assert set(answer.get("codes", [])) <= codes, (name, status)
            if int(status) >= 400:
                assert answer.get("body") == "error_response", (name, status)


# --- when the published document is at hand: the two agree ----------------------------------


def test_the_wire_schema_agrees_with_the_published_document():
    path = published_contract_path()
    if path is None:
        pytest.skip("the published OpenAPI document is not beside the checkout (set "
                    "TUNNEL_CLIENT_CONTRACT to compare the wire schema with it)")
    with open(path) as handle:
        published = json.load(handle)
    assert_same_messages(published)
    assert_same_operations(published)


def assert_same_messages(published):
    ours, theirs = wire_schema(), published["components"]["schemas"]
    assert set(theirs) == set(COMPONENTS.values()) | NOT_USED_COMPONENTS, \
        "the published document changed its components: %s" % sorted(theirs)
    pairs = [(name, ours["definitions"][name], theirs[component])
             for name, component in COMPONENTS.items()]
    pairs.append(("tunnel_failure", ours["definitions"]["tunnel_failure"],
                  theirs["TunnelResponsePayload"]["properties"]["resp_json"][
                      "x-tunnel-failure-schema"]))
    found = []
    for name, mine, published_schema in pairs:
        found += ["%s%s" % (name, d) for d in differences(
            canonical(mine, _resolver(ours)), canonical(published_schema, _resolver(published)))]
    assert not found, "\n".join(found)
    assert ours["stable_error_codes"]["codes"] == sorted(
        theirs["APIErrorBody"]["properties"]["code"]["x-tunnel-error-codes"])


def assert_same_operations(published):
    ours = wire_schema()
    body_names = {v: k for k, v in COMPONENTS.items()}
    described = {(op["path"], op["method"].lower()) for op in ours["operations"].values()}
    listed = {(path, method) for path, methods in published["paths"].items()
              for method in methods if path not in NOT_USED_PATHS}
    assert described == listed
    common = dict(ours["request_headers"])
    common.pop("description")
    common.pop("Authorization")  # the published document's security scheme
    assert published["components"]["securitySchemes"]["BearerAuth"]["scheme"] == "bearer"
    for op in ours["operations"].values():
        theirs = published["paths"][op["path"]][op["method"].lower()]
        where = "%s %s" % (op["method"], op["path"])
        assert theirs["security"] == [{"BearerAuth": []}], where
        params = {p["name"]: p for p in theirs.get("parameters", [])}
        query = {k: v for k, v in params.items() if v["in"] == "query"}
        assert set(op.get("query", {})) == set(query), where
        for param, rule in op.get("query", {}).items():
            assert canonical(rule, _resolver(ours)) == canonical(
                query[param]["schema"], _resolver(published)), (where, param)
        headers = {k: v for k, v in params.items() if v["in"] == "header"}
        mine = dict(common, **op.get("headers", {}))
        assert set(mine) == set(headers), where
        for header, rule in mine.items():
            assert bool(rule.get("required")) == bool(headers[header].get("required")), \
                (where, header)
            assert rule.get("maxLength") == headers[header]["schema"].get("maxLength"), \
                (where, header)
        if "body" in op:
            ref = theirs["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert body_names[ref.rsplit("/", 1)[1]] == op["body"], where
        assert set(op["answers"]) == set(theirs["responses"]), where
        for status, answer in op["answers"].items():
            published_answer = theirs["responses"][status]
            content = published_answer.get("content", {}).get("application/json")
            if content is None:
                assert "body" not in answer, (where, status)
            else:
                ref = content["schema"]["$ref"].rsplit("/", 1)[1]
                assert body_names[ref] == answer.get("body"), (where, status)
            assert answer.get("codes", []) == published_answer.get("x-tunnel-error-codes", []), \
                (where, status)
            assert answer.get("headers", []) == sorted(published_answer.get("headers", {})), \
                (where, status)
