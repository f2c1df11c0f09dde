"""``doctor``: checks -> report. Made for the first ten minutes and for cron.

Every check has a stable id and a status (OK, WARN, CRIT, SKIP). Network steps go through
the same routes (proxy, CA bundle, mTLS) and the same code as the daemon, bounded by one
overall timeout. A running daemon is asked for its readiness instead of competing for its
port.
"""

import os
import ssl
import tempfile
import time
from dataclasses import dataclass
from typing import List, Mapping, Optional

from tunnel_client import config, wire
from tunnel_client.admin import client
from tunnel_client.config import sources
from tunnel_client.config.secrets import exposure_warnings
from tunnel_client.config.values import redact_url
from tunnel_client.doctor import executable, startcheck
from tunnel_client.doctor.report import CRIT, OK, SKIP, WARN, Check, Report
from tunnel_client.errors import ConfigError, TunnelClientError


@dataclass
class Options:
    flags: Mapping[str, object]
    environ: Mapping[str, str]
    offline: bool = False
    timeout: float = 15.0
    cert_warn_days: int = 30
    daemon_url: Optional[str] = None
    daemon_url_file: Optional[str] = None
    require_daemon: bool = False
    start_check: str = "auto"  # auto (when no daemon answers) | always | never


def run(options: Options) -> Report:
    report = Report()
    budget = wire.Deadline.after(options.timeout)
    try:
        cfg = config.load(options.flags, options.environ, require_runtime=False, collect=True)
    except ConfigError as exc:
        for problem in sources.file_problems(options.flags, options.environ) or [str(exc)]:
            report.add(Check("config", CRIT, problem, "nothing else can work until the "
                             "configuration loads", next=[
                                 "fix the setting named above; `tunnel-client help "
                                 "troubleshooting`"]))
        for check_id in ("tunnel_id", "api_key", "mcp_target", "control_plane", "daemon"):
            report.add(Check(check_id, SKIP, "skipped: configuration does not load"))
        return report
    broken = _config_problems(report, cfg)
    if not broken:
        report.add(Check("config", OK, "loaded %s" % cfg.source.describe()))
    report.add(_sources(cfg))
    secrets = _secrets(cfg)
    if secrets is not None:
        report.add(secrets)
    identity_ok = _identity(report, cfg)
    if broken:
        # Every independent problem is reported; what depends on a broken setting waits.
        _offline_checks(report, cfg, options, broken)
        return report
    main = cfg.binding("main")
    service = None
    if (main is not None and main.transport == "http") or (identity_ok and not options.offline):
        try:
            from tunnel_client.service import Service
            service = Service(cfg)  # the daemon's own routes: same proxy, CA and mTLS
        except TunnelClientError as exc:
            report.add(Check("config", CRIT, str(exc)))
            return report
    try:
        _run_checks(report, cfg, service, options, budget, identity_ok)
    finally:
        if service is not None:
            for binding in service.router.bindings:
                binding.stop()
            service.controlplane.close()
            service.trust.close()
    return report


def _config_problems(report: Report, cfg) -> List[str]:
    """One CRIT line per setting that does not parse, naming the setting and its source."""
    broken = []
    for key, message in cfg.problems.items():
        if key == "control_plane.api_key":
            continue  # reported by the api_key check
        broken.append(key)
        origin = cfg.origins.get(key)
        # Flags and variables are named in the message already; a file gets its line.
        shown = "%s [%s]" % (message, sources.where(cfg, key)) \
            if origin is not None and origin.source == "yaml" else message
        report.add(Check("config", CRIT, shown, "the daemon refuses to start with it",
                         next=["fix the setting named here, where it is set"]))
    return broken


def _sources(cfg) -> Check:
    """Which source won for the settings operators ask about, and ignored empty values."""
    evidence = ["%s: %s" % (label, sources.where(cfg, key))
                for key, label in sources.KEY_SETTINGS.items()
                if cfg.origins.get(key) is not None and cfg.origins[key].source != "default"]
    empty = sources.ignored_empty(cfg.environ)
    evidence += ["%s is set but empty: counts as unset" % name for name in empty]
    summary = "; ".join(evidence[:3]) or "defaults only"
    if empty:
        summary = "%s set but empty (counts as unset); %s" % (", ".join(empty), summary)
    return Check("sources", OK, summary, "flags > environment > config file > defaults; an "
                 "empty environment value counts as unset", evidence)


