"""A standard-library MCP server for demos and tests, over stdio or Streamable HTTP.

Tools: ``echo``, ``uppercase``, ``server_info``, ``count`` (progress notifications),
``sleep``, ``fail`` (a tool error); a resource (``stub://readme``) and a prompt
(``greeting``). It speaks both MCP eras: the legacy ``initialize`` handshake and the
2026-07-28 per-request ``_meta`` envelope with ``server/discover``.

Test knobs make it misbehave the way real servers do: ``--strict-init`` ignores requests
until the handshake completes, ``--modern-only`` rejects ``initialize`` and ``ping``,
``--exit-after N`` exits after N tool calls, ``--test-tools`` adds ``crash``, ``garbage``,
``stderr_flood``, ``ask_client``, ``drop`` and ``chatter``; ``--log`` appends every message
received to a JSON-lines file. Run: ``python -m tunnel_client.devtools.stub --help``.
"""

import argparse
import itertools
import json
import os
import queue
import sys
import threading
import time
from typing import Callable, Dict, NamedTuple, Optional
from urllib.parse import urlsplit

LEGACY_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
MODERN_VERSION = "2026-07-28"
VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
# 2026-07-28 results of these methods must say how long a client may cache them.
CACHEABLE_METHODS = frozenset(("prompts/list", "resources/list", "resources/read",
                               "resources/templates/list", "server/discover", "tools/list"))

TOOLS = [
    {"name": "echo", "description": "Echo the input text back.",
     "inputSchema": {"type": "object", "properties": {"input": {"type": "string"}},
                     "required": ["input"]}},
    {"name": "uppercase", "description": "Return the input in upper case.",
     "inputSchema": {"type": "object", "properties": {"input": {"type": "string"}},
                     "required": ["input"]}},
    {"name": "server_info", "description": "Name, version, process id and tools of this server.",
     "inputSchema": {"type": "object", "properties": {}}},
    {"name": "count", "description": "Count to N, sending a progress notification per step.",
     "inputSchema": {"type": "object", "properties": {
         "to": {"type": "integer", "minimum": 1, "maximum": 1000},
         "delay_ms": {"type": "integer", "minimum": 0, "maximum": 10000}}}},
    {"name": "sleep", "description": "Wait for the given number of seconds, then answer.",
     "inputSchema": {"type": "object", "properties": {"seconds": {"type": "number"}}}},
    {"name": "fail", "description": "Answer with a tool error (isError: true).",
     "inputSchema": {"type": "object", "properties": {"message": {"type": "string"}}}},
]
TEST_TOOLS = [
    {"name": name, "description": text, "inputSchema": {"type": "object"}} for name, text in (
        ("crash", "Exit the process at once (code from 'code', default 3)."),
        ("garbage", "Print a line that is not JSON to stdout, then answer."),
        ("stderr_flood", "Write 'lines' lines (default 1000) to stderr, then answer."),
        ("ask_client", "Send a server-to-client request ('method') and return the answer."),
        ("drop", "Never answer this call."),
        ("chatter", "Send a notifications/message log notification, then answer."),
    )
]


class StubOptions(NamedTuple):
    name: str = "mcp-stub"
    version: str = "0.1.0"
    strict_init: bool = False
    modern_only: bool = False
    legacy_only: bool = False
    exit_after: int = 0
    test_tools: bool = False
    log_path: Optional[str] = None


