"""Channel -> binding. A command for a channel with no binding is answered with the
reference's 400 ``unsupported channel`` reply and never falls back to ``main``.

The built-in Harpoon channel is routable only while at least one target is registered;
``X-Tunnel-MCP-Server-Info`` follows, recomputed when the registry changes."""

import threading
from typing import Dict, Iterable, List, Optional, Sequence

from tunnel_client import wire
from tunnel_client.mcp.binding import Binding


class Router:
    def __init__(self, bindings: Iterable[Binding], poll_channels: Optional[Sequence[str]] = None,
                 harpoon=None):
        self._bindings: Dict[str, Binding] = {}
        for binding in bindings:
            if poll_channels is None or binding.channel in poll_channels:
                self._bindings[binding.channel] = binding
        polled = poll_channels is None or wire.HARPOON_CHANNEL in poll_channels
        self.harpoon = harpoon if polled else None
        self._lock = threading.Lock()
        self._server_info = ""
        self._recompute()
        if self.harpoon is not None:
            self.harpoon.registry.on_change(self._recompute)

    def _recompute(self):
        entries = [(b.channel, b.proc_affinity) for b in self._bindings.values()]
        if self.harpoon is not None and self.harpoon.routable:
            entries.append((wire.HARPOON_CHANNEL, True))
        value = wire.server_info_header(entries)
        with self._lock:
            self._server_info = value

    def route(self, channel: str) -> Optional[Binding]:
        if channel == wire.HARPOON_CHANNEL:
            return self.harpoon if self.harpoon is not None and self.harpoon.routable else None
        return self._bindings.get(channel)

    def server_info(self) -> str:
        return self._server_info

    @property
    def bindings(self) -> List[Binding]:
        """The configured (external) bindings."""
        return list(self._bindings.values())
