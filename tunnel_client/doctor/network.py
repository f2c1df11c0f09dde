"""The control plane, live, hop by hop: DNS, TCP (to the proxy or the target), CONNECT,
TLS, then an authenticated metadata GET through exactly the code the daemon uses. A
failure names the hop, so "the proxy refused CONNECT" never reads as "the API is down"."""

import re
import socket
import ssl
import time
from typing import List
from urllib.parse import urlsplit

from tunnel_client import wire
from tunnel_client.config.values import redact_url
from tunnel_client.doctor.report import CRIT, OK, WARN, Check
from tunnel_client.errors import ControlPlaneError
from tunnel_client.net import Route, proxycheck


class HopFailed(Exception):
    def __init__(self, hop: str, message: str, fix: str = ""):
        super().__init__(message)
        self.hop, self.fix = hop, fix


def _connect_via_proxy(sock: socket.socket, proxy_url: str, host: str, port: int,
                       timeout: float):
    shown = redact_url(proxy_url)
    try:
        status, line, headers = proxycheck.connect_response(sock, proxy_url, host, port,
                                                            timeout)
    except (socket.timeout, TimeoutError):
        raise HopFailed("CONNECT", "proxy %s accepted the TCP connection but did not answer "
                        "CONNECT to %s:%d within %gs" % (shown, host, port, timeout),
                        "check that this is an HTTP forward proxy port (not a SOCKS or "
                        "transparent port) and that it is not overloaded") from None
    except OSError as exc:
        raise HopFailed("CONNECT", "proxy %s dropped the CONNECT to %s:%d: %s" % (
            shown, host, port, _reason(exc)), "check the proxy's logs for this host") from None
    if status in (401, 407):
        # A 401 to CONNECT is the proxy's too: tinyproxy answers bad BasicAuth with it.
        raise HopFailed("CONNECT", *_auth_advice(proxy_url, headers, status))
    if not 200 <= status < 300:
        raise HopFailed("CONNECT", "proxy %s refused CONNECT to %s:%d: %s" % (
            shown, host, port, line or "no answer"),
            "ask the proxy administrators to allow CONNECT to %s:%d" % (host, port))


def _auth_advice(proxy_url: str, headers, status: int = 407):
    """(summary, fix) for a 407: what the proxy offered, what we sent, what to do."""
    shown = redact_url(proxy_url)
    offered = proxycheck.auth_schemes(headers)
    has_credentials = bool(urlsplit(proxy_url).username)
    offers = " (it offers %s)" % ", ".join(offered) if offered else ""
    basic = any(scheme.lower() == "basic" for scheme in offered) or not offered
    if not basic:
        return ("proxy %s requires authentication%s; tunnel-client supports only Basic"
                % (shown, offers),
                "ask the proxy administrators for Basic authentication or an allow rule for "
                "this host, or run a local authenticating proxy (cntlm, px) and point "
                "http_proxy at it")
    if has_credentials:
        return ("proxy %s rejected the credentials in the proxy URL (%d)%s" % (
            shown, status, offers),
                "check the user and password in the proxy URL (percent-encode @ : / in them)")
    return ("proxy %s requires authentication (%d)%s" % (shown, status, offers),
            "put the proxy credentials in the proxy URL (http://user:password@proxy:port) or "
            "ask for an allow rule")