def _secrets(cfg) -> Optional[Check]:
    """The start-up warnings about exposed keys, for cron too: a key file others may read,
    a key written in the config file. No line when the configuration names neither."""
    found = exposure_warnings(cfg)
    if found:
        summary = found[0] if len(found) == 1 else "%d keys exposed; %s" % (len(found), found[0])
        return Check("secrets", WARN, summary, "anyone who can read a key can act as this "
                     "tunnel", found, ["chmod 600 each key file; keep keys out of the config "
                                       "file (env:VAR or file:PATH)"])
    if cfg.secret_files:
        return Check("secrets", OK, "%d key file(s) readable by their owner only"
                     % len(cfg.secret_files))
    return None


def _offline_checks(report, cfg, options, broken):
    """With configuration problems: the checks that do not depend on a broken setting."""
    mcp_broken = any(k.startswith("mcp.") or k == "configuration" for k in broken)
    if mcp_broken:
        report.add(Check("mcp_target", SKIP, "skipped: fix the MCP settings above first"))
    else:
        main = cfg.binding("main")
        if main is not None and main.transport == "stdio":
            _mcp(report, cfg, None, wire.Deadline.after(options.timeout), options)
    _certificates(report, cfg, options.cert_warn_days)
    _proxies(report, cfg)
    report.add(Check("control_plane", SKIP, "skipped: fix the configuration problems above "
                     "first"))
    report.add(_daemon(cfg, options, wire.Deadline.after(options.timeout)))


def _run_checks(report, cfg, service, options, budget, identity_ok):
    _mcp(report, cfg, service, budget, options)
    _certificates(report, cfg, options.cert_warn_days)
    _proxies(report, cfg)
    if cfg.audit.file:
        from tunnel_client.doctor import audit
        report.add(audit.check(cfg))
    if options.offline:
        report.add(Check("control_plane", SKIP, "skipped (--offline)"))
    elif not identity_ok:
        report.add(Check("control_plane", SKIP, "skipped: tunnel id or API key missing"))
    else:
        from tunnel_client.doctor import network
        try:
            check = network.control_plane_check(cfg, service.controlplane, service.cp_route,
                                                _step_timeout(budget), options.cert_warn_days)
        except (OSError, ValueError) as exc:
            # A network or configuration fault the hop checks did not foresee is still a
            # fault of the path, not of doctor: CRITICAL, never UNKNOWN.
            check = Check("control_plane", CRIT, "%s: %s" % (type(exc).__name__, exc),
                          evidence=["route: %s" % service.cp_route.describe()],
                          next=["check the proxy and control-plane settings"])
        report.add(check)
    report.add(_daemon(cfg, options, budget))


def _step_timeout(budget: wire.Deadline, cap: float = 5.0) -> float:
    return max(0.2, budget.remaining(cap=cap))


def _identity(report: Report, cfg) -> bool:
    cp = cfg.control_plane
    ok = True
    if cp.tunnel_id:
        report.add(Check("tunnel_id", OK, cp.tunnel_id))
    else:
        ok = False
        report.add(Check("tunnel_id", CRIT, "tunnel ID is required; set "
                         "control_plane.tunnel_id, --control-plane.tunnel-id or "
                         "CONTROL_PLANE_TUNNEL_ID", "the daemon polls for one tunnel",
                         next=["copy the id (tunnel_...) from the tunnel settings page"]))
    if "control_plane.api_key" in cfg.problems:
        ok = False
        report.add(Check("api_key", CRIT, cfg.problems["control_plane.api_key"],
                         "every control-plane request is authenticated",
                         next=["set the variable or file the reference names (for systemd: in "
                               "the EnvironmentFile, passed to doctor with --env-file)"]))
    elif cp.api_key:
        origin = cfg.origins["control_plane.api_key"]
        report.add(Check("api_key", OK, "set (from %s)" % (origin.label or "configuration")))
    else:
        ok = False
        report.add(Check("api_key", CRIT, "control plane API key is required; set "
                         "CONTROL_PLANE_API_KEY (or OPENAI_API_KEY) or --control-plane.api-key "
                         "env:VAR|file:PATH", "every control-plane request is authenticated",
                         next=["put CONTROL_PLANE_API_KEY=... in the environment file the "
                               "daemon uses (and pass it to doctor with --env-file)"]))
    return ok


