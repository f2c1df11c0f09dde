"""The stdio binding: MCP semantics over supervised child processes.

What it adds over a plain pipe (DESIGN.md section 7), one room each:

* ``eras``: each MCP era is served by a child that speaks it; a second child starts the
  first time the other era arrives.
* ``supervisor``: a crash fails in-flight calls at once, the child restarts with backoff,
  one that cannot stay up makes the daemon exit non-zero.
* ``mux``: ids and progress tokens are remapped on the pipe, one mailbox per call, typed
  results; no caller value can break the reader.
* ``handshake``: legacy-era traffic always meets an initialized child.
* ``inbound`` / ``asks``: server-to-client requests are relayed to the caller that caused
  them when that is unambiguous and declared, else answered locally (``roots/list`` with
  the operator's ``mcp.roots`` when set).
* ``pinger``: a child that stops answering is replaced.
"""

from tunnel_client.mcp.childenv import SECRET_ENV, child_environment
from tunnel_client.mcp.stdio.eras import Era, EraRouter, StdioBinding
from tunnel_client.mcp.stdio.policy import StdioPolicy
from tunnel_client.mcp.stdio.session import StdioSession

__all__ = ["Era", "EraRouter", "SECRET_ENV", "StdioBinding", "StdioPolicy", "StdioSession",
           "child_environment"]
