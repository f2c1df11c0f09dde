"""A Streamable HTTP server that ends each call's stream early after an event id (SSE
polling), and the pieces of such streams, for the resumption tests."""

import json

SSE = {"Content-Type": "text/event-stream"}
PROGRESS = {"jsonrpc": "2.0", "method": "notifications/progress",
            "params": {"progressToken": "p", "progress": 1}}


def priming(event_id, retry_ms=10):
    return b"id: %s\nretry: %d\ndata:\n\n" % (event_id.encode(), retry_ms)


def with_id(event_id, message):
    return b"id: %s\nevent: message\ndata: %s\n\n" % (event_id.encode(),
                                                       json.dumps(message).encode())


class PollingServer:
    """POST: a priming event (and a progress notification), then the stream ends. Each GET
    answers with ``gets[n](last_event_id, call)``: the resumed stream's chunks."""

    def __init__(self, scripted, gets, post_chunks=None):
        self.gets = list(gets)
        self.call = None
        self.post_chunks = post_chunks
        self.server = scripted(self.handle)
        self.url = self.server.url

    def handle(self, request):
        if request["method"] == "POST" and (request["json"] or {}).get("id") != \
                "tunnel-client-probe" and request["body"]:
            self.call = request
            return 200, SSE, self.post_chunks or [priming("ev-1"), with_id("ev-2", PROGRESS)]
        if request["method"] == "GET" and "last-event-id" in request["headers"] and \
                self.gets and self.call:  # not the OAuth discovery's well-known GETs
            return self.gets.pop(0)(request["headers"].get("last-event-id"), self.call)
        return 405, {}, b""

    def resumptions(self):
        return [r for r in self.server.requests if r["method"] == "GET" and
                "last-event-id" in r["headers"]]


def assert_one_resumption_as_a_get(server, last_id, session, version):
    """The one resumption: a GET naming the last event id, for an event stream, in the
    caller's session and protocol version, with nothing that describes a body."""
    (get,) = server.resumptions()
    headers = get["headers"]
    assert headers["last-event-id"] == last_id and headers["accept"] == "text/event-stream"
    assert headers["mcp-session-id"] == session
    assert headers["mcp-protocol-version"] == version
    assert "mcp-method" not in headers and "content-type" not in headers
    assert get["body"] == b""
