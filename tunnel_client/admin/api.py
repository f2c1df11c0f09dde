"""JSON views of a running service for /api/* and the support bundle (pure reads)."""

import time

from tunnel_client import __version__, wire
from tunnel_client.config.values import format_duration, redact_url
from tunnel_client.observe.logs import LEVELS

MAX_LOG_EVENTS = 5000


def readiness(service) -> dict:
    check = service.ready()
    return {"ready": check.ok, "reason": check.reason,
            "inputs": [c.as_dict(name) for name, c in service.readiness.inputs()]}


def status(service, admin=None) -> dict:
    cfg = service.cfg
    cp = cfg.control_plane
    main = cfg.binding("main")
    channels = []
    warnings = service.warnings()
    for binding in service.router.bindings:
        info = binding.describe()
        check = binding.health()
        info.update({"enabled": True, "server_kind": "external", "healthy": check.ok,
                     "reason": check.reason})
        budget = service.watch.budget(info)
        if budget is not None:
            info["restart_budget"] = budget
            if budget["nearly_spent"]:
                info["warning"] = ("restart budget nearly spent: %d of %d restarts used within "
                                   "%ds" % (budget["used"], budget["limit"],
                                            budget["window_seconds"]))
                warnings.append("channel %s: %s" % (info.get("name"), info["warning"]))
        channels.append(info)
    harpoon = service.router.harpoon
    if harpoon is not None:
        routable = service.router.route("harpoon") is not None
        # Off is not healthy: a channel nobody can call gets no green badge.
        channels.append(dict(harpoon.describe(), enabled=routable,
                             healthy=True if routable else None,
                             state="on" if routable else "off",
                             reason="%d targets" % len(harpoon.registry) if routable
                             else "off: no harpoon targets registered"))
    metadata = service.metadata
    return {
        "version": __version__,
        "client_instance_id": service.instance_id,
        "started_at": service.started_at,
        "uptime_seconds": round(time.time() - service.started_at, 3),
        "config_source": cfg.source.describe(),
        "health_listen_addr": cfg.health.listen_addr,
        "ui_url": admin.ui_url if admin is not None else None,
        "control_plane_base_url": cp.base_url,
        "control_plane_tunnel_id": cp.tunnel_id,
        "control_plane_poll_timeout": format_duration(cp.poll_timeout),
        "control_plane_poll_deadline_guardrail": format_duration(cp.poll_deadline_guardrail),
        "mcp_server_url": redact_url(main.url) if main is not None and main.url else None,
        "channels": channels,
        "control_plane_route": service.cp_route.as_dict(),
        "mcp_routes": [b.route.as_dict() for b in service.router.bindings
                       if getattr(b, "route", None) is not None],
        "workers": {"capacity": len(service.workers), "busy": service.inflight.count},
        "proxy_health": service.proxy_health.snapshot(),
        "poll": service.poll_health.snapshot(),
        "outcomes": service.recent.snapshot(),
        "readiness": readiness(service),
        "tunnel_metadata": None if metadata is None else {
            "id": metadata.id, "name": metadata.name, "description": metadata.description},
        "tunnel_metadata_error": service.metadata_error,
        "raw_http_logging_enabled": bool(cfg.log.http_raw_unsafe),
        "log_level": service.log_setup.level if service.log_setup else cfg.log.level,
        "warnings": warnings,
    }


def system(service) -> dict:
    return {"tls": service.trust.describe(), "proxy_health": service.proxy_health.snapshot(),
            "routes": [service.cp_route.as_dict()] + [
                b.route.as_dict() for b in service.router.bindings
                if getattr(b, "route", None) is not None]}


def logs(service, limit: int, since: int = 0) -> dict:
    """The newest ``limit`` events, or with ``since`` only those after that sequence number
    (the UI polls this: a page with no open-ended request settles for screenshots)."""
    limit = max(1, min(limit, MAX_LOG_EVENTS))
    ring = service.log_setup.ring if service.log_setup else None
    if ring is None:
        return {"events": []}
    return {"events": ring.since(since)[-limit:] if since > 0 else ring.recent(limit)}


SUPPORTED_LEVELS = [name for name in LEVELS]


def log_level(service) -> dict:
    return {"level": service.log_setup.level if service.log_setup else "info",
            "supported_levels": SUPPORTED_LEVELS}


def set_log_level(service, body: bytes):
    """PUT body exactly ``{"level": "debug"}``; anything else is a 400 naming the problem."""
    try:
        data = wire.loads(body)
    except ValueError:
        return 400, {"error": "body must be JSON like {\"level\": \"debug\"}"}
    if not isinstance(data, dict) or set(data) != {"level"}:
        return 400, {"error": "body must be exactly {\"level\": \"<level>\"}"}
    level = data["level"]
    if level not in LEVELS:
        return 400, {"error": 'unsupported log level "%s" (expected one of: %s)'
                     % (level, ", ".join(SUPPORTED_LEVELS))}
    service.set_log_level(level)
    return 200, log_level(service)


def metrics_text(service) -> str:
    metrics = service.metrics
    metrics.liveness.set(1)
    metrics.readiness.set(1 if service.ready().ok else 0)
    return metrics.registry.render()


def oauth(service) -> dict:
    if service.discoverer is None:
        return {"state": "disabled", "reason": "OAuth discovery runs only for an HTTP main "
                                              "channel"}
    return service.discoverer.result.as_dict()


def harpoon_status(service) -> dict:
    h = service.cfg.harpoon
    harpoon = service.harpoon
    routable = service.router.route("harpoon") is not None
    return {"enabled": routable, "reason": "" if routable else (
        "no harpoon targets registered" if service.router.harpoon else "harpoon is not polled"),
            "capture_payloads": h.capture_payloads, "allow_plaintext_http":
                h.allow_plaintext_http, "max_response_bytes": h.max_response_bytes,
            "max_redirects": h.max_redirects, "targets": len(harpoon.registry)}


def harpoon_targets(service) -> dict:
    return {"targets": [t.as_dict() for t in sorted(service.harpoon.registry.all(),
                                                    key=lambda t: t.label)]}


def harpoon_calls(service, label, limit) -> dict:
    return {"calls": service.harpoon.calls(label, limit)}


def audit(service, limit: int) -> dict:
    """Policy modes, the audit chain head (for `audit verify --head`) and recent decisions."""
    gate = service.policy
    if gate is None:
        return {"enabled": False, "reason": "no policy.channels and no audit.file configured",
                "policy": {}, "audit": None, "recent": []}
    return dict(gate.snapshot(max(1, min(limit, 200))), enabled=True)
