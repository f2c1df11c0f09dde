"""Raw HTTP over a socket, for requests no HTTP library would send."""

import socket


def raw_request(port: int, data: bytes, close_write: bool = False, until: bytes = b"\r\n\r\n",
                timeout: float = 15.0, host: str = "127.0.0.1") -> bytes:
    """Send ``data`` as is and return what came back up to ``until`` (or the close).

    ``close_write`` tells the server nothing more will come, whatever the head promised.
    """
    with socket.create_connection((host, port), timeout=timeout) as conn:
        conn.sendall(data)
        if close_write:
            conn.shutdown(socket.SHUT_WR)
        received = b""
        while until not in received:
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
        return received
