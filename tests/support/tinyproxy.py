"""A real forward proxy from the distribution (tinyproxy), started per test."""

import os
import shutil
import socket
import subprocess

import pytest

from tests.support.daemon import wait_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Tinyproxy:
    def __init__(self, directory, credentials=None):
        if shutil.which("tinyproxy") is None:
            pytest.skip("tinyproxy is not installed (run `make proxy-deps`)")
        self.port = free_port()
        self.log_path = os.path.join(str(directory), "tinyproxy-%d.log" % self.port)
        self.conf = os.path.join(str(directory), "tinyproxy-%d.conf" % self.port)
        lines = ["Port %d" % self.port, "Listen 127.0.0.1", "Timeout 60",
                 "Allow 127.0.0.1", "LogLevel Info", 'LogFile "%s"' % self.log_path,
                 "MaxClients 200",
                 # tinyproxy < 1.11 (Debian 11) preforks and will not start without these;
                 # 1.11 ignores them with a warning.
                 "StartServers 10", "MinSpareServers 5", "MaxSpareServers 20"]
        if credentials:
            lines.append("BasicAuth %s %s" % credentials)
        with open(self.conf, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        self.proc = None
        self.url = "http://127.0.0.1:%d" % self.port
        self.start()

    def start(self):
        self.proc = subprocess.Popen(["tinyproxy", "-d", "-c", self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._listening, message="tinyproxy listening")

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def requests(self):
        """The request lines the proxy logged, e.g. 'CONNECT localhost:443 HTTP/1.1'."""
        if not os.path.exists(self.log_path):
            return []
        with open(self.log_path, errors="replace") as handle:
            return [line.split("): ", 1)[1].strip() for line in handle
                    if "Request (file descriptor" in line and "): " in line]
