"""Shared hypothesis strategies and a guard against hangs for the fuzz tests."""

import json
import threading

from hypothesis import strategies as st

# JSON has no NaN or Infinity (wire.loads reads them as null), so neither do the values here.
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)
RPC_IDS = st.one_of(st.integers(-3, 2 ** 64), st.text(max_size=6), st.none(), st.booleans(),
                    st.floats(allow_nan=False, allow_infinity=False), JSON)
METHODS = st.one_of(st.sampled_from(["tools/call", "tools/list", "initialize", "ping",
                                     "notifications/initialized", "notifications/progress",
                                     "notifications/cancelled", "roots/list",
                                     "sampling/createMessage", "server/discover"]),
                    st.text(max_size=10), JSON)


PARAMS = st.one_of(JSON, st.fixed_dictionaries({}, optional={
    "_meta": st.one_of(JSON, st.fixed_dictionaries({}, optional={"progressToken": RPC_IDS})),
    "name": JSON, "requestId": RPC_IDS, "progress": JSON}))


@st.composite
def rpc_messages(draw):
    """JSON-RPC-shaped objects: requests, notifications, responses, and near misses."""
    message = {}
    if draw(st.booleans()):
        message["jsonrpc"] = draw(st.one_of(st.just("2.0"), JSON))
    for key, values in (("id", RPC_IDS), ("method", METHODS), ("result", JSON),
                        ("error", JSON), ("params", PARAMS)):
        if draw(st.booleans()):
            message[key] = draw(values)
    return message


def dumps(value) -> bytes:
    return json.dumps(value).encode("utf-8")


def finishes(function, seconds: float = 5.0):
    """Run ``function`` and return its result, failing if it hangs past ``seconds``."""
    box = {}

    def run():
        try:
            box["value"] = function()
        except BaseException as exc:  # re-raised in the test's thread below
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "did not finish within %.0fs (a hang)" % seconds
    if "error" in box:
        raise box["error"]
    return box["value"]
