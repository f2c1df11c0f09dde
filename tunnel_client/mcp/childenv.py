"""The environment a stdio MCP server is started with: the daemon's, minus its secrets.

A child is someone else's code; it gets no key it was not explicitly given. A variable goes
when its name is one a secret was read from (``CONTROL_PLANE_API_KEY``, ``MY_KEY`` behind
``env:MY_KEY``, ``MCP_EXTRA_HEADERS``...) or when its value holds a secret the daemon holds,
compared as written, trimmed, and inside a longer value (a proxy URL with a password, a
header list) - a Kubernetes secret file often ends in a newline the config trimmed away.
"""

from typing import Dict, Iterable, Mapping, Sequence

from tunnel_client.config.secrets import WELL_KNOWN_ENV

SECRET_ENV = WELL_KNOWN_ENV
MIN_CONTAINED = 6  # shorter secrets only match a whole value: "1" must not empty PATH


def child_environment(environ: Mapping[str, str], secret_values: Sequence[str] = (),
                      inherit_secrets: bool = False,
                      secret_names: Iterable[str] = ()) -> Dict[str, str]:
    """The daemon's environment minus the secrets it holds, unless the operator opts in."""
    if inherit_secrets:
        return dict(environ)
    names = set(SECRET_ENV) | set(secret_names)
    exact = {value.strip() for value in secret_values if value and value.strip()}
    contained = [value for value in exact if len(value) >= MIN_CONTAINED]
    return {name: value for name, value in environ.items()
            if name not in names and not _holds_secret(value, exact, contained)}


def _holds_secret(value: str, exact, contained) -> bool:
    if value.strip() in exact:
        return True
    return any(secret in value for secret in contained)
