"""The environment a stdio MCP child starts with: the daemon's, minus the secrets it holds."""

from typing import Dict, Mapping, Sequence

SECRET_ENV = ("CONTROL_PLANE_API_KEY", "OPENAI_API_KEY", "OPENAI_ADMIN_KEY",
              "CLOUDFLARED_TUNNEL_TOKEN")


def child_environment(environ: Mapping[str, str], secret_values: Sequence[str] = (),
                      inherit_secrets: bool = False) -> Dict[str, str]:
    """The daemon's environment minus the keys it holds, unless the operator opts in.

    Besides the well-known variables, any variable holding one of ``secret_values`` goes
    (an API key referenced as ``env:MY_KEY`` lives in MY_KEY).
    """
    if inherit_secrets:
        return dict(environ)
    secrets = {value for value in secret_values if value}
    return {name: value for name, value in environ.items()
            if name not in SECRET_ENV and value not in secrets}
