"""Drive an MCP server with the official SDK client and return what a caller would see.

Each tour returns plain JSON data (the SDK's results dumped), so a tunneled run and a direct
run of the same tour compare with ``==``. Import only after ``pytest.importorskip("mcp")``.
"""

import asyncio
import json
import shlex

from mcp import Client, MCPError, StdioServerParameters


def dump(result) -> dict:
    return result.model_dump(mode="json", by_alias=True, exclude_none=True)


def target(spec):
    """A URL, or an ``mcp.command`` string spawned over stdio by the client itself."""
    if spec.startswith("http"):
        return spec
    argv = shlex.split(spec)
    return StdioServerParameters(command=argv[0], args=argv[1:])


async def tool(client, name, arguments, progress=None) -> dict:
    """A tools/call result, or the JSON-RPC error the server answered with."""
    try:
        return dump(await client.call_tool(name, arguments, progress_callback=progress))
    except MCPError as exc:
        return {"rpc_error": {"code": exc.error.code, "message": exc.error.message}}


def progress_log():
    """A progress callback, and the (progress, total) pairs it receives."""
    seen = []

    async def on_progress(progress, total, message):
        seen.append((progress, total))

    return seen, on_progress


async def with_progress(client, name, arguments) -> dict:
    seen = []

    async def on_progress(progress, total, message):
        seen.append([progress, total, message])

    result = await tool(client, name, arguments, on_progress)
    return {"result": result, "progress": seen}


async def session(spec, mode, tour):
    """Open one client session, run ``tour(client)``, return (protocol version, result)."""
    async with Client(target(spec), mode=mode) as client:
        return client.protocol_version, await tour(client)


async def sdk_peer_tour(client) -> dict:
    """Everything tests/interop/sdk_server.py offers."""
    return {
        "tools": dump(await client.list_tools()),
        "add": await tool(client, "add", {"a": 2, "b": 40}),
        "echo": await tool(client, "echo", {"text": "h\u00e9llo \u2713 \"quoted\""}),
        "slow": await with_progress(client, "slow", {"steps": 3, "delay": 0.01}),
        "tool_error": await tool(client, "explode", {"reason": "on purpose"}),
        "bad_arguments": await tool(client, "add", {"a": "two"}),
        "unknown_tool": await tool(client, "no-such-tool", {}),
        "resources": dump(await client.list_resources()),
        "templates": dump(await client.list_resource_templates()),
        "notes": dump(await client.read_resource("peer://notes")),
        "item": dump(await client.read_resource("peer://items/42")),
        "prompts": dump(await client.list_prompts()),
        "review": dump(await client.get_prompt("review", {"subject": "the tunnel"})),
    }


async def everything_tour(client) -> dict:
    """A deterministic slice of @modelcontextprotocol/server-everything."""
    return {
        "tools": dump(await client.list_tools()),
        "sum": await tool(client, "get-sum", {"a": 2, "b": 40}),
        "echo": await tool(client, "echo", {"message": "h\u00e9llo \u2713"}),
        "structured": _weather_shape(await tool(client, "get-structured-content",
                                                {"location": "New York"})),
        "long": await with_progress(client, "trigger-long-running-operation",
                                    {"duration": 0.2, "steps": 3}),
        "bad_arguments": await tool(client, "get-sum", {"a": "two"}),
        "unknown_tool": await tool(client, "no-such-tool", {}),
        "resources": dump(await client.list_resources()),
        "static": dump(await client.read_resource(
            "demo://resource/static/document/architecture.md")),
        "dynamic": _without_clock(dump(await client.read_resource(
            "demo://resource/dynamic/text/1"))),
        "prompts": dump(await client.list_prompts()),
        "simple": dump(await client.get_prompt("simple-prompt", {})),
        "args": dump(await client.get_prompt("args-prompt", {"city": "Lyon", "state": "RA"})),
    }


def _weather_shape(result: dict) -> dict:
    """server-everything's weather is random: keep what must hold for any draw."""
    structured = result.get("structuredContent") or {}
    return {"keys": sorted(structured), "text_matches": json.loads(texts(result)) == structured,
            "isError": result.get("isError")}


def _without_clock(result: dict) -> dict:
    """Dynamic resources say when they were made; keep the rest."""
    for content in result.get("contents", []):
        content["text"] = content.get("text", "").split(" created at ")[0]
    return result


async def crowd(spec, mode, count, visit):
    """``count`` clients at once, each running ``visit(client, index)``; results in order."""
    async def one(index):
        async with Client(target(spec), mode=mode) as client:
            return await visit(client, index)

    return await asyncio.gather(*(one(i) for i in range(count)))


def texts(result: dict) -> str:
    return "".join(c.get("text", "") for c in result.get("content", []))


def tool_tour(name, arguments):
    """A tour of one tool call that returns its structured content."""
    async def tour(client):
        return (await client.call_tool(name, arguments)).structured_content
    return tour


async def answering_session(spec, mode, tour):
    """A session whose client answers the server's sampling and elicitation requests
    (the model always says "blue", the user always accepts); returns what ``session``
    does plus the questions the client was asked."""
    from mcp import types

    asked = []

    async def sampling(context, params):
        asked.append(("sampling", params.messages[0].content.text))
        return types.CreateMessageResult(role="assistant", model="test-model",
                                         content=types.TextContent(type="text", text="blue"))

    async def elicitation(context, params):
        asked.append(("elicitation", params.message))
        return types.ElicitResult(action="accept", content={"ok": True})

    async with Client(target(spec), mode=mode, sampling_callback=sampling,
                      elicitation_callback=elicitation) as client:
        return client.protocol_version, await tour(client), asked
