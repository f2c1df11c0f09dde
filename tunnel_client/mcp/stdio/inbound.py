"""What a child writes on its own: responses, notifications and server-to-client requests,
each sent to the call it belongs to, relayed to a caller, or answered locally.

Every message is handled on its own: an exception while handling one costs that message
(logged and counted), never the reader, the child or the daemon.
"""

import threading
import time
from typing import Callable

from tunnel_client import wire
from tunnel_client.mcp import protocol as mcp
from tunnel_client.mcp.stdio.asks import Ask, Asks
from tunnel_client.mcp.stdio.mux import Notify, PipeMux
from tunnel_client.observe.logs import get_logger

log = get_logger("stdio")


class Inbound:
    def __init__(self, channel: str, mux: PipeMux, asks: Asks, metrics, session,
                 current_generation: Callable[[], int],
                 answer_later: Callable[[int, dict], None]):
        self.channel = channel
        self.mux = mux
        self.asks = asks
        self.metrics = metrics
        self.session = session
        self.current_generation = current_generation
        self.answer_later = answer_later  # writes a local answer off the reader thread
        self.last_activity = time.monotonic()
        self.replied_gen = 0
        self._seen_unrouted = set()
        self._lock = threading.Lock()  # guards only the two activity fields above
        self._fields = {"channel": channel}

    def on_message(self, generation: int, msg) -> None:
        try:
            self._route(generation, msg)
        except Exception as exc:  # a bad message costs this message only
            self.metrics.stdio_dropped_lines.inc(channel=self.channel, reason="unhandled")
            log.warning("stdio server wrote a message that could not be handled; skipped it",
                        extra=dict(self._fields, error=type(exc).__name__))

    def idle_since(self) -> float:
        with self._lock:
            return self.last_activity

    def touch(self):
        with self._lock:
            self.last_activity = time.monotonic()

    def _route(self, generation: int, msg):
        if generation != self.current_generation():
            return  # a dead child's last words
        with self._lock:
            self.last_activity = time.monotonic()
            self.replied_gen = generation
        self.metrics.stdio_last_exchange.set(time.time(), channel=self.channel)
        kind = wire.rpc_kind(msg)
        if kind == "response":
            if not self.mux.deliver_response(msg):
                log.debug("dropping a reply for a retired or unknown request",
                          extra=dict(self._fields, rpc_id=repr(msg.get("id"))[:40]))
        elif kind == "request":
            self._server_request(generation, msg)
        elif kind == "notification":
            self._notification(generation, msg)
        else:
            log.warning("stdio server wrote a message that is not JSON-RPC; skipped it",
                        extra=self._fields)
            self.metrics.stdio_dropped_lines.inc(channel=self.channel, reason="not_jsonrpc")

    def _notification(self, generation: int, msg):
        method = msg["method"]
        if method == mcp.PROGRESS:
            if not self.mux.deliver_progress(msg):
                log.debug("dropping progress for a token no call in flight holds",
                          extra=self._fields)
            return
        if self.mux.deliver_subscription(msg):
            return
        # With one call in flight the notification is unambiguously its own; with several,
        # delivering it to any of them could misroute it.
        call = self.mux.sole_caller_call(generation)
        if call is not None:
            call.mailbox.put(Notify(msg))
            return
        label = method[:60]
        self.metrics.stdio_unrouted_notifications.inc(channel=self.channel, method=label)
        first = label not in self._seen_unrouted
        if first and len(self._seen_unrouted) < 256:
            self._seen_unrouted.add(label)
        # The tunnel has no server-push path: such a notification cannot reach any caller.
        (log.info if first else log.debug)(
            "stdio server sent a notification outside any single call; callers cannot "
            "receive it", extra=dict(self._fields, method=label))

    def _server_request(self, generation: int, msg):
        method = msg["method"]
        capability = mcp.CAPABILITY_OF.get(method)
        why = "no caller can answer %s" % method  # logged for all but ping
        roots = self.session.roots if method == mcp.ROOTS_LIST else ()
        if roots:  # the operator's roots have the last word
            self.metrics.stdio_local_answers.inc(channel=self.channel, method=method)
            self.answer_later(generation, mcp.roots_answer(msg, roots))
            return
        if capability is not None:
            call = self.mux.sole_caller_call(generation)
            if call is None:
                why = "not exactly one call in flight could have caused it"
            elif capability not in call.caller.capabilities:
                why = "the caller did not declare the %s capability" % capability
            else:
                relay_id = self.asks.add(Ask(self.session, generation, msg["id"]))
                call.mailbox.put(Notify(mcp.replace_id(msg, relay_id)))
                self.metrics.stdio_relayed_requests.inc(channel=self.channel,
                                                        method=method)
                log.info("relayed a server request to the caller",
                         extra=dict(self._fields, method=method))
                return
        self.metrics.stdio_local_answers.inc(channel=self.channel, method=method[:40])
        if method != mcp.PING:
            log.info("answered a server request locally",
                     extra=dict(self._fields, method=method[:60], why=why))
        self.answer_later(generation, mcp.local_answer(msg))