class StubServer:
    """Transport-neutral MCP logic. ``handle`` returns the response (or None) and may call
    ``emit`` with notifications and server-to-client requests while it works."""

    def __init__(self, options: StubOptions, ask: Optional[Callable[[dict], dict]] = None):
        self.options = options
        self.ask = ask
        self.initialized = not options.strict_init
        self.handshake_seen = False
        self.calls = 0
        self._lock = threading.Lock()

    # --- logging for tests ---------------------------------------------------------------

    def record(self, msg: dict):
        if not self.options.log_path:
            return
        params = msg.get("params") if isinstance(msg.get("params"), dict) else {}
        entry = {"pid": os.getpid(), "t": time.time(), "method": msg.get("method"),
                 "id": msg.get("id"), "meta": bool(_meta(msg).get(VERSION_KEY)),
                 "name": params.get("name") or params.get("uri")}
        if msg.get("method") == "initialize":
            entry["capabilities"] = params.get("capabilities")
        if "requestId" in params:
            entry["requestId"] = params["requestId"]  # the request a cancellation names
        entry["message"] = msg  # exactly what arrived, for tests of what a client sends
        line = json.dumps(entry)
        with self._lock, open(self.options.log_path, "a") as handle:
            handle.write(line + "\n")

    # --- dispatch ------------------------------------------------------------------------

    def handle(self, msg: dict, emit: Callable[[dict], None]) -> Optional[dict]:
        self.record(msg)
        method = msg.get("method")
        if method is None:
            return None  # a response to one of our requests is routed by the transport
        rpc_id = msg.get("id")
        modern = VERSION_KEY in _meta(msg) or method == "server/discover"
        if "id" not in msg:
            if method == "notifications/initialized":
                self.initialized = True
            return None
        if method == "initialize":
            return self._initialize(rpc_id, msg.get("params") or {})
        if not modern:
            if self.options.modern_only:
                return _error(rpc_id, -32022, "Unsupported protocol version: this server "
                              "speaks %s only" % MODERN_VERSION, {"supported": [MODERN_VERSION]})
            if not self.initialized:
                return None  # strict servers ignore requests before the handshake
        elif self.options.legacy_only:
            return _error(rpc_id, -32601, "Method not found" if method == "server/discover"
                          else "Unsupported protocol version")
        try:
            result = self._dispatch(method, msg.get("params") or {}, emit, rpc_id)
        except _RpcError as exc:
            return _error(rpc_id, exc.code, exc.message)
        if result is _NO_ANSWER:
            return None
        if modern:
            result = dict(result, resultType="complete")
            if method in CACHEABLE_METHODS:
                result.setdefault("ttlMs", 0)
                result.setdefault("cacheScope", "private")
        return {"jsonrpc": "2.0", "id": rpc_id, "result": result}

    def _initialize(self, rpc_id, params):
        if self.options.modern_only:
            return _error(rpc_id, -32022, "Unsupported protocol version: initialize is not "
                          "part of %s" % MODERN_VERSION, {"supported": [MODERN_VERSION]})
        requested = params.get("protocolVersion")
        version = requested if requested in LEGACY_VERSIONS else LEGACY_VERSIONS[-1]
        self.handshake_seen = True
        return {"jsonrpc": "2.0", "id": rpc_id, "result": {
            "protocolVersion": version, "capabilities": self.capabilities(),
            "serverInfo": {"name": self.options.name, "version": self.options.version},
            "instructions": "A stub MCP server for trying tunnel-client."}}

    def capabilities(self) -> dict:
        return {"tools": {"listChanged": False}, "resources": {}, "prompts": {}}

    def tools(self):
        return TOOLS + (TEST_TOOLS if self.options.test_tools else [])

    def _dispatch(self, method, params, emit, rpc_id):
        if method == "ping":
            if self.options.modern_only:
                raise _RpcError(-32601, "Method not found: ping")
            return {}
        if method == "server/discover":
            return {"supportedVersions": [MODERN_VERSION], "capabilities": self.capabilities(),
                    "instructions": "A stub MCP server for trying tunnel-client.",
                    "cacheScope": "public", "ttlMs": 0}
        if method == "tools/list":
            return {"tools": self.tools()}
        if method == "tools/call":
            return self._call(params, emit, rpc_id)
        if method == "resources/list":
            return {"resources": [{"uri": "stub://readme", "name": "readme",
                                   "mimeType": "text/plain"}]}
        if method == "resources/templates/list":
            return {"resourceTemplates": []}
        if method == "resources/read":
            if params.get("uri") != "stub://readme":
                raise _RpcError(-32002, "Resource not found: %s" % params.get("uri"))
            return {"contents": [{"uri": "stub://readme", "mimeType": "text/plain",
                                  "text": "This resource came through the tunnel."}]}
        if method == "prompts/list":
            return {"prompts": [{"name": "greeting", "description": "Greet someone.",
                                 "arguments": [{"name": "name", "required": True}]}]}
        if method == "prompts/get":
            if params.get("name") != "greeting":
                raise _RpcError(-32602, "Unknown prompt: %s" % params.get("name"))
            who = (params.get("arguments") or {}).get("name", "operator")
            return {"messages": [{"role": "user", "content": {
                "type": "text", "text": "Say hello to %s." % who}}]}
        raise _RpcError(-32601, "Method not found: %s" % method)

    def _call(self, params, emit, rpc_id):
        name = params.get("name")
        args = params.get("arguments") or {}
        if name not in {t["name"] for t in self.tools()}:
            raise _RpcError(-32602, "Unknown tool: %s" % name)
        with self._lock:
            self.calls += 1
            calls = self.calls
        if self.options.exit_after and calls > self.options.exit_after:
            os._exit(4)
        token = (params.get("_meta") or {}).get("progressToken")
        if name in ("echo", "uppercase"):
            text = str(args.get("input", args.get("text", "")))
            key, value = ("echoed", text) if name == "echo" else ("uppercase", text.upper())
            return _text(value, {key: value})
        if name == "server_info":
            info = {"name": self.options.name, "version": self.options.version,
                    "pid": os.getpid(), "available_tools": [t["name"] for t in self.tools()],
                    "sample_prompts": ["Call echo with input 'hello'"]}
            return _text(json.dumps(info), info)
        if name == "count":
            to = int(args.get("to", 3))
            delay = int(args.get("delay_ms", 50)) / 1000.0
            for i in range(1, to + 1):
                time.sleep(delay)
                if token is not None:
                    emit({"jsonrpc": "2.0", "method": "notifications/progress", "params": {
                        "progressToken": token, "progress": i, "total": to,
                        "message": "step %d/%d" % (i, to)}})
            return _text("counted to %d" % to, {"count": to})
        if name == "sleep":
            seconds = float(args.get("seconds", 1))
            time.sleep(seconds)
            return _text("slept %gs" % seconds, {"slept": seconds})
        if name == "fail":
            return {"content": [{"type": "text", "text": args.get("message", "tool failed")}],
                    "isError": True}
        return self._test_tool(name, args, emit)

    def _test_tool(self, name, args, emit):
        if name == "crash":
            sys.stdout.flush()
            os._exit(int(args.get("code", 3)))
        if name == "garbage":
            emit({"__raw__": "this line is not JSON {{{"})
            return _text("garbage sent")
        if name == "stderr_flood":
            lines = int(args.get("lines", 1000))
            for i in range(lines):
                sys.stderr.write("stderr line %d %s\n" % (i, "x" * 100))
            sys.stderr.flush()
            return _text("flooded %d lines" % lines)
        if name == "chatter":
            emit({"jsonrpc": "2.0", "method": "notifications/message",
                  "params": {"level": "info", "data": "chatter from the stub"}})
            return _text("chattered")
        if name == "ask_client":
            if self.ask is None:
                raise _RpcError(-32603, "this transport cannot ask the client")
            request = {"jsonrpc": "2.0", "id": "srv-%s" % os.urandom(4).hex(),
                       "method": args.get("method", "roots/list"), "params": {}}
            answer = self.ask(request)
            return _text(json.dumps(answer), {"answer": answer})
        if name == "drop":
            return _NO_ANSWER
        raise _RpcError(-32602, "Unknown tool: %s" % name)


