"""Where a setting came from, said the way an operator looks for it: ``flag --x``,
``env VAR``, ``/etc/tunnel-client/config.yaml:12``, or ``default``."""

from typing import Any, Dict, List, Mapping, Optional

from tunnel_client.config.settings import SETTINGS


def yaml_line(path: str, key: str) -> Optional[int]:
    """The 1-based line of ``key`` (dotted) in a YAML file, or None."""
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            node = yaml.compose(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, yaml.YAMLError, ValueError):
        return None
    line = None
    for part in key.split("."):
        if node is None or not isinstance(node, yaml.MappingNode):
            return None
        for key_node, value_node in node.value:
            if getattr(key_node, "value", None) == part:
                line, node = key_node.start_mark.line + 1, value_node
                break
        else:
            return None
    return line


def where(cfg, key: str) -> str:
    origin = cfg.origins.get(key)
    if origin is None or origin.source == "default":
        return "default"
    if origin.source == "flag":
        return "flag %s" % origin.label
    if origin.source == "env":
        return "env %s" % origin.label
    path = cfg.source.path or ""
    line = yaml_line(path, key) if path else None
    return "%s:%d (%s)" % (path, line, key) if line else "%s (%s)" % (path, key)


def ignored_empty(environ: Mapping[str, str]) -> List[str]:
    """Setting variables that are set but empty: they count as unset."""
    names = []
    for s in SETTINGS:
        for env in ((s.env,) if s.env else ()) + s.env_fallbacks:
            if env in environ and not environ[env].strip() and env not in names:
                names.append(env)
    return names


def file_problems(flags: Mapping[str, object], environ: Mapping[str, str]) -> List[str]:
    """Every schema problem of the selected YAML file, each with its line where known
    (the loader stops at the first); empty when the file is fine or unreadable."""
    import re

    import yaml

    from tunnel_client.config import profiles, schema, yaml_shape
    from tunnel_client.errors import ConfigError

    try:
        selector: Dict[str, Any] = {"config": flags.get("--config"),
                                    "profile": flags.get("--profile"),
                                    "profile_file": flags.get("--profile-file"),
                                    "profile_dir": flags.get("--profile-dir")}
        source = profiles.select(selector, environ)
        if not source.path:
            return []
        with open(source.path, encoding="utf-8") as handle:
            text = handle.read()
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        # The loader's own refusals (alias bombs, duplicate keys) come before the schema.
        shape = yaml_shape.problem(yaml.compose(text, Loader=loader))
        if shape:
            return ["config file %s: %s" % (source.path, shape)]
        document = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except (ConfigError, OSError, ValueError, yaml.YAMLError):
        return []
    found = []
    for problem in schema.validation_problems(document) if isinstance(document, dict) else []:
        match = re.match(r"(?:unknown key )?([A-Za-z0-9_.]+)", problem)
        line = yaml_line(source.path, match.group(1)) if match else None
        found.append("config file %s%s: %s" % (source.path, ":%d" % line if line else "",
                                               problem))
    return found


# The settings whose source an operator most often needs to know.
KEY_SETTINGS: Dict[str, str] = {
    "control_plane.base_url": "control plane", "control_plane.tunnel_id": "tunnel id",
    "control_plane.api_key": "API key", "mcp.commands": "MCP command",
    "mcp.server_urls": "MCP server URL", "http_proxy": "proxy",
    "control_plane.http_proxy": "control-plane proxy", "ca_bundle": "CA bundle",
}
