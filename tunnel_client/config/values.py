"""Parsers for setting values. Each takes the raw value and returns a typed one, or raises
ValueError with the problem and the fix (the loader adds the setting name and source).

Raw values are strings from flags and the environment, or native YAML values (already
type-checked by the JSON Schema).
"""

import os
import re
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import urlsplit, urlunsplit

from tunnel_client.wire import HARPOON_CHANNEL, normalize_channel

class Invalid(ValueError):
    """A complete message about a value; the loader only adds where the value came from."""


# --- durations (Go syntax, so profiles move between clients unchanged) -----------------

_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|\u00b5s|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                   "h": 3600.0}
DURATION_HINT = "use a number with a unit, such as 500ms, 30s, 10m or 1h30m"


def parse_duration(raw) -> float:
    """Seconds from a Go duration string (``30s``, ``5000ms``, ``1m30s``, ``0``)."""
    if isinstance(raw, bool) or not isinstance(raw, str):
        raise ValueError("is not a duration; " + DURATION_HINT)
    text = raw.strip()
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    if not text:
        raise ValueError("is empty; " + DURATION_HINT)
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if not match:
            raise ValueError("is not a duration; " + DURATION_HINT)
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    return total


def format_duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return ""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return "%gms" % round(seconds * 1000, 3)
    if seconds % 3600 == 0:
        return "%dh" % (seconds // 3600)
    if seconds % 60 == 0:
        return "%dm" % (seconds // 60)
    return "%gs" % seconds


def parse_bool(raw) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("is not a boolean; use true or false")


def parse_int(raw) -> int:
    if isinstance(raw, bool):
        raise ValueError("is not an integer")
    if isinstance(raw, int):
        return raw
    try:
        return int(str(raw).strip())
    except ValueError:
        raise ValueError("is not an integer") from None


# --- env: / file: references -----------------------------------------------------------

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")


def split_ref(raw: str) -> Tuple[Optional[str], str]:
    """('env'|'file'|None, rest). Prefixes match case-insensitively; the rest is trimmed."""
    lower = raw[:5].lower()
    if lower.startswith("env:"):
        return "env", raw[4:].strip()
    if lower.startswith("file:"):
        return "file", raw[5:].strip()
    return None, raw


def _env_value(name: str, raw: str, environ: Mapping[str, str]) -> str:
    if not name:
        raise ValueError('reference "%s": environment variable name is required' % raw)
    if not _ENV_NAME.match(name):
        raise ValueError('reference "%s": "%s" is not a valid environment variable name'
                         % (raw, name))
    if name not in environ:
        raise ValueError('reference "%s": environment variable "%s" is not set; export it or '
                         'add it to the environment file' % (raw, name))
    value = environ[name].strip()
    if not value:
        raise ValueError('reference "%s": environment variable "%s" is empty' % (raw, name))
    return value


def _file_value(path: str, raw: str) -> str:
    if not path:
        raise ValueError('reference "%s": file path is required' % raw)
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise ValueError('reference "%s": read file: %s' % (raw, exc.strerror or exc)) from None
    except UnicodeDecodeError:
        raise ValueError('reference "%s": file is not UTF-8 text' % raw) from None


def resolve_value(raw: str, environ: Mapping[str, str]) -> str:
    """``env:VAR`` -> the variable, ``file:PATH`` -> the file's contents; both trimmed."""
    kind, rest = split_ref(raw)
    if kind == "env":
        return _env_value(rest, raw, environ)
    if kind == "file":
        value = _file_value(rest, raw).strip()
        if not value:
            raise ValueError('reference "%s": file is empty' % raw)
        return value
    return raw.strip()


def resolve_path(raw: str, environ: Mapping[str, str]) -> str:
    """For paths: ``env:VAR`` holds the path, ``file:PATH`` is just the path."""
    kind, rest = split_ref(raw)
    if kind == "env":
        path = _env_value(rest, raw, environ)
    elif kind == "file":
        path = rest
    else:
        path = raw.strip()
    if not path:
        raise ValueError("path is empty")
    return os.path.expanduser(path)


def resolve_secret(raw: str, environ: Mapping[str, str], require_ref: bool) -> str:
    """A secret: flags must use ``env:``/``file:`` so the secret never sits in argv."""
    kind, _ = split_ref(raw)
    if kind is None and require_ref:
        raise ValueError('value must be prefixed with "env:" or "file:" so the secret stays '
                         'out of the process list (for example env:CONTROL_PLANE_API_KEY)')
    return resolve_value(raw, environ)


def resolve_header_value(raw: str, environ: Mapping[str, str]) -> str:
    kind, rest = split_ref(raw)
    if kind == "env":
        value = _env_value(rest, raw, environ)
    elif kind == "file":
        value = _file_value(rest, raw)
        if value.endswith("\n"):
            value = value[:-2] if value.endswith("\r\n") else value[:-1]
        if not value:
            raise ValueError('reference "%s": file is empty' % raw)
    else:
        value = raw.strip()
    if "\r" in value or "\n" in value:
        raise ValueError("header values may not contain line breaks")
    return value


# --- URLs and proxies --------------------------------------------------------------------


def parse_http_url(raw: str, what: str = "URL") -> str:
    text = raw.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must include scheme and host, for example https://mcp.internal:8443/mcp"
                         if what == "URL" else "%s must include scheme and host" % what)
    return text


@dataclass(frozen=True)
class ProxySetting:
    """An explicit proxy and where it came from. ``url`` may carry credentials."""

    url: str
    source: str

    @property
    def redacted(self) -> str:
        return redact_url(self.url)


def redact_url(url: str) -> str:
    """Origin only: scheme://host[:port]; credentials, path and query never reach a log."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = "[%s]" % host
        port = ":%d" % parts.port if parts.port else ""
        return "%s://%s%s" % (parts.scheme, host, port)
    except ValueError:
        return "<invalid url>"


def redact_target_url(url: str) -> str:
    """A URL with its userinfo and every query value hidden; scheme, host, port and path
    stay, so an operator can still tell targets apart."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = "[REDACTED]@" + netloc.rsplit("@", 1)[1]
        query = "&".join(item.split("=", 1)[0] + "=[REDACTED]" if "=" in item else item
                         for item in parts.query.split("&")) if parts.query else ""
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        return "<invalid url>"


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"',]+")


