"""Third-party MCP peers as real processes, and tunnels (relay + ``tunnel-client run``) to them.

Importable without the ``mcp`` SDK, so the parts that need only node or the stub also run on
Python 3.9.
"""

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile

import pytest

from tests.support.daemon import ROOT, Daemon, stop_process, wait_for
from tunnel_client.devtools.relay import Relay

HERE = os.path.dirname(os.path.abspath(__file__))
SDK_SERVER = os.path.join(HERE, "sdk_server.py")
EVERYTHING = os.path.join(ROOT, ".cache", "peers", "node_modules", "@modelcontextprotocol",
                          "server-everything", "dist", "index.js")
START_TIMEOUT = 20.0   # a node or SDK server listening (about 1 s on the build machine)
CALL_TIMEOUT = 30.0    # one MCP client session, end to end

# Every tunnel started by a module fixture, so a failing test can show its daemon's log.
ACTIVE_DAEMONS = []


def need_server_everything():
    if shutil.which("node") is None:
        pytest.skip("node is not installed; server-everything interop needs node >= 20")
    if not os.path.isfile(EVERYTHING):
        pytest.skip("@modelcontextprotocol/server-everything is not installed: run `make peers`")


FILESYSTEM = os.path.join(ROOT, ".cache", "peers", "node_modules", "@modelcontextprotocol",
                          "server-filesystem", "dist", "index.js")


def need_server_filesystem():
    if shutil.which("node") is None:
        pytest.skip("node is not installed; server-filesystem interop needs node >= 20")
    if not os.path.isfile(FILESYSTEM):
        pytest.skip("@modelcontextprotocol/server-filesystem is not installed: run `make peers`")


def filesystem_command(*directories) -> str:
    return " ".join(["node", FILESYSTEM] + [str(d) for d in directories])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


class PeerProcess:
    """A server process with its output in a temporary file, stopped with SIGTERM."""

    def __init__(self, argv, env=None, port=None):
        self.log = tempfile.NamedTemporaryFile(prefix="mcp-peer-", suffix=".log", delete=False)
        environ = dict(os.environ, NO_PROXY="*", **(env or {}))
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=environ, cwd=ROOT)
        self.port = port
        self.url = "http://127.0.0.1:%d/mcp" % port if port else None
        if port:
            wait_for(lambda: _listening(port) or self.proc.poll() is not None, START_TIMEOUT,
                     message="%s listening on %d" % (argv[1], port))
            assert self.proc.poll() is None, "peer exited early:\n" + self.output()

    def output(self) -> str:
        with open(self.log.name, errors="replace") as handle:
            return handle.read()

    def stop(self):
        stop_process(self.proc)
        self.log.close()
        os.unlink(self.log.name)


def sdk_stdio_command() -> str:
    return "%s %s stdio" % (sys.executable, SDK_SERVER)


def everything_stdio_command() -> str:
    return "node %s stdio" % EVERYTHING


def start_sdk_http() -> PeerProcess:
    port = free_port()
    return PeerProcess([sys.executable, SDK_SERVER, "http", str(port)], port=port)


def start_everything_http() -> PeerProcess:
    port = free_port()  # it listens on all interfaces; only 127.0.0.1 is ever used
    return PeerProcess(["node", EVERYTHING, "streamableHttp"], env={"PORT": str(port)},
                       port=port)


@contextlib.contextmanager
def tunnel(workers: int = 10, **daemon_kwargs):
    """A relay and one ``tunnel-client run`` serving it; yields the relay."""
    relay = Relay(response_timeout="30s").start()
    daemon = Daemon(relay, workers=workers, **daemon_kwargs)
    ACTIVE_DAEMONS.append(daemon)
    try:
        daemon.wait_polling()
        yield relay
    finally:
        ACTIVE_DAEMONS.remove(daemon)
        daemon.cleanup()
        relay.stop()


def run(coroutine, timeout: float = CALL_TIMEOUT):
    """Run one async scenario with a bound on its duration."""
    return asyncio.run(asyncio.wait_for(coroutine, timeout))
