"""The settings registry: every setting is declared exactly once, here.

Flags, environment lookup, the YAML JSON Schema, ``--help`` text, the configuration
reference (docs/configuration.md) and the redacted effective-config export are all loops
over ``SETTINGS``. Names follow the official Go client so an operator can
switch clients with the same profile; settings that client does not have are marked
``ours`` in the docs.
"""

import re
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from tunnel_client.config import policy_schema
from tunnel_client.config import values as v
from tunnel_client.wire import normalize_channel


@dataclass(frozen=True)
class Context:
    """What a parser may know besides the raw value."""

    environ: Mapping[str, str]
    source: str  # "flag" | "env" | "yaml" | "default"
    label: str  # the flag, variable or YAML key the value came from


@dataclass(frozen=True)
class Setting:
    key: str  # YAML path, e.g. "control_plane.poll_timeout"
    env: Optional[str]  # primary environment variable
    flag: Optional[str]  # canonical flag, e.g. "--control-plane.poll-timeout"
    parse: Callable[[Any, Context], Any]
    default: Any
    doc: str
    expect: str = "a string"  # what a valid value looks like, for errors and docs
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})
    secret: bool = False  # never echoed; exported as a presence marker
    aliases: Tuple[str, ...] = ()  # hidden back-compat flags
    env_fallbacks: Tuple[str, ...] = ()
    multiple: bool = False  # flag repeats; env holds a list
    env_split: Optional[str] = None  # regex separating list items in the env var
    yaml: bool = True  # False for selectors that choose the YAML file itself
    metavar: Optional[str] = None
    ours: bool = False  # not in the Go client
    default_doc: Optional[str] = None  # how the default reads in docs, when not obvious

    @property
    def attr(self) -> str:
        return self.key.rsplit(".", 1)[-1]

    @property
    def section(self) -> str:
        return self.key.rsplit(".", 1)[0] if "." in self.key else ""

    @property
    def value_type(self) -> Any:
        """The type of the loaded value: what ``parse`` returns, optional when the default
        is None. The Config dataclasses carry it as the field's annotation."""
        kind = typing.get_type_hints(self.parse).get("return", Any)
        return Optional[kind] if self.default is None else kind

    @property
    def name(self) -> str:
        """The operator-facing name used in messages: the flag without dashes."""
        return self.flag[2:] if self.flag else self.key


# --- parser factories --------------------------------------------------------------------


def text(raw, ctx) -> Optional[str]:
    return str(raw).strip() or None


def resolved(raw, ctx) -> Optional[str]:
    return v.resolve_value(str(raw), ctx.environ) if str(raw).strip() else None


def path(raw, ctx) -> Optional[str]:
    return v.resolve_path(str(raw), ctx.environ) if str(raw).strip() else None


def boolean(raw, ctx) -> bool:
    return v.parse_bool(raw)


def duration(minimum=0.0, positive=False, below=None):
    def parse(raw, ctx) -> float:
        seconds = v.parse_duration(raw)
        if positive and seconds <= 0:
            raise ValueError("must be greater than zero; " + v.DURATION_HINT)
        if seconds < minimum:
            raise ValueError("must be at least %s" % v.format_duration(minimum))
        if below is not None and seconds >= below:
            raise ValueError("must be less than %s" % v.format_duration(below))
        return seconds
    return parse


def integer(low, high):
    def parse(raw, ctx) -> int:
        number = v.parse_int(raw)
        if number < low:
            raise ValueError("must be greater than zero" if low == 1
                             else "must be at least %d" % low)
        if number > high:
            raise ValueError("must be less than or equal to %d" % high)
        return number
    return parse


def choice(*options, aliases=None):
    aliases = aliases or {}

    def parse(raw, ctx) -> str:
        value = str(raw).strip().lower()
        value = aliases.get(value, value)
        if value not in options:
            raise ValueError("is not supported; use one of: %s" % ", ".join(options))
        return value
    return parse


def proxy(raw, ctx) -> Optional[v.ProxySetting]:
    if not str(raw).strip():
        return None
    return v.parse_proxy(str(raw), ctx.environ, ctx.label)


def api_key(raw, ctx) -> str:
    key = v.resolve_secret(str(raw), ctx.environ, require_ref=ctx.source == "flag")
    if not re.match(r"^[0-9A-Za-z_-]+$", key):
        raise v.Invalid("control plane API key is malformed; it may contain only letters, "
                        "digits, '_' and '-' (check for quotes or a trailing newline)")
    return key


