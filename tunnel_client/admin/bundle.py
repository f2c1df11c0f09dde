"""The support bundle: a redacted tar.gz an operator can attach to a ticket.

Contents: manifest.json, README.txt, tunnel-client.runtime.yaml (argv, relevant
environment, client, effective config), tunnel-client.logs.ndjson (the window's log
events), tunnel-client.metrics.prom, admin/status.json and admin/system.json. Everything
passes through the redactor once more on the way out, and secrets in the effective config
are presence markers only.
"""

import calendar
import io
import json
import os
import sys
import tarfile
import time
from typing import Tuple

from tunnel_client import USER_AGENT, __version__
from tunnel_client.admin import api
from tunnel_client.config.export import effective
from tunnel_client.observe.logs import REDACTED, REDACTOR

MAX_MINUTES = 24 * 60
_RELEVANT_ENV = ("ALLOW_REMOTE_UI", "CA_BUNDLE", "HEALTH_LISTEN_ADDR", "HEALTH_UNIX_SOCKET",
                 "HEALTH_URL_FILE", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy",
                 "https_proxy", "no_proxy", "OPENAI_API_KEY", "OPEN_WEB_UI", "PID_FILE",
                 "PROXY_CHECK_INTERVAL")
_RELEVANT_PREFIXES = ("ADMIN_UI_", "CONTROL_PLANE_", "HARPOON_", "LOG_", "MCP_", "TUNNEL_",
                      "SHUTDOWN_", "HEALTH_")
_SENSITIVE_WORDS = ("key", "token", "secret", "password", "cookie", "authorization", "auth")

README = """tunnel-client support bundle

manifest.json               what is in here and the time window
tunnel-client.runtime.yaml  command line, relevant environment, effective configuration
tunnel-client.logs.ndjson   log events of the window, one JSON object per line
tunnel-client.metrics.prom  a /metrics snapshot
admin/status.json           /api/status at export time
admin/system.json           /api/system at export time

Secrets are redacted: API keys, bearer tokens, shard tokens, cookies, URL credentials and
secret-looking query parameters appear as [REDACTED]; secret settings appear only as a
presence marker.
"""


def _environment():
    env = {}
    for name, value in os.environ.items():
        if name in _RELEVANT_ENV or name.startswith(_RELEVANT_PREFIXES):
            sensitive = any(word in name.lower() for word in _SENSITIVE_WORDS)
            env[name] = REDACTED if sensitive and value else REDACTOR.text(value)
    return dict(sorted(env.items()))


def _argv():
    args, redact_next = [], False
    for arg in sys.argv:
        if redact_next:
            args.append(arg if arg.lower().startswith(("env:", "file:")) else REDACTED)
            redact_next = False
            continue
        lower = arg.lower()
        sensitive = any(word in lower for word in ("api-key", "headers", "token"))
        if sensitive and "=" in arg:
            name, value = arg.split("=", 1)
            args.append(name + "=" + (value if value.lower().startswith(("env:", "file:"))
                                      else REDACTED))
        else:
            args.append(REDACTOR.text(arg))
            redact_next = sensitive and arg.startswith("--")
    return args


def _window(events, minutes):
    start = time.time() - minutes * 60
    kept = []
    for event in events:
        try:
            when = calendar.timegm(time.strptime(event["time"][:19], "%Y-%m-%dT%H:%M:%S"))
        except (KeyError, ValueError):
            when = start
        if when >= start:
            kept.append(REDACTOR.value("event", event))
    return kept


def build(service, admin=None, minutes: int = 30) -> Tuple[str, bytes]:
    minutes = max(1, min(int(minutes), MAX_MINUTES))
    now = time.time()
    ring = service.log_setup.ring if service.log_setup else None
    events = _window(ring.recent(0) if ring else [], minutes)
    runtime = {"argv": _argv(), "environment": _environment(),
               "client": {"name": "tunnel-client", "version": __version__,
                          "user_agent": USER_AGENT, "python": sys.version.split()[0]},
               "config_source": service.cfg.source.describe(),
               "effective_config": effective(service.cfg)}
    metrics = api.metrics_text(service)
    files = {
        "README.txt": README,
        "tunnel-client.runtime.yaml": _yaml(runtime),
        "tunnel-client.logs.ndjson": "".join(json.dumps(e, sort_keys=True) + "\n"
                                             for e in events),
        "tunnel-client.metrics.prom": metrics,
        "admin/status.json": json.dumps(REDACTOR.value("status", api.status(service, admin)),
                                        indent=2),
        "admin/system.json": json.dumps(REDACTOR.value("system", api.system(service)),
                                        indent=2),
    }
    manifest = {"generated_at": _iso(now), "window_start": _iso(now - minutes * 60),
                "window_end": _iso(now), "window_minutes": minutes,
                "event_count": len(events),
                "log_buffer_capacity": ring.events.maxlen if ring else 0,
                "metrics_bytes": len(metrics.encode()), "redacted": True,
                "files": ["manifest.json"] + sorted(files), "runtime": runtime}
    files["manifest.json"] = json.dumps(manifest, indent=2)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name in ["manifest.json"] + sorted(n for n in files if n != "manifest.json"):
            data = REDACTOR.text(files[name]).encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(now)
            info.mode = 0o600
            archive.addfile(info, io.BytesIO(data))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    return "tunnel-client-logs-%s.tar.gz" % stamp, buffer.getvalue()


def _iso(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def _yaml(data) -> str:
    import yaml
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=False)
