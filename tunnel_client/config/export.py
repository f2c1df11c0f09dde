"""The effective configuration as plain data, with secrets shown only as presence markers.

Used by support bundles and ``doctor --json``: a loop over the registry, so a new setting
is exported (and redacted, when secret) without anyone remembering to add it here.
"""

from typing import Any, Dict

from tunnel_client.config.settings import SETTINGS
from tunnel_client.config.values import (BindingSpec, HarpoonTargetSpec, HeaderList,
                                         ProxySetting, format_duration, redact_target_url,
                                         redact_url)

REDACTED = "[REDACTED]"


def _plain(value, secret: bool, duration: bool):
    if value is None:
        return None
    if secret:
        if isinstance(value, HeaderList):
            return {name: REDACTED for name in value.names()}
        return REDACTED
    if isinstance(value, HeaderList):
        return {name: REDACTED for name in value.names()}  # header values may be tokens
    if isinstance(value, ProxySetting):
        return {"url": redact_url(value.url), "source": value.source}
    if isinstance(value, BindingSpec):
        return binding(value)
    if isinstance(value, HarpoonTargetSpec):
        return {"label": value.label, "url": redact_target_url(value.url),
                "unix_socket": value.unix_socket, "description": value.description}
    if isinstance(value, (tuple, list)):
        return [_plain(v, False, False) for v in value]
    if duration and isinstance(value, (int, float)) and not isinstance(value, bool):
        return format_duration(value)
    if value is not None and not isinstance(value, (str, int, float, bool, dict)):
        return str(value)  # a value type without its own export: text, never a crash
    return value


def binding(spec: BindingSpec) -> Dict[str, Any]:
    from tunnel_client.observe.logs import REDACTOR

    data = {"channel": spec.channel, "transport": "stdio" if spec.transport == "stdio"
            else "http-streamable"}
    if spec.url:
        from urllib.parse import urlsplit
        data["url"] = redact_url(spec.url) + urlsplit(spec.url).path
    if spec.argv:
        data["command"] = [REDACTOR.text(arg) for arg in spec.argv]
    for key in ("unix_socket", "client_cert", "client_key"):
        if getattr(spec, key):
            data[key] = getattr(spec, key)
    if spec.http_proxy:
        data["http_proxy"] = _plain(spec.http_proxy, False, False)
    return data


def effective(cfg) -> Dict[str, Any]:
    """{yaml key: value, origin} for every YAML setting, secrets redacted."""
    result = {}
    for s in SETTINGS:
        if not s.yaml:
            continue
        origin = cfg.origins.get(s.key)
        result[s.key] = {
            "value": _plain(cfg.value(s.key), s.secret, "DURATION" in (s.metavar or "")),
            "source": origin.source if origin else "default",
            "from": origin.label if origin else ""}
    return result
