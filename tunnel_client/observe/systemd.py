"""sd_notify over $NOTIFY_SOCKET with the standard library (no libsystemd)."""

import os
import socket
from typing import Optional


class Notifier:
    """Sends READY=1, WATCHDOG=1, STATUS=... and STOPPING=1 when systemd asked for them."""

    def __init__(self, environ=None):
        environ = os.environ if environ is None else environ
        self.address = environ.get("NOTIFY_SOCKET") or None
        if self.address and self.address.startswith("@"):
            self.address = "\0" + self.address[1:]  # abstract namespace
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        watched = usec.isdigit() and (not pid or pid == str(os.getpid()))
        self.watchdog_interval: Optional[float] = int(usec) / 2e6 if watched else None

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, *fields: str) -> bool:
        if not self.address:
            return False
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.connect(self.address)
            sock.sendall("\n".join(fields).encode("utf-8"))
            return True
        except OSError:
            return False
        finally:
            sock.close()
