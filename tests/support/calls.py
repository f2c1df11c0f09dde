"""Issue commands through the relay and read what the daemon posted back."""

import json


def exchange(relay, message, channel="main", headers=None, timeout=15.0,
             response_timeout="default", command_type="jsonrpc"):
    """Submit one command; return every payload posted for it, the terminal one last."""
    call = relay.submit(message, channel, headers, command_type=command_type,
                        response_timeout=response_timeout)
    payloads = []
    while True:
        payload = call.take(timeout)
        assert payload is not None, "no reply to %r within %.0fs (got %r)" % (
            message, timeout, payloads)
        payloads.append(payload)
        if payload.get("resp_type", "jsonrpc_response") != "jsonrpc_notify":
            return payloads


def final(relay, message, **kwargs):
    return exchange(relay, message, **kwargs)[-1]


def rpc(method, rpc_id=1, **params):
    message = {"jsonrpc": "2.0", "id": rpc_id, "method": method}
    if params:
        message["params"] = params
    return message


def tool_call(name, rpc_id=1, progress=None, meta=None, **arguments):
    params = {"name": name, "arguments": arguments}
    extra = dict(meta or {})
    if progress is not None:
        extra["progressToken"] = progress
    if extra:
        params["_meta"] = extra
    return {"jsonrpc": "2.0", "id": rpc_id, "method": "tools/call", "params": params}


def initialize(rpc_id=0, version="2025-06-18"):
    return rpc("initialize", rpc_id, protocolVersion=version, capabilities={},
               clientInfo={"name": "test", "version": "1"})


def notification(method, **params):
    message = {"jsonrpc": "2.0", "method": method}
    if params:
        message["params"] = params
    return message


def posted_bodies(relay, request_id):
    """The raw response POST records the relay saw for one request."""
    return [r for r in relay.responses
            if json.loads(r["body"]).get("request_id") == request_id]
