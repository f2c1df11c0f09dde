"""A TLS-terminating front for a plaintext loopback server: real TLS with a throwaway CA
(trustme), optionally requiring a client certificate, without touching the server."""

import socket
import socketserver
import ssl
import threading

from tests.support.proxy import _pipe


def _lingering_close(tls):
    """Close after a refused handshake the way web servers do: send the alert and a FIN,
    then read what the client already sent. Closing with its request unread would send a
    reset, which can overtake the alert and hide the reason from the client."""
    try:
        tls.shutdown(socket.SHUT_WR)
        tls.settimeout(2)
        while tls.recv(65536):
            pass
    except OSError:
        pass
    finally:
        tls.close()


class TlsFront:
    def __init__(self, backend_port: int, server_cert, client_ca=None, host="localhost"):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_cert.configure_cert(context)
        if client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            client_ca.configure_trust(context)
        self.handshake_errors = []
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                tls = context.wrap_socket(self.request, server_side=True,
                                          do_handshake_on_connect=False)
                try:
                    tls.do_handshake()
                except (ssl.SSLError, OSError) as exc:
                    outer.handshake_errors.append(str(exc))
                    _lingering_close(tls)
                    return
                upstream = socket.create_connection(("127.0.0.1", backend_port), timeout=30)
                _pipe(tls, upstream, b"")

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.port = self.server.server_address[1]
        self.url = "https://%s:%d" % (host, self.port)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
