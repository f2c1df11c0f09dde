"""Loading: flags > environment > YAML > defaults, then cross-field validation.

The result is an immutable ``Config``: one frozen dataclass per section, generated from the
registry, so ``cfg.control_plane.poll_timeout`` exists because the registry declares it.
"""

import json
import os
import re
import ssl
from dataclasses import dataclass, field, make_dataclass
from typing import TYPE_CHECKING, Any, Dict, FrozenSet, List, Mapping, Optional, Set, Tuple

from tunnel_client.config import profiles, schema, yaml_shape
from tunnel_client.config.secrets import inline_secret, referenced_env, referenced_files
from tunnel_client.config import values as v
from tunnel_client.config.settings import BY_KEY, SETTINGS, Context, Setting
from tunnel_client.errors import ConfigError
from tunnel_client.wire import HARPOON_CHANNEL, MAIN_CHANNEL

DEFAULT_BASE_URL = "https://api.openai.com"
MTLS_BASE_URL = "https://mtls.api.openai.com"
MAX_POLL_WINDOW = 600.0
DEFERRABLE = ("control_plane.api_key",)


@dataclass(frozen=True)
class Origin:
    """Where one setting's value came from: ``source`` and the flag/variable/key name."""

    source: str  # "flag" | "env" | "yaml" | "default"
    label: str


def _class_name(section: str) -> str:
    return "".join(p.capitalize() for p in re.split(r"[._]", section)) + "Settings"


def _build_section_classes():
    """One frozen dataclass per YAML section, nested as the keys nest."""
    tree: Dict[str, List[str]] = {}
    for s in SETTINGS:
        if s.yaml and s.section:
            parts = s.section.split(".")
            for i in range(1, len(parts) + 1):
                tree.setdefault(".".join(parts[:i]), [])
    classes = {}
    for section in sorted(tree, key=lambda name: -name.count(".")):
        fields = [(s.attr, s.value_type) for s in SETTINGS if s.yaml and s.section == section]
        fields += [(child.rsplit(".", 1)[-1], classes[child]) for child in classes
                   if child.rsplit(".", 1)[0] == section and "." in child]
        classes[section] = make_dataclass(_class_name(section), fields, frozen=True)
        classes[section].__module__ = __name__
    return classes


_SECTION_CLASSES = _build_section_classes()
_TOP_SECTIONS = sorted(s for s in _SECTION_CLASSES if "." not in s)
_TOP_SETTINGS = [s for s in SETTINGS if s.yaml and not s.section]


@dataclass(frozen=True)
class _ConfigBase:
    bindings: Tuple[v.BindingSpec, ...]
    source: profiles.ConfigSource
    origins: Mapping[str, Origin]
    environ: Mapping[str, str] = field(repr=False)
    problems: Mapping[str, str]  # errors deferred to doctor (require_runtime=False)
    secret_env: FrozenSet[str]  # variables secret settings were read from or refer to
    secret_files: FrozenSet[str]  # files holding a key (file: references, client keys)
    secrets_inline: Tuple[str, ...]  # secret settings written as values in the YAML file

    def binding(self, channel: str) -> Optional[v.BindingSpec]:
        for spec in self.bindings:
            if spec.channel == channel:
                return spec
        return None

    def value(self, key: str):
        node = self
        for part in key.split("."):
            node = getattr(node, part)
        return node


if TYPE_CHECKING:
    class Config(_ConfigBase):
        """Built at runtime from the registry, so a static checker cannot list its fields;
        every attribute read is Any to it (the runtime annotations are the real types)."""

        def __getattr__(self, name: str) -> Any: ...
else:
    Config = make_dataclass(
        "Config",
        [(s.attr, s.value_type) for s in _TOP_SETTINGS]
        + [(name, _SECTION_CLASSES[name]) for name in _TOP_SECTIONS],
        bases=(_ConfigBase,), frozen=True)
    Config.__module__ = __name__
    Config.__doc__ = "The effective configuration: immutable, typed, with each value's origin."


# --- reading the YAML file ---------------------------------------------------------------