def ui_token(raw, ctx) -> str:
    token = v.resolve_secret(str(raw), ctx.environ, require_ref=ctx.source in ("flag", "yaml"))
    if len(token) < 16 or any(c.isspace() or ord(c) < 33 for c in token):
        raise v.Invalid("admin UI token must be at least 16 visible characters without spaces "
                        "(for example from `openssl rand -hex 16`)")
    return token


def tunnel_id(raw, ctx) -> Optional[str]:
    value = str(raw).strip()
    if not value:
        return None
    if not re.match(r"^tunnel_[a-z0-9]{32}$", value):
        raise v.Invalid('invalid tunnel ID "%s": must match tunnel_<32 lowercase letters or '
                         'digits>; copy it from the tunnel settings page' % value)
    return value


def base_url(raw, ctx) -> str:
    url = v.resolve_value(str(raw), ctx.environ)
    return v.parse_http_url(url, what="control-plane base URL").rstrip("/")


def url_path(raw, ctx) -> str:
    value = v.resolve_value(str(raw), ctx.environ) if str(raw).strip() else ""
    if not value:
        return ""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", value) or "?" in value or "#" in value:
        raise ValueError("must be a URL path without scheme, host, query, or fragment")
    if not value.startswith("/"):
        raise ValueError("must start with '/'")
    return value.rstrip("/")


def organization_id(raw, ctx) -> Optional[str]:
    value = str(raw).strip()
    if "\r" in value or "\n" in value:
        raise ValueError("cannot contain header line breaks")
    return value or None


def channel_list(raw, ctx) -> Optional[Tuple[str, ...]]:
    items = raw if isinstance(raw, list) else [raw]
    channels = []
    for item in items:
        name = str(item).strip()
        if not name:
            raise ValueError("contains an empty channel name")
        canonical = normalize_channel(name)
        if canonical is None:
            raise ValueError('"%s" is not a valid channel name' % name)
        if canonical != name:
            raise ValueError('"%s" is not canonical; use "%s"' % (name, canonical))
        if canonical in channels:
            raise ValueError('lists "%s" twice' % canonical)
        channels.append(canonical)
    return tuple(sorted(channels)) or None


CONTROL_PLANE_PROTECTED_HEADERS = (
    "Authorization", "Accept", "User-Agent", "X-Tunnel-Client-Name", "X-Tunnel-Client-Version",
    "X-Tunnel-MCP-Server-Info", "X-Tunnel-Shard-Token", "Content-Type")


def headers(protected=()):
    def parse(raw, ctx) -> v.HeaderList:
        if isinstance(raw, dict):
            pairs = [(str(k), "" if val is None else str(val)) for k, val in raw.items()]
        else:
            lines = raw if isinstance(raw, list) else [raw]
            pairs = [v.parse_header_line(str(line)) for line in lines if str(line).strip()]
        return v.build_headers(pairs, ctx.environ, protected)
    return parse


def http_bindings(raw, ctx) -> Tuple[v.BindingSpec, ...]:
    if isinstance(raw, list) and raw and isinstance(raw[0], dict):
        return tuple(v.http_binding({k.replace("-", "_"): (None if val is None else str(val))
                                     for k, val in item.items()}, ctx.environ, ctx.label)
                     for item in raw)
    items = raw if isinstance(raw, list) else [raw]
    return tuple(v.parse_http_entry(str(e), ctx.environ, ctx.label) for e in items
                 if str(e).strip())


def stdio_bindings(raw, ctx) -> Tuple[v.BindingSpec, ...]:
    if isinstance(raw, list) and raw and isinstance(raw[0], dict):
        return tuple(v.stdio_binding(item.get("channel"), str(item.get("command") or ""),
                                     ctx.environ, ctx.label) for item in raw)
    items = raw if isinstance(raw, list) else [raw]
    return tuple(v.parse_stdio_entry(str(e), ctx.environ, ctx.label) for e in items
                 if str(e).strip())


def harpoon_targets(raw, ctx) -> Tuple[v.HarpoonTargetSpec, ...]:
    if isinstance(raw, list) and raw and isinstance(raw[0], dict):
        items = [v.harpoon_target({k.replace("-", "_"): (None if val is None else str(val))
                                   for k, val in item.items()}, ctx.environ) for item in raw]
    else:
        entries = raw if isinstance(raw, list) else [raw]
        items = [v.parse_harpoon_entry(str(e), ctx.environ) for e in entries if str(e).strip()]
    labels = [t.label for t in items]
    for label in labels:
        if labels.count(label) > 1:
            raise ValueError('harpoon target label "%s" is used twice' % label)
    return tuple(items)


def string_list(raw, ctx) -> Optional[Tuple[str, ...]]:
    items = raw if isinstance(raw, list) else [raw]
    return tuple(str(i).strip() for i in items if str(i).strip()) or None