class _RpcError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


_NO_ANSWER = object()


def _meta(msg):
    params = msg.get("params")
    return params.get("_meta") or {} if isinstance(params, dict) else {}


def _text(text, structured=None):
    result = {"content": [{"type": "text", "text": text}]}
    if structured is not None:
        result["structuredContent"] = structured
    return result


def _error(rpc_id, code, message, data=None):
    error = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": rpc_id, "error": error}


# --- stdio transport ---------------------------------------------------------------------


def serve_stdio(options: StubOptions):
    """Newline-delimited JSON-RPC on stdin/stdout; each request runs on its own thread so
    slow tools do not block others (as most real servers behave)."""
    out_lock = threading.Lock()
    asked: Dict[str, "queue.Queue"] = {}

    def write(obj):
        line = obj["__raw__"] if "__raw__" in obj else json.dumps(obj, separators=(",", ":"))
        with out_lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def ask(request):
        box = asked[request["id"]] = queue.Queue()
        write(request)
        try:
            return box.get(timeout=10)
        except queue.Empty:
            return {"error": "no answer from the client"}
        finally:
            asked.pop(request["id"], None)

    server = StubServer(options, ask)

    def run(msg):
        reply = server.handle(msg, write)
        if reply is not None:
            write(reply)

    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
        except ValueError:
            write({"jsonrpc": "2.0", "id": None, "error": {"code": -32700,
                                                           "message": "Parse error"}})
            continue
        if not isinstance(msg, dict):
            continue
        if "method" not in msg and msg.get("id") in asked:
            asked[msg["id"]].put(msg)
            server.record(msg)
            continue
        if msg.get("method") in ("initialize", "notifications/initialized") or "id" not in msg:
            run(msg)  # handshake steps stay in order
        else:
            threading.Thread(target=run, args=(msg,), daemon=True).start()


# --- Streamable HTTP transport -----------------------------------------------------------


