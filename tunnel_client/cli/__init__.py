"""The front door: argparse, one module per subcommand, exit codes. No logic lives here."""

import argparse
import sys

from tunnel_client import __version__
from tunnel_client.errors import ConfigError, StartupError, TunnelClientError


def _version_text() -> str:
    return "tunnel-client %s (python %s)" % (__version__, sys.version.split()[0])


def build_parser() -> argparse.ArgumentParser:
    from tunnel_client.cli import (audit, configcmd, dev, doctor, health, help, init, policy,
                                   profiles, run)

    parser = argparse.ArgumentParser(
        prog="tunnel-client",
        description="Secure MCP Tunnel client: long-polls the tunnel control plane and "
                    "forwards MCP JSON-RPC to a private MCP server.",
        epilog="Run `tunnel-client COMMAND --help` for a command's flags.")
    parser.add_argument("--version", action="version", version=_version_text())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (run, doctor, health, configcmd, init, profiles, policy, audit, help, dev):
        module.add_parser(sub)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--version"]:
        # Monitoring scripts call this often: answer before importing every subcommand.
        print(_version_text())
        return 0
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    daemon = args.command == "run"
    try:
        return args.func(args) or 0
    except ConfigError as exc:
        prefix = "configure tunnel-client" if daemon else "tunnel-client %s" % args.command
        print("%s: %s" % (prefix, exc), file=sys.stderr)
        return 1
    except StartupError as exc:
        prefix = "start tunnel-client" if daemon else "tunnel-client %s" % args.command
        print("%s: %s" % (prefix, exc), file=sys.stderr)
        return 1
    except TunnelClientError as exc:
        print("tunnel-client %s: %s" % (args.command, exc), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