def read_yaml(path: str) -> Dict[str, Any]:
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except UnicodeDecodeError as exc:
        raise ConfigError("config file %s is not UTF-8 text (bad byte at offset %d); save it "
                          "as UTF-8" % (path, exc.start)) from None
    except FileNotFoundError:
        raise ConfigError("config file %s does not exist; check the path or create it with "
                          "`tunnel-client init`" % path) from None
    except OSError as exc:
        raise ConfigError("cannot read config file %s: %s" % (path, exc.strerror or exc)) from None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        # The node graph first: aliases expanded past a bound (a "billion laughs" file) and
        # duplicate keys (silently last-wins in YAML) are refused before anything is built.
        problem = yaml_shape.problem(yaml.compose(text, Loader=loader))
        if problem:
            raise ConfigError("config file %s: %s" % (path, problem))
        document = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = " line %d column %d" % (mark.line + 1, mark.column + 1) if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError("parse config file %s:%s: %s; fix the YAML syntax"
                          % (path, where, problem)) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError("config file %s must be a YAML mapping of settings" % path)
    problems = schema.validation_problems(document)
    if problems:
        more = " (and %d more)" % (len(problems) - 1) if len(problems) > 1 else ""
        raise ConfigError("config file %s: %s%s" % (path, problems[0], more))
    for section in schema.FOREIGN_SECTIONS:
        body = document.get(section) or {}
        if any(value not in (None, False, "") for value in body.values()):
            raise ConfigError("config file %s: %s settings are not supported by this client; "
                              "remove the %s section" % (path, section, section))
    return document


def _yaml_lookup(document: Mapping[str, Any], key: str):
    node: Any = document
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


# --- per-setting resolution --------------------------------------------------------------


def _raw_value(s: Setting, flags: Mapping[str, Any], environ: Mapping[str, str],
               document: Mapping[str, Any], yaml_label: str):
    """The raw value and its origin. An empty environment value counts as unset, for every
    setting alike (an empty ``MCP_COMMAND=`` in an env file must not hide the YAML one)."""
    for name in (s.flag,) + s.aliases:
        if name and flags.get(name) is not None:
            return flags[name], Origin("flag", name)
    for env in ((s.env,) if s.env else ()) + s.env_fallbacks:
        if env in environ:
            raw = environ[env]
            if not raw.strip():
                continue
            if s.multiple:
                items = [item.strip() for item in re.split(s.env_split or r"\n", raw)]
                return [item for item in items if item], Origin("env", env)
            return raw, Origin("env", env)
    if s.yaml:
        value = _yaml_lookup(document, s.key)
        if value is not None and value != [] and value != {}:
            return value, Origin("yaml", "%s in %s" % (s.key, yaml_label))
    return None, Origin("default", "")


def _fail(s: Setting, origin: Origin, raw, problem: ValueError) -> ConfigError:
    where = " (from %s)" % origin.label if origin.label else ""
    if isinstance(problem, v.Invalid):
        return ConfigError(v.scrub_urls("%s%s" % (problem, where)))
    shown = ""
    if not s.secret and isinstance(raw, (str, int, float)) and not isinstance(raw, bool):
        text = str(raw) if len(str(raw)) <= 200 else str(raw)[:200] + "..."
        shown = " " + json.dumps(text, ensure_ascii=False)  # quoted, line breaks escaped
    # Errors are printed, mailed by cron and kept in logs: no URL credential or query value.
    return ConfigError(v.scrub_urls("invalid %s%s%s: %s" % (s.name, shown, where, problem)))


def parse_setting(s: Setting, raw, origin: Origin, environ: Mapping[str, str]):
    if raw is None:
        return s.default
    try:
        return s.parse(raw, Context(environ, origin.source, origin.label or s.name))
    except ValueError as exc:
        raise _fail(s, origin, raw, exc) from None


# --- the whole configuration -------------------------------------------------------------


