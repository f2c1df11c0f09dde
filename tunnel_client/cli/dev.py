"""``tunnel-client dev ...``: the local control plane, dev proxy, MCP stub, test client, demo."""

import json
import os
import sys

from tunnel_client.errors import ConfigError


def add_parser(sub):
    parser = sub.add_parser(
        "dev", help="local control plane, MCP stub server, test client and demo",
        description="Tools for trying tunnel-client on one machine, before opening anything.")
    dev = parser.add_subparsers(dest="dev_command", metavar="DEV_COMMAND")
    parser.set_defaults(func=lambda args: parser.print_help() or 0)
    _relay(dev)
    _proxy(dev)
    _stub(dev)
    _call(dev)
    _demo(dev)


def _relay_flags(parser, listen_default="127.0.0.1:0"):
    parser.add_argument("--listen", default=listen_default, metavar="HOST:PORT",
                        help="where the local control plane listens [default %(default)s]")
    parser.add_argument("--tunnel-id", default="tunnel_22222222222222222222222222222222",
                        help="tunnel id to serve [default %(default)s]")
    parser.add_argument("--response-timeout", default="30s", metavar="DURATION",
                        help="response_timeout stamped on every command; 'none' for no "
                             "deadline [default %(default)s]")
    parser.add_argument("--print-json", action="store_true",
                        help="print the connection details as one JSON object")
    parser.add_argument("--url-file", metavar="PATH",
                        help="also write the connection details as JSON here (mode 0600)")
    parser.add_argument("--allow-remote", action="store_true",
                        help="accept callers whose Host/Origin is not loopback")


def _relay(dev):
    parser = dev.add_parser(
        "relay", help="run the local control plane",
        description="A local stand-in for the tunnel control plane: tunnel-client polls it, "
                    "MCP clients POST to its /v1/mcp/<tunnel id> URL.")
    _relay_flags(parser)
    parser.add_argument("--api-key", metavar="REF",
                        help="runtime key pollers must present, as env:VAR or file:PATH "
                             "[default: a random key, printed]")
    parser.add_argument("--fault", action="append", default=[], metavar="NAME=RATE",
                        help="inject faults, e.g. poll-503=0.1, poll-429=0.05, poll-drop=0.05, "
                             "response-503=0.1, response-404=0.01, redeliver=0.01; "
                             "retry-after=SECONDS sets the 429 Retry-After")
    parser.add_argument("--seed", type=int, help="random seed for faults")
    parser.set_defaults(func=run_relay)


def _make_relay(args, api_key=None):
    from tunnel_client.devtools.relay import Faults, Relay
    from tunnel_client.httpd import split_hostport

    host, port = split_hostport(args.listen)
    rates, retry_after = {}, 1
    for item in getattr(args, "fault", []):
        name, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            raise ConfigError('invalid --fault "%s": expected NAME=RATE such as poll-503=0.1'
                              % item) from None
        if not sep:
            raise ConfigError('invalid --fault "%s": expected NAME=RATE' % item)
        if name == "retry-after":
            retry_after = int(number)
        else:
            rates[name] = number
    timeout = None if args.response_timeout.lower() == "none" else args.response_timeout
    from tunnel_client.wire import parse_response_timeout
    if timeout is not None and parse_response_timeout(timeout) is None:
        raise ConfigError('invalid --response-timeout "%s": use an integer and a unit such as '
                          "30s or 4500ms" % args.response_timeout)
    return Relay(host, port, tunnel_id=args.tunnel_id, api_key=api_key,
                 response_timeout=timeout, allow_remote=args.allow_remote,
                 faults=Faults(rates, retry_after, getattr(args, "seed", None)))


