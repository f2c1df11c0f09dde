"""HTTP(S) over a unix socket, keeping the logical URL (Host header, TLS SNI and
certificate checks use the URL's host; only the dialling changes). Proxies never apply.

Built on requests' public transport-adapter interface (``BaseAdapter.send``) and urllib3
connection pools, so it does not depend on HTTPAdapter internals that change between
requests releases.
"""

import socket

import requests
from requests.adapters import BaseAdapter, HTTPAdapter
from urllib3 import exceptions as u3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.timeout import Timeout


class _UnixDial:
    socket_path = ""

    def _new_conn(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        timeout = self.timeout if isinstance(self.timeout, (int, float)) else None
        sock.settimeout(timeout)
        try:
            sock.connect(self.socket_path)
        except OSError as exc:
            sock.close()
            raise u3.NewConnectionError(self, "cannot connect to unix socket %s: %s" % (
                self.socket_path, exc)) from exc
        return sock


class UnixSocketAdapter(BaseAdapter):
    def __init__(self, socket_path: str, scheme: str, host: str, port: int,
                 ca_certs=None, cert=None, pool_size: int = 4):
        super().__init__()
        base = HTTPSConnection if scheme == "https" else HTTPConnection
        connection = type("UnixSocket" + base.__name__, (_UnixDial, base),
                          {"socket_path": socket_path})
        if scheme == "https":
            self.pool = HTTPSConnectionPool(
                host, port, maxsize=pool_size, block=False, cert_reqs="CERT_REQUIRED",
                ca_certs=ca_certs, cert_file=cert[0] if cert else None,
                key_file=cert[1] if cert else None)
        else:
            self.pool = HTTPConnectionPool(host, port, maxsize=pool_size, block=False)
        self.pool.ConnectionCls = connection
        self._builder = HTTPAdapter(max_retries=0)

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        try:
            resp = self.pool.urlopen(
                method=request.method, url=request.path_url, body=request.body,
                headers=request.headers, redirect=False, assert_same_host=False,
                preload_content=False, decode_content=False, retries=False,
                timeout=Timeout(connect=connect, read=read))
        except u3.ConnectTimeoutError as exc:
            raise requests.exceptions.ConnectTimeout(exc, request=request) from exc
        except u3.ReadTimeoutError as exc:
            raise requests.exceptions.ReadTimeout(exc, request=request) from exc
        except u3.SSLError as exc:
            raise requests.exceptions.SSLError(exc, request=request) from exc
        except (u3.NewConnectionError, u3.ProtocolError, OSError) as exc:
            raise requests.exceptions.ConnectionError(exc, request=request) from exc
        response = self._builder.build_response(request, resp)
        if not stream:
            response.content  # noqa: B018 - read now, as requests does for stream=False
        return response

    def close(self):
        self.pool.close()
