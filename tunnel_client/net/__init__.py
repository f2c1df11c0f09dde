"""HTTP plumbing shared by every outbound route: routes (proxy, trust, client certificate)
resolved once, sessions per thread, streaming bodies, Retry-After and backoff, unix
sockets, proxy checks, and failure descriptions."""

from tunnel_client.net.failures import describe as describe_failure  # noqa: F401
from tunnel_client.net.retry import RETRY_AFTER_CAP, Backoff, parse_retry_after  # noqa: F401
from tunnel_client.net.routes import (Route, TrustStore, no_proxy_matches,  # noqa: F401
                                      resolve_route, system_ca_files)
from tunnel_client.net.sessions import (BodyDeadline, ConnectObserver,  # noqa: F401
                                        SessionPool, connects_observed, header_pairs,
                                        heads_within, iter_body, new_session, read_limited,
                                        response_socket)

__all__ = ["Backoff", "BodyDeadline", "ConnectObserver", "RETRY_AFTER_CAP", "Route",
           "SessionPool", "TrustStore", "connects_observed", "describe_failure",
           "header_pairs", "heads_within", "iter_body", "new_session", "no_proxy_matches",
           "parse_retry_after", "read_limited", "resolve_route", "response_socket",
           "system_ca_files"]
