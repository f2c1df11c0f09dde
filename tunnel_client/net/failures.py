"""One-line descriptions of transport failures that name the culprit and the fix."""

import re

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
