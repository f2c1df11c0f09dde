"""``dev proxy``: the local control plane and a tunnel-client runtime in one process.

The one place devtools composes the runtime (docs/architecture.md, Rooms): it builds a Config as
``run`` would, with the relay as control plane and short poll timings, and reports ready
only after the client has polled once.
"""

import os

from tunnel_client import config
from tunnel_client.errors import StartupError
from tunnel_client.observe.logs import LogSetup


class DevProxy:
    def __init__(self, relay, args):
        self.relay = relay
        self.args = args
        self.service = None

    def start(self):
        from tunnel_client.service import Service

        self.relay.start()
        args = self.args
        flags = {
            "--control-plane.base-url": self.relay.base_url,
            "--control-plane.tunnel-id": self.relay.tunnel_id,
            "--control-plane.api-key": "env:TUNNEL_CLIENT_DEV_PROXY_KEY",
            "--control-plane.poll-timeout": "5s",
            "--health.listen-addr": args.health_listen_addr or (
                "127.0.0.1:0" if args.health_url_file else ""),
            "--health.url-file": args.health_url_file,
            "--mcp.command": args.mcp_command or None,
            "--mcp.server-url": args.mcp_server_url or None,
            "--profile": args.profile, "--profile-file": args.profile_file,
            "--profile-dir": args.profile_dir,
        }
        environ = dict(os.environ, TUNNEL_CLIENT_DEV_PROXY_KEY=self.relay.api_key)
        cfg = config.load(flags, environ)
        setup = LogSetup(cfg.log.level, cfg.log.format, cfg.log.file,
                         ring_capacity=cfg.admin_ui.log_buffer_events)
        self.service = Service(cfg, setup)
        self.service.start()
        if not self.service.poll_health.first_success.wait(args.readiness_timeout):
            self.stop()
            raise StartupError("the embedded client did not poll the local control plane "
                               "within %gs" % args.readiness_timeout)

    def describe(self) -> dict:
        details = self.relay.describe()
        details.pop("api_key", None)  # the embedded client holds it; callers need none
        details["mcp_transport"] = "tcp"
        details["backend"] = "python-in-process"
        admin = getattr(self.service, "admin_url", None)
        if admin:
            details["health_url"] = admin + "/readyz"
        return details

    def stop(self) -> int:
        code = 0
        if self.service is not None:
            self.service.request_stop()
            code = self.service.shutdown()
        self.relay.stop()
        return code