def make_http_server(options: StubOptions, host: str = "127.0.0.1", port: int = 0):
    from tunnel_client.httpd import Handler, Server

    sessions: Dict[str, StubServer] = {}
    shared = StubServer(options._replace(strict_init=False))
    counter = itertools.count(1)

    class StubHandler(Handler):
        server_version = "mcp-stub"

        def do_GET(self):
            path = urlsplit(self.path).path
            if path.startswith("/.well-known/"):
                return self.send_json(404, {"error": "not found"})
            self.send_json(405, {"error": "this server offers no standalone SSE stream"},
                           {"Allow": "POST, DELETE"})

        def do_DELETE(self):
            sid = self.headers.get("Mcp-Session-Id")
            if not sid or sessions.pop(sid, None) is None:
                return self.send_json(404, {"error": "unknown session"})
            self.send_body(204)

        def do_POST(self):
            if urlsplit(self.path).path != "/mcp":
                return self.send_json(404, {"error": "not found"})
            try:
                msg = json.loads(self.read_body(32 << 20))
            except ValueError:
                return self.send_json(400, _error(None, -32700, "Parse error"))
            sid = self.headers.get("Mcp-Session-Id")
            headers = {}
            if msg.get("method") == "initialize":
                sid = "stub-%d-%s" % (next(counter), os.urandom(8).hex())
                sessions[sid] = StubServer(options)
                headers["Mcp-Session-Id"] = sid
            elif sid is not None and sid not in sessions:
                return self.send_json(404, _error(msg.get("id"), -32001, "Session not found"))
            server = sessions.get(sid, shared) if sid else shared
            if "id" not in msg or "method" not in msg:
                server.handle(msg, lambda n: None)
                return self.send_body(202)
            events = []
            streaming = "text/event-stream" in self.headers.get("Accept", "")
            state = {"started": False}

            def emit(note):
                if "__raw__" in note:
                    return
                if streaming:
                    if not state["started"]:
                        self.start_stream(200, "text/event-stream", headers)
                        state["started"] = True
                    self.write_chunk(b"event: message\ndata: " + json.dumps(note).encode()
                                     + b"\n\n")
                else:
                    events.append(note)

            reply = server.handle(msg, emit)
            if reply is None:
                reply = _error(msg.get("id"), -32603, "no answer")
            if state["started"]:
                self.write_chunk(b"event: message\ndata: " + json.dumps(reply).encode() + b"\n\n")
                return self.end_stream()
            status = 200
            self.send_json(status, reply, headers)

    return Server((host, port), StubHandler)


# --- command line ------------------------------------------------------------------------


def build_parser(parser: Optional[argparse.ArgumentParser] = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="mcp-stub", description="A small MCP server for trying tunnel-client.")
    parser.add_argument("--listen", metavar="HOST:PORT",
                        help="serve Streamable HTTP at http://HOST:PORT/mcp instead of stdio")
    parser.add_argument("--server-name", default="mcp-stub")
    parser.add_argument("--server-version", default="0.1.0")
    parser.add_argument("--url-file", help="with --listen: write the MCP URL here")
    test = parser.add_argument_group("test knobs (make the server misbehave on purpose)")
    test.add_argument("--strict-init", action="store_true",
                      help="ignore requests until initialize + notifications/initialized")
    test.add_argument("--modern-only", action="store_true",
                      help="speak 2026-07-28 only: reject initialize, ping and legacy requests")
    test.add_argument("--legacy-only", action="store_true",
                      help="reject server/discover and per-request protocol versions")
    test.add_argument("--exit-after", type=int, default=0, metavar="N",
                      help="exit (code 4) on the tool call after the Nth")
    test.add_argument("--test-tools", action="store_true",
                      help="add crash, garbage, stderr_flood, ask_client, drop and chatter")
    test.add_argument("--log", metavar="PATH", help="append every message received (JSON lines)")
    return parser


def options_from(args) -> StubOptions:
    return StubOptions(name=args.server_name, version=args.server_version,
                       strict_init=args.strict_init, modern_only=args.modern_only,
                       legacy_only=args.legacy_only, exit_after=args.exit_after,
                       test_tools=args.test_tools, log_path=args.log)


def run(args) -> int:
    options = options_from(args)
    if not args.listen:
        serve_stdio(options)
        return 0
    host, _, port = args.listen.rpartition(":")
    server = make_http_server(options, host or "127.0.0.1", int(port))
    url = "http://%s:%d/mcp" % (server.server_address[0], server.port)
    if args.url_file:
        with open(args.url_file, "w") as handle:
            handle.write(url + "\n")
    print("MCP stub listening: %s" % url, flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(run(build_parser().parse_args()))