def scrub_urls(text: str) -> str:
    """Every URL in a message with its credentials and query values hidden."""
    return _URL_IN_TEXT.sub(lambda m: redact_target_url(m.group(0)), text)


def parse_proxy(raw: str, environ: Mapping[str, str], source: str) -> ProxySetting:
    kind, rest = split_ref(raw)
    label = source
    if kind == "file":
        raise ValueError("proxies accept a URL or env:VAR, not file:")
    if kind == "env":
        url = _env_value(rest, raw, environ)
        label = "env:%s" % rest
    else:
        url = raw.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError('proxy URL scheme must be http or https, got "%s"' % parts.scheme)
    if not parts.hostname:
        raise ValueError("proxy URL must include a host, for example http://proxy.corp:3128")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when it is read
    except ValueError:
        raise ValueError("proxy URL has an invalid port; write it as http://host:port, for "
                         "example http://proxy.corp:3128") from None
    return ProxySetting(url, label)


# --- headers -----------------------------------------------------------------------------

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")


@dataclass(frozen=True)
class HeaderList:
    """Operator-configured static headers, in order. Values may be secrets."""

    items: Tuple[Tuple[str, str], ...] = ()

    def names(self) -> List[str]:
        return [name for name, _ in self.items]

    def as_dict(self) -> Dict[str, str]:
        return dict(self.items)

    def __bool__(self):
        return bool(self.items)


def parse_header_line(line: str) -> Tuple[str, str]:
    if ":" not in line:
        raise ValueError("invalid header: expected 'Key: Value'")
    name, value = line.split(":", 1)
    return name.strip(), value.strip()


def build_headers(pairs: Sequence[Tuple[str, str]], environ: Mapping[str, str],
                  protected: Sequence[str] = ()) -> HeaderList:
    items = []
    by_lower: Dict[str, str] = {}
    for name, raw_value in pairs:
        if not name:
            raise ValueError("invalid header: empty name; expected 'Key: Value'")
        if not _TOKEN.match(name):
            raise ValueError('contains invalid HTTP header name "%s"' % name)
        if raw_value is None or str(raw_value).strip() == "":
            raise ValueError('header "%s" has an empty value' % name)
        value = resolve_header_value(str(raw_value), environ)
        if any(ord(c) < 32 and c != "\t" or ord(c) == 127 for c in value):
            raise ValueError('header "%s" contains control characters' % name)
        lower = name.lower()
        if lower in (p.lower() for p in protected):
            raise ValueError('cannot set "%s": it would override control-plane authentication '
                             "or client metadata headers" % name)
        if lower in by_lower and by_lower[lower] != value:
            raise ValueError('contains conflicting values for case-insensitive HTTP header "%s"'
                             % name)
        if lower not in by_lower:
            by_lower[lower] = value
            items.append((name, value))
    return HeaderList(tuple(items))


