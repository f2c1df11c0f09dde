"""``tunnel-client config check`` (like ``nginx -t``) and ``config show`` (the effective
configuration, each value with its source, secrets redacted)."""

import json

from tunnel_client.cli import flags


def add_parser(sub):
    parser = sub.add_parser(
        "config", help="check the configuration or show the effective values",
        description="check: load the configuration exactly as run would and report every "
                    "problem (exit 0 valid, 1 not). show: every setting's effective value and "
                    "where it came from (flag, env, file:line, default); secrets redacted.")
    actions = parser.add_subparsers(dest="config_action", metavar="ACTION")
    for name, func, text in (("check", check, "validate like run (exit 0 ok, 1 not)"),
                             ("show", show, "the effective configuration with sources")):
        action = actions.add_parser(name, help=text)
        action.add_argument("--env-file", metavar="PATH",
                            help="read KEY=VALUE lines first, like the daemon's "
                                 "EnvironmentFile")
        if name == "show":
            action.add_argument("--json", action="store_true", help="print JSON")
        flags.add_setting_flags(action)
        action.set_defaults(func=func)
    parser.set_defaults(func=lambda args: parser.print_help() or 1)


def _load(args, collect: bool):
    from tunnel_client import config
    from tunnel_client.cli.run import environment
    return config.load(flags.collect(args), environment(args), require_runtime=False,
                       collect=collect)


def check(args) -> int:
    from tunnel_client.config import sources

    from tunnel_client.cli.run import environment
    from tunnel_client.errors import ConfigError

    try:
        cfg = _load(args, collect=True)
    except ConfigError as exc:  # the file itself: list every problem it has
        problems = sources.file_problems(flags.collect(args), environment(args)) or [str(exc)]
        for problem in problems:
            print("tunnel-client config: %s" % problem)
        print("configuration has %d problem%s" % (len(problems),
                                                  "" if len(problems) == 1 else "s"))
        return 1
    problems = []
    for key, message in cfg.problems.items():
        origin = cfg.origins.get(key)
        if origin is not None and origin.source == "yaml":
            message = "%s [%s]" % (message, sources.where(cfg, key))
        problems.append(message)
    if not problems:
        # What run requires beyond each setting parsing (tunnel id, key, main channel).
        from tunnel_client import config
        try:
            config.load(flags.collect(args), environment(args))
        except ConfigError as exc:
            problems.append(str(exc))
    for problem in problems:
        print("tunnel-client config: %s" % problem)
    if problems:
        print("configuration %s has %d problem%s" % (
            cfg.source.describe(), len(problems), "" if len(problems) == 1 else "s"))
        return 1
    print("configuration %s is valid" % cfg.source.describe())
    return 0


def show(args) -> int:
    from tunnel_client.config import export, sources

    cfg = _load(args, collect=True)
    values = export.effective(cfg)
    for key in values:
        values[key]["from"] = sources.where(cfg, key)
    if args.json:
        print(json.dumps({"source": cfg.source.describe(), "settings": values}, indent=2))
        return 0
    print("# effective configuration: %s" % cfg.source.describe())
    width = max(len(key) for key in values)
    for key, item in values.items():
        value = item["value"]
        shown = json.dumps(value) if not isinstance(value, str) else value
        print("%-*s  %s  (%s)" % (width, key, shown if value is not None else "-",
                                  item["from"]))
    for message in cfg.problems.values():
        print("# problem: %s" % message)
    return 0
