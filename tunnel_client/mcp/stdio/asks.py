"""Server-to-client requests relayed to a caller, waiting for the caller's answer.

A child's ``sampling/createMessage``, ``elicitation/create`` or ``roots/list`` goes to the
caller under a relay id unique across callers and children; the caller's JSON-RPC response
comes back as a later command, and this table says which child asked and under which of
its own ids.
"""

import itertools
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Optional

MAX_OPEN_ASKS = 1024  # an ask never answered is forgotten once this many are newer


@dataclass(frozen=True)
class Ask:
    session: Any      # the StdioSession whose child asked
    generation: int   # which child of that session
    child_id: Any     # the id the child used; its answer must carry it


class Asks:
    def __init__(self):
        self._lock = threading.Lock()
        self._open: "OrderedDict[str, Ask]" = OrderedDict()
        self._prefix = "tc-ask-%s-" % secrets.token_hex(4)
        self._counter = itertools.count(1)

    def add(self, ask: Ask) -> str:
        relay_id = "%s%d" % (self._prefix, next(self._counter))
        with self._lock:
            self._open[relay_id] = ask
            while len(self._open) > MAX_OPEN_ASKS:
                self._open.popitem(last=False)
        return relay_id

    def take(self, relay_id) -> Optional[Ask]:
        """The ask a caller's response answers, once; None when it answers nothing open."""
        if type(relay_id) is not str:
            return None
        with self._lock:
            return self._open.pop(relay_id, None)

    def __len__(self):
        with self._lock:
            return len(self._open)
