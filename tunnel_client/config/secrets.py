"""Every secret one configuration holds, as values and as environment variable names.

The log redactor, the stdio child's environment and the support bundle all ask here, so a
new secret setting is covered everywhere once it is marked ``secret`` in the registry.
Secrets besides those settings: proxy passwords (from settings, bindings or the standard
proxy variables) and the userinfo and query of target URLs (Harpoon targets, HTTP MCP
bindings), which often carry an API key.
"""

import os
import re
from typing import Iterable, List, Optional, Set
from urllib.parse import parse_qsl, unquote, urlsplit

from tunnel_client.config.settings import SETTINGS

# Variables that hold a key whether or not this configuration reads them.
WELL_KNOWN_ENV = ("CONTROL_PLANE_API_KEY", "OPENAI_API_KEY", "OPENAI_ADMIN_KEY",
                  "CLOUDFLARED_TUNNEL_TOKEN")
PROXY_ENV = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
             "all_proxy")
QUERY_SECRET_MIN = 6
_ENV_REF = re.compile(r"env:([A-Za-z_][A-Za-z0-9_]*)")


def referenced_env(raw) -> Set[str]:
    """The variables named by ``env:VAR`` references anywhere inside a raw setting value."""
    return _strings(raw, _ENV_REF)


_FILE_REF = re.compile(r"file:(\S+)")


def referenced_files(raw) -> Set[str]:
    """The paths named by ``file:PATH`` references anywhere inside a raw setting value."""
    return {os.path.expanduser(path) for path in _strings(raw, _FILE_REF)}


def inline_secret(raw) -> bool:
    """Whether a raw secret value holds the secret itself rather than a reference."""
    if isinstance(raw, dict):
        return any(inline_secret(value) for value in raw.values())
    if isinstance(raw, (list, tuple)):
        return any(inline_secret(item) for item in raw)
    text = str(raw).strip()
    if ":" in text and not text.startswith(("env:", "file:")) and \
            text.split(":", 1)[1].strip().startswith(("env:", "file:")):
        return False  # a "Name: env:VAR" header line
    return bool(text) and not text.startswith(("env:", "file:"))


def exposure_warnings(cfg) -> List[str]:
    """What ssh would warn about: a key file others may read, a key written in the YAML."""
    found = []
    for path in sorted(getattr(cfg, "secret_files", ())):
        try:
            mode = os.stat(path).st_mode
        except OSError:
            continue
        if mode & 0o044:
            found.append("key file %s is readable by %s (mode %04o); restrict it with chmod "
                         "600" % (path, "others" if mode & 0o004 else "its group",
                                  mode & 0o7777))
    for key in getattr(cfg, "secrets_inline", ()):
        found.append("%s is written in the config file %s; move it to an environment file "
                     "and refer to it as env:VAR or file:PATH" % (key, cfg.source.path))
    return found


def _strings(raw, pattern) -> Set[str]:
    if raw is None:
        return set()
    if isinstance(raw, dict):
        raw = list(raw.keys()) + list(raw.values())
    if isinstance(raw, (list, tuple)):
        found: Set[str] = set()
        for item in raw:
            found |= _strings(item, pattern)
        return found
    return set(pattern.findall(str(raw)))


def url_secrets(url: Optional[str]) -> List[str]:
    """The password in a URL's userinfo and every query value, raw and decoded."""
    if not url:
        return []
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return []
    found = []
    if password:
        found += [password, unquote(password)]
        if parts.username:
            found.append(parts.netloc.rsplit("@", 1)[0])
    query = [value for _, value in parse_qsl(parts.query, keep_blank_values=False)]
    query += [part.split("=", 1)[1] for part in parts.query.split("&") if "=" in part]
    # Short query values are parameters (region=eu, page=2), not keys.
    found += [value for value in query if len(value) >= QUERY_SECRET_MIN]
    return [value for value in found if value]


def secret_values(cfg) -> List[str]:
    """Every secret value this configuration holds (unordered, deduplicated)."""
    values: List[str] = []
    for s in SETTINGS:
        if not s.secret or not s.yaml:
            continue
        value = cfg.value(s.key)
        if hasattr(value, "items") and not isinstance(value, dict):
            value = value.items  # a HeaderList: (name, value) pairs
        if isinstance(value, str):
            values.append(value)
        elif isinstance(value, (list, tuple)):
            values += [item[1] if isinstance(item, tuple) else str(item) for item in value]
    for url in _urls(cfg):
        values += url_secrets(url)
    seen, unique = set(), []
    for value in values:
        for form in (value, value.strip()):
            if form and form not in seen:
                seen.add(form)
                unique.append(form)
    return unique


def secret_env_names(cfg) -> Set[str]:
    """Variables a secret setting was read from or referenced with ``env:``."""
    return set(WELL_KNOWN_ENV) | set(getattr(cfg, "secret_env", ()))


def _urls(cfg) -> Iterable[str]:
    for key in ("http_proxy", "control_plane.http_proxy", "mcp.http_proxy",
                "harpoon.http_proxy"):
        proxy = cfg.value(key)
        if proxy is not None:
            yield proxy.url
    for name in PROXY_ENV:
        if cfg.environ.get(name):
            yield cfg.environ[name].strip()
    for spec in cfg.bindings:
        if spec.url:
            yield spec.url
        if spec.http_proxy is not None:
            yield spec.http_proxy.url
    for target in cfg.harpoon.targets or ():
        yield target.url
