"""MCP bindings: one per channel, each turning a Command into Replies."""
