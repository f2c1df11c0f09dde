"""Developer tools: the local control plane, an MCP stub server and a tiny client."""
