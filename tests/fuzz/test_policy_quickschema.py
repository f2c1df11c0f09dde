"""Fuzzing the quick argument check against jsonschema: on generated schemas of the subset
it compiles and generated values, nothing it passes is refused by jsonschema."""

import pytest
pytest.importorskip("hypothesis", minversion="6")  # older ones lack what we use

from hypothesis import given, settings, strategies as st  # noqa: E402
from jsonschema import Draft7Validator  # noqa: E402

from tunnel_client.policy.quickschema import compile_quick  # noqa: E402

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5),
                    st.floats(-5, 5), st.sampled_from([float("nan"), float("inf"), 1.0, -0.0]),
                    st.text(alphabet="aSELCT* \n", max_size=6))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["a", "b", "sql", "n"]), inner, max_size=3)), max_leaves=8)

type_names = st.sampled_from(["object", "array", "string", "boolean", "null", "number",
                              "integer"])


def schemas(depth=2):
    leaf = {
        "type": st.one_of(type_names, st.lists(type_names, min_size=1, max_size=3)),
        "maxLength": st.integers(0, 4), "minLength": st.integers(0, 4),
        "pattern": st.sampled_from(["^SELECT", "a", "^$", "[*]"]),
        "minimum": st.one_of(st.integers(-3, 3), st.floats(-3, 3)),
        "maximum": st.one_of(st.integers(-3, 3), st.floats(-3, 3)),
        "maxItems": st.integers(0, 3), "minItems": st.integers(0, 3),
        "required": st.lists(st.sampled_from(["a", "b", "sql"]), max_size=2, unique=True),
        "additionalProperties": st.booleans(),
        "description": st.text(max_size=3),
    }
    if depth:
        inner = schemas(depth - 1)
        leaf["properties"] = st.dictionaries(st.sampled_from(["a", "b", "sql", "n"]), inner,
                                             max_size=2)
        leaf["items"] = inner
    return st.fixed_dictionaries({}, optional=leaf)


@settings(max_examples=1500, deadline=None)
@given(schemas(), values)
def test_a_value_the_quick_check_passes_is_valid_under_jsonschema(schema, value):
    quick = compile_quick(schema)
    assert quick is not None  # every generated schema is inside the subset
    if quick(value):
        assert Draft7Validator(schema).is_valid(value), (schema, value)
