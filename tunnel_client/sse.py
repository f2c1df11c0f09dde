"""An incremental Server-Sent Events parser (WHATWG event-stream rules). Pure.

Comments (``: ping``) and events without data (keep-alives) produce nothing the caller
must handle; an event larger than ``max_event_bytes`` is an error, never unbounded memory.
The last event id and the ``retry:`` delay outlive the events that set them (even a
data-less priming event), as a reconnecting client needs them.
"""

import codecs
from dataclasses import dataclass
from typing import List, Optional


@dataclass(frozen=True)
class Event:
    data: str
    event: str = "message"
    id: Optional[str] = None


class EventTooLarge(ValueError):
    pass


class SseParser:
    def __init__(self, max_event_bytes: int = 64 << 20):
        self.max_event_bytes = max_event_bytes
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._buffer = ""
        self._data: List[str] = []
        self._data_size = 0
        self._event = ""
        self._id: Optional[str] = None
        self._started = False
        self.retry_ms: Optional[int] = None  # the server's last ``retry:`` field

    @property
    def last_event_id(self) -> Optional[str]:
        """The id to send as ``Last-Event-ID`` when reconnecting ("" or None: none)."""
        return self._id

    def new_stream(self):
        """Start reading a reconnected stream: line and event buffers are reset, the last
        event id and retry delay are kept (WHATWG reconnection)."""
        self._decoder.reset()
        self._buffer, self._data, self._data_size, self._event = "", [], 0, ""
        self._started = False

    def feed(self, chunk: bytes) -> List[Event]:
        text = self._decoder.decode(chunk)
        if not self._started and text:
            self._started = True
            if text.startswith("\ufeff"):
                text = text[1:]
        self._buffer += text
        events = []
        while True:
            cut = _line_end(self._buffer)
            if cut is None:
                break
            line, self._buffer = self._buffer[:cut[0]], self._buffer[cut[1]:]
            event = self._line(line)
            if event is not None:
                events.append(event)
        if len(self._buffer) + self._data_size > self.max_event_bytes:
            raise EventTooLarge("SSE event exceeds %d bytes" % self.max_event_bytes)
        return events

    def _line(self, line: str) -> Optional[Event]:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._data_size += len(value) + 1
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit() and value.isascii():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> Optional[Event]:
        data = "\n".join(self._data)
        event = Event(data, self._event or "message", self._id) if data else None
        self._data, self._data_size, self._event = [], 0, ""
        return event  # an event with empty data is a keep-alive: nothing to dispatch

    def finish(self) -> List[Event]:
        """At end of stream an unterminated event is discarded, as the spec says."""
        return []


def _line_end(buffer: str):
    """(end of line, start of next) for the first complete line, else None.

    A trailing ``\\r`` is held back: it may be the first half of ``\\r\\n``.
    """
    n = buffer.find("\n")
    r = buffer.find("\r")
    if r == -1 and n == -1:
        return None
    if r != -1 and (n == -1 or r < n):
        if r + 1 == len(buffer):
            return None
        return (r, r + 2) if buffer[r + 1] == "\n" else (r, r + 1)
    return n, n + 1
