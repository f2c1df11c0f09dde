"""``tunnel-client health``: is a running daemon live and ready? Exit 0 yes, 2 no.

Made for monitoring scripts: standard library only, half a second per request, one line
per check, ``--json`` for machines.
"""

import json
import os
import sys

from tunnel_client.admin import client
from tunnel_client.errors import ConfigError


# What the packages configure (conf/config.yaml: health.url_file), so `tunnel-client
# health` with no arguments checks the packaged daemon.
DEFAULT_URL_FILE = "/run/tunnel-client/admin.url"
DEFAULT_PORT = 8080


def add_parser(sub):
    parser = sub.add_parser(
        "health", help="check a running daemon's /healthz and /readyz (exit 0 ok, 2 not)",
        description="Locate a running tunnel-client by one of --url, --url-file or --port "
                    "(default: the packaged %s, else port %d) and check its liveness and "
                    "readiness. Exit codes: 0 healthy, 2 not healthy, 1 usage error."
                    % (DEFAULT_URL_FILE, DEFAULT_PORT))
    parser.add_argument("--url", help="admin base URL (or its /healthz or /readyz URL)")
    parser.add_argument("--url-file", help="file written by --health.url-file")
    parser.add_argument("--port", type=int, help="admin port on 127.0.0.1")
    parser.add_argument("--pid", type=int, help="also check this process is alive")
    parser.add_argument("--pid-file", help="also check the process in this pid file")
    parser.add_argument("--require-control-plane-poll", action="store_true",
                        help="also require at least one successful control-plane poll")
    parser.add_argument("--timeout", type=float, default=0.5, help="seconds per request")
    parser.add_argument("--json", action="store_true", help="print one JSON report")
    parser.set_defaults(func=run)


def locate(args):
    given = [name for name in ("url", "url_file", "port") if getattr(args, name) is not None]
    if len(given) > 1:
        raise ConfigError("choose one of --url, --url-file, or --port")
    if not given:
        if os.path.exists(DEFAULT_URL_FILE):
            args.url_file = DEFAULT_URL_FILE
        else:
            args.port = DEFAULT_PORT
    if args.url is not None:
        base = args.url.rstrip("/")
        for suffix in ("/healthz", "/readyz", "/ui"):
            if base.endswith(suffix):
                base = base[:-len(suffix)]
        return {"kind": "url", "url": args.url}, base
    if args.port is not None:
        return {"kind": "port", "port": args.port}, "http://127.0.0.1:%d" % args.port
    try:
        with open(args.url_file) as handle:
            base = handle.read().strip()
    except OSError as exc:
        return {"kind": "url_file", "url_file": args.url_file,
                "error": "cannot read %s: %s" % (args.url_file, exc.strerror or exc)}, None
    return {"kind": "url_file", "url_file": args.url_file}, base


def process_check(args):
    pid, pid_file = args.pid, args.pid_file
    if pid is None and pid_file is None:
        return None
    report = {"pid": pid, "pid_file": pid_file, "running": False, "error": None}
    if pid is None:
        try:
            with open(pid_file) as handle:
                pid = report["pid"] = int(handle.read().strip())
        except (OSError, ValueError) as exc:
            report["error"] = "cannot read pid file %s: %s" % (pid_file, exc)
            return report
    try:
        os.kill(pid, 0)
        report["running"] = True
    except ProcessLookupError:
        report["error"] = "process %d is not running" % pid
    except PermissionError:
        report["running"] = True  # it exists; it belongs to another user
    return report


def run(args) -> int:
    locator, base = locate(args)
    report = {"locator": dict(locator, resolved_base_url=base), "base_url": base,
              "ui_url": base + "/ui" if base else None}
    checks_ok = base is not None
    if base is not None:
        for name in ("healthz", "readyz"):
            answer = client.get(base, "/" + name, args.timeout)
            report[name] = {"url": answer.url, "ok": answer.ok, "status": answer.status,
                            "body": answer.body, "error": answer.error}
            checks_ok = checks_ok and answer.ok
        if args.require_control_plane_poll:
            answer = client.get(base, "/metrics", max(args.timeout, 2.0), limit=1 << 20)
            value = client.metric_value(answer.body, "commands_poll_last_successful_"
                                        "timestamp_seconds") if answer.ok else None
            poll_ok = bool(value and value > 0)
            report["control_plane_poll"] = {"url": answer.url, "value": value, "ok": poll_ok,
                                            "error": answer.error or (
                                                None if poll_ok else "no successful poll yet")}
            checks_ok = checks_ok and poll_ok
    process = process_check(args)
    if process is not None:
        report["process"] = process
        checks_ok = checks_ok and process["running"]
    report["result"] = "ok" if checks_ok else "fail"
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_text(report)
    return 0 if checks_ok else 2


def _line(label, item, detail):
    state = "PASS" if item.get("ok") else "FAIL"
    parts = [state, item.get("url", "")]
    if item.get("status") is not None:
        parts.append("HTTP %d" % item["status"])
    parts.append(detail if detail else (item.get("error") or ""))
    print("%-19s%s" % (label + ":", " | ".join(p for p in parts if p)))


def _print_text(report):
    locator = report["locator"]
    print("Locator:           %s" % (locator.get("url") or locator.get("url_file") or
                                     "port %s" % locator.get("port")))
    if locator.get("error"):
        print("Error:             %s" % locator["error"])
    if report["base_url"]:
        print("Base URL:          %s" % report["base_url"])
        print("UI URL:            %s" % report["ui_url"])
    for name, label in (("healthz", "Healthz"), ("readyz", "Readyz")):
        if name in report:
            _line(label, report[name], report[name]["body"])
    if "control_plane_poll" in report:
        poll = report["control_plane_poll"]
        _line("Control-plane poll", poll, "last_success_unix_seconds=%s" % poll["value"]
              if poll["ok"] else poll["error"])
    if "process" in report:
        proc = report["process"]
        detail = "pid=%s" % proc["pid"] + (" | pid_file=%s" % proc["pid_file"]
                                           if proc["pid_file"] else "")
        print("%-19s%s | %s" % ("Process:", "PASS" if proc["running"] else "FAIL",
                                proc["error"] or detail))
    print("Result:            %s" % ("OK" if report["result"] == "ok" else "FAIL"))
    sys.stdout.flush()
