"""argparse flags derived from the settings registry, and back into loader input."""

import argparse
from typing import Dict, Iterable, Optional

from tunnel_client.config.settings import SETTINGS, Setting

_PREFIX = "flag:"


def _help(s: Setting) -> str:
    parts = [s.doc]
    if s.env:
        parts.append("[env %s]" % s.env)
    if s.default not in (None, "", (), False) and not s.secret:
        parts.append("[default %s]" % _default_text(s))
    return " ".join(parts).replace("%", "%%")


def _default_text(s: Setting) -> str:
    if s.default_doc:
        return s.default_doc
    if isinstance(s.default, float) and "DURATION" in (s.metavar or ""):
        from tunnel_client.config.values import format_duration
        return format_duration(s.default)
    return str(s.default)


def add_setting_flags(parser: argparse.ArgumentParser,
                      settings: Optional[Iterable[Setting]] = None, groups: bool = True):
    """One flag per setting (plus hidden back-compat aliases), grouped by section."""
    sections: Dict[str, argparse._ArgumentGroup] = {}
    for s in settings or SETTINGS:
        if not s.flag:
            continue
        title = (s.section or ("selection" if not s.yaml else "general")).replace("_", " ")
        target = parser
        if groups:
            target = sections.get(title) or parser.add_argument_group(title)
            sections[title] = target
        kwargs = {"dest": _PREFIX + s.flag, "default": None, "help": _help(s)}
        if s.schema.get("type") == "boolean":
            kwargs.update(nargs="?", const="true", metavar="BOOL")
        elif s.multiple:
            kwargs.update(action="append", metavar=s.metavar or "VALUE")
        else:
            kwargs.update(metavar=s.metavar or "VALUE")
        target.add_argument(s.flag, **kwargs)
        for alias in s.aliases:
            alias_kwargs = dict(kwargs, dest=_PREFIX + alias, help=argparse.SUPPRESS)
            parser.add_argument(alias, **alias_kwargs)


def collect(args: argparse.Namespace) -> Dict[str, object]:
    """{flag name: value} for the loader, None where the flag was not given."""
    return {key[len(_PREFIX):]: value for key, value in vars(args).items()
            if key.startswith(_PREFIX)}
