"""The stdio child's environment: secrets go by name and by value, the rest stays."""

from tunnel_client.config.secrets import url_secrets
from tunnel_client.mcp.childenv import child_environment

ENVIRON = {"PATH": "/usr/bin", "MY_KEY": "sk-secret-value-1\n", "COPY": "sk-secret-value-1",
           "HEADERS": "X-Token: header-secret-1", "PROXY": "http://u:proxy-pass@p:3128",
           "FLAG": "1", "REGION": "eu", "CONTROL_PLANE_API_KEY": "whatever"}


def test_secrets_go_by_name_and_by_value_and_the_rest_stays():
    secrets = ["sk-secret-value-1", "header-secret-1"] + url_secrets(
        "http://u:proxy-pass@p:3128") + url_secrets("https://h/api?region=eu&key=long-key-1")
    env = child_environment(ENVIRON, secrets, secret_names=["MY_KEY"])
    assert env == {"PATH": "/usr/bin", "FLAG": "1", "REGION": "eu"}


def test_a_short_secret_only_matches_a_whole_value():
    env = child_environment({"A": "1", "B": "10", "C": " 1 "}, ["1"])
    assert env == {"B": "10"}


def test_inherit_secrets_keeps_everything():
    assert child_environment(ENVIRON, ["sk-secret-value-1"], True, ["MY_KEY"]) == ENVIRON
