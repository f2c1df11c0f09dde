"""``tunnel-client audit``: verify a trail offline; follow it readably."""

import json
import os
import sys
import time

from tunnel_client import config
from tunnel_client.errors import ConfigError, StartupError
from tunnel_client.policy.audit import read_key
from tunnel_client.policy.verify import Unreadable, parse_head, verify

EXIT_OK, EXIT_BROKEN, EXIT_UNKNOWN = 0, 2, 3  # Nagios-style, like doctor


def add_parser(sub):
    parser = sub.add_parser("audit", help="verify or follow the audit trail",
                            description="The hash-chained audit trail (docs/policy.md).")
    commands = parser.add_subparsers(dest="audit_command", metavar="COMMAND")
    parser.set_defaults(func=lambda args: parser.print_help() or 0)
    check = commands.add_parser(
        "verify", help="check a trail's chain and seals; report the first break",
        description="Exit 0 when the trail is intact, 2 when it was tampered with (the "
                    "first break is named with FILE:LINE), 3 when it cannot be checked.")
    check.add_argument("files", nargs="+", metavar="FILE",
                       help="trail files, rotated ones included, in any order (.gz read)")
    check.add_argument("--key-file", help="HMAC key (default: audit.key_file of the config)")
    check.add_argument("--head", help="chain head SEQ:DIGEST from /api/audit or syslog; "
                                      "catches a truncated trail")
    check.add_argument("--config", help="configuration file for the key file default")
    check.set_defaults(func=run_verify)
    tail = commands.add_parser("tail", help="print the last records readably")
    tail.add_argument("file", nargs="?", help="trail file (default: audit.file of the config)")
    tail.add_argument("-n", "--lines", type=int, default=20)
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new records")
    tail.add_argument("--json", action="store_true", help="print the raw records")
    tail.add_argument("--config", help="configuration file for the file default")
    tail.set_defaults(func=run_tail)


def _from_config(args, key):
    cfg = config.load({"--config": args.config}, os.environ, require_runtime=False)
    return cfg.value(key)


def run_verify(args) -> int:
    try:
        key_file = args.key_file or _from_config(args, "audit.key_file")
        if not key_file:
            print("UNKNOWN: no key: give --key-file or set audit.key_file", file=sys.stderr)
            return EXIT_UNKNOWN
        key = read_key(key_file)
        head = parse_head(args.head) if args.head else None
        verdict = verify(args.files, key, head)
    except (Unreadable, StartupError, ConfigError, ValueError) as exc:
        print("UNKNOWN: %s" % exc)
        return EXIT_UNKNOWN
    print(verdict.summary())
    return EXIT_OK if verdict.ok else EXIT_BROKEN


def readable(record: dict) -> str:
    if record.get("type") == "link":
        return "%s #%s link (%s) prev %s" % (record.get("ts"), record.get("seq"),
                                             record.get("reason"), str(record.get("prev"))[:12])
    target = record.get("name") or ""
    outcome = record.get("status")
    if record.get("rpc_error") is not None:
        outcome = "%s rpc_error=%s" % (outcome, record["rpc_error"])
    if record.get("failure"):
        outcome = "%s failure=%s" % (outcome, record["failure"])
    rule = " rule=%s" % record["rule"] if record.get("rule") else ""
    return "%s #%s %s %s %s %s%s -> %s %sms" % (
        record.get("ts"), record.get("seq"), record.get("channel"),
        record.get("method") or record.get("command_type"), target,
        record.get("decision"), rule, outcome, record.get("duration_ms"))


def _show(line: bytes, raw: bool):
    line = line.strip()
    if not line:
        return
    if raw:
        print(line.decode("utf-8", "replace"))
        return
    try:
        print(readable(json.loads(line)))
    except ValueError:
        print("(not a record) %s" % line[:200].decode("utf-8", "replace"))
    sys.stdout.flush()


def run_tail(args) -> int:
    path = args.file or _from_config(args, "audit.file")
    if not path:
        raise ConfigError("no audit file: give FILE or set audit.file")
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise ConfigError("cannot read %s: %s" % (path, exc.strerror or exc)) from None
    with handle:
        for line in handle.read().splitlines()[-max(0, args.lines):]:
            _show(line, args.json)
        if not args.follow:
            return 0
        inode = os.fstat(handle.fileno()).st_ino
        pending = b""
        while True:
            chunk = handle.read()
            if chunk:
                pending += chunk
                *done, pending = pending.split(b"\n")
                for line in done:
                    _show(line, args.json)
                continue
            try:
                if os.stat(path).st_ino != inode:  # rotated: follow the new file
                    handle.close()
                    handle = open(path, "rb")
                    inode = os.fstat(handle.fileno()).st_ino
                    continue
            except OSError:
                pass
            time.sleep(0.5)  # follow mode waits for the writer, like tail -f
