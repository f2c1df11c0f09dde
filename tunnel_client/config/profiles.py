"""Choosing the configuration file: --config, --profile, --profile-file and their env twins.

Lookup order and messages follow the official Go client.
"""

import os
import re
from dataclasses import dataclass
from typing import Mapping, Optional

from tunnel_client.errors import ConfigError
from tunnel_client.files import write_private

PROFILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

_FLAGS = (("config", "--config", "TUNNEL_CLIENT_CONFIG"),
          ("profile", "--profile", "TUNNEL_CLIENT_PROFILE"),
          ("profile_file", "--profile-file", "TUNNEL_CLIENT_PROFILE_FILE"))


@dataclass(frozen=True)
class ConfigSource:
    """Which file was chosen and how; ``path`` is None for flags/environment only."""

    kind: str  # "none" | "config" | "profile" | "profile_file"
    path: Optional[str] = None
    profile: Optional[str] = None
    selected_by: str = ""

    def describe(self) -> str:
        if self.kind == "none":
            return "flags/environment only"
        if self.kind == "profile":
            return "profile %s (%s)" % (self.profile, self.path)
        return "%s (%s)" % (self.path, self.selected_by)


def check_profile_name(name: str) -> str:
    if not name or "/" in name or "\\" in name or name in (".", "..") or \
            not PROFILE_NAME_RE.match(name):
        raise ConfigError("invalid profile name \"%s\": use letters, numbers, '.', '_' or '-'"
                          % name)
    return name


def _expand(path: str, environ: Mapping[str, str]) -> str:
    home = environ.get("HOME") or os.path.expanduser("~")
    if path == "~":
        return home
    if path.startswith("~/"):
        return os.path.join(home, path[2:])
    return path


def profile_dir(flag_value: Optional[str], environ: Mapping[str, str]) -> str:
    if flag_value is not None:
        if not flag_value.strip():
            raise ConfigError("profile directory is required when --profile-dir is set")
        return _expand(flag_value, environ)
    if environ.get("TUNNEL_CLIENT_PROFILE_DIR", "").strip():
        return _expand(environ["TUNNEL_CLIENT_PROFILE_DIR"].strip(), environ)
    if environ.get("XDG_CONFIG_HOME", "").strip():
        return os.path.join(environ["XDG_CONFIG_HOME"].strip(), "tunnel-client")
    home = environ.get("HOME") or os.path.expanduser("~")
    return os.path.join(home, ".config", "tunnel-client")


DEFAULT_CONFIG = "/etc/tunnel-client/config.yaml"


def select(flags: Mapping[str, Optional[str]], environ: Mapping[str, str]) -> ConfigSource:
    """Apply flag selectors, else environment selectors; each set is mutually exclusive."""
    chosen = [(k, f, flags.get(k)) for k, f, _ in _FLAGS if flags.get(k) is not None]
    if not chosen:
        chosen = [(k, e, environ.get(e)) for k, _, e in _FLAGS if environ.get(e, "").strip()]
    if len(chosen) > 1:
        raise ConfigError("%s and %s are mutually exclusive; choose one way to select the "
                          "configuration" % (chosen[0][1], chosen[1][1]))
    pdir = profile_dir(flags.get("profile_dir"), environ)
    if not chosen:
        # Like nginx or chronyd: the packaged file when present, so `tunnel-client doctor`
        # and `run` on a packaged host need no --config.
        if os.path.isfile(DEFAULT_CONFIG):
            return ConfigSource("config", DEFAULT_CONFIG, selected_by="default path")
        return ConfigSource("none")
    key, label, value = chosen[0]
    value = (value or "").strip()
    if key == "config":
        if not value:
            raise ConfigError("config file path is required when --config is set")
        return ConfigSource("config", _expand(value, environ), selected_by=label)
    if key == "profile":
        if not value:
            raise ConfigError("profile name is required when --profile is set")
        name = check_profile_name(value)
        return ConfigSource("profile", os.path.join(pdir, name + ".yaml"), name, label)
    if not value:
        raise ConfigError("profile file path is required when --profile-file is set")
    if not value.endswith(".yaml"):
        raise ConfigError('profile file "%s" must end with .yaml' % value)
    check_profile_name(os.path.basename(value)[:-len(".yaml")])
    return ConfigSource("profile_file", _expand(value, environ), selected_by=label)


# --- the profile store -------------------------------------------------------------------


def list_profiles(directory: str):
    """[(name, path)] of valid profile files, sorted."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    found = []
    for entry in names:
        if entry.endswith(".yaml") and PROFILE_NAME_RE.match(entry[:-5]):
            found.append((entry[:-5], os.path.join(directory, entry)))
    return found


def validate_text(text: str, environ: Mapping[str, str]) -> Optional[str]:
    """Raise ConfigError when the YAML is not a valid configuration. A reference to an
    environment variable that is not set yet is fine at this point: its name comes back
    as a note for the operator."""
    import tempfile

    from tunnel_client.config.loader import load

    handle = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    try:
        handle.write(text)
        handle.close()
        try:
            load({"--config": handle.name}, dict(environ), require_runtime=False)
        except ConfigError as exc:
            message = str(exc).replace(handle.name, "the profile")
            if 'environment variable "' in message and "is not set" in message:
                return message
            raise ConfigError(message) from None
        return None
    finally:
        os.unlink(handle.name)


def write_profile(directory: str, name: str, text: str, force: bool = False) -> str:
    """Write ``<dir>/<name>.yaml`` mode 0600 in a 0700 directory, atomically; never
    overwrite without ``force``."""
    check_profile_name(name)
    path = os.path.join(directory, name + ".yaml")
    if os.path.exists(path) and not force:
        raise ConfigError('profile "%s" already exists; pass --force to replace it' % name)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    write_private(path, text, prefix="." + name + "-", suffix=".yaml")
    return path
