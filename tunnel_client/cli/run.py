"""``tunnel-client run``: the daemon."""

import logging
import os
import signal
import sys
from typing import NoReturn

from tunnel_client import config
from tunnel_client.cli import flags
from tunnel_client.config.envfile import read_env_file
from tunnel_client.observe.logs import LogSetup


def add_parser(sub):
    parser = sub.add_parser(
        "run", help="run the tunnel client daemon",
        description="Long-poll the control plane and forward MCP commands to the configured "
                    "MCP server(s). Settings come from flags, then the environment, then the "
                    "YAML file, then defaults. SIGHUP reopens the log and audit files and "
                    "applies the settings that can change live (log, policy, roots).")
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
    service = Service(cfg, setup,
                      reload_config=lambda: config.load(flags.collect(args), environment(args)))
    install_signal_handlers(service, setup)
    service.start()
    service.wait()
    exit_now(service.shutdown())


def exit_now(code: int) -> NoReturn:
    """Leave once the stop is done and logged, without the interpreter's teardown: on a
    busy machine it adds hundreds of milliseconds to every stop, and a daemon thread still
    running (a poll left opening its connection, a housekeeping job) can make it abort
    while that thread writes a log line."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def install_signal_handlers(service, setup):
    def stop(signum, frame):
        service.request_stop(signal.Signals(signum).name)

    def hangup(signum, frame):
        setup.reopen()  # logrotate
        service.reload()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, hangup)
