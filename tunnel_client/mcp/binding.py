"""The binding interface: ``handle(command, deadline) -> Iterator[Reply]``.

A binding yields zero or more ``jsonrpc_notify`` replies and then exactly one terminal
reply, or nothing at all when the deadline passed. It never talks to the control plane:
the worker owns posting.
"""

from typing import Iterator

from tunnel_client import wire
from tunnel_client.observe.health import Check


class Binding:
    channel: str = ""
    transport: str = ""  # "stdio" | "http-streamable" | "in-memory"
    proc_affinity: bool = False

    def start(self, housekeeping) -> None:
        """Spawn processes or warm up; raise StartupError when that is impossible."""

    def handle(self, cmd: wire.Command, deadline: wire.Deadline) -> Iterator[wire.Reply]:
        raise NotImplementedError

    def health(self) -> Check:
        return Check(True, "ok")

    def stop(self) -> None:
        """Release processes and connections; in-flight calls fail promptly."""

    def describe(self) -> dict:
        return {"name": self.channel, "transport_kind": self.transport}
