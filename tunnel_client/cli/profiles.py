"""``tunnel-client profiles``: list, add, show and edit profiles; list and show samples."""

import json
import os
import re
import shlex
import subprocess
import tempfile

from tunnel_client.config import profiles, samples
from tunnel_client.errors import ConfigError


def add_parser(sub):
    parser = sub.add_parser("profiles", help="list, add, show and edit profiles",
                            description="Profiles are YAML files in the profile directory "
                                        "($XDG_CONFIG_HOME/tunnel-client by default).")
    parser.add_argument("--profile-dir", help="profile directory")
    commands = parser.add_subparsers(dest="profiles_command", metavar="COMMAND")
    parser.set_defaults(func=lambda args: parser.print_help() or 0)
    listing = commands.add_parser("list", help="list profiles")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=run_list)
    add = commands.add_parser("add", help="add a profile from a file or a sample")
    add.add_argument("name")
    source = add.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-file", help="copy this YAML file (validated)")
    source.add_argument("--sample", choices=sorted(samples.SAMPLES))
    add.add_argument("--tunnel-id")
    add.add_argument("--mcp-server-url")
    add.add_argument("--mcp-command")
    add.add_argument("--force", action="store_true")
    add.set_defaults(func=run_add)
    show = commands.add_parser("show", help="print a profile (literal keys redacted)")
    show.add_argument("name")
    show.set_defaults(func=run_show)
    edit = commands.add_parser("edit", help="edit in $VISUAL/$EDITOR; saved only if valid")
    edit.add_argument("name")
    edit.set_defaults(func=run_edit)
    sample_parser = commands.add_parser("samples", help="the built-in samples")
    sample_commands = sample_parser.add_subparsers(dest="samples_command", metavar="COMMAND")
    sample_parser.set_defaults(func=lambda args: sample_parser.print_help() or 0)
    sample_commands.add_parser("list", help="list samples").set_defaults(func=run_samples_list)
    sample_show = sample_commands.add_parser("show", help="describe a sample and print it")
    sample_show.add_argument("name")
    sample_show.set_defaults(func=run_samples_show)


def _dir(args) -> str:
    return profiles.profile_dir(args.profile_dir, os.environ)


def run_list(args) -> int:
    found = profiles.list_profiles(_dir(args))
    if args.json:
        print(json.dumps([{"name": n, "path": p} for n, p in found]))
    elif not found:
        print("No profiles found in %s" % _dir(args))
    else:
        for name, path in found:
            print("%s\t%s" % (name, path))
    return 0


def run_add(args) -> int:
    if args.from_file:
        try:
            with open(args.from_file) as handle:
                text = handle.read()
        except OSError as exc:
            raise ConfigError("cannot read %s: %s" % (args.from_file, exc.strerror)) from None
    else:
        text = samples.render(args.sample, {
            "profile": args.name, "tunnel_id": args.tunnel_id or "tunnel_" + "0" * 32,
            "mcp_command": args.mcp_command, "mcp_server_url": args.mcp_server_url})
    note = profiles.validate_text(text, os.environ)
    path = profiles.write_profile(_dir(args), args.name, text, args.force)
    print("Added profile %s at %s" % (args.name, path))
    if note:
        print("Note: %s" % note)
    return 0


_LITERAL_KEY = re.compile(r"^(\s*api_key:\s*)(?![\"']?(?:env|file):)(\S.*)$", re.I | re.M)


def _path(args) -> str:
    profiles.check_profile_name(args.name)
    path = os.path.join(_dir(args), args.name + ".yaml")
    if not os.path.exists(path):
        raise ConfigError('profile "%s" not found in %s; `tunnel-client profiles list` shows '
                          "what exists" % (args.name, _dir(args)))
    return path


def run_show(args) -> int:
    with open(_path(args)) as handle:
        text = handle.read()
    print(_LITERAL_KEY.sub(lambda m: m.group(1) + '"[REDACTED]"', text), end="")
    return 0


def run_edit(args) -> int:
    path = _path(args)
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not editor:
        raise ConfigError("set VISUAL or EDITOR to edit profiles")
    with open(path) as handle:
        original = handle.read()
    fd, tmp = tempfile.mkstemp(prefix=args.name + "-", suffix=".yaml")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(original)
        if subprocess.call(shlex.split(editor) + [tmp]) != 0:
            raise ConfigError("editor exited with an error; not saving %s" % path)
        with open(tmp) as handle:
            text = handle.read()
    finally:
        os.unlink(tmp)
    if text == original:
        print("No changes to %s" % path)
        return 0
    try:
        profiles.validate_text(text, os.environ)
    except ConfigError as exc:
        raise ConfigError("profile did not validate; not saving %s: %s" % (path, exc)) from None
    profiles.write_profile(_dir(args), args.name, text, force=True)
    print("Saved %s" % path)
    return 0


def run_samples_list(args) -> int:
    for name in sorted(samples.SAMPLES):
        print("%s\t%s" % (name, samples.SAMPLES[name].summary))
    return 0


def run_samples_show(args) -> int:
    sample = samples.SAMPLES.get(args.name)
    if sample is None:
        raise ConfigError('unknown sample "%s"; run `tunnel-client profiles samples list`'
                          % args.name)
    print("Sample:   %s" % sample.name)
    print("Summary:  %s" % sample.summary)
    print("Use when: %s" % sample.use_when)
    print("Required: %s" % ", ".join(sample.required))
    print("Optional: %s" % ", ".join(sample.optional))
    print("Notes:    %s" % sample.notes)
    print()
    print(samples.render(sample.name, {"tunnel_id": "tunnel_" + "0" * 32}), end="")
    return 0