def _mcp(report: Report, cfg, service, budget, options: "Options"):
    main = cfg.binding("main")
    if main is None:
        polls_main = cfg.control_plane.poll_channels is None or \
            "main" in cfg.control_plane.poll_channels
        report.add(Check("mcp_target", CRIT if polls_main else SKIP,
                         "main channel is required; set mcp.server_urls or mcp.commands "
                         "(--mcp.server-url / --mcp.command)" if polls_main
                         else "main is not polled"))
        return
    report.add(Check("mcp_target", OK, "%s %s" % (
        "stdio" if main.transport == "stdio" else "http-streamable",
        " ".join(main.argv) if main.transport == "stdio" else redact_url(main.url))))
    if main.transport == "stdio":
        ok, evidence = executable.check(main.argv, cfg.environ)
        if ok and _wants_start_check(cfg, options, budget):
            from tunnel_client.mcp.stdio import child_environment
            env = child_environment(cfg.environ, [cfg.control_plane.api_key],
                                    cfg.mcp.stdio.inherit_secrets)
            started = startcheck.check(main.argv, env, timeout=_step_timeout(budget, 10.0),
                                       stop_grace=min(cfg.mcp.stdio.stop_grace, 2.0))
            report.add(Check("mcp_command", OK if started.ok else CRIT, started.summary,
                             "the daemon spawns this command at start and restarts it; "
                             "one that exits at once makes the daemon give up",
                             evidence + started.evidence,
                             [] if started.ok else [
                                 "run the command by hand as the service user to see why "
                                 "it stops; fix it or mcp.commands"]))
            return
        report.add(Check("mcp_command", OK if ok else CRIT,
                         "%s will start" % main.argv[0] if ok else evidence[0],
                         "the daemon spawns this command at start", evidence,
                         [] if ok else ["install the MCP server or fix mcp.commands"]))
        return
    from tunnel_client.doctor import network  # needs requests; offline stdio checks do not
    binding = service.router.route("main")
    report.add(network.mcp_http_check(binding, _step_timeout(budget, 3.0)))
    report.add(_oauth(binding, budget))


def _wants_start_check(cfg, options: "Options", budget) -> bool:
    """A real start of the stdio server, unless a running daemon already proves it (and
    a second copy of the server could disturb the first)."""
    if options.start_check in ("always", "never"):
        return options.start_check == "always"
    bases = _daemon_base(cfg, options)
    if not bases:
        return True
    return client.get(bases[0], "/healthz", _step_timeout(budget, 2.0)).error is not None


def _oauth(binding, budget) -> Check:
    from tunnel_client.mcp.targets import HostPolicy, Registry
    from tunnel_client.oauth import Discoverer

    result = Discoverer(binding, Registry(), HostPolicy()).run(_step_timeout(budget, 5.0))
    why = "callers complete OAuth with what this discovery finds"
    if result.state == "ok":
        return Check("oauth_metadata", OK, "HTTP 200 from %s (%s)" % (
            redact_url(result.url), result.metadata_source), why)
    if result.state == "not_advertised":
        return Check("oauth_metadata", OK, "OAuth metadata not advertised; all candidates "
                     "returned HTTP 404 (fine for a server without OAuth)")
    return Check("oauth_metadata", CRIT, "oauth discovery failed: %s" % result.error, why,
                 ["%s (%s): %s" % (a.url, a.source, a.error or "HTTP %s" % a.status_code)
                  for a in result.attempts],
                 ["check the MCP server's /.well-known/oauth-protected-resource document"])


def _certificates(report: Report, cfg, warn_days: int):
    paths = []
    if cfg.ca_bundle:
        paths.append(("ca-bundle", cfg.ca_bundle))
    for label, key in (("control-plane client", "control_plane.client_cert"),
                       ("MCP client", "mcp.client_cert")):
        if cfg.value(key):
            paths.append((label, cfg.value(key)))
    for spec in cfg.bindings:
        if spec.client_cert:
            paths.append(("MCP client (%s)" % spec.channel, spec.client_cert))
    if not paths:
        report.add(Check("certificates", SKIP, "no CA bundle or client certificates "
                         "configured"))
        return
    evidence, worst, soonest = [], OK, None
    for label, path in paths:
        for subject, days in certificate_expiry(path):
            evidence.append("%s %s: %s" % (label, subject, "expired %d days ago" % -days
                                             if days < 0 else "expires in %d days" % days))
            if days < 0:
                worst = CRIT
            elif days < warn_days and worst == OK:
                worst = WARN
            if soonest is None or days < soonest[1]:
                soonest = ("%s %s" % (label, subject), days)
    if soonest is None:
        report.add(Check("certificates", CRIT, "no readable certificate in %s" % ", ".join(
            p for _, p in paths)))
        return
    name, days = soonest
    summary = ("%s expired %d days ago" % (name, -days) if days < 0 else
               "%d certificates; soonest: %s in %d days" % (len(evidence), name, days))
    report.add(Check("certificates", worst, summary,
                     "an expired certificate stops TLS; renew before it does", evidence,
                     [] if worst == OK else ["renew the certificate and restart the daemon"]))


