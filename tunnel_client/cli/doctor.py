"""``tunnel-client doctor``: preflight and cron monitoring with Nagios exit codes.

Exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (doctor itself could not run, or another
doctor run holds the lock). The first line is ``TUNNEL-CLIENT <STATUS> - summary | perf``.
"""

import errno
import fcntl
import os
import sys

from tunnel_client.cli import flags
from tunnel_client.config.envfile import read_env_file
from tunnel_client.errors import ConfigError


def add_parser(sub):
    parser = sub.add_parser(
        "doctor", help="check configuration, MCP target, control plane and daemon "
                       "(Nagios exit codes)",
        description="Check that tunnel-client can work: the configuration, the MCP target, "
                    "the control plane live (DNS, TCP, proxy CONNECT, TLS, the key), "
                    "certificates, proxies, and a running daemon's readiness. Takes the same "
                    "configuration flags as run. Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, "
                    "3 UNKNOWN.")
    own = parser.add_argument_group("doctor")
    own.add_argument("--env-file", metavar="PATH",
                     help="read KEY=VALUE lines first, like systemd's EnvironmentFile (use "
                          "the daemon's: /etc/tunnel-client/tunnel-client.env)")
    own.add_argument("--offline", action="store_true",
                     help="skip the live control-plane check")
    own.add_argument("--explain", action="store_true",
                     help="explain every check that is not OK: why, evidence, next steps")
    own.add_argument("--json", action="store_true", help="print the whole report as JSON")
    own.add_argument("--quiet", action="store_true",
                     help="print nothing when everything is OK (for cron)")
    own.add_argument("--timeout", type=float, default=15.0, metavar="SECONDS",
                     help="overall bound on every network step [default %(default)s]")
    own.add_argument("--cert-warn-days", type=int, default=30, metavar="DAYS",
                     help="warn when a certificate expires within this many days "
                          "[default %(default)s]")
    own.add_argument("--url", metavar="URL", help="a running daemon's admin base URL")
    own.add_argument("--url-file", metavar="PATH", help="file holding that URL")
    own.add_argument("--require-daemon", action="store_true",
                     help="a daemon that is not running is CRITICAL (for cron)")
    own.add_argument("--start-check", choices=("auto", "always", "never"), default="auto",
                     help="start a stdio MCP server for real (spawn, initialize, stop): auto "
                          "does it when no daemon answers [default %(default)s]")
    own.add_argument("--lock-file", metavar="PATH",
                     help="lock against overlapping runs [default: in $XDG_RUNTIME_DIR or "
                          "/tmp]")
    flags.add_setting_flags(parser)
    parser.set_defaults(func=run)


def _lock_path(args) -> str:
    if args.lock_file:
        return args.lock_file
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return os.path.join(runtime, "tunnel-client-doctor.lock")
    return "/tmp/tunnel-client-doctor.%d.lock" % os.getuid()


def _unknown(message: str) -> int:
    print("TUNNEL-CLIENT UNKNOWN - %s" % message)
    return 3


def run(args) -> int:
    from tunnel_client import doctor
    from tunnel_client.doctor.report import use_colour

    environ = dict(os.environ)
    if args.env_file:
        try:
            environ.update(read_env_file(args.env_file))
        except ConfigError as exc:
            return _unknown(str(exc))
    path = _lock_path(args)
    try:
        lock = open(path, "a")
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return _unknown("another doctor run holds %s; skipped" % path)
        return _unknown("cannot open lock file %s: %s" % (path, exc.strerror or exc))
    try:
        options = doctor.Options(
            flags.collect(args), environ, offline=args.offline, timeout=args.timeout,
            cert_warn_days=args.cert_warn_days, daemon_url=args.url,
            daemon_url_file=args.url_file, require_daemon=args.require_daemon,
            start_check=args.start_check)
        try:
            report = doctor.run(options)
        except Exception as exc:  # doctor's own failure must read UNKNOWN, not a traceback
            return _unknown("doctor could not run: %s: %s" % (type(exc).__name__, exc))
    finally:
        lock.close()
    if args.quiet and report.exit_code == 0:
        return 0
    if args.json:
        print(report.as_json())
    else:
        print(report.text(explain=args.explain, colour=use_colour(sys.stdout)))
    return report.exit_code