# --- stdio command tokenizer ------------------------------------------------------------


def split_command(command: str) -> List[str]:
    """Shell-like argv splitting without a shell: quotes and backslashes, nothing else.

    ``;``, ``|`` and ``&&`` stay literal arguments; no globbing, no variables.
    """
    args: List[str] = []
    current: List[str] = []
    in_word = False
    i, n = 0, len(command)
    while i < n:
        c = command[i]
        if c in " \t\r\n":
            if in_word:
                args.append("".join(current))
                current, in_word = [], False
            i += 1
            continue
        in_word = True
        if c == "'":
            end = command.find("'", i + 1)
            if end < 0:
                raise ValueError("unterminated quoted string")
            current.append(command[i + 1:end])
            i = end + 1
        elif c == '"':
            i += 1
            while True:
                if i >= n:
                    raise ValueError("unterminated quoted string")
                c = command[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\":
                    if i + 1 >= n:
                        raise ValueError("unterminated escape sequence")
                    current.append(command[i + 1])
                    i += 2
                    continue
                current.append(c)
                i += 1
        elif c == "\\":
            if i + 1 >= n:
                raise ValueError("unterminated escape sequence")
            current.append(command[i + 1])
            i += 2
        else:
            current.append(c)
            i += 1
    if in_word:
        args.append("".join(current))
    if not args:
        raise ValueError("command is empty")
    return args


# --- MCP binding entries -----------------------------------------------------------------


@dataclass(frozen=True)
class BindingSpec:
    """One MCP target: an HTTP URL or a stdio command, on one channel."""

    channel: str
    transport: str  # "http" | "stdio"
    url: Optional[str] = None
    argv: Tuple[str, ...] = ()
    command: Optional[str] = None
    unix_socket: Optional[str] = None
    http_proxy: Optional[ProxySetting] = None
    client_cert: Optional[str] = None
    client_key: Optional[str] = None
    origin: str = ""  # which setting declared it, for error messages

    @property
    def proc_affinity(self) -> bool:
        return self.transport == "stdio"

    @property
    def target(self) -> str:
        return self.url if self.transport == "http" else (self.command or " ".join(self.argv))


_HTTP_ENTRY_KEYS = ("channel", "url", "unix-socket", "http-proxy", "client-cert", "client-key")
_QUALIFIED_PREFIXES = tuple(k + "=" for k in _HTTP_ENTRY_KEYS + ("command",))


def normalize_binding_channel(raw: Optional[str]) -> str:
    channel = normalize_channel(raw or "")
    if channel is None:
        raise ValueError('channel "%s" is invalid; use 1-64 lowercase letters, digits, "_" or '
                         '"-"' % raw)
    if channel == HARPOON_CHANNEL:
        raise ValueError('channel "harpoon" is reserved for the built-in Harpoon server')
    return channel


def http_binding(fields: Mapping[str, Optional[str]], environ: Mapping[str, str],
                 origin: str) -> BindingSpec:
    channel = normalize_binding_channel(fields.get("channel"))
    url_raw = fields.get("url")
    if not url_raw:
        raise ValueError("url is required in entry for channel %s" % channel)
    url = parse_http_url(resolve_value(str(url_raw), environ))
    unix_socket = fields.get("unix_socket")
    proxy = fields.get("http_proxy")
    if unix_socket and proxy:
        raise ValueError("channel %s sets both unix-socket and http-proxy; a unix socket is "
                         "dialled directly, remove one" % channel)
    cert, key = fields.get("client_cert"), fields.get("client_key")
    if bool(cert) != bool(key):
        raise ValueError("channel %s: client-cert and client-key must be set together" % channel)
    return BindingSpec(
        channel=channel, transport="http", url=url,
        unix_socket=resolve_path(str(unix_socket), environ) if unix_socket else None,
        http_proxy=parse_proxy(str(proxy), environ, origin) if proxy else None,
        client_cert=resolve_path(str(cert), environ) if cert else None,
        client_key=resolve_path(str(key), environ) if key else None,
        origin=origin)


def stdio_binding(channel_raw: Optional[str], command_raw: str, environ: Mapping[str, str],
                  origin: str) -> BindingSpec:
    channel = normalize_binding_channel(channel_raw)
    command = resolve_value(command_raw, environ) if command_raw.strip() else ""
    argv = split_command(command)
    return BindingSpec(channel=channel, transport="stdio", argv=tuple(argv), command=command,
                       origin=origin)


def parse_http_entry(entry: str, environ: Mapping[str, str], origin: str) -> BindingSpec:
    """``https://...`` for main, or ``channel=x,url=...,unix-socket=...,http-proxy=...``."""
    text = entry.strip()
    if not text.lower().startswith(_QUALIFIED_PREFIXES):
        return http_binding({"url": text}, environ, origin)
    fields: Dict[str, str] = {}
    for part in text.split(","):
        if "=" not in part:
            raise ValueError('entry "%s": expected key=value pairs separated by commas' % text)
        key, value = part.split("=", 1)
        key = key.strip().lower()
        if key not in _HTTP_ENTRY_KEYS:
            raise ValueError('unsupported key "%s" in entry "%s"; known keys: %s'
                             % (key, text, ", ".join(_HTTP_ENTRY_KEYS)))
        fields[key.replace("-", "_")] = value.strip()
    return http_binding(fields, environ, origin)


def parse_stdio_entry(entry: str, environ: Mapping[str, str], origin: str) -> BindingSpec:
    """``cmd args`` for main, ``channel=x,command=<rest>`` or ``command=<cmd>,channel=x``."""
    text = entry.strip()
    lower = text.lower()
    if lower.startswith("channel="):
        channel, _, rest = text[len("channel="):].partition(",")
        if not rest.strip().lower().startswith("command="):
            raise ValueError('entry "%s": after channel=, the rest must start with command=' % text)
        return stdio_binding(channel, rest.strip()[len("command="):], environ, origin)
    if lower.startswith("command="):
        body = text[len("command="):]
        idx = body.lower().rfind(",channel=")
        channel = None
        if idx >= 0:
            body, channel = body[:idx], body[idx + len(",channel="):]
        for key in _HTTP_ENTRY_KEYS[1:]:
            if ("," + key + "=") in body.lower():
                raise ValueError('entry "%s": %s applies to HTTP bindings, not stdio commands'
                                 % (text, key))
        return stdio_binding(channel, body, environ, origin)
    return stdio_binding(None, text, environ, origin)


# --- Harpoon targets ---------------------------------------------------------------------

HARPOON_LABEL_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\Z")
_HARPOON_KEYS = ("label", "url", "unix_socket", "desc", "description")


@dataclass(frozen=True)
class HarpoonTargetSpec:
    label: str
    url: str
    unix_socket: Optional[str] = None
    description: str = ""


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def harpoon_target(fields: Mapping[str, Optional[str]], environ: Mapping[str, str]
                   ) -> HarpoonTargetSpec:
    label = (fields.get("label") or "").strip()
    if not HARPOON_LABEL_RE.match(label):
        raise ValueError('invalid harpoon target label "%s": use 1-64 lowercase letters, digits, '
                         '"_" or "-", starting with a letter or digit' % label)
    url_raw = fields.get("url")
    if not url_raw:
        raise ValueError("harpoon target %s: url is required" % label)
    url = resolve_value(str(url_raw), environ)
    # A URL read from env: or file: is never echoed (a file may hold anything); one written
    # inline is shown without credentials or query values.
    shown = str(url_raw).strip() if split_ref(str(url_raw))[0] else redact_target_url(url)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError('invalid harpoon target url "%s": must include scheme and host' % shown)
    if parts.username or parts.password or parts.fragment:
        raise ValueError('invalid harpoon target url "%s": no credentials or fragment allowed'
                         % shown)
    if has_dot_segments(parts.path):
        raise ValueError('invalid harpoon target url "%s": "." and ".." path segments are not '
                         "allowed" % shown)
    socket = fields.get("unix_socket")
    return HarpoonTargetSpec(label, url, resolve_path(str(socket), environ) if socket else None,
                             (fields.get("description") or fields.get("desc") or "").strip())


def has_dot_segments(path: str) -> bool:
    from urllib.parse import unquote
    return any(segment in (".", "..") for segment in unquote(path).split("/"))


def parse_harpoon_entry(entry: str, environ: Mapping[str, str]) -> HarpoonTargetSpec:
    """``label=auth,url=https://...,unix-socket=/path,desc="..."`` (keys case-insensitive)."""
    fields: Dict[str, str] = {}
    for part in re.split(r",(?=\s*[A-Za-z_-]+\s*=)", entry.strip()):
        if "=" not in part:
            raise ValueError('harpoon target "%s": expected key=value pairs' % entry)
        key, value = part.split("=", 1)
        key = key.strip().lower().replace("-", "_")
        if key not in _HARPOON_KEYS:
            raise ValueError('harpoon target "%s": unsupported key "%s"' % (entry, key))
        fields[key] = _unquote(value)
    return harpoon_target(fields, environ)