def probe_hops(route: Route, timeout: float, cert_warn_days: int) -> List[str]:
    """Walk DNS, TCP, CONNECT and TLS for the route's target; evidence lines on success."""
    target = urlsplit(route.target)
    proxy = urlsplit(route.proxy) if route.proxy else None
    try:
        host, port = target.hostname, target.port or (443 if target.scheme == "https" else 80)
    except ValueError:
        raise HopFailed("URL", "control plane URL %s has an invalid port" % redact_url(
            route.target), "write control_plane.base_url as https://host[:port]") from None
    try:
        dial_port = (proxy.port or (443 if proxy.scheme == "https" else 80)) if proxy else port
    except ValueError:
        raise HopFailed("proxy", "proxy URL %s (from %s) has an invalid port" % (
            re.sub(r"//[^@/]*@", "//", route.proxy), route.proxy_source),
            "write the proxy as http://host:port, e.g. http://proxy.example:3128") from None
    dial_host = proxy.hostname if proxy else host
    evidence = ["route: %s" % route.describe()]
    try:
        addresses = socket.getaddrinfo(dial_host, dial_port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        fix = "check the host name and the machine's DNS resolver"
        if not proxy:
            fix += ("; if this network reaches the internet only through a proxy, set "
                    "HTTPS_PROXY in the environment file (or control_plane.http_proxy / "
                    "--http-proxy): no proxy is configured now")
        raise HopFailed("DNS", "cannot resolve %s %s: %s" % (
            "proxy" if proxy else "control plane", dial_host, exc.strerror or exc),
            fix) from None
    evidence.append("DNS: %s -> %s" % (dial_host, addresses[0][4][0]))
    what = "proxy" if proxy else "control plane"
    try:
        sock = socket.create_connection((dial_host, dial_port), timeout=timeout)
    except OSError as exc:
        raise HopFailed("TCP", "TCP connect to %s %s:%d failed: %s" % (
            what, dial_host, dial_port, _reason(exc)),
            "check firewall rules to %s:%d" % (dial_host, dial_port)) from None
    try:
        evidence.append("TCP: connected to %s %s:%d" % (what, dial_host, dial_port))
        if proxy and proxy.scheme == "https":
            try:
                sock = ssl.create_default_context().wrap_socket(sock,
                                                                server_hostname=dial_host)
            except (ssl.SSLError, OSError) as exc:
                raise HopFailed("TLS", "TLS to proxy %s failed: %s" % (
                    redact_url(route.proxy), _reason(exc)),
                    "most proxies speak plain HTTP: write the proxy as http://host:port"
                ) from None
        if proxy and target.scheme == "https":
            _connect_via_proxy(sock, route.proxy, host, port, timeout)
            evidence.append("CONNECT: proxy opened a tunnel to %s:%d" % (host, port))
        if target.scheme == "https":
            evidence += _tls(sock, route, host, timeout, cert_warn_days)
    finally:
        sock.close()
    return evidence


def _tls(sock, route: Route, host: str, timeout: float, warn_days: int) -> List[str]:
    context = ssl.create_default_context(cafile=route.verify if isinstance(route.verify, str)
                                         else None)
    if route.cert:
        context.load_cert_chain(*route.cert)
    sock.settimeout(timeout)
    try:
        tls = context.wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        unknown = "unable to get local issuer" in str(exc) or "self-signed" in str(exc) or \
            "self signed" in str(exc)
        raise HopFailed("TLS", "certificate verify failed for %s: %s%s" % (
            host, exc.verify_message, " (unknown certificate authority)" if unknown else ""),
            "set ca_bundle (--ca-bundle / CA_BUNDLE) to the PEM of your organisation's CA; "
            "a TLS-inspecting proxy re-signs traffic with it" if unknown else
            "check the host name and the server's certificate") from None
    except (ssl.SSLError, OSError) as exc:
        raise HopFailed("TLS", "TLS handshake with %s failed: %s" % (host, _reason(exc)),
                        "check the proxy and TLS settings") from None
    peer = tls.getpeercert() or {}
    evidence = ["TLS: %s, certificate for %s verified" % (tls.version(), host)]
    not_after = peer.get("notAfter")
    if not_after:
        days = (ssl.cert_time_to_seconds(not_after) - time.time()) / 86400
        evidence.append("TLS: server certificate expires in %d days" % days)
        if days < warn_days:
            evidence.append("WARN: server certificate expires in %d days" % days)
    tls.close()
    return evidence


def _reason(exc: Exception) -> str:
    failure = wire.classify_exception(exc)
    return "%s (%s)" % (failure.transport_error_kind, getattr(exc, "strerror", None) or exc)


def control_plane_check(cfg, controlplane, route: Route, timeout: float,
                        cert_warn_days: int) -> Check:
    cp = cfg.control_plane
    why = ("the daemon can only serve the tunnel if the control plane accepts this key for "
           "this tunnel, through this network path")
    try:
        evidence = probe_hops(route, timeout, cert_warn_days)
    except HopFailed as exc:
        return Check("control_plane", CRIT, "%s: %s" % (exc.hop, exc), why,
                     ["route: %s" % route.describe()], [exc.fix] if exc.fix else [])
    try:
        meta = controlplane.metadata(timeout=timeout)
    except ControlPlaneError as exc:
        return _metadata_failure(cp, exc, why, evidence)
    evidence.append("HTTP: GET /v1/tunnels/%s -> 200 (%s)" % (cp.tunnel_id, meta.name))
    status = WARN if any(line.startswith("WARN:") for line in evidence) else OK
    return Check("control_plane", status, "tunnel %s (%s) reachable and key accepted, %s" % (
        meta.name or meta.id, cp.tunnel_id, route.describe()), why, evidence)


def _metadata_failure(cp, exc: ControlPlaneError, why: str, evidence) -> Check:
    code = exc.code or ""
    if exc.transport:
        return Check("control_plane", CRIT, "HTTP: %s" % exc, why, evidence,
                     ["check the proxy and firewall path to %s" % cp.base_url])
    if code in ("tunnel_use_forbidden", "tunnel_missing_principals") or (
            exc.status == 403 and code != "tunnel_active_organization_required"):
        # The control plane does not reveal whether a tunnel exists to a key that may not
        # use it, so both causes are named.
        return Check("control_plane", CRIT, "key lacks permission to use tunnel %s, or that "
                     "tunnel does not exist (HTTP %d %s)" % (cp.tunnel_id, exc.status,
                                                            code or "forbidden"), why, evidence,
                     ["check control_plane.tunnel_id against the tunnel settings page",
                      "use a runtime key of a principal that may use this tunnel "
                      "(api.organization.tunnel.use)"])
    if code == "tunnel_active_organization_required":
        return Check("control_plane", CRIT, "the tunnel needs an organization id (HTTP %d)"
                     % exc.status, why, evidence, ["set control_plane.organization_id"])
    if exc.status == 401:
        return Check("control_plane", CRIT, "key rejected (HTTP 401 %s)" % (
            code or "unauthorized"), why, evidence,
            ["check CONTROL_PLANE_API_KEY (or control_plane.api_key): the control plane does "
             "not recognise it"])
    if exc.status == 404:
        return Check("control_plane", CRIT, "tunnel %s not found (HTTP 404%s)" % (
            cp.tunnel_id, " " + code if code else ""), why, evidence,
            ["check control_plane.tunnel_id against the tunnel settings page"])
    if exc.status == 429 or (exc.status or 0) >= 500:
        return Check("control_plane", WARN, "control plane answered HTTP %d: %s" % (
            exc.status, exc), why, evidence, ["transient; the daemon backs off and retries"])
    return Check("control_plane", CRIT, str(exc), why, evidence)


def mcp_http_check(binding, timeout: float) -> Check:
    """Reach the main HTTP MCP server exactly as the daemon would (same route)."""
    status = binding.probe(initialize=True, timeout=timeout)
    evidence = ["route: %s" % binding.route.describe()]
    why = "every command for this channel goes to this server"
    if binding.route.unix_socket:
        evidence.append("dialled over unix socket %s" % binding.route.unix_socket)
    if status == "ok":
        return Check("mcp_server", OK, "%s answered" % redact_url(binding.url), why, evidence)
    if status == "auth-required":
        return Check("mcp_server", OK, "%s answered 401: it requires OAuth, which callers "
                     "bring" % redact_url(binding.url), why, evidence)
    return Check("mcp_server", CRIT, "%s unreachable: %s" % (redact_url(binding.url),
                                                             binding.probe_error), why,
                 evidence + ([binding.probe_detail] if binding.probe_detail else []),
                 ["start the MCP server or fix mcp.server_urls"])