def _publish(args, details: dict, lines):
    if args.url_file:
        fd = os.open(args.url_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(details, handle, indent=2)
            handle.write("\n")
    if args.print_json:
        print(json.dumps(details), flush=True)
    else:
        print("\n".join(lines), flush=True)


def _wait_for_signal(duration=0.0):
    import signal
    import threading

    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    done.wait(duration or None)


def run_relay(args) -> int:
    from tunnel_client.config.values import resolve_secret

    key = None
    if args.api_key:
        try:
            key = resolve_secret(args.api_key, os.environ, require_ref=True)
        except ValueError as exc:
            raise ConfigError("invalid --api-key: %s" % exc) from None
    relay = _make_relay(args, key).start()
    details = relay.describe()
    _publish(args, details, [
        "Local control plane listening.",
        "  Control-plane base URL: %s" % details["control_plane_base_url"],
        "  MCP URL for callers:    %s" % details["mcp_url"],
        "  Tunnel id:              %s" % details["tunnel_id"],
        "  Runtime API key:        %s" % details["api_key"],
        "",
        "Point tunnel-client at it:",
        "  export CONTROL_PLANE_API_KEY=%s" % details["api_key"],
        "  tunnel-client run --control-plane.base-url %s --control-plane.tunnel-id %s \\"
        % (details["control_plane_base_url"], details["tunnel_id"]),
        "      --mcp.command 'tunnel-client dev mcp-stub'",
        "Then call it:  tunnel-client dev call %s tools/list" % details["mcp_url"]])
    _wait_for_signal()
    relay.stop()
    return 0


def _proxy(dev):
    parser = dev.add_parser(
        "proxy", help="local control plane and tunnel-client in one process",
        description="Try an MCP server through the tunnel without any account: starts the "
                    "local control plane and the client together and prints the MCP URL to "
                    "give your MCP client.")
    _relay_flags(parser)
    parser.add_argument("--mcp-command", action="append", default=[], metavar="ENTRY",
                        help="stdio MCP server (same grammar as run --mcp.command)")
    parser.add_argument("--mcp-server-url", action="append", default=[], metavar="ENTRY",
                        help="Streamable HTTP MCP server (same grammar as run --mcp.server-url)")
    parser.add_argument("--profile", help="take the MCP targets and settings from a profile")
    parser.add_argument("--profile-file", help="take them from this profile file")
    parser.add_argument("--profile-dir", help="profile directory")
    parser.add_argument("--health-listen-addr", default="",
                        help="admin listener of the embedded client [default: none]")
    parser.add_argument("--health-url-file", help="write the admin URL here")
    parser.add_argument("--readiness-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="how long to wait for the first poll [default %(default)s]")
    parser.add_argument("--duration", type=float, default=0.0, metavar="SECONDS",
                        help="stop after this long (0 = until a signal)")
    parser.set_defaults(func=run_proxy)


def run_proxy(args) -> int:
    from tunnel_client.devtools.devproxy import DevProxy

    if not (args.mcp_command or args.mcp_server_url or args.profile or args.profile_file):
        raise ConfigError("dev proxy needs an MCP target: --mcp-command, --mcp-server-url, "
                          "--profile or --profile-file")
    proxy = DevProxy(_make_relay(args), args)
    proxy.start()
    details = proxy.describe()
    _publish(args, details, ["MCP URL: %s" % details["mcp_url"]])
    try:
        _wait_for_signal(args.duration)
    finally:
        code = proxy.stop()
    return code


def _stub(dev):
    from tunnel_client.devtools import stub

    parser = dev.add_parser(
        "mcp-stub", help="a small MCP server (stdio, or Streamable HTTP with --listen)",
        description="A standard-library MCP server with echo, uppercase, server_info and count "
                    "(progress) tools, a resource and a prompt.")
    stub.build_parser(parser)
    parser.set_defaults(func=stub.run)


def _call(dev):
    parser = dev.add_parser(
        "call", help="call an MCP server or a tunnel URL from the shell",
        description="Perform the MCP handshake and one request, printing progress and the "
                    "result. Example: tunnel-client dev call URL tools/call "
                    "'{\"name\":\"echo\",\"arguments\":{\"input\":\"hi\"}}'")
    parser.add_argument("url", help="MCP endpoint (a tunnel's /v1/mcp/<id> URL or a server's)")
    parser.add_argument("method", help="JSON-RPC method, e.g. tools/list or tools/call")
    parser.add_argument("params", nargs="?", default="{}", help="params as a JSON object")
    parser.add_argument("--modern", action="store_true",
                        help="use the 2026-07-28 per-request protocol instead of the handshake")
    parser.add_argument("--header", action="append", default=[], metavar="'K: V'",
                        help="extra request header")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    parser.set_defaults(func=run_call)


def run_call(args) -> int:
    import requests

    from tunnel_client.devtools.mcpclient import McpCallError, McpClient

    try:
        params = json.loads(args.params)
    except ValueError as exc:
        raise ConfigError("params must be a JSON object: %s" % exc) from None
    if not isinstance(params, dict):
        raise ConfigError("params must be a JSON object, for example '{\"name\": \"echo\"}'")
    headers = {}
    for item in args.header:
        name, sep, value = item.partition(":")
        if not sep:
            raise ConfigError("invalid --header %r: expected 'Key: Value'" % item)
        headers[name.strip()] = value.strip()
    client = McpClient(args.url, modern=args.modern, headers=headers, timeout=args.timeout)

    def show(note):
        params = note.get("params") or {}
        if note.get("method") == "notifications/progress":
            print("progress %s/%s %s" % (params.get("progress"), params.get("total", "?"),
                                         params.get("message", "")), flush=True)
        else:
            print("notification %s" % json.dumps(note), flush=True)

    try:
        info = client.initialize()
        name = (info.get("serverInfo") or {}).get("name", "(modern server)")
        print("connected: %s" % name, file=sys.stderr)
        result = client.request(args.method, params, on_notification=show,
                                progress=args.method == "tools/call")
        print(json.dumps(result.message.get("result", result.message), indent=2))
        return 0 if "result" in result.message else 1
    except McpCallError as exc:
        print("tunnel-client dev call: %s" % exc, file=sys.stderr)
        return 1
    except requests.RequestException as exc:
        print("tunnel-client dev call: cannot reach %s: %s" % (args.url, exc), file=sys.stderr)
        return 1
    finally:
        client.close()


def _demo(dev):
    parser = dev.add_parser(
        "demo", help="the whole system on this machine, end to end",
        description="Starts the local control plane, tunnel-client run with the stub MCP "
                    "server over stdio, and an MCP session through the tunnel.")
    parser.set_defaults(func=lambda args: __import__(
        "tunnel_client.devtools.demo", fromlist=["run"]).run())
