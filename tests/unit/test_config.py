import os
import subprocess
import sys

import pytest

from tunnel_client import config
from tunnel_client.config import values
from tunnel_client.config.values import split_command
from tunnel_client.errors import ConfigError

TID = "tunnel_" + "a" * 32
BASE_ENV = {"HOME": "/nonexistent-home"}


def load(flags=None, env=None, **kwargs):
    environ = dict(BASE_ENV)
    environ.update(env or {})
    return config.load(flags or {}, environ, **kwargs)


def runtime(flags=None, env=None):
    env = dict({"CONTROL_PLANE_TUNNEL_ID": TID, "CONTROL_PLANE_API_KEY": "sk-test_key",
                "MCP_COMMAND": "server --stdio"}, **(env or {}))
    return load(flags, env)


def write(tmp_path, text, name="config.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_defaults_match_the_go_client():
    cfg = runtime()
    assert cfg.control_plane.base_url == "https://api.openai.com"
    assert cfg.control_plane.poll_timeout == 30.0
    assert cfg.control_plane.poll_deadline_guardrail == 5.0
    assert cfg.control_plane.max_inflight_requests == 20
    assert cfg.mcp.max_concurrent_requests == 10
    assert cfg.mcp.connection_max_ttl == 600.0
    assert cfg.health.listen_addr == "127.0.0.1:8080"
    assert cfg.bindings[0].argv == ("server", "--stdio")


def test_precedence_is_flags_then_env_then_yaml_then_default(tmp_path):
    path = write(tmp_path, "control_plane:\n  poll_timeout: 7s\n  url_path: /from-yaml\n"
                           "log:\n  level: warn\n")
    cfg = runtime({"--config": path, "--control-plane.poll-timeout": "9s"},
                  {"CONTROL_PLANE_POLL_TIMEOUT": "8s", "CONTROL_PLANE_URL_PATH": "/from-env"})
    assert cfg.control_plane.poll_timeout == 9.0
    assert cfg.origins["control_plane.poll_timeout"].source == "flag"
    assert cfg.control_plane.url_path == "/from-env"
    assert cfg.log.level == "warn"
    assert cfg.origins["log.level"].source == "yaml"
    assert cfg.origins["log.format"].source == "default"


def test_an_empty_env_var_counts_as_unset_for_every_setting(tmp_path):
    path = write(tmp_path, "control_plane:\n  poll_timeout: 7s\nmcp:\n  commands:\n"
                           "    - command: yaml-command\n")
    cfg = runtime({"--config": path}, {"CONTROL_PLANE_POLL_TIMEOUT": "", "MCP_COMMAND": " "})
    assert cfg.control_plane.poll_timeout == 7.0
    assert cfg.origins["control_plane.poll_timeout"].source == "yaml"
    assert list(cfg.binding("main").argv) == ["yaml-command"]


def test_api_key_falls_back_to_openai_api_key():
    cfg = load({}, {"CONTROL_PLANE_TUNNEL_ID": TID, "OPENAI_API_KEY": "sk-fallback",
                    "MCP_COMMAND": "x"})
    assert cfg.control_plane.api_key == "sk-fallback"


def test_control_plane_api_key_wins_over_openai_api_key():
    both = {"CONTROL_PLANE_TUNNEL_ID": TID, "MCP_COMMAND": "x",
            "CONTROL_PLANE_API_KEY": "sk-control-plane", "OPENAI_API_KEY": "sk-openai"}
    assert load({}, both).control_plane.api_key == "sk-control-plane"
    # An empty CONTROL_PLANE_API_KEY does not mask the fallback.
    assert load({}, dict(both, CONTROL_PLANE_API_KEY=" ")).control_plane.api_key == \
        "sk-openai"


@pytest.mark.parametrize("tag", [
    "!!python/object/apply:os.system", "!!python/object/apply:subprocess.call",
    "!!python/object/new:subprocess.Popen"])
def test_a_python_tag_in_a_config_file_is_refused_and_nothing_runs(tmp_path, tag):
    marker = tmp_path / "executed"
    argv = '["touch %s"]' % marker if tag.endswith("system") else \
        '[["touch", "%s"]]' % marker
    path = write(tmp_path, "log:\n  level: %s %s\n" % (tag, argv))
    with pytest.raises(ConfigError) as failure:
        runtime({"--config": path})
    assert "config file" in str(failure.value) and str(path) in str(failure.value)
    assert not marker.exists(), "a YAML tag executed code"


def test_api_key_flag_must_be_a_reference_and_is_never_echoed(tmp_path):
    with pytest.raises(ConfigError) as err:
        runtime({"--control-plane.api-key": "sk-secret-value-123"})
    assert "env:" in str(err.value) and "sk-secret-value-123" not in str(err.value)
    key_file = tmp_path / "key"
    key_file.write_text("sk-from-file\n")
    assert runtime({"--control-plane.api-key": "file:%s" % key_file}).control_plane.api_key \
        == "sk-from-file"
    assert runtime({"--control-plane.api-key": "ENV:MY_KEY"},
                   {"MY_KEY": " sk-env "}).control_plane.api_key == "sk-env"


def test_malformed_key_is_rejected_without_echo():
    with pytest.raises(ConfigError) as err:
        runtime(env={"CONTROL_PLANE_API_KEY": "sk bad key"})
    assert str(err.value).startswith("control plane API key is malformed")
    assert "sk bad key" not in str(err.value)


@pytest.mark.parametrize("env,message", [
    ({"CONTROL_PLANE_TUNNEL_ID": ""}, "tunnel ID is required; set --control-plane.tunnel-id "
                                      "or CONTROL_PLANE_TUNNEL_ID"),
    ({"CONTROL_PLANE_TUNNEL_ID": "tunnel_ABC"}, 'invalid tunnel ID "tunnel_ABC": must match '
                                                "tunnel_<32 lowercase letters or digits>"),
    ({"CONTROL_PLANE_API_KEY": ""}, "control plane API key is required; set "
                                    "--control-plane.api-key (env:/file:) or "
                                    "CONTROL_PLANE_API_KEY or OPENAI_API_KEY"),
    ({"MCP_COMMAND": ""}, "main channel is required; set --mcp.server-url or --mcp.command, "
                          "or MCP_SERVER_URL or MCP_COMMAND"),
    ({"MCP_COMMAND": "channel=tools,command=x"}, "main channel is required; add channel=main"),
    ({"CONTROL_PLANE_BASE_URL": "api.openai.com"}, "must include scheme and host"),
    ({"CONTROL_PLANE_URL_PATH": "proxy"}, "must start with '/'"),
    ({"CONTROL_PLANE_URL_PATH": "https://x/y"}, "must be a URL path without scheme"),
    ({"CONTROL_PLANE_MAX_INFLIGHT_REQUESTS": "0"}, "must be greater than zero"),
    ({"CONTROL_PLANE_MAX_INFLIGHT_REQUESTS": "10001"}, "must be less than or equal to 10000"),
    ({"CONTROL_PLANE_POLL_DEADLINE_GUARDRAIL": "1m"}, "must be less than 1m"),
    ({"CONTROL_PLANE_POLL_TIMEOUT": "9m58s"}, "control-plane.poll-timeout plus "
                                              "control-plane.poll-deadline-guardrail must be "
                                              "less than or equal to 10m0s"),
    ({"CONTROL_PLANE_POLL_TIMEOUT": "soon"}, 'invalid control-plane.poll-timeout "soon" (from '
                                             "CONTROL_PLANE_POLL_TIMEOUT): is not a duration"),
    ({"CONTROL_PLANE_POLL_CHANNELS": "Main"}, '"Main" is not canonical; use "main"'),
    ({"CONTROL_PLANE_POLL_CHANNELS": "main,tools"}, 'control-plane.poll-channel "tools" has no '
                                                    "local handler"),
    ({"CONTROL_PLANE_POLL_CHANNELS": "harpoon"}, "control-plane.poll-channel harpoon has no "
                                                 "routable target"),
    ({"CONTROL_PLANE_ORGANIZATION_ID": "org\nx"}, "cannot contain header line breaks"),
    ({"CONTROL_PLANE_EXTRA_HEADERS": "Authorization: Bearer x"}, "would override "
                                                                 "control-plane authentication"),
    ({"CONTROL_PLANE_EXTRA_HEADERS": "NoColon"}, "invalid header: expected 'Key: Value'"),
    ({"CONTROL_PLANE_EXTRA_HEADERS": "X-A: 1,x-a: 2"}, "conflicting values for "
                                                       'case-insensitive HTTP header "x-a"'),
    ({"CONTROL_PLANE_EXTRA_HEADERS": "Bad Name: 1"}, 'invalid HTTP header name "Bad Name"'),
    ({"LOG_FORMAT": "xml"}, "is not supported; use one of: struct-text, json"),
    ({"TUNNEL_CLIENT_HTTP_PROXY": "socks5://p:1080"}, 'proxy URL scheme must be http or https, '
                                                      'got "socks5"'),
    ({"MCP_SERVER_URL": "http://a/mcp", "MCP_COMMAND": "x"}, 'duplicate channel "main" from '
                                                             "mcp.command"),
    ({"MCP_COMMAND": "channel=harpoon,command=x"}, 'channel "harpoon" is reserved'),
    ({"MCP_COMMAND": "'unterminated"}, "unterminated quoted string"),
    ({"MCP_SERVER_URL": "channel=a,url=http://a,bogus=1", "MCP_COMMAND": ""},
     'unsupported key "bogus"'),
    ({"MCP_SERVER_URL": "url=http://a,unix-socket=/s,http-proxy=http://p:1", "MCP_COMMAND": ""},
     "sets both unix-socket and http-proxy"),
    ({"CONTROL_PLANE_CLIENT_KEY": "/k.pem"}, "client certificate path is required when key "
                                             "path is set"),
    ({"MCP_CLIENT_CERT": "/c.pem", "MCP_CLIENT_KEY": "/k.pem"}, "mcp.client-cert and "
                                                                "mcp.client-key require at "
                                                                "least one http-streamable"),
    ({"CA_BUNDLE": "/nonexistent/ca.pem"}, 'invalid ca-bundle "/nonexistent/ca.pem"'),
    ({"MCP_COMMAND": "env:NOT_SET_ANYWHERE"}, 'environment variable "NOT_SET_ANYWHERE" is '
                                              "not set"),
])
def test_config_errors_name_the_setting_and_the_fix(env, message):
    with pytest.raises(ConfigError) as err:
        runtime(env=env)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_ca_bundle_without_certificates(tmp_path):
    bundle = tmp_path / "empty.pem"
    bundle.write_text("nothing here\n")
    with pytest.raises(ConfigError) as err:
        runtime(env={"CA_BUNDLE": str(bundle)})
    assert str(err.value) == 'invalid ca-bundle "%s": PEM bundle contained no certificates' \
        % bundle


def test_yaml_is_strict_and_names_the_unknown_key(tmp_path):
    path = write(tmp_path, "control_plane:\n  pol_timeout: 30s\n")
    with pytest.raises(ConfigError) as err:
        runtime({"--config": path})
    assert "unknown key control_plane.pol_timeout" in str(err.value)
    assert "poll_timeout" in str(err.value)


@pytest.mark.parametrize("text,message", [
    ("config_version: 2\n", "unsupported config_version 2"),
    ("control_plane: [1]\n", "control_plane: expected a mapping"),
    ("mcp:\n  max_concurrent_requests: ten\n", "mcp.max_concurrent_requests: expected an integer"),
    ("mcp:\n  commands:\n    - channel: x\n", "'command' is a required property"),
    ("key: [unclosed\n", "fix the YAML syntax"),
    ("- just\n- a list\n", "must be a YAML mapping"),
    ("cloudflared:\n  managed: true\n", "cloudflared settings are not supported"),
])
def test_yaml_problems_are_one_line(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        runtime({"--config": path})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_yaml_lists_bindings_and_references(tmp_path):
    path = write(tmp_path, """
config_version: 1
control_plane:
  tunnel_id: %s
  api_key: env:MY_RUNTIME_KEY
  extra_headers:
    X-Team: file:%s
mcp:
  server_urls:
    - url: http://127.0.0.1:9000/mcp
    - channel: Tools
      url: env:TOOLS_URL
  commands:
    - channel: local
      command: "python -m srv --name 'a b'"
cloudflared:
  managed: false
""" % (TID, tmp_path / "team.txt"))
    (tmp_path / "team.txt").write_text("blue\n")
    cfg = load({"--config": path}, {"MY_RUNTIME_KEY": "sk-k", "TOOLS_URL": "http://t/mcp"})
    assert cfg.control_plane.api_key == "sk-k"
    assert cfg.control_plane.extra_headers.as_dict() == {"X-Team": "blue"}
    assert [(b.channel, b.transport, b.target) for b in cfg.bindings] == [
        ("main", "http", "http://127.0.0.1:9000/mcp"), ("tools", "http", "http://t/mcp"),
        ("local", "stdio", "python -m srv --name 'a b'")]
    assert cfg.binding("local").argv == ("python", "-m", "srv", "--name", "a b")


def test_flag_lists_extend_and_env_lists_split():
    cfg = runtime({"--mcp.server-url": ["channel=b,url=http://b/mcp"],
                   "--control-plane.poll-channel": ["main", "b"]})
    assert [b.channel for b in cfg.bindings] == ["b", "main"]
    assert cfg.control_plane.poll_channels == ("b", "main")
    cfg = runtime(env={"MCP_COMMAND": "a\nchannel=x,command=b --flag; still b"})
    assert cfg.binding("x").argv == ("b", "--flag;", "still", "b")


def test_hidden_dashed_aliases_apply_only_without_the_canonical_flag():
    cfg = runtime({"--control-plane-url-path": "/alias"})
    assert cfg.control_plane.url_path == "/alias"
    cfg = runtime({"--control-plane-url-path": "/alias", "--control-plane.url-path": "/canon"})
    assert cfg.control_plane.url_path == "/canon"


def test_mtls_switches_the_default_base_url(tmp_path):
    trustme = pytest.importorskip("trustme", minversion="0.9")
    ca = trustme.CA()
    cert = ca.issue_cert("client.example")
    cert_path, key_path = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    cfg = runtime(env={"CONTROL_PLANE_CLIENT_CERT": str(cert_path),
                       "CONTROL_PLANE_CLIENT_KEY": str(key_path)})
    assert cfg.control_plane.base_url == "https://mtls.api.openai.com"
    other = ca.issue_cert("other.example")
    other.private_key_pem.write_to_path(str(key_path))
    with pytest.raises(ConfigError) as err:
        runtime(env={"CONTROL_PLANE_CLIENT_CERT": str(cert_path),
                     "CONTROL_PLANE_CLIENT_KEY": str(key_path)})
    assert "certificate and key do not match" in str(err.value)


def test_profiles_lookup_and_mutual_exclusion(tmp_path):
    pdir = tmp_path / "xdg" / "tunnel-client"
    pdir.mkdir(parents=True)
    (pdir / "prod.yaml").write_text("control_plane:\n  url_path: /prod\n")
    cfg = runtime({"--profile": "prod"}, {"XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    assert cfg.control_plane.url_path == "/prod"
    assert cfg.source.kind == "profile" and cfg.source.profile == "prod"
    cfg = runtime({}, {"TUNNEL_CLIENT_PROFILE": "prod", "TUNNEL_CLIENT_PROFILE_DIR": str(pdir)})
    assert cfg.control_plane.url_path == "/prod"
    with pytest.raises(ConfigError, match="--config and --profile are mutually exclusive"):
        runtime({"--config": "/x.yaml", "--profile": "prod"})
    with pytest.raises(ConfigError, match="TUNNEL_CLIENT_CONFIG and TUNNEL_CLIENT_PROFILE are"):
        runtime({}, {"TUNNEL_CLIENT_CONFIG": "/x", "TUNNEL_CLIENT_PROFILE": "p"})
    with pytest.raises(ConfigError, match='invalid profile name "../etc"'):
        runtime({"--profile": "../etc"})
    with pytest.raises(ConfigError, match="must end with .yaml"):
        runtime({"--profile-file": str(pdir / "prod.yml")})
    with pytest.raises(ConfigError, match="config file path is required when --config is set"):
        runtime({"--config": ""})
    with pytest.raises(ConfigError, match="does not exist"):
        runtime({"--profile": "missing"}, {"XDG_CONFIG_HOME": str(tmp_path / "xdg")})


@pytest.mark.parametrize("text,argv", [
    ("a b  c", ["a", "b", "c"]),
    ("python -c 'print(1); print(2)'", ["python", "-c", "print(1); print(2)"]),
    ('say "a \\"quoted\\" word"', ["say", 'a "quoted" word']),
    ("a\\ b c", ["a b", "c"]),
    ("cmd ; rm -rf / && x | y", ["cmd", ";", "rm", "-rf", "/", "&&", "x", "|", "y"]),
    ("x ''", ["x", ""]),
])
def test_command_tokenizer_has_no_shell(text, argv):
    assert split_command(text) == argv


@pytest.mark.parametrize("text,message", [("", "command is empty"), ("'a", "unterminated"),
                                          ('"a', "unterminated"), ("a\\", "unterminated escape")])
def test_command_tokenizer_errors(text, message):
    with pytest.raises(ValueError, match=message):
        split_command(text)


def test_cli_config_error_is_one_line_exit_1_without_traceback():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTROL_PLANE", "MCP_"))}
    env["CONTROL_PLANE_API_KEY"] = "sk-very-secret-key"
    proc = subprocess.run([sys.executable, "-m", "tunnel_client", "run",
                           "--control-plane.tunnel-id", TID, "--mcp.command", "x",
                           "--control-plane.poll-timeout", "banana"],
                          capture_output=True, text=True, env=env, timeout=30)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith("configure tunnel-client: invalid control-plane.poll-timeout")
    assert "Traceback" not in proc.stderr and "sk-very-secret-key" not in proc.stderr


def test_schema_is_draft7_and_loads_with_the_floor_validator():
    from jsonschema import Draft7Validator

    from tunnel_client.config.schema import SCHEMA
    Draft7Validator.check_schema(SCHEMA)
    assert SCHEMA["properties"]["mcp"]["properties"]["stdio"]["additionalProperties"] is False


def _conforms(value, kind) -> bool:
    """isinstance for the annotations the registry produces (Optional, Tuple[X, ...])."""
    import typing

    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is typing.Union:
        return any(_conforms(value, arg) for arg in args)
    if origin is tuple:
        return isinstance(value, tuple) and all(_conforms(item, args[0]) for item in value)
    if kind is type(None):
        return value is None
    return isinstance(value, origin or kind)


def test_every_config_field_has_the_type_its_setting_parses_to(tmp_path):
    import dataclasses
    import typing

    cfg = runtime()
    nodes = [("", cfg)]
    checked = 0
    while nodes:
        prefix, node = nodes.pop()
        for item in dataclasses.fields(node):
            value = getattr(node, item.name)
            assert item.type is not typing.Any, "%s%s is typed Any" % (prefix, item.name)
            if dataclasses.is_dataclass(value):
                nodes.append(("%s%s." % (prefix, item.name), value))
                continue
            assert _conforms(value, item.type), (prefix + item.name, value, item.type)
            checked += 1
    assert checked > 50


@pytest.mark.parametrize("env,message", [
    ({"CONTROL_PLANE_TUNNEL_ID": ""},
     "tunnel ID is required; set --control-plane.tunnel-id or CONTROL_PLANE_TUNNEL_ID (see "
     "`tunnel-client help quickstart`)"),
    ({"CONTROL_PLANE_API_KEY": ""},
     "control plane API key is required; set --control-plane.api-key (env:/file:) or "
     "CONTROL_PLANE_API_KEY or OPENAI_API_KEY"),
    ({"MCP_COMMAND": ""},
     "main channel is required; set --mcp.server-url or --mcp.command, or MCP_SERVER_URL or "
     "MCP_COMMAND"),
    ({"MCP_COMMAND": "channel=tools,command=x"},
     "main channel is required; add channel=main to one --mcp.server-url or --mcp.command "
     "entry"),
    ({"CONTROL_PLANE_POLL_CHANNELS": "main,tools"},
     'control-plane.poll-channel "tools" has no local handler; add an --mcp.server-url or '
     "--mcp.command entry with channel=tools"),
    ({"CONTROL_PLANE_POLL_CHANNELS": "harpoon"},
     "control-plane.poll-channel harpoon has no routable target; add a --harpoon.target or "
     "also poll main"),
    ({"CONTROL_PLANE_CLIENT_CERT": "/c.pem"},
     "invalid control-plane client certificate configuration: client key path is required "
     "when certificate path is set"),
    ({"MCP_CLIENT_KEY": "/k.pem", "MCP_SERVER_URL": "http://a/mcp", "MCP_COMMAND": ""},
     "invalid MCP client certificate configuration: client certificate path is required when "
     "key path is set"),
    ({"HARPOON_TARGETS": "label=api,url=http://api.internal/x"},
     'invalid harpoon target url "http://api.internal/x": https is required; set '
     "harpoon.allow_plaintext_http to allow http"),
])
def test_configuration_errors_exactly(env, message):
    with pytest.raises(ConfigError) as err:
        runtime(env=env)
    assert str(err.value) == message


def test_what_passes_validation():
    assert runtime(env={"CONTROL_PLANE_POLL_CHANNELS": "harpoon",
                        "HARPOON_TARGETS": "label=api,url=https://api.internal/x"})
    # polling main on a config with a main server: harpoon may be filled by OAuth discovery
    assert runtime(env={"CONTROL_PLANE_POLL_CHANNELS": "main,harpoon"})
    assert runtime(env={"HARPOON_TARGETS": "label=api,url=http://api.internal/x",
                        "HARPOON_ALLOW_PLAINTEXT_HTTP": "true"})
    only_tools = runtime(env={"MCP_COMMAND": "channel=tools,command=x",
                              "CONTROL_PLANE_POLL_CHANNELS": "tools"})
    assert [b.channel for b in only_tools.bindings] == ["tools"]
    doctor = load({}, {"MCP_COMMAND": ""}, require_runtime=False)
    assert doctor.bindings == () and not doctor.control_plane.tunnel_id
    with pytest.raises(ConfigError) as err:
        load({}, {"MCP_COMMAND": "channel=tools,command=x",
                  "CONTROL_PLANE_POLL_CHANNELS": "main"}, require_runtime=False)
    assert str(err.value) == "control-plane.poll-channel main has no local MCP handler"


def test_client_certificate_files_are_checked(tmp_path):
    trustme = pytest.importorskip("trustme", minversion="0.9")
    cert = trustme.CA().issue_cert("client.example")
    cert_path, key_path = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    missing = str(tmp_path / "missing.pem")
    with pytest.raises(ConfigError) as err:
        runtime(env={"CONTROL_PLANE_CLIENT_CERT": str(cert_path),
                     "CONTROL_PLANE_CLIENT_KEY": missing})
    assert str(err.value) == ("invalid control-plane client certificate configuration: %s "
                              "does not exist or is not a file" % missing)
    with pytest.raises(ConfigError) as err:
        runtime(env={"CONTROL_PLANE_CLIENT_CERT": str(key_path),
                     "CONTROL_PLANE_CLIENT_KEY": str(key_path)})
    assert str(err.value).startswith("invalid control-plane client certificate configuration: "
                                     "load client certificate/key pair: ")
    assert str(err.value).endswith("(%s, %s)" % (key_path, key_path))
    cfg = runtime(env={"MCP_SERVER_URL": "http://a/mcp", "MCP_COMMAND": "",
                       "MCP_CLIENT_CERT": str(cert_path), "MCP_CLIENT_KEY": str(key_path),
                       "CONTROL_PLANE_BASE_URL": "https://cp.example"})
    assert cfg.control_plane.base_url == "https://cp.example", "only the default switches"
    with pytest.raises(ConfigError) as err:
        runtime(env={"MCP_SERVER_URL": "url=http://a/mcp,client-cert=%s,client-key=%s"
                     % (cert_path, missing), "MCP_COMMAND": ""})
    assert str(err.value) == ("invalid MCP client certificate (channel main) configuration: "
                              "%s does not exist or is not a file" % missing)


def test_a_ca_bundle_is_counted_and_a_broken_one_refused(tmp_path):
    from tunnel_client.config.loader import check_ca_bundle
    trustme = pytest.importorskip("trustme", minversion="0.9")
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(trustme.CA().cert_pem.bytes() + trustme.CA().cert_pem.bytes())
    assert check_ca_bundle(str(bundle)) == 2
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigError) as err:
        check_ca_bundle(str(broken))
    assert str(err.value).startswith('invalid ca-bundle "%s": ' % broken)


def test_values_and_origins_are_reported(tmp_path):
    path = write(tmp_path, "control_plane:\n  url_path: /from-yaml\n")
    cfg = runtime({"--config": path, "--control-plane.poll-timeout": "9s"})
    assert cfg.value("control_plane.poll_timeout") == 9.0
    assert cfg.value("control_plane.url_path") == "/from-yaml"
    assert cfg.origins["control_plane.max_inflight_requests"].source == "default"
    assert cfg.origins["control_plane.poll_timeout"].source == "flag"
    assert cfg.origins["control_plane.url_path"].label == "control_plane.url_path in %s" % path
    assert cfg.origins["control_plane.api_key"].label == "CONTROL_PLANE_API_KEY"
    assert cfg.binding("main").argv == ("server", "--stdio") and cfg.binding("x") is None


@pytest.mark.parametrize("text,message", [
    ("key: [unclosed\n", "parse config file {path}: line 2 column 1: did not find expected ',' "
                         "or ']'; fix the YAML syntax"),
    ("log:\n  level: [\n", "parse config file {path}: line 3 column 1: did not find expected "
                           "node content; fix the YAML syntax"),
    ("control_plane: 5\nlog: 7\nmcp: 8\n", "config file {path}: control_plane: expected a "
                                           "mapping, got int (and 2 more)"),
    ("control_plane: 5\n", "config file {path}: control_plane: expected a mapping, got int"),
    ("cloudflared:\n  managed: true\n", "config file {path}: cloudflared settings are not "
                                        "supported by this client; remove the cloudflared "
                                        "section"),
    ("cloudflared:\n  managed: false\n  token: ''\n", None),
    ("- a\n", "config file {path} must be a YAML mapping of settings"),
    ("", None), ("# only a comment\n", None),
])
def test_config_file_problems_exactly(tmp_path, text, message):
    path = write(tmp_path, text)
    if message is None:
        assert runtime({"--config": path}).control_plane.tunnel_id == TID
        return
    with pytest.raises(ConfigError) as err:
        runtime({"--config": path})
    assert str(err.value) == message.format(path=path)


def test_unreadable_and_missing_config_files(tmp_path):
    with pytest.raises(ConfigError) as err:
        runtime({"--config": str(tmp_path)})
    assert str(err.value) == "cannot read config file %s: Is a directory" % tmp_path
    missing = str(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError) as err:
        runtime({"--config": missing})
    assert str(err.value) == ("config file %s does not exist; check the path or create it "
                              "with `tunnel-client init`" % missing)
    utf8 = write(tmp_path, "control_plane:\n  url_path: /caf\u00e9\n")
    assert runtime({"--config": utf8}).control_plane.url_path == "/caf\u00e9"


DURATION_HINT = "is not a duration; use a number with a unit, such as 500ms, 30s, 10m or 1h30m"


@pytest.mark.parametrize("flags,env,shown,origin", [
    ({}, {"CONTROL_PLANE_POLL_TIMEOUT": "\u00e9" * 201}, "\u00e9" * 200 + "...",
     "CONTROL_PLANE_POLL_TIMEOUT"),
    ({}, {"CONTROL_PLANE_POLL_TIMEOUT": "\u00e9" * 200}, "\u00e9" * 200,
     "CONTROL_PLANE_POLL_TIMEOUT"),
    ({"--control-plane.poll-timeout": "soon"}, {}, "soon", "--control-plane.poll-timeout"),
])
def test_a_bad_value_is_shown_quoted_and_cut_with_its_origin(flags, env, shown, origin):
    with pytest.raises(ConfigError) as err:
        runtime(flags, env)
    assert str(err.value) == 'invalid control-plane.poll-timeout "%s" (from %s): %s' % (
        shown, origin, DURATION_HINT)


@pytest.mark.parametrize("env,message", [
    ({"MCP_SERVER_URL": "http://a/mcp", "MCP_COMMAND": "x"},
     'mcp config: duplicate channel "main" from mcp.command (http-streamable already '
     "configured); give each entry its own channel="),
    ({"MCP_COMMAND": "channel=main,command=x\nchannel=main,command=y"},
     'mcp config: duplicate channel "main" from mcp.command (stdio already configured); give '
     "each entry its own channel="),
])
def test_duplicate_channels_name_both_sides(env, message):
    with pytest.raises(ConfigError) as err:
        runtime(env=env)
    assert str(err.value) == message


@pytest.mark.parametrize("check", [
    lambda: values.build_headers([("X-Key\n", "v")], {}),
    lambda: values._env_value("KEY\n", "env:KEY", {"KEY\n": "x"}),
])
def test_a_name_with_a_trailing_newline_is_refused(check):
    # `$` matches before a final newline; the names are anchored with `\Z`
    with pytest.raises(ValueError, match="not a valid|invalid HTTP header name"):
        check()
    assert values.HARPOON_LABEL_RE.match("api\n") is None