def load(flags: Optional[Mapping[str, Any]] = None,
         environ: Optional[Mapping[str, str]] = None,
         require_runtime: bool = True, collect: bool = False) -> "Config":
    """Build the effective configuration.

    ``flags`` maps flag names (``--control-plane.poll-timeout``) to values, None when not
    given. ``require_runtime`` enforces what ``run`` needs (tunnel id, key, main channel);
    ``doctor`` loads without it to report each missing piece as its own check. With
    ``collect`` every setting that does not parse is recorded in ``problems`` (and left at
    its default) instead of stopping at the first, so doctor reports them all at once.
    """
    flags = dict(flags or {})
    environ = dict(os.environ if environ is None else environ)
    selector_flags = {"config": flags.get("--config"), "profile": flags.get("--profile"),
                      "profile_file": flags.get("--profile-file"),
                      "profile_dir": flags.get("--profile-dir")}
    source = profiles.select(selector_flags, environ)
    document = read_yaml(source.path) if source.path else {}

    values: Dict[str, Any] = {}
    origins: Dict[str, Origin] = {}
    problems: Dict[str, str] = {}
    secret_env: Set[str] = set()
    secret_files: Set[str] = set()
    secrets_inline: List[str] = []
    for s in SETTINGS:
        if not s.yaml:
            continue
        raw, origin = _raw_value(s, flags, environ, document, source.path or "")
        origins[s.key] = origin
        if s.secret:
            secret_env |= referenced_env(raw)
            secret_files |= referenced_files(raw)
            if origin.source == "env":
                secret_env.add(origin.label)
            if origin.source == "yaml" and inline_secret(raw):
                secrets_inline.append(s.key)
        try:
            values[s.key] = parse_setting(s, raw, origin, environ)
        except ConfigError as exc:
            if require_runtime or (s.key not in DEFERRABLE and not collect):
                raise
            if collect and s.key not in DEFERRABLE:
                values[s.key], problems[s.key] = s.default, str(exc)
                continue
            # doctor reports a key it cannot resolve as its own check, not as a broken file
            values[s.key], problems[s.key] = None, str(exc)

    try:
        bindings = _bindings(values)
        _validate(values, origins, bindings, require_runtime)
    except ConfigError as exc:
        if not collect:
            raise
        bindings = bindings if "bindings" in locals() else ()
        problems["configuration"] = str(exc)
    if values["control_plane.client_cert"] and origins["control_plane.base_url"].source == \
            "default" and values["control_plane.base_url"] == DEFAULT_BASE_URL:
        values["control_plane.base_url"] = MTLS_BASE_URL

    sections = {}
    for name in sorted(_SECTION_CLASSES, key=lambda n: -n.count(".")):
        cls = _SECTION_CLASSES[name]
        kwargs = {s.attr: values[s.key] for s in SETTINGS if s.yaml and s.section == name}
        for child, obj in sections.items():
            if "." in child and child.rsplit(".", 1)[0] == name:
                kwargs[child.rsplit(".", 1)[-1]] = obj
        sections[name] = cls(**kwargs)
    top = {s.attr: values[s.key] for s in _TOP_SETTINGS}
    top.update({name: sections[name] for name in _TOP_SECTIONS})
    return Config(bindings=bindings, source=source, origins=origins, environ=environ,
                  problems=problems, secret_env=frozenset(secret_env),
                  secret_files=frozenset(secret_files | _key_files(values, bindings)),
                  secrets_inline=tuple(secrets_inline), **top)


def _key_files(values, bindings) -> Set[str]:
    keys = {values["control_plane.client_key"], values["mcp.client_key"]}
    keys |= {spec.client_key for spec in bindings}
    return {key for key in keys if key}


def _bindings(values: Mapping[str, Any]) -> Tuple[v.BindingSpec, ...]:
    seen: Dict[str, str] = {}
    bindings = []
    for key, kind in (("mcp.server_urls", "http-streamable"), ("mcp.commands", "stdio")):
        for spec in values[key] or ():
            if spec.channel in seen:
                raise ConfigError('mcp config: duplicate channel "%s" from %s (%s already '
                                  'configured); give each entry its own channel='
                                  % (spec.channel, BY_KEY[key].name, seen[spec.channel]))
            seen[spec.channel] = kind
            bindings.append(spec)
    return tuple(bindings)


