"""Run a command the way the systemd unit (or cron) would: as the service user, with a
clean environment plus the variables from an EnvironmentFile.

Usage: as_service.py [--user NAME] [--env-file PATH] [--set KEY=VALUE]... -- CMD [ARG]...

The env file is parsed like systemd does for simple files: KEY=VALUE lines, '#' and ';'
comments, optional surrounding quotes. Secrets stay in files and the environment, never
in argv.
"""

import argparse
import os
import pwd
import sys


def read_env_file(path):
    values = {}
    with open(path, encoding="utf-8") as handle:
        for raw in handle:
            line = raw.strip()
            if not line or line[0] in "#;" or "=" not in line:
                continue
            key, value = line.split("=", 1)
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            values[key.strip()] = value
    return values


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--user", default="tunnel-client")
    parser.add_argument("--env-file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    account = pwd.getpwnam(args.user)
    environ = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
               "HOME": account.pw_dir, "USER": account.pw_name, "LOGNAME": account.pw_name}
    if args.env_file:  # read as root, like PID 1 does
        environ.update(read_env_file(args.env_file))
    for item in args.set:
        key, value = item.split("=", 1)
        environ[key] = value
    os.initgroups(account.pw_name, account.pw_gid)
    os.setgid(account.pw_gid)
    os.setuid(account.pw_uid)
    os.umask(0o027)  # the unit's UMask=
    os.chdir(account.pw_dir if os.path.isdir(account.pw_dir) else "/")
    os.execvpe(command[0], command, environ)


if __name__ == "__main__":
    main(sys.argv[1:])
