"""What a SIGHUP may change in a running daemon, and what needs a restart.

Only settings that are safe to swap under running threads are applied live (the log
settings, the policy, the operator's stdio roots; the audit file is reopened); everything else is compared and named, so the operator knows a
``systemctl restart`` is due instead of believing a reload took effect.
"""

from typing import List, Tuple

from tunnel_client.config.settings import SETTINGS

LIVE = ("log.level", "log.file", "log.access", "mcp.roots", "policy.mode", "policy.channels")


def plan(old, new) -> Tuple[List[str], List[str]]:
    """(live keys that changed, other keys that changed and need a restart)."""
    live, restart = [], []
    for s in SETTINGS:
        if not s.yaml or s.key.startswith("profile") or s.key == "config":
            continue
        if old.value(s.key) == new.value(s.key):
            continue
        (live if s.key in LIVE else restart).append(s.key)
    if old.bindings != new.bindings and "mcp.commands" not in restart:
        restart.append("mcp (channels)")
    return live, restart
