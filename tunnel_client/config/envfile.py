"""Read a systemd-style EnvironmentFile (KEY=VALUE lines), so `doctor` sees exactly the
environment systemd gives the daemon."""

import re
from typing import Dict

from tunnel_client.errors import ConfigError

_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")


def read_env_file(path: str) -> Dict[str, str]:
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        raise ConfigError("cannot read env file %s: %s; check the path and that this user "
                          "may read it" % (path, exc.strerror or exc)) from None
    values = {}
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith(("#", ";")):
            continue
        match = _LINE.match(text)
        if not match:
            raise ConfigError("env file %s line %d: expected KEY=VALUE" % (path, number))
        key, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
            if line.strip()[-1] == '"':
                value = value.replace('\\"', '"').replace("\\\\", "\\")
        values[key] = value
    return values
