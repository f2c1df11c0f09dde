"""Policy and audit at the tunnel: what the outside may call, and a record of every call.

Sits between the router and a binding and knows no transport (docs/policy.md)."""

from typing import Optional

from tunnel_client.policy.audit import AuditTrail
from tunnel_client.policy.gate import PolicyGate
from tunnel_client.policy.rules import PolicySet

__all__ = ["PolicyGate", "PolicySet", "AuditTrail", "from_config", "policies_of"]


def policies_of(cfg) -> PolicySet:
    return PolicySet(cfg.policy.channels, cfg.policy.mode)


def from_config(cfg, instruments=None) -> Optional[PolicyGate]:
    """The gate, or None when neither a policy nor an audit file is configured (then
    commands go straight to their binding, as before)."""
    if not cfg.policy.channels and not cfg.audit.file:
        return None
    audit = None
    if cfg.audit.file:
        audit = AuditTrail(cfg.audit.file, None, cfg.audit.on_failure, cfg.audit.syslog,
                           instruments, key_file=cfg.audit.key_file)
    return PolicyGate(policies_of(cfg), audit, instruments, cfg.control_plane.tunnel_id or "")