def _validate(values, origins, bindings, require_runtime):
    cp = "control_plane."
    if require_runtime:
        if not values[cp + "tunnel_id"]:
            raise ConfigError("tunnel ID is required; set --control-plane.tunnel-id or "
                              "CONTROL_PLANE_TUNNEL_ID (see `tunnel-client help quickstart`)")
        if not values[cp + "api_key"]:
            raise ConfigError("control plane API key is required; set --control-plane.api-key "
                              "(env:/file:) or CONTROL_PLANE_API_KEY or OPENAI_API_KEY")
    if values["admin_ui.allow_remote"] and not values["admin_ui.token"]:
        raise ConfigError("--allow-remote-ui needs --admin-ui.token (env:VAR or file:PATH): "
                          "a UI reachable from other hosts can change the log level and call "
                          "Harpoon targets, so it must require a token")
    timeout, guardrail = values[cp + "poll_timeout"], values[cp + "poll_deadline_guardrail"]
    if timeout + guardrail > MAX_POLL_WINDOW:
        raise ConfigError("control-plane.poll-timeout plus control-plane.poll-deadline-guardrail "
                          "must be less than or equal to 10m0s")
    channels = [b.channel for b in bindings]
    poll_channels = values[cp + "poll_channels"]
    if require_runtime and MAIN_CHANNEL not in channels and (
            poll_channels is None or MAIN_CHANNEL in poll_channels):
        if channels:
            raise ConfigError("main channel is required; add channel=main to one "
                              "--mcp.server-url or --mcp.command entry")
        raise ConfigError("main channel is required; set --mcp.server-url or --mcp.command, "
                          "or MCP_SERVER_URL or MCP_COMMAND")
    for channel in poll_channels or ():
        if channel in channels:
            continue
        if channel == MAIN_CHANNEL:
            raise ConfigError("control-plane.poll-channel main has no local MCP handler")
        if channel == HARPOON_CHANNEL:
            if values["harpoon.targets"] or (MAIN_CHANNEL in channels and MAIN_CHANNEL in
                                             poll_channels):
                continue  # configured targets, or OAuth discovery on main may add some
            raise ConfigError("control-plane.poll-channel harpoon has no routable target; add "
                              "a --harpoon.target or also poll main")
        raise ConfigError('control-plane.poll-channel "%s" has no local handler; add an '
                          "--mcp.server-url or --mcp.command entry with channel=%s"
                          % (channel, channel))
    _check_pair(values, origins, cp + "client_cert", cp + "client_key", "control-plane")
    if values["mcp.client_cert"] and not any(b.transport == "http" for b in bindings):
        raise ConfigError("mcp.client-cert and mcp.client-key require at least one "
                          "http-streamable mcp.server-url binding")
    _check_pair(values, origins, "mcp.client_cert", "mcp.client_key", "MCP")
    for spec in bindings:
        if spec.client_cert:
            _check_cert_pair(spec.client_cert, spec.client_key,
                             "MCP client certificate (channel %s)" % spec.channel)
    if values["ca_bundle"]:
        check_ca_bundle(values["ca_bundle"])
    if values["audit.file"] and not values["audit.key_file"]:
        raise ConfigError("audit.file requires audit.key_file (the HMAC key sealing the "
                          "chain); see docs/policy.md")
    known = set(channels) | {HARPOON_CHANNEL}
    for channel in values["policy.channels"] or ():
        if channels and channel not in known:
            raise ConfigError('policy.channels.%s: no such channel (configured: %s)'
                              % (channel, ", ".join(sorted(known))))
    for target in values["harpoon.targets"] or ():
        if target.url.lower().startswith("http://") and not values["harpoon.allow_plaintext_http"]:
            raise ConfigError('invalid harpoon target url "%s": https is required; set '
                              "harpoon.allow_plaintext_http to allow http" % target.url)


def _check_pair(values, origins, cert_key, key_key, label):
    cert, key = values[cert_key], values[key_key]
    if cert and not key:
        raise ConfigError("invalid %s client certificate configuration: client key path is "
                          "required when certificate path is set" % label)
    if key and not cert:
        raise ConfigError("invalid %s client certificate configuration: client certificate path "
                          "is required when key path is set" % label)
    if cert:
        _check_cert_pair(cert, key, "%s client certificate" % label)


def _check_cert_pair(cert: str, key: str, label: str):
    for path in (cert, key):
        if not os.path.isfile(path):
            raise ConfigError("invalid %s configuration: %s does not exist or is not a file"
                              % (label, path))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        reason = "certificate and key do not match" if "KEY_VALUES_MISMATCH" in str(exc) \
            else (exc.reason or str(exc))
        raise ConfigError("invalid %s configuration: load client certificate/key pair: %s "
                          "(%s, %s)" % (label, reason, cert, key)) from None
    except OSError as exc:
        raise ConfigError("invalid %s configuration: %s" % (label, exc)) from None


def check_ca_bundle(path: str) -> int:
    """Number of certificates in a PEM bundle; a bad bundle is a startup error."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise ConfigError('invalid ca-bundle "%s": %s' % (path, exc.strerror or exc)) from None
    count = data.count(b"-----BEGIN CERTIFICATE-----")
    if not count:
        raise ConfigError('invalid ca-bundle "%s": PEM bundle contained no certificates' % path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=path)
    except ssl.SSLError as exc:
        raise ConfigError('invalid ca-bundle "%s": %s' % (path, exc.reason or exc)) from None
    return count