def roots_list(raw, ctx) -> Optional[Tuple[Tuple[Optional[str], str], ...]]:
    """``file://`` URIs for every stdio channel, or ``channel=NAME,uri=file://...``."""
    found = []
    for entry in string_list(raw, ctx) or ():
        channel, uri = None, entry
        if entry.lower().startswith("channel="):
            channel, _, rest = entry[len("channel="):].partition(",")
            if not rest.lower().startswith("uri="):
                raise ValueError('entry "%s": after channel=, the rest must start with uri='
                                 % entry)
            channel, uri = channel.strip().lower(), rest[len("uri="):].strip()
        if not uri.startswith("file://") or len(uri) <= len("file://"):
            raise ValueError('root "%s" is not a file:// URI (write file:///path/to/dir)' % uri)
        found.append((channel, uri))
    return tuple(found) or None


def regex_list(raw, ctx) -> Optional[Tuple[str, ...]]:
    patterns = string_list(raw, ctx) or ()
    for pattern in patterns:
        try:
            re.compile("(?i:%s)" % pattern)
        except re.error as exc:
            raise ValueError('regular expression "%s" does not compile: %s' % (pattern, exc))
    return patterns or None


def transports(raw, ctx) -> Optional[Tuple[str, ...]]:
    items = string_list(raw, ctx) or ()
    for item in items:
        if item != "http-streamable":
            raise ValueError('unsupported harpoon transport "%s"; the only one is '
                             "http-streamable" % item)
    return items or None


def listen_addr(raw, ctx) -> Optional[str]:
    value = v.resolve_value(str(raw), ctx.environ) if str(raw).strip() else ""
    if not value:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError('must be host:port, for example 127.0.0.1:8080 (":0" picks a free port)')
    return value


def policy_channels(raw, ctx) -> Optional[Dict[str, Any]]:
    """The mapping itself (YAML), or a path to a YAML file holding it (flag, env, YAML)."""
    if isinstance(raw, str):
        raw = policy_schema.read_file(v.resolve_path(raw, ctx.environ))
    return policy_schema.check(raw) or None


# --- JSON Schema fragments for YAML values -----------------------------------------------

_BOOL = {"type": "boolean"}
_INT = {"type": "integer"}
_STR_LIST = {"type": "array", "items": {"type": "string"}}
_HEADER_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_HTTP_BINDING = {
    "type": "object", "additionalProperties": False, "required": ["url"],
    "properties": {k: {"type": "string"} for k in (
        "channel", "url", "unix_socket", "http_proxy", "client_cert", "client_key")},
}
_HARPOON_TARGET = {
    "type": "object", "additionalProperties": False, "required": ["label", "url"],
    "properties": {k: {"type": "string"} for k in (
        "label", "url", "unix_socket", "description", "desc")},
}
_STDIO_BINDING = {
    "type": "object", "additionalProperties": False, "required": ["command"],
    "properties": {"channel": {"type": "string"}, "command": {"type": "string"}},
}

DUR = "a duration such as 30s or 500ms"

# --- the registry -----------------------------------------------------------------------

SELECTORS = (
    Setting("config", "TUNNEL_CLIENT_CONFIG", "--config", path, None,
            "YAML configuration file to load.", expect="a path", yaml=False, metavar="PATH"),
    Setting("profile", "TUNNEL_CLIENT_PROFILE", "--profile", text, None,
            "Profile name; loads <profile dir>/<name>.yaml.", yaml=False, metavar="NAME"),
    Setting("profile_file", "TUNNEL_CLIENT_PROFILE_FILE", "--profile-file", path, None,
            "Explicit profile file (must end in .yaml).", expect="a path", yaml=False,
            metavar="PATH"),
    Setting("profile_dir", "TUNNEL_CLIENT_PROFILE_DIR", "--profile-dir", path, None,
            "Directory holding profiles (default $XDG_CONFIG_HOME/tunnel-client or "
            "~/.config/tunnel-client).", expect="a path", yaml=False, metavar="DIR"),
)

