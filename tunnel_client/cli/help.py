"""``tunnel-client help [TOPIC|COMMAND]``: operator topics shipped as plain text."""

import os
import sys

from tunnel_client.errors import ConfigError

TOPICS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "topics")


def topics():
    return sorted(name[:-4] for name in os.listdir(TOPICS_DIR) if name.endswith(".txt"))


def add_parser(sub):
    parser = sub.add_parser("help", help="help topics: %s" % ", ".join(topics()),
                            description="Show a help topic or a command's help.")
    parser.add_argument("topic", nargs="?", help="a topic or a command")
    parser.set_defaults(func=run)


def run(args) -> int:
    from tunnel_client.cli import build_parser

    if not args.topic:
        build_parser().print_help()
        print("\nhelp topics: %s" % ", ".join(topics()))
        return 0
    path = os.path.join(TOPICS_DIR, args.topic + ".txt")
    if args.topic in topics():
        with open(path) as handle:
            sys.stdout.write(handle.read())
        return 0
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    if args.topic in commands:
        commands[args.topic].print_help()
        return 0
    raise ConfigError('unknown help topic "%s"; available topics: %s' % (
        args.topic, ", ".join(topics())))
