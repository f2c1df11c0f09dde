"""Channel -> binding. A command for a channel with no binding is answered with the
reference's 400 ``unsupported channel`` reply and never falls back to ``main``."""

from typing import Dict, Iterable, List, Optional, Sequence

from tunnel_client import wire
from tunnel_client.mcp.binding import Binding


class Router:
    def __init__(self, bindings: Iterable[Binding], poll_channels: Optional[Sequence[str]] = None):
        self._bindings: Dict[str, Binding] = {}
        for binding in bindings:
            if poll_channels is None or binding.channel in poll_channels:
                self._bindings[binding.channel] = binding
        self._server_info = wire.server_info_header(
            [(b.channel, b.proc_affinity) for b in self._bindings.values()])

    def route(self, channel: str) -> Optional[Binding]:
        return self._bindings.get(channel)

    def server_info(self) -> str:
        return self._server_info

    @property
    def bindings(self) -> List[Binding]:
        return list(self._bindings.values())
