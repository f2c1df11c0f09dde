"""``tunnel-client run``: the daemon."""

import os
import signal
import threading

from tunnel_client import config
from tunnel_client.cli import flags
from tunnel_client.config.envfile import read_env_file
from tunnel_client.observe.logs import LogSetup, get_logger

log = get_logger("process")


def add_parser(sub):
    parser = sub.add_parser(
        "run", help="run the tunnel client daemon",
        description="Long-poll the control plane and forward MCP commands to the configured "
                    "MCP server(s). Settings come from flags, then the environment, then the "
                    "YAML file, then defaults. SIGHUP reopens the log file and reloads the "
                    "log settings.")
    parser.add_argument("--env-file", metavar="PATH",
                        help="read KEY=VALUE lines into the environment, like systemd's "
                             "EnvironmentFile (and like doctor --env-file)")
    flags.add_setting_flags(parser)
    parser.set_defaults(func=run)


def environment(args) -> dict:
    environ = dict(os.environ)
    if getattr(args, "env_file", None):
        environ.update(read_env_file(args.env_file))  # as doctor --env-file does
    return environ


def run(args) -> int:
    from tunnel_client.service import Service

    cfg = config.load(flags.collect(args), environment(args))
    setup = LogSetup(cfg.log.level, cfg.log.format, cfg.log.file,
                     ring_capacity=cfg.admin_ui.log_buffer_events)
    service = Service(cfg, setup)
    install_signal_handlers(service, setup, args)
    service.start()
    service.wait()
    return service.shutdown()


def install_signal_handlers(service, setup, args=None):
    def stop(signum, frame):
        service.request_stop()

    def hangup(signum, frame):
        # Off the signal frame: loading the configuration logs and takes locks.
        threading.Thread(target=reload, args=(service, setup, args), name="reload",
                         daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, hangup)


def reload(service, setup, args):
    """SIGHUP (systemctl reload): reopen the log file, apply the log settings that changed,
    and name every other change that needs a restart."""
    from tunnel_client.config import reload as plan
    from tunnel_client.errors import ConfigError

    setup.reopen()
    if args is None:
        return
    try:
        new = config.load(flags.collect(args), environment(args))
    except ConfigError as exc:
        log.error("reload: configuration not reloaded: %s" % exc)
        return
    old = service.cfg
    live, restart = plan.plan(old, new)
    if "log.level" in live:
        service.set_log_level(new.log.level)
    if "log.file" in live:
        if setup.file_handler is not None and new.log.file:
            setup.file_handler.path = new.log.file
            setup.reopen()
        else:
            restart.append("log.file (between stderr and a file)")
            live.remove("log.file")
    if "log.access" in live:
        for worker in service.workers:
            worker.access_log = new.log.access
    log.info("reload: %s" % ("applied %s" % ", ".join(live) if live else "no live change"),
             extra={"applied": live, "needs_restart": restart})
    if restart:
        log.warning("reload: changed settings need a restart to take effect: %s"
                    % ", ".join(restart), extra={"needs_restart": restart})
