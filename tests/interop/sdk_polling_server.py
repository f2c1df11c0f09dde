"""An MCPServer (official ``mcp`` SDK) that ends a call's SSE stream early, for the SSE
resumption tests: with an event store every stream opens with a priming event (an id and
a ``retry:`` delay), and the ``interrupted`` tool closes its stream mid-call; what it sends
afterwards waits in the store until the client resumes with GET + ``Last-Event-ID``.

Run: ``python tests/interop/sdk_polling_server.py PORT`` (``http://127.0.0.1:PORT/mcp``).
"""

import sys

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.streamable_http import EventMessage, EventStore

server = MCPServer("sdk-polling-peer")


class MemoryEventStore(EventStore):
    def __init__(self):
        self.events = []  # (stream id, event id, message or None for a priming event)

    async def store_event(self, stream_id, message):
        event_id = str(len(self.events) + 1)
        self.events.append((stream_id, event_id, message))
        return event_id

    async def replay_events_after(self, last_event_id, send_callback):
        ids = [event_id for _, event_id, _ in self.events]
        if last_event_id not in ids:
            return None
        stream = self.events[ids.index(last_event_id)][0]
        for stream_id, event_id, message in self.events[ids.index(last_event_id) + 1:]:
            if stream_id == stream and message is not None:
                await send_callback(EventMessage(message, event_id))
        return stream


@server.tool()
async def interrupted(ctx: Context = None) -> str:
    """Report progress, end the call's stream, report again and answer."""
    await ctx.report_progress(1, 2, "before the stream ended")
    await ctx.close_sse_stream()
    await ctx.report_progress(2, 2, "after the stream ended")
    return "answered after the stream ended"


if __name__ == "__main__":
    server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[1]),
               event_store=MemoryEventStore(), retry_interval=50)
