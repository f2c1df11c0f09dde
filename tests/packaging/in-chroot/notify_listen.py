"""Stand in for systemd's $NOTIFY_SOCKET: bind a datagram socket, append each message to a file.

Usage: notify_listen.py SOCKET_PATH LOG_PATH  (runs until killed; the socket exists once
LOG_PATH does, so callers poll for LOG_PATH instead of sleeping).
"""

import os
import socket
import sys


def main(sock_path, log_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    # The daemon may run as the service user: let it write to the socket.
    os.chmod(sock_path, 0o666)
    with open(log_path, "a") as log:
        while True:
            data = sock.recv(65536).decode("utf-8", "replace")
            log.write(data.replace("\n", " ") + "\n")
            log.flush()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
