"""The quick argument check passes the ordinary valid calls (else it would only cost time)
and leaves everything else to jsonschema; tests/fuzz/test_policy_quickschema.py checks that
it never passes what jsonschema refuses."""

from tunnel_client.policy.quickschema import compile_quick


SQL = {"type": "object", "required": ["sql"], "additionalProperties": False,
       "properties": {"sql": {"type": "string", "pattern": "^\\s*SELECT\\b", "maxLength": 4096},
                      "limit": {"type": "integer", "minimum": 1, "maximum": 1000}}}


def test_ordinary_calls_are_passed_quickly_and_bad_ones_left_to_jsonschema():
    quick = compile_quick(SQL)
    assert quick({"sql": "SELECT 1", "limit": 10})
    assert not quick({"sql": "DROP TABLE t"})
    assert not quick({"sql": "SELECT 1", "other": 1})
    assert not quick({"limit": 10})


def test_schemas_outside_the_subset_are_left_to_jsonschema():
    for schema in ({"enum": ["a"]}, {"$ref": "#/x"}, {"items": [{"type": "string"}]},
                   {"additionalProperties": {"type": "string"}}, {"type": "decimal"},
                   {"properties": {"a": {"oneOf": []}}}, {"pattern": "("}, True):
        assert compile_quick(schema) is None, schema
