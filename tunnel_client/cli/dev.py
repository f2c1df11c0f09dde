"""``tunnel-client dev ...``: the local control plane, the MCP stub and a tiny client."""


def add_parser(sub):
    parser = sub.add_parser("dev", help="local control plane, MCP stub server and test client")
    dev_sub = parser.add_subparsers(dest="dev_command", metavar="DEV_COMMAND")
    parser.set_defaults(func=lambda args: parser.print_help() or 0)
    return dev_sub
