"""The one error hierarchy. The CLI maps these to exit codes and one line on stderr."""


def brief(exc: BaseException, limit: int = 300) -> str:
    """An exception's text cut to a length a log line can carry."""
    text = str(exc)
    return text if len(text) <= limit else text[:limit] + "..."


class TunnelClientError(Exception):
    """Base class for every error tunnel-client raises on purpose."""

    exit_code = 1


class ConfigError(TunnelClientError):
    """The configuration is invalid; the message names the setting and the fix."""


class StartupError(TunnelClientError):
    """The service could not start (port busy, child cannot be spawned...)."""


class ControlPlaneError(TunnelClientError):
    """A control-plane request failed.

    ``status`` is the HTTP status (None for transport errors), ``code`` the API error code,
    ``retry_after`` the server's requested pause in seconds (None when absent).
    ``kind`` classifies the failure for metrics and dashboards (``connection_refused``,
    ``dns``, ``tls``, ``timeout``, ``auth``, ``server_error``...), ``summary`` is the short
    operator line without the "poll failed:" prefix, ``detail`` the library's own text.
    """

    def __init__(self, message, status=None, code=None, retry_after=None, request_id=None,
                 transport=False, kind=None, summary=None, detail=None):
        super().__init__(message)
        self.kind = kind or _status_kind(status)
        self.summary = summary or message
        self.detail = detail
        self.status = status
        self.code = code
        self.retry_after = retry_after
        self.request_id = request_id
        self.transport = transport

    @property
    def is_auth(self):
        return self.status in (401, 403)


def _status_kind(status):
    if status in (401, 403):
        return "auth"
    if status == 407:
        return "proxy_auth"
    if status == 429:
        return "rate_limited"
    if status is not None and status >= 500:
        return "server_error"
    if status == 200:
        return "protocol"
    return "http_error" if status is not None else "other"


class McpError(TunnelClientError):
    """An MCP binding failed in a way that is not a reply to the caller."""


class ChildGone(McpError):
    """The stdio child exited or its pipe closed."""


class ChildGaveUp(McpError):
    """The stdio child could not stay up; the daemon must exit non-zero."""