SETTINGS = SELECTORS + (
    # --- global networking
    Setting("ca_bundle", "CA_BUNDLE", "--ca-bundle", path, None,
            "PEM bundle of extra CA certificates, added to the system trust for every "
            "outbound TLS connection.", expect="a path, env:VAR or file:PATH", metavar="PATH"),
    Setting("http_proxy", "TUNNEL_CLIENT_HTTP_PROXY", "--http-proxy", proxy, None,
            "Explicit proxy for every outbound route (routes may override it).",
            expect="an http(s) proxy URL or env:VAR", metavar="URL"),

    # --- control plane
    Setting("control_plane.base_url", "CONTROL_PLANE_BASE_URL", "--control-plane.base-url",
            base_url, "https://api.openai.com", "Control-plane base URL.",
            expect="an https URL", aliases=("--control-plane-base-url",), metavar="URL"),
    Setting("control_plane.url_path", "CONTROL_PLANE_URL_PATH", "--control-plane.url-path",
            url_path, "", "Path prefix inserted before /v1/... on every control-plane route.",
            expect="a path such as /proxy", aliases=("--control-plane-url-path",),
            metavar="PATH"),
    Setting("control_plane.tunnel_id", "CONTROL_PLANE_TUNNEL_ID", "--control-plane.tunnel-id",
            tunnel_id, None, "Tunnel to serve (tunnel_<32 lowercase letters or digits>). "
            "Required.", expect="tunnel_ followed by 32 lowercase letters or digits",
            aliases=("--control-plane-tunnel-id",), metavar="ID"),
    Setting("control_plane.organization_id", "CONTROL_PLANE_ORGANIZATION_ID",
            "--control-plane.organization-id", organization_id, None,
            "Sent as OpenAI-Organization on every control-plane request.",
            aliases=("--control-plane-organization-id",), metavar="ORG"),
    Setting("control_plane.api_key", "CONTROL_PLANE_API_KEY", "--control-plane.api-key",
            api_key, None, "Runtime API key. The flag takes only env:VAR or file:PATH; the "
            "environment falls back to OPENAI_API_KEY. Required.",
            expect="env:VAR or file:PATH (flag); the key itself (environment)", secret=True,
            env_fallbacks=("OPENAI_API_KEY",), aliases=("--control-plane-api-key",),
            metavar="REF"),
    Setting("control_plane.client_cert", "CONTROL_PLANE_CLIENT_CERT",
            "--control-plane.client-cert", path, None,
            "Client certificate (PEM) for control-plane mTLS.", expect="a path",
            aliases=("--control-plane-client-cert",), metavar="PATH"),
    Setting("control_plane.client_key", "CONTROL_PLANE_CLIENT_KEY",
            "--control-plane.client-key", path, None,
            "Private key (PEM) for control-plane mTLS.", expect="a path",
            aliases=("--control-plane-client-key",), metavar="PATH"),
    Setting("control_plane.http_proxy", "CONTROL_PLANE_HTTP_PROXY",
            "--control-plane.http-proxy", proxy, None,
            "Proxy for control-plane traffic (overrides http_proxy and the environment).",
            expect="an http(s) proxy URL or env:VAR", metavar="URL"),
    Setting("control_plane.max_inflight_requests", "CONTROL_PLANE_MAX_INFLIGHT_REQUESTS",
            "--control-plane.max-inflight", integer(1, 10000), 20,
            "Accepted for compatibility. Each worker holds one command at a time, so "
            "in-flight work is bounded by mcp.max_concurrent_requests.",
            expect="an integer 1..10000", schema=_INT, metavar="N"),
    Setting("control_plane.poll_timeout", "CONTROL_PLANE_POLL_TIMEOUT",
            "--control-plane.poll-timeout", duration(positive=True), 30.0,
            "Long-poll wait requested from the control plane (timeout_ms).", expect=DUR,
            metavar="DURATION"),
    Setting("control_plane.poll_deadline_guardrail", "CONTROL_PLANE_POLL_DEADLINE_GUARDRAIL",
            "--control-plane.poll-deadline-guardrail", duration(positive=True, below=60.0), 5.0,
            "Extra time allowed on top of poll_timeout before a poll is abandoned.",
            expect="a duration below 1m", metavar="DURATION"),
    Setting("control_plane.poll_channels", "CONTROL_PLANE_POLL_CHANNELS",
            "--control-plane.poll-channel", channel_list, None,
            "Only poll for these channels (repeat the flag; comma list in the environment). "
            "Unset polls every channel.", expect="channel names", schema=_STR_LIST,
            multiple=True, env_split=r",", metavar="CHANNEL"),
    Setting("control_plane.extra_headers", "CONTROL_PLANE_EXTRA_HEADERS",
            "--control-plane.extra-headers", headers(CONTROL_PLANE_PROTECTED_HEADERS), None,
            "Extra headers on every control-plane request ('Key: Value'; values may be "
            "env:VAR or file:PATH).", expect="'Key: Value' items", schema=_HEADER_MAP,
            multiple=True, env_split=r"[,;]", metavar="'K: V'", secret=True),
    Setting("control_plane.auth_backoff", "CONTROL_PLANE_AUTH_BACKOFF",
            "--control-plane.auth-backoff", duration(positive=True), 15.0,
            "First pause after the control plane rejects the key (401/403); doubles up to 5m. "
            "One probe poll per pause, not one per worker.", expect=DUR, metavar="DURATION",
            ours=True),
    Setting("control_plane.connect_timeout", "CONTROL_PLANE_CONNECT_TIMEOUT",
            "--control-plane.connect-timeout", duration(positive=True), 10.0,
            "TCP/TLS connect timeout for control-plane requests.", expect=DUR,
            metavar="DURATION", ours=True),

    # --- logging
    Setting("log.level", "LOG_LEVEL", "--log.level",
            choice("debug", "info", "warn", "error", aliases={"warning": "warn"}), "info",
            "Log level.", expect="debug, info, warn or error", metavar="LEVEL"),
    Setting("log.format", "LOG_FORMAT", "--log.format",
            choice("struct-text", "json", aliases={"text": "struct-text"}), "struct-text",
            "Log format: struct-text (key=value) or json.", expect="struct-text or json",
            metavar="FORMAT"),
    Setting("log.file", "LOG_FILE", "--log.file", path, None,
            "Append logs to this file (mode 0600; reopened on SIGHUP) instead of stderr.",
            expect="a path", metavar="PATH"),
    Setting("log.http_raw_unsafe", "LOG_HTTP_RAW_UNSAFE", "--log.http-raw-unsafe", boolean,
            False, "Log raw HTTP exchanges at debug level (secrets are still redacted).",
            expect="true or false", schema=_BOOL),
    Setting("log.access", "LOG_ACCESS", "--log.access", boolean, True,
            "Log one info line per command (method, tool, channel, status, duration, bytes, "
            "request id; never payloads). false turns it off.",
            expect="true or false", schema=_BOOL),

    # --- admin / health listener
    Setting("health.listen_addr", "HEALTH_LISTEN_ADDR", "--health.listen-addr", listen_addr,
            "127.0.0.1:8080", "Admin listener (/healthz, /readyz, /metrics, /ui). "
            "Use 127.0.0.1:0 for a free port, empty to disable.", expect="host:port",
            aliases=("--health-listen-addr",), metavar="ADDR"),
    Setting("health.unix_socket", "HEALTH_UNIX_SOCKET", "--health.unix-socket", path, None,
            "Serve the admin listener on this unix socket instead of TCP.", expect="a path",
            aliases=("--health-unix-socket",), metavar="PATH"),
    Setting("health.url_file", "HEALTH_URL_FILE", "--health.url-file", path, None,
            "Write the admin base URL here (0600, atomically; removed at exit).",
            expect="a path", aliases=("--health-url-file",), metavar="PATH"),
    Setting("health.poll_failure_grace", "HEALTH_POLL_FAILURE_GRACE",
            "--health.poll-failure-grace", duration(), 60.0,
            "How long polls may keep failing (transport errors, 5xx) before /readyz reports "
            "the control plane as down; 401/403 count at once.", expect=DUR,
            metavar="DURATION", ours=True),
    Setting("admin_ui.allow_remote", "ALLOW_REMOTE_UI", "--allow-remote-ui", boolean, False,
            "Serve the UI and /api to non-loopback peers.", expect="true or false",
            schema=_BOOL),
    Setting("admin_ui.token", "ADMIN_UI_TOKEN", "--admin-ui.token", ui_token, None,
            "Token the admin UI and /api require from other hosts (required with "
            "--allow-remote-ui): browse once to /ui?token=TOKEN, or send Authorization: "
            "Bearer TOKEN. The flag takes only env:VAR or file:PATH.",
            expect="env:VAR or file:PATH (flag); the token itself (environment), 16+ "
                   "characters", secret=True, metavar="REF", ours=True),
    Setting("admin_ui.open_browser", "OPEN_WEB_UI", "--open-web-ui", boolean, False,
            "Open the admin UI in a browser at start (desktops only).", expect="true or false",
            schema=_BOOL),
    Setting("admin_ui.log_buffer_events", "ADMIN_UI_LOG_BUFFER_EVENTS",
            "--admin-ui.log-buffer-events", integer(1, 100000), 2000,
            "Log events kept in memory for the UI and support bundles.",
            expect="an integer 1..100000", schema=_INT, metavar="N"),
    Setting("process.pid_file", "PID_FILE", "--pid.file", path, None,
            "Write the process id here at start; removed at exit.", expect="a path",
            metavar="PATH"),

    Setting("proxy.check_interval", "PROXY_CHECK_INTERVAL", "--proxy.check-interval",
            duration(), 60.0, "How often to check that each proxied route can still open a "
            "CONNECT tunnel (0 disables); shown in /api/status and /metrics, never gating "
            "readiness.", expect=DUR, metavar="DURATION"),

    # --- lifecycle (ours)
    Setting("shutdown.drain_timeout", "SHUTDOWN_DRAIN_TIMEOUT", "--shutdown.drain-timeout",
            duration(), 30.0, "On SIGTERM, how long in-flight commands may take to finish "
            "before the process stops anyway.", expect=DUR, metavar="DURATION", ours=True),

    # --- MCP targets
    Setting("mcp.server_urls", "MCP_SERVER_URL", "--mcp.server-url", http_bindings, None,
            "Streamable HTTP MCP server: a URL for channel main, or "
            "channel=NAME,url=URL[,unix-socket=PATH][,http-proxy=URL][,client-cert=PATH,"
            "client-key=PATH]. Repeat for more channels (newline list in the environment).",
            expect="a URL or channel=...,url=... entries",
            schema={"type": "array", "items": _HTTP_BINDING}, multiple=True,
            env_split=r"\n", aliases=("--mcp-server-url",), metavar="ENTRY"),
    Setting("mcp.commands", "MCP_COMMAND", "--mcp.command", stdio_bindings, None,
            "stdio MCP server command for channel main, or channel=NAME,command=CMD. Split "
            "like a shell, run without one. Repeat for more channels (newline list in the "
            "environment).", expect="a command or channel=...,command=... entries",
            schema={"type": "array", "items": _STDIO_BINDING}, multiple=True,
            env_split=r"\n", aliases=("--mcp-command",), metavar="ENTRY"),
    Setting("mcp.http_proxy", "MCP_HTTP_PROXY", "--mcp.http-proxy", proxy, None,
            "Default proxy for HTTP MCP bindings.", expect="an http(s) proxy URL or env:VAR",
            metavar="URL"),
    Setting("mcp.client_cert", "MCP_CLIENT_CERT", "--mcp.client-cert", path, None,
            "Default client certificate for HTTP MCP bindings (mTLS).", expect="a path",
            metavar="PATH"),
    Setting("mcp.client_key", "MCP_CLIENT_KEY", "--mcp.client-key", path, None,
            "Default client key for HTTP MCP bindings (mTLS).", expect="a path",
            metavar="PATH"),
    Setting("mcp.extra_headers", "MCP_EXTRA_HEADERS", "--mcp.extra-headers", headers(), None,
            "Static headers on MCP runtime requests (the connector's own headers win).",
            expect="'Key: Value' items", schema=_HEADER_MAP, multiple=True,
            env_split=r"[,;]", aliases=("--mcp-extra-headers",), metavar="'K: V'",
            secret=True),
    Setting("mcp.discovery_extra_headers", "MCP_DISCOVERY_EXTRA_HEADERS",
            "--mcp.discovery-extra-headers", headers(), None,
            "Static headers on MCP discovery and probe requests only.",
            expect="'Key: Value' items", schema=_HEADER_MAP, multiple=True,
            env_split=r"[,;]", aliases=("--mcp-discovery-extra-headers",), metavar="'K: V'",
            secret=True),
    Setting("mcp.startup_wait_timeout", "MCP_STARTUP_WAIT_TIMEOUT",
            "--mcp.startup-wait-timeout", duration(), 0.0,
            "Delay the first poll until the main HTTP MCP listener accepts, for up to this "
            "long (0 disables).", expect=DUR, metavar="DURATION"),
    Setting("mcp.connection_max_ttl", "MCP_CONNECTION_MAX_TTL", "--mcp.connection-max-ttl",
            duration(positive=True), 600.0,
            "Longest time one MCP exchange may stream, and the age at which pooled "
            "connections are recycled.", expect=DUR, metavar="DURATION"),
    Setting("mcp.max_concurrent_requests", "MCP_MAX_CONCURRENT_REQUESTS",
            "--mcp.max-concurrent-requests", integer(1, 1000), 10,
            "Worker threads: each long-polls for one command and runs it end to end.",
            expect="an integer 1..1000", schema=_INT, metavar="N"),
    Setting("mcp.connect_timeout", "MCP_CONNECT_TIMEOUT", "--mcp.connect-timeout",
            duration(positive=True), 10.0, "TCP/TLS connect timeout for HTTP MCP calls.",
            expect=DUR, metavar="DURATION", ours=True),
    Setting("mcp.read_timeout", "MCP_READ_TIMEOUT", "--mcp.read-timeout",
            duration(positive=True), 300.0,
            "Longest silence allowed while waiting for an HTTP MCP server's bytes, even "
            "when the command has no response_timeout.", expect=DUR, metavar="DURATION",
            ours=True),
    Setting("mcp.http_probe_interval", "MCP_HTTP_PROBE_INTERVAL", "--mcp.http-probe-interval",
            duration(), 30.0, "Re-check an idle HTTP MCP server this often so /readyz notices "
            "when it goes away (0 disables).", expect=DUR, metavar="DURATION", ours=True),
    # --- Harpoon (allowlisted HTTP callouts by label) and OAuth discovery
    Setting("harpoon.targets", "HARPOON_TARGETS", "--harpoon.target", harpoon_targets, None,
            "Internal HTTP endpoints the tunnel may call by label through the built-in "
            "Harpoon server: label=NAME,url=URL[,unix-socket=PATH][,desc=TEXT]. Repeat the flag "
            "(';' or newline list in the environment).", expect="label=...,url=... entries",
            schema={"type": "array", "items": _HARPOON_TARGET}, multiple=True,
            env_split=r"[;\n]", metavar="ENTRY"),
    Setting("harpoon.allow_plaintext_http", "HARPOON_ALLOW_PLAINTEXT_HTTP",
            "--harpoon.allow-plaintext-http", boolean, False,
            "Allow http:// Harpoon targets (https is required otherwise).",
            expect="true or false", schema=_BOOL),
    Setting("harpoon.max_response_bytes", "HARPOON_MAX_RESPONSE_BYTES",
            "--harpoon.max-response-bytes", integer(1, 102400), 102400,
            "Largest Harpoon response accepted; larger ones are refused, never truncated.",
            expect="an integer 1..102400", schema=_INT, metavar="BYTES"),
    Setting("harpoon.max_redirects", "HARPOON_MAX_REDIRECTS", "--harpoon.max-redirects",
            integer(0, 5), 5, "Redirects a Harpoon call may follow, each to a registered URL.",
            expect="an integer 0..5", schema=_INT, metavar="N"),
    Setting("harpoon.http_proxy", "HARPOON_HTTP_PROXY", "--harpoon.http-proxy", proxy, None,
            "Proxy for Harpoon calls.", expect="an http(s) proxy URL or env:VAR",
            metavar="URL"),
    Setting("harpoon.additional_transports", "HARPOON_ADDITIONAL_TRANSPORTS",
            "--harpoon.additional-transport", transports, None,
            "Also serve Harpoon as Streamable HTTP at /harpoon/mcp on the admin listener "
            "(loopback only); the only value is http-streamable.",
            expect="http-streamable", schema=_STR_LIST, multiple=True, env_split=r"[;\n]",
            metavar="TRANSPORT"),
    Setting("harpoon.capture_payloads", "HARPOON_CAPTURE_PAYLOADS",
            "--harpoon.capture-payloads", boolean, False,
            "Keep request and response bodies in the Harpoon call history (redacted).",
            expect="true or false", schema=_BOOL),
    Setting("harpoon.hosts_include_suffix", "HARPOON_HOSTS_INCLUDE_SUFFIX",
            "--harpoon.hosts-include-suffix", string_list, None,
            "Host suffixes counted as private when OAuth discovery registers endpoints.",
            expect="suffixes such as .corp.example", schema=_STR_LIST, multiple=True,
            env_split=r"[;\n]", metavar="SUFFIX"),
    Setting("harpoon.hosts_include_regex", "HARPOON_HOSTS_INCLUDE_REGEX",
            "--harpoon.hosts-include-regex", regex_list, None,
            "Host patterns (case-insensitive) counted as private for OAuth registration.",
            expect="regular expressions", schema=_STR_LIST, multiple=True,
            env_split=r"[;\n]", metavar="REGEX"),
    Setting("harpoon.hosts_include_loopback", "HARPOON_HOSTS_INCLUDE_LOOPBACK",
            "--harpoon.hosts-include-loopback", boolean, True,
            "Count loopback hosts as private for OAuth registration.", expect="true or false",
            schema=_BOOL),
    Setting("harpoon.hosts_include_private", "HARPOON_HOSTS_INCLUDE_PRIVATE",
            "--harpoon.hosts-include-private", boolean, True,
            "Count RFC 1918 and ULA addresses as private for OAuth registration.",
            expect="true or false", schema=_BOOL),

    Setting("mcp.roots", "MCP_ROOTS", "--mcp.root", roots_list, None,
            "Roots the tunnel gives stdio servers that ask (roots/list), instead of the "
            "caller's: file:// URIs for every stdio channel, or channel=NAME,uri=URI for one. "
            "Re-read on SIGHUP; servers then get notifications/roots/list_changed.",
            expect="file:// URIs or channel=NAME,uri=file://... entries", schema=_STR_LIST,
            multiple=True, env_split=r"[;\n]", metavar="URI", ours=True),
    Setting("mcp.stdio.restart_limit", "MCP_STDIO_RESTART_LIMIT", "--mcp.stdio.restart-limit",
            integer(0, 1000), 5, "Restarts of a stdio server allowed within restart_window "
            "before the daemon gives up and exits non-zero.", expect="an integer 0..1000",
            schema=_INT, metavar="N", ours=True),
    Setting("mcp.stdio.restart_window", "MCP_STDIO_RESTART_WINDOW",
            "--mcp.stdio.restart-window", duration(positive=True), 60.0,
            "Window over which stdio restarts are counted.", expect=DUR, metavar="DURATION",
            ours=True),
    Setting("mcp.stdio.restart_backoff", "MCP_STDIO_RESTART_BACKOFF",
            "--mcp.stdio.restart-backoff", duration(positive=True), 0.25,
            "First delay before restarting a stdio server; doubles up to 30s.", expect=DUR,
            metavar="DURATION", ours=True),
    Setting("mcp.stdio.health_interval", "MCP_STDIO_HEALTH_INTERVAL",
            "--mcp.stdio.health-interval", duration(), 30.0,
            "Ping an idle stdio server this often; a server that does not answer within "
            "health_timeout is restarted (0 disables).", expect=DUR, metavar="DURATION",
            ours=True),
    Setting("mcp.stdio.health_timeout", "MCP_STDIO_HEALTH_TIMEOUT",
            "--mcp.stdio.health-timeout", duration(positive=True), 10.0,
            "How long a health ping or an injected initialize may take.", expect=DUR,
            metavar="DURATION", ours=True),
    Setting("mcp.stdio.max_message_bytes", "MCP_STDIO_MAX_MESSAGE_BYTES",
            "--mcp.stdio.max-message-bytes", integer(1024, 1 << 30), 64 << 20,
            "Largest JSON-RPC line accepted from a stdio server; longer lines are dropped.",
            expect="an integer number of bytes", schema=_INT, metavar="BYTES", ours=True),
    Setting("mcp.stdio.inherit_secrets", "MCP_STDIO_INHERIT_SECRETS",
            "--mcp.stdio.inherit-secrets", boolean, False,
            "Pass the control-plane and admin keys through to stdio servers' environment.",
            expect="true or false", schema=_BOOL, ours=True),
    Setting("mcp.stdio.stop_grace", "MCP_STDIO_STOP_GRACE", "--mcp.stdio.stop-grace",
            duration(), 5.0, "After closing a stdio server's stdin, wait this long before "
            "SIGTERM, and as long again before SIGKILL.", expect=DUR, metavar="DURATION",
            ours=True),
)

