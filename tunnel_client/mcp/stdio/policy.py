"""Operator knobs of a stdio channel and the fixed limits around them."""

from dataclasses import dataclass

MAX_BACKOFF = 30.0
RESTART_WAIT_CAP = 60.0  # a call with no deadline waits at most this long for a restart
WRITE_TIMEOUT = 30.0  # a child that does not read stdin for this long is stuck
LOCAL_WRITE_TIMEOUT = 5.0  # answers the tunnel client writes on its own behalf


@dataclass(frozen=True)
class StdioPolicy:
    restart_limit: int = 5
    restart_window: float = 60.0
    restart_backoff: float = 0.25
    health_interval: float = 30.0
    health_timeout: float = 10.0
    max_line: int = 64 << 20
    stop_grace: float = 5.0
    ttl: float = 600.0


def seconds(value: float) -> str:
    return "%gs" % value
