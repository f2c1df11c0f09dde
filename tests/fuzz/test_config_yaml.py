"""Fuzzing the YAML config file: any text, and any values under the real setting keys, load
into a Config or fail with one ConfigError; never another exception, never a hang."""

import os
import tempfile

import pytest
import yaml
pytest.importorskip("hypothesis", minversion="6")  # older ones lack what we use

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.strategies import JSON, finishes
from tunnel_client import config
from tunnel_client.config.settings import SETTINGS
from tunnel_client.errors import ConfigError

KEYS = [s.key for s in SETTINGS if s.yaml]
VALUES = st.one_of(JSON, st.sampled_from(["30s", "0s", "-1s", "1h30m", "10000", "0",
                                          "true", "off", "env:NOPE", "file:/nonexistent",
                                          "http://[::1", "127.0.0.1:0", "main", "a,b",
                                          "channel=main,command=true", "\x00"]),
                   st.lists(st.text(max_size=12), max_size=3))
TRICKS = [
    "a: &a [1,2]\nb: [*a,*a,*a]\n", "!!python/object/apply:os.system ['true']\n",
    "control_plane: !!binary aGVsbG8=\n", "? [a, b]\n: c\n", "log: {level: [}\n", "\t- x\n",
    "---\n...\n---\na: 1\n", "control_plane:\n  tunnel_id: 12\n", "%YAML 1.1\n---\n{}\n",
    "mcp:\n  commands:\n    - {channel: main, command: 7}\n",
    "laughs: &1 [x, x, x, x, x, x, x, x, x]\nl2: &2 [*1, *1, *1, *1, *1, *1, *1, *1, *1]\n"
    "l3: &3 [*2, *2, *2, *2, *2, *2, *2, *2, *2]\nl4: &4 [*3, *3, *3, *3, *3, *3, *3, *3, *3]\n"
    "l5: &5 [*4, *4, *4, *4, *4, *4, *4, *4, *4]\nl6: [*5, *5, *5, *5, *5, *5, *5, *5, *5]\n"]


def nest(pairs) -> dict:
    """{"a.b": 1} -> {"a": {"b": 1}}; a later key may replace an earlier scalar parent."""
    document = {}
    for key, value in pairs:
        *parents, leaf = key.split(".")
        node = document
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[leaf] = value
    return document


DOCUMENTS = st.one_of(
    st.lists(st.tuples(st.sampled_from(KEYS), VALUES), max_size=6).map(
        lambda pairs: yaml.safe_dump(nest(pairs))),
    st.text(max_size=200), st.sampled_from(TRICKS))


def load(text: str):
    with tempfile.TemporaryDirectory(prefix="fuzz-config-") as home:
        path = os.path.join(home, "config.yaml")
        with open(path, "w", encoding="utf-8", errors="surrogatepass") as handle:
            handle.write(text)
        environ = {"HOME": home, "CONTROL_PLANE_TUNNEL_ID":
                   "tunnel_22222222222222222222222222222222",
                   "CONTROL_PLANE_API_KEY": "sk-fuzz", "MCP_COMMAND": "true"}
        try:
            return finishes(lambda: config.load({"--config": path}, environ))
        except ConfigError as exc:
            assert str(exc).strip(), "a ConfigError must say what is wrong"
            return None


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCUMENTS)
def test_any_config_file_loads_or_is_one_config_error(text):
    load(text)


@pytest.mark.parametrize("snippet", TRICKS)
def test_yaml_tricks_are_config_errors_or_plain_data(snippet):
    load(snippet)
