"""A tiny MCP client over Streamable HTTP (requests only), for shells, demos and tests.

It performs the legacy handshake (or none, in ``modern`` mode), sends requests, follows
SSE replies and reports progress notifications as they arrive.
"""

import base64
import itertools
import json
from dataclasses import dataclass, field
from typing import Callable, List, Mapping, Optional

import requests

from tunnel_client.sse import SseParser

PROTOCOL_VERSION = "2025-11-25"
MODERN_VERSION = "2026-07-28"
VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
CLIENT_INFO_KEY = "io.modelcontextprotocol/clientInfo"
# 2026-07-28: the params field each method mirrors in the Mcp-Name header.
NAME_PARAMS = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}


class McpCallError(Exception):
    def __init__(self, status: int, error: dict):
        super().__init__("HTTP %d: %s" % (status, error.get("message", error)))
        self.status = status
        self.error = error


@dataclass
class CallResult:
    status: int
    message: dict
    notifications: List[dict] = field(default_factory=list)
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def result(self) -> dict:
        if "error" in self.message:
            raise McpCallError(self.status, self.message["error"])
        return self.message["result"]

    @property
    def text(self) -> str:
        return "".join(c.get("text", "") for c in self.result.get("content", []))


class McpClient:
    def __init__(self, url: str, modern: bool = False, headers: Optional[dict] = None,
                 timeout: float = 60.0, name: str = "tunnel-client-dev-call"):
        self.url = url
        self.modern = modern
        self.timeout = timeout
        self.name = name
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.headers.update(headers or {})
        self.session_id: Optional[str] = None
        self.protocol_version = MODERN_VERSION if modern else PROTOCOL_VERSION
        self.server_info: dict = {}
        self._ids = itertools.count(1)

    def _headers(self, method: Optional[str] = None, params: Optional[dict] = None) -> dict:
        headers = {"Content-Type": "application/json",
                   "Accept": "application/json, text/event-stream"}
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        if self.modern or self.session_id:
            headers["Mcp-Protocol-Version"] = self.protocol_version
        if self.modern and method:
            headers["Mcp-Method"] = method
            name = (params or {}).get(NAME_PARAMS.get(method, ""))
            if isinstance(name, str):
                headers["Mcp-Name"] = _header_value(name)
        return headers

    def initialize(self) -> dict:
        if self.modern:
            result = self.request("server/discover").result
            self.server_info = result
            return result
        result = self.request("initialize", {
            "protocolVersion": PROTOCOL_VERSION, "capabilities": {},
            "clientInfo": {"name": self.name, "version": "1"}})
        self.protocol_version = result.result.get("protocolVersion", PROTOCOL_VERSION)
        self.session_id = result.headers.get("Mcp-Session-Id") or self.session_id
        self.server_info = result.result
        self.notify("notifications/initialized")
        return result.result

    def request(self, method: str, params: Optional[dict] = None,
                on_notification: Optional[Callable[[dict], None]] = None,
                progress: bool = False, rpc_id=None) -> CallResult:
        params = dict(params or {})
        meta = dict(params.get("_meta") or {})
        if progress:
            meta["progressToken"] = "progress-%d" % next(self._ids)
        if self.modern:  # the per-request envelope that replaces the handshake
            meta[VERSION_KEY] = MODERN_VERSION
            meta.setdefault(CAPABILITIES_KEY, {})
            meta.setdefault(CLIENT_INFO_KEY, {"name": self.name, "version": "1"})
        if meta:
            params["_meta"] = meta
        message = {"jsonrpc": "2.0", "id": next(self._ids) if rpc_id is None else rpc_id,
                   "method": method}
        if params or method not in ("tools/list", "ping"):
            message["params"] = params
        resp = self.session.post(self.url, data=json.dumps(message), stream=True,
                                 headers=self._headers(method, params), timeout=self.timeout)
        with resp:
            media = resp.headers.get("Content-Type", "").split(";")[0].strip()
            headers = resp.headers  # case-insensitive: servers send mcp-session-id too
            if media == "text/event-stream":
                notes, final = [], None
                parser = SseParser()
                for chunk in resp.iter_content(chunk_size=None):
                    for event in parser.feed(chunk):
                        data = json.loads(event.data)
                        if "method" in data:
                            notes.append(data)
                            if on_notification:
                                on_notification(data)
                        else:
                            final = data
                if final is None:
                    raise McpCallError(resp.status_code, {"message": "stream ended early"})
                return CallResult(resp.status_code, final, notes, headers)
            try:
                body = resp.json()
            except ValueError:
                raise McpCallError(resp.status_code, {"message": resp.text[:200]}) from None
            if not isinstance(body, dict) or not ("result" in body or "error" in body):
                raise McpCallError(resp.status_code, {"message": str(body)[:200]})
            return CallResult(resp.status_code, body, [], headers)

    def notify(self, method: str, params: Optional[dict] = None) -> int:
        message = {"jsonrpc": "2.0", "method": method}
        if params:
            message["params"] = params
        resp = self.session.post(self.url, data=json.dumps(message), headers=self._headers(method),
                                 timeout=self.timeout)
        resp.close()
        return resp.status_code

    def call_tool(self, name: str, arguments: Optional[dict] = None, **kwargs) -> CallResult:
        return self.request("tools/call", {"name": name, "arguments": arguments or {}}, **kwargs)

    def list_tools(self) -> List[dict]:
        return self.request("tools/list").result["tools"]

    def close(self) -> int:
        status = 0
        if self.session_id:
            resp = self.session.delete(self.url, headers=self._headers(), timeout=self.timeout)
            status = resp.status_code
            resp.close()
        self.session.close()
        return status


def _header_value(value: str) -> str:
    """Plain printable ASCII as is; anything else in the spec's base64 sentinel."""
    if value == value.strip() and all(" " <= c <= "~" for c in value) and \
            not value.startswith("=?base64?"):
        return value
    return "=?base64?%s?=" % base64.b64encode(value.encode("utf-8")).decode("ascii")
