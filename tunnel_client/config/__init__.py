"""Configuration: the settings registry, sources and precedence, and validation."""

from tunnel_client.config.loader import Config, Origin, load  # noqa: F401
from tunnel_client.config.profiles import ConfigSource  # noqa: F401
from tunnel_client.config.values import BindingSpec, HeaderList, ProxySetting  # noqa: F401

__all__ = ["BindingSpec", "Config", "ConfigSource", "HeaderList", "Origin", "ProxySetting", "load"]