# --- policy and audit at the tunnel (ours; docs/policy.md)
SETTINGS += (
    Setting("policy.mode", "POLICY_MODE", "--policy.mode", choice("enforce", "shadow"),
            "enforce", "Default mode of channel policies: enforce, or shadow (decide and "
            "record without refusing anything).", expect="enforce or shadow",
            metavar="MODE", ours=True),
    Setting("policy.channels", "POLICY_CHANNELS", "--policy.channels", policy_channels, None,
            "Per-channel policy: allow/deny globs for methods, tools, prompts and resources, "
            "the read_only preset, argument rules, rate limits (docs/policy.md). In YAML the "
            "mapping itself or a path to a YAML file holding it; a path elsewhere.",
            expect="a mapping of channel to policy, or a file holding one",
            schema={"type": ["object", "string"]}, metavar="PATH", ours=True),
    Setting("audit.file", "AUDIT_FILE", "--audit.file", path, None,
            "Append a hash-chained JSON Lines audit record per command here (reopened on "
            "SIGHUP). Requires audit.key_file.", expect="a path", metavar="PATH", ours=True),
    Setting("audit.key_file", "AUDIT_KEY_FILE", "--audit.key-file", path, None,
            "File holding the HMAC-SHA256 key that seals the audit chain (readable only by "
            "the service).", expect="a path", metavar="PATH", ours=True),
    Setting("audit.on_failure", "AUDIT_ON_FAILURE", "--audit.on-failure",
            choice("deny", "continue"), "deny",
            "When a record cannot be written: deny (refuse calls until it can; /readyz says "
            "why) or continue (count, log and go on).", expect="deny or continue",
            metavar="ACTION", ours=True),
    Setting("audit.syslog", "AUDIT_SYSLOG", "--audit.syslog", boolean, False,
            "Also send each audit record to syslog/journald (facility authpriv).",
            expect="true or false", schema=_BOOL, ours=True),
)

BY_KEY = {s.key: s for s in SETTINGS}


def setting(key: str) -> Setting:
    return BY_KEY[key]
