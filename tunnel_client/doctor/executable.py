"""Will a stdio MCP command start? PATH lookup, the exec bit, shebang interpreters, and
common wrappers (env, sh -c, python script.py), a few levels deep."""

import os
import shutil
from typing import List, Mapping, Sequence, Tuple

from tunnel_client.config.values import split_command

MAX_DEPTH = 4
_SHELLS = ("sh", "bash", "dash", "zsh", "ksh")


class Unresolvable(Exception):
    """The command cannot start; the message says why and what to fix."""


def resolve(argv: Sequence[str], environ: Mapping[str, str], depth: int = 0) -> List[str]:
    """Evidence lines for a command that will start; raises Unresolvable otherwise."""
    if not argv:
        raise Unresolvable("command is empty")
    if depth > MAX_DEPTH:
        return ["stopped resolving after %d wrapper levels" % MAX_DEPTH]
    program = argv[0]
    path = _locate(program, environ)
    evidence = ["%s -> %s" % (program, path)]
    interpreter = _shebang(path)
    if interpreter:
        evidence.append("%s is a script for %s" % (path, " ".join(interpreter)))
        evidence += resolve(interpreter, environ, depth + 1)
    name = os.path.basename(path)
    args = list(argv[1:])
    if name == "env":
        while args and (args[0].startswith("-") or "=" in args[0]):
            args.pop(0)
        if args:
            evidence += resolve(args, environ, depth + 1)
    elif name in _SHELLS and "-c" in args:
        inner = args[args.index("-c") + 1:] if args.index("-c") + 1 < len(args) else []
        if inner:
            try:
                evidence += resolve(split_command(inner[0]), environ, depth + 1)
            except ValueError:
                evidence.append("cannot split the -c script; not checked further")
    elif name.startswith("python") and args and not args[0].startswith("-"):
        script = args[0]
        if not os.path.isfile(script):
            raise Unresolvable("script %s (run by %s) does not exist" % (script, path))
        evidence.append("script %s exists" % script)
    return evidence


def _locate(program: str, environ: Mapping[str, str]) -> str:
    if "/" in program:
        path = program
        if not os.path.exists(path):
            raise Unresolvable("%s does not exist" % path)
    else:
        found = shutil.which(program, path=environ.get("PATH", os.defpath))
        if found is None:
            raise Unresolvable("executable %r not found on PATH (%s)" % (
                program, environ.get("PATH", os.defpath)))
        path = found
    if os.path.isdir(path):
        raise Unresolvable("%s is a directory, not a program" % path)
    if not os.access(path, os.X_OK):
        raise Unresolvable("%s is not executable (chmod +x, or run it through its "
                           "interpreter)" % path)
    return path


def _shebang(path: str) -> List[str]:
    try:
        with open(path, "rb") as handle:
            head = handle.read(256)
    except OSError:
        return []
    if not head.startswith(b"#!"):
        return []
    line = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    return line.split() if line else []


def check(command_argv: Sequence[str], environ: Mapping[str, str]) -> Tuple[bool, List[str]]:
    try:
        return True, resolve(command_argv, environ)
    except Unresolvable as exc:
        return False, [str(exc)]
