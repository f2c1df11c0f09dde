"""A third-party MCP server built with the official ``mcp`` SDK (MCPServer), for interop tests.

Run: ``python tests/interop/sdk_server.py stdio`` or ``... http PORT`` (Streamable HTTP at
``http://127.0.0.1:PORT/mcp``). Needs Python >= 3.10 and ``mcp`` >= 2.3.
"""

import os
import sys

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import SamplingMessage, TextContent
from pydantic import BaseModel

server = MCPServer("sdk-peer", instructions="An MCPServer the tunnel interop tests drive.")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool()
def whoami() -> str:
    """The process id, so tests can tell which server instance answered."""
    return str(os.getpid())


@server.tool()
async def slow(steps: int = 3, delay: float = 0.02, ctx: Context = None) -> str:
    """Report progress once per step, then answer."""
    for i in range(1, steps + 1):
        await anyio.sleep(delay)
        await ctx.report_progress(i, steps, "step %d/%d" % (i, steps))
    return "done after %d steps" % steps


@server.tool()
def explode(reason: str = "boom") -> str:
    """Always fails with a tool error (isError: true)."""
    raise ToolError("explode failed: %s" % reason)


@server.tool()
async def ask_model(prompt: str, ctx: Context = None) -> str:
    """Ask the client's model (sampling/createMessage) and return its text."""
    answer = await ctx.session.create_message(
        [SamplingMessage(role="user", content=TextContent(type="text", text=prompt))],
        max_tokens=50, related_request_id=ctx.request_id)
    return "model said: %s" % answer.content.text


class Confirmation(BaseModel):
    ok: bool


@server.tool()
async def ask_user(question: str, ctx: Context = None) -> str:
    """Ask the user (elicitation/create) and report the answer."""
    answer = await ctx.elicit(question, Confirmation)
    return "user %s: %s" % (answer.action, answer.data.ok if answer.data else None)


@server.resource("peer://notes", name="notes", mime_type="text/plain")
def notes() -> str:
    return "notes served by the SDK peer"


@server.resource("peer://items/{item}", name="item", mime_type="text/plain")
def item(item: str) -> str:
    return "item %s" % item


@server.prompt()
def review(subject: str) -> str:
    """Ask for a review of a subject."""
    return "Please review %s carefully." % subject


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
