"""One-line descriptions of transport failures that name the culprit and the fix."""

import re
from urllib.parse import urlsplit

from tunnel_client import wire
from tunnel_client.config.values import redact_url


_TUNNEL_STATUS = re.compile(r"Tunnel connection failed: ([0-9]{3}[^'\")]*)")


def describe(exc: BaseException, route=None) -> str:
    """E.g. "proxy http://proxy:3128 refused the credentials (407 ...); check ..." or
    "TLS ...: unknown certificate authority; set ca_bundle ..."."""
    chain = list(wire.exception_chain(exc))
    text = " ".join(str(e) for e in chain)
    proxy = redact_url(route.proxy) if route is not None and route.proxy else None
    refused = _TUNNEL_STATUS.search(text)
    if proxy and refused:
        status = refused.group(1).strip()
        if status.startswith(("407", "401")):
            return ("proxy %s rejected the credentials (%s); check the user and password in "
                    "the proxy URL" % (proxy, status))
        return "proxy %s refused CONNECT (%s)" % (proxy, status)
    if proxy and any(type(e).__name__ == "ProxyError" for e in chain):
        failure = wire.classify_exception(exc)
        return "proxy %s failed: %s (%s)" % (proxy, failure.transport_error_kind, _last(text))
    failure = wire.classify_exception(exc)
    if failure.source == "tls":
        if "unable to get local issuer" in text or "self-signed" in text or \
                "self signed" in text:
            return ("TLS certificate verify failed: unknown certificate authority; set "
                    "ca_bundle (--ca-bundle, CA_BUNDLE) to the PEM of the CA that signed it "
                    "(a TLS-inspecting proxy uses your organisation's CA)")
        return "TLS failed: %s" % _last(text)
    return "%s (%s)" % (failure.transport_error_kind, _last(text))


def _last(text: str) -> str:
    text = text.strip()
    return text if len(text) <= 240 else text[:240] + "..."


# Operator-facing kinds (the error_kind metric label and the UI's one-liners): a fixed,
# small set so dashboards can alert on them.
SUMMARY_KINDS = ("connection_refused", "dns", "tls", "timeout", "connection_reset",
                 "network_unreachable", "proxy_refused", "proxy_auth", "proxy_unreachable",
                 "closed", "other")


def summarize(exc: BaseException, route=None):
    """``(kind, line)``: a short line an operator reads at a glance, e.g.
    ``("connection_refused", "connection refused by 127.0.0.1:39000")``. The library's own
    text belongs in a details field (``describe`` or ``str(exc)``), not in this line."""
    chain = list(wire.exception_chain(exc))
    text = " ".join(str(e) for e in chain)
    target = _host_port(route.target) if route is not None and route.target else "the server"
    proxy = redact_url(route.proxy) if route is not None and route.proxy else None
    refused = _TUNNEL_STATUS.search(text)
    failure = wire.classify_exception(exc)
    kind = failure.transport_error_kind or "other"
    if proxy and refused:
        status = refused.group(1).strip()
        if status.startswith(("407", "401")):
            return "proxy_auth", ("proxy %s rejected the credentials (%s); check the user and "
                                  "password in the proxy URL" % (proxy, status[:3]))
        return "proxy_refused", "proxy %s refused CONNECT to %s (%s)" % (proxy, target,
                                                                         status[:40])
    if proxy and any(type(e).__name__ == "ProxyError" for e in chain) and \
            failure.source in ("connect", "dns", "timeout"):
        what = {"connection_refused": "connection refused", "dns": "name not found",
                "timeout": "no answer"}.get(kind, kind.replace("_", " "))
        return "proxy_unreachable", "proxy %s unreachable: %s" % (proxy, what)
    if failure.source == "dns":
        # Hosts that reach the internet only through a proxy often fail right here.
        return "dns", "cannot resolve %s (DNS lookup failed%s)" % (
            _host(target), "" if proxy or route is None else
            "; no proxy is configured: set HTTPS_PROXY if this network needs one")
    if failure.source == "tls":
        if "unable to get local issuer" in text or "self-signed" in text or \
                "self signed" in text:
            return "tls", ("TLS to %s: unknown certificate authority; set ca_bundle to the PEM "
                           "of the CA that signed it" % target)
        return "tls", "TLS to %s failed" % target
    if kind == "connection_refused":
        return kind, "connection refused by %s" % target
    if kind in ("network_unreachable", "host_unreachable"):
        return "network_unreachable", "no route to %s" % target
    if failure.source == "timeout":
        return "timeout", "no answer from %s in time" % target
    if kind == "connection_reset":
        return kind, "connection to %s reset" % target
    if failure.source == "transport_closed":
        return "closed", "%s closed the connection" % target
    return "other", "request to %s failed (%s)" % (target, kind.replace("_", " "))


def _host_port(url: str) -> str:
    try:
        parts = urlsplit(url)
        host = parts.hostname or url
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    except ValueError:
        return redact_url(url)
    if ":" in host:
        host = "[%s]" % host
    return "%s:%s" % (host, port) if port else host


def _host(host_port: str) -> str:
    return host_port.rsplit(":", 1)[0] if host_port.count(":") == 1 else host_port
