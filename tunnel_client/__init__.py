"""tunnel-client: the customer-run agent for Secure MCP Tunnel."""

__version__ = "0.1.0"

# Sent as X-Tunnel-Client-Name and in the User-Agent. It names this implementation
# honestly so the control plane's diagnostics can tell it from the Go client.
CLIENT_NAME = "tunnel-client-python"
USER_AGENT = "%s/%s" % (CLIENT_NAME, __version__)
