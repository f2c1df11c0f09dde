"""Pure MCP helpers: which era a message belongs to, progress tokens, handshake defaults.

MCP has two eras on one wire. Legacy (up to 2025-11-25) needs an ``initialize`` +
``notifications/initialized`` handshake per connection. Modern (2026-07-28) is stateless:
every request carries its protocol version in ``_meta`` and ``server/discover`` replaces
``initialize``. Modern traffic is forwarded untouched; only legacy traffic gets a handshake.
"""

import copy
from urllib.parse import urlsplit
from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, Optional

from tunnel_client import CLIENT_NAME, __version__

MODERN_VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
LATEST_LEGACY_VERSION = "2025-11-25"
INITIALIZE = "initialize"
INITIALIZED = "notifications/initialized"
CANCELLED = "notifications/cancelled"
PROGRESS = "notifications/progress"
PING = "ping"
DISCOVER = "server/discover"
ROOTS_LIST = "roots/list"


def meta(msg: Dict[str, Any]) -> Dict[str, Any]:
    params = msg.get("params")
    value = params.get("_meta") if isinstance(params, dict) else None
    return value if isinstance(value, dict) else {}


def is_modern(msg: Dict[str, Any]) -> bool:
    """True for 2026-07-28-era requests: ``server/discover`` or a per-request version."""
    return msg.get("method") == DISCOVER or MODERN_VERSION_KEY in meta(msg)


@dataclass(frozen=True)
class ProgressToken:
    """A caller's progress token, whatever its JSON type (kept as a value, never a key)."""

    value: Any


def progress_token(msg: Dict[str, Any]) -> Optional[ProgressToken]:
    """The request's ``_meta.progressToken`` when it has a non-null one, of any JSON type."""
    token = meta(msg).get("progressToken")
    return None if token is None else ProgressToken(token)


CAPABILITY_OF = {"sampling/createMessage": "sampling", "elicitation/create": "elicitation",
                 "roots/list": "roots"}
CLIENT_CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"


def declared_capabilities(value) -> FrozenSet[str]:
    """The capability names a client declared (an ``initialize``'s ``capabilities``)."""
    return frozenset(k for k in value if isinstance(k, str)) if isinstance(value, dict) \
        else frozenset()


def initialize_capabilities(msg: Dict[str, Any]) -> FrozenSet[str]:
    params = msg.get("params")
    return declared_capabilities(params.get("capabilities") if isinstance(params, dict)
                                 else None)


def request_capabilities(msg: Dict[str, Any]) -> FrozenSet[str]:
    """A 2026-07-28 request declares the caller's capabilities in its own ``_meta``."""
    return declared_capabilities(meta(msg).get(CLIENT_CAPABILITIES_KEY))


def with_id_and_token(msg: Dict[str, Any], rpc_id, token=None) -> Dict[str, Any]:
    """A shallow copy with a new id and, when given, a new ``_meta.progressToken``.

    The caller's message is never mutated (it belongs to the command).
    """
    out = dict(msg)
    out["id"] = rpc_id
    if token is not None:  # only when the request has a _meta dict holding a token
        params = dict(out["params"])
        params["_meta"] = dict(params["_meta"], progressToken=token)
        out["params"] = params
    return out


def default_initialize_params() -> Dict[str, Any]:
    """The handshake sent to a child when no connector ``initialize`` was ever seen."""
    return {"protocolVersion": LATEST_LEGACY_VERSION, "capabilities": {},
            "clientInfo": {"name": CLIENT_NAME, "version": __version__}}


def local_answer(request: Dict[str, Any]) -> Dict[str, Any]:
    """What the tunnel client answers to a server-to-client request from a stdio child.

    ``ping`` gets ``{}``. Everything else (roots, sampling, elicitation) gets a JSON-RPC
    error the server understands: the connector cannot be asked through the tunnel.
    """
    if request.get("method") == PING:
        return {"jsonrpc": "2.0", "id": request["id"], "result": {}}
    return {"jsonrpc": "2.0", "id": request["id"],
            "error": {"code": -32601, "message": "Method not found: the tunnel client cannot "
                      "forward %s to the caller" % request.get("method")}}


ROOTS_LIST_CHANGED = "notifications/roots/list_changed"


def roots_answer(request: Dict[str, Any], uris) -> Dict[str, Any]:
    """The operator's roots as the answer to a server's ``roots/list``."""
    roots = [{"uri": uri, "name": urlsplit(uri).path.rstrip("/").rsplit("/", 1)[-1] or "/"}
             for uri in uris]
    return {"jsonrpc": "2.0", "id": request["id"], "result": {"roots": roots}}


def with_roots_capability(msg: Dict[str, Any]) -> Dict[str, Any]:
    """An ``initialize`` (a copy) that declares roots, for a tunnel that answers them."""
    params = dict(msg.get("params") or {}) if isinstance(msg.get("params"), dict) else {}
    caps = params.get("capabilities")
    params["capabilities"] = dict(caps if isinstance(caps, dict) else {},
                                  roots={"listChanged": True})
    return dict(msg, params=params)


def replace_id(msg: Dict[str, Any], rpc_id) -> Dict[str, Any]:
    out = dict(msg)
    out["id"] = rpc_id
    return out


def restore_progress_token(notification: Dict[str, Any], token) -> Dict[str, Any]:
    out = copy.copy(notification)
    params = dict(out.get("params") or {})
    params["progressToken"] = token
    out["params"] = params
    return out


def cancelled(request_id, reason: str) -> Dict[str, Any]:
    return {"jsonrpc": "2.0", "method": CANCELLED,
            "params": {"requestId": request_id, "reason": reason}}


def notification_token(msg: Dict[str, Any]) -> Optional[Any]:
    params = msg.get("params")
    return params.get("progressToken") if isinstance(params, dict) else None
