"""The four built-in profile samples: YAML templates shipped in the package, rendered with
the operator's values and validated by the same schema as any configuration."""

import json
import os
import string
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

SAMPLES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "samples")


@dataclass(frozen=True)
class Sample:
    name: str
    summary: str
    use_when: str
    required: Tuple[str, ...]
    optional: Tuple[str, ...]
    notes: str
    transport: str  # "stdio" | "http"

    @property
    def path(self) -> str:
        return os.path.join(SAMPLES_DIR, self.name + ".yaml")


SAMPLES = {s.name: s for s in (
    Sample("sample_mcp_enterprise_proxy",
           "HTTP MCP server behind a corporate proxy and TLS-inspecting gateway",
           "outbound HTTPS must go through a forward proxy and your organisation re-signs TLS",
           ("--tunnel-id", "--mcp-server-url", "ENTERPRISE_CA_BUNDLE", "HTTPS_PROXY"),
           ("--control-plane-base-url", "--health-listen-addr"),
           "the CA bundle is added to the system trust; an explicit proxy ignores NO_PROXY",
           "http"),
    Sample("sample_mcp_remote_no_auth",
           "Streamable HTTP MCP server on the private network, no OAuth",
           "the MCP server is reachable over HTTP(S) from this machine and needs no login",
           ("--tunnel-id", "--mcp-server-url"),
           ("--control-plane-base-url", "--health-listen-addr"),
           "callers' headers (Mcp-Session-Id, Authorization...) are forwarded as they come",
           "http"),
    Sample("sample_mcp_stdio_local",
           "Local MCP server started as a stdio process",
           "the MCP server is a command (npx, uvx, python -m ...) on this machine",
           ("--tunnel-id", "--mcp-command"),
           ("--control-plane-base-url", "--health-listen-addr"),
           "the process is supervised: restarted on crash, initialized for every caller",
           "stdio"),
    Sample("sample_mcp_with_dcr",
           "OAuth-protected HTTP MCP server (dynamic client registration)",
           "the MCP server answers 401 with OAuth metadata and callers log in themselves",
           ("--tunnel-id", "--mcp-server-url"),
           ("--control-plane-base-url", "--health-listen-addr"),
           "a 401 from the server reads as ready (requires auth); tokens are never stored",
           "http"),
)}


def default_sample(mcp_command: Optional[str], mcp_server_url: Optional[str]) -> str:
    """The stdio sample unless only a server URL is given; OAuth (DCR) is never assumed."""
    return "sample_mcp_remote_no_auth" if mcp_server_url and not mcp_command \
        else "sample_mcp_stdio_local"


def _quote(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid YAML scalar


def render(name: str, values: Dict[str, Optional[str]]) -> str:
    sample = SAMPLES[name]
    with open(sample.path) as handle:
        template = string.Template(handle.read())
    url_path = values.get("url_path")
    return template.substitute(
        profile=values.get("profile") or name,
        base_url=_quote(values.get("base_url") or "https://api.openai.com"),
        url_path_line="  url_path: %s\n" % _quote(url_path) if url_path else "",
        tunnel_id=_quote(values.get("tunnel_id") or ""),
        api_key_ref=_quote(values.get("api_key_ref") or "env:CONTROL_PLANE_API_KEY"),
        mcp_command=_quote(values.get("mcp_command") or "npx -y @modelcontextprotocol/"
                           "server-everything"),
        mcp_server_url=_quote(values.get("mcp_server_url") or "http://127.0.0.1:8000/mcp"),
        health_listen_addr=_quote(values.get("health_listen_addr") or "127.0.0.1:8080"),
        open_browser="true" if values.get("open_browser") else "false")