def certificate_expiry(path: str):
    """[(subject, days left)] for every certificate in a PEM file."""
    try:
        with open(path) as handle:
            text = handle.read()
    except OSError:
        return []
    found = []
    for block in text.split("-----BEGIN CERTIFICATE-----")[1:]:
        pem = "-----BEGIN CERTIFICATE-----" + block.split("-----END CERTIFICATE-----")[0] + \
            "-----END CERTIFICATE-----\n"
        info = _decode(pem)
        if not info or "notAfter" not in info:
            continue
        subject = ",".join("%s=%s" % item for rdn in info.get("subject", ()) for item in rdn)
        days = (ssl.cert_time_to_seconds(info["notAfter"]) - time.time()) / 86400
        found.append((subject or "(no subject)", int(days) if days >= 0 else int(days) - 1))
    return found


def _decode(pem: str):
    decode = getattr(getattr(ssl, "_ssl", None), "_test_decode_cert", None)
    if decode is None:  # not in every Python build; expiry then goes unchecked
        return None
    handle = tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False)
    try:
        handle.write(pem)
        handle.close()
        return decode(handle.name)
    except (ssl.SSLError, ValueError, OSError):
        return None
    finally:
        os.unlink(handle.name)


def _proxies(report: Report, cfg):
    settings = [("http_proxy", cfg.http_proxy), ("control_plane.http_proxy",
                                                 cfg.control_plane.http_proxy),
                ("mcp.http_proxy", cfg.mcp.http_proxy)]
    settings += [("proxy for %s" % b.channel, b.http_proxy) for b in cfg.bindings]
    env = cfg.environ
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        if env.get(name):
            settings.append((name, env[name]))
    traps = [name for name, value in settings
             if value and str(getattr(value, "url", value)).lower().startswith("https://")]
    configured = [name for name, value in settings if value]
    if traps:
        report.add(Check("proxy", WARN, "%s uses https://; most corporate proxies speak plain "
                         "HTTP on their port" % ", ".join(traps),
                         "an https:// proxy URL makes the client speak TLS to the proxy, which "
                         "fails with WRONG_VERSION_NUMBER on a plain proxy",
                         next=["write the proxy as http://proxy.example:3128 unless it "
                               "really terminates TLS itself"]))
    elif configured:
        report.add(Check("proxy", OK, "configured: %s" % ", ".join(configured)))
    else:
        report.add(Check("proxy", SKIP, "no proxy configured"))


def _daemon_base(cfg, options: Options) -> List[str]:
    if options.daemon_url:
        return [options.daemon_url.rstrip("/")]
    url_files = [options.daemon_url_file, cfg.health.url_file]
    for path in url_files:
        if path and os.path.exists(path):
            try:
                return [open(path).read().strip()]
            except OSError:
                pass
    if cfg.health.unix_socket:
        import base64
        return ["http+unix://" + base64.urlsafe_b64encode(
            cfg.health.unix_socket.encode()).decode().rstrip("=")]
    if cfg.health.listen_addr:
        host, _, port = cfg.health.listen_addr.rpartition(":")
        host = host.strip("[]")
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        if port != "0":
            return ["http://%s:%s" % ("[%s]" % host if ":" in host else host, port)]
    return []


def _daemon(cfg, options: Options, budget) -> Check:
    """Ask a running daemon for its readiness; never bind its port."""
    why = "a running daemon is the thing cron wants to know about"
    bases = _daemon_base(cfg, options)
    if not bases:
        status = CRIT if options.require_daemon else OK
        return Check("daemon", status, "no admin listener configured to ask (health."
                     "listen_addr is empty or :0 and no url file)", why)
    base = bases[0]
    timeout = _step_timeout(budget, 2.0)
    live = client.get(base, "/healthz", timeout)
    if live.error:
        if options.require_daemon:
            return Check("daemon", CRIT, "no daemon answering at %s: %s" % (base, live.error),
                         why, next=["systemctl status tunnel-client; journalctl -u "
                                    "tunnel-client -n 50"])
        return Check("daemon", OK, "not running (%s is free for it)" % base)
    if not (live.ok and live.body == "live"):
        return Check("daemon", CRIT, "%s answers but is not tunnel-client (HTTP %s)" % (
            base, live.status), why, next=["choose another health.listen_addr"])
    ready = client.get(base, "/readyz", timeout)
    if ready.ok:
        return Check("daemon", OK, "running and ready at %s" % base)
    return Check("daemon", CRIT, "running but not ready: %s" % (ready.body or ready.error), why,
                 ["GET %s/readyz -> %s %s" % (base, ready.status, ready.body)],
                 ["open %s/ui for details, or `tunnel-client help troubleshooting`" % base])
