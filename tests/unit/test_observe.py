"""Redaction of structured log fields and the poll-health verdict behind /readyz."""

import json
import logging

import pytest

from tunnel_client.observe import health
from tunnel_client.observe.health import Check, PollHealth, Readiness
from tunnel_client.observe.logs import REDACTED, Redactor

SECRET_HEADERS = {
    "Authorization": "Bearer abcdefgh12345678",
    "Proxy-Authorization": "Basic dXNlcjpodW50ZXIy",
    "X-Tunnel-Shard-Token": "shard_7f3a9c01",
    "Cookie": "session=opaque-value-1",
    "Set-Cookie": "session=opaque-value-2; Path=/; HttpOnly",
}


@pytest.mark.parametrize("name", sorted(SECRET_HEADERS))
def test_every_secret_header_value_is_redacted_whatever_its_spelling(name):
    redactor = Redactor()
    value = SECRET_HEADERS[name]
    for spelling in (name, name.lower(), name.upper()):
        assert redactor.value(spelling, value) == REDACTED
        fields = redactor.value("request_headers", {spelling: value, "Accept": "text/plain"})
        assert fields == {spelling: REDACTED, "Accept": "text/plain"}


def test_a_header_list_under_a_secret_name_is_redacted():
    assert Redactor().value("Set-Cookie", ["a=opaque-value-1", "b=opaque-value-2"]) == REDACTED


def test_known_secret_values_are_scrubbed_from_free_text():
    redactor = Redactor()
    redactor.add_secret("s3cr3t-value")
    redactor.add_secret("short")  # too short to be safely recognisable: ignored
    assert redactor.text("got s3cr3t-value twice: s3cr3t-value") == "got %s twice: %s" % (
        REDACTED, REDACTED)
    assert redactor.text("a short word") == "a short word"


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def time(self):
        return self.now

    def monotonic(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(health, "time", fake)
    return fake


def test_an_outage_is_reported_once_it_outlasts_the_default_grace(clock):
    poll = PollHealth()
    assert poll.outage_after == 60.0  # the documented default grace
    poll.succeeded()
    clock.now += 1
    poll.failed("connection refused")
    first = clock.now
    clock.now += poll.outage_after / 2
    poll.failed("connection refused")
    assert poll.check().ok, "a failure within the grace is not an outage yet"
    clock.now = first + poll.outage_after + 1
    poll.failed("connection refused")
    check = poll.check()
    assert not check.ok and "unreachable" in check.reason and "connection refused" in \
        check.reason
    assert check.since == first == poll.failing_since


def test_a_success_ends_the_outage(clock):
    poll = PollHealth(outage_after=10)
    poll.succeeded()
    poll.failed("timeout")
    clock.now += 11
    assert not poll.check().ok
    poll.succeeded()
    assert poll.check().ok and poll.failing_since is None


def test_no_success_yet_is_not_ready_and_an_auth_failure_is_reported_at_once(clock):
    poll = PollHealth()
    assert poll.check().reason == "waiting for the first successful poll"
    poll.failed("HTTP 401 invalid_api_key", auth=True)
    assert poll.check().reason == "HTTP 401 invalid_api_key"
    poll.succeeded()
    poll.failed("HTTP 401 invalid_api_key", auth=True)
    assert not poll.check().ok


def test_poll_health_states_exactly(clock):
    firsts = []
    poll = PollHealth(outage_after=30, on_first_success=lambda: firsts.append(clock.now))
    assert poll.check() == Check(False, "waiting for the first successful poll", None)
    assert poll.snapshot() == {"last_success": None, "failing_since": None,
                               "last_error": None, "last_error_kind": None,
                               "last_error_detail": None, "auth_error": None,
                               "consecutive_failures": 0}
    poll.failed("refused")
    assert poll.check() == Check(False, "control plane unreachable: refused for 0 s",
                                 clock.now)
    poll.succeeded()
    start = clock.now
    assert poll.check() == Check(True, "polling", start) and firsts == [start]
    clock.now += 5
    poll.failed("refused")
    poll.failed("timeout", kind="timeout", detail="read timed out (read timeout=30)")
    assert poll.snapshot() == {"last_success": start, "failing_since": start + 5,
                               "last_error": "timeout", "last_error_kind": "timeout",
                               "last_error_detail": "read timed out (read timeout=30)",
                               "auth_error": None, "consecutive_failures": 2}
    clock.now += 30  # exactly the grace: an outage
    assert poll.check() == Check(False, "control plane unreachable: timeout for 30 s",
                                 start + 5)
    poll.succeeded()
    assert firsts == [start], "the first success is announced once"
    assert poll.snapshot() == {"last_success": clock.now, "failing_since": None,
                               "last_error": None, "last_error_kind": None,
                               "last_error_detail": None, "auth_error": None,
                               "consecutive_failures": 0}
    poll.failed("HTTP 401", auth=True)
    assert poll.check() == Check(False, "HTTP 401", clock.now)
    poll.failed("timeout")  # a later non-auth failure clears the auth reason
    assert poll.snapshot()["auth_error"] is None and poll.check().ok is True


def test_readiness_names_the_first_failing_input():
    readiness = Readiness()
    assert readiness.evaluate() == Check(True, "ready")
    readiness.add("poll", lambda: Check(True, "polling", 1.0))
    readiness.add("mcp", lambda: Check(False, "server down", 2.0))
    readiness.add("other", lambda: Check(False, "later", 3.0))
    assert readiness.evaluate() == Check(False, "server down", 2.0)

    def broken():
        raise RuntimeError("boom")
    readiness = Readiness()
    readiness.add("poll", lambda: Check(True, "polling", 1.0))
    readiness.add("probe", broken)
    assert readiness.inputs() == [("poll", Check(True, "polling", 1.0)),
                                  ("probe", Check(False, "probe check failed: boom"))]
    assert readiness.evaluate() == Check(False, "probe check failed: boom")
    assert Check(True, "polling", 1.0).as_dict("poll") == {
        "name": "poll", "ok": True, "reason": "polling", "since": 1.0}


def test_the_filter_redacts_the_message_and_every_field():
    from tunnel_client.observe.logs import REDACTOR, RedactionFilter
    REDACTOR.add_secret("planted-secret-value")
    record = logging.LogRecord("tunnel_client.x", logging.INFO, __file__, 1,
                               "key %s seen", ("planted-secret-value",), None)
    record.headers = {"Authorization": "Bearer abcdefgh12345678", "X-Ok": "fine"}
    record.note = "token=abcdef123456 and planted-secret-value"
    record.count = 3
    assert RedactionFilter().filter(record) is True
    assert record.msg == "key [REDACTED] seen" and record.args == ()
    assert record.getMessage() == "key [REDACTED] seen"
    assert record.headers == {"Authorization": REDACTED, "X-Ok": "fine"}
    assert record.note == "token=[REDACTED] and [REDACTED]"
    assert record.count == 3


def test_raw_http_dumps_only_when_enabled_at_debug(monkeypatch):
    from tunnel_client.observe import logs
    seen = []

    class Catch(logging.Handler):
        def emit(self, record):
            seen.append(record)

    raw = logging.getLogger(logs._raw_log.name)
    handler = Catch(logging.DEBUG)
    raw.addHandler(handler)
    level = raw.level
    raw.setLevel(logging.DEBUG)
    try:
        logs.RawHttp.exchange("cp", "GET", "http://x/", 200, {"A": "1"}, b"q", {"B": "2"},
                              b"r")
        assert seen == [], "dumped while disabled"
        monkeypatch.setattr(logs.RawHttp, "enabled", True)
        logs.RawHttp.exchange("cp", "POST", "http://x/", 201,
                              {"Content-Type": "application/json", "X-Gateway-Credential": "1"},
                              b"x" * (logs.RAW_PREVIEW + 10), None, None)
        [record] = seen
        assert record.getMessage() == "raw http exchange" and record.levelno == logging.DEBUG
        assert (record.route, record.method, record.url, record.status) == (
            "cp", "POST", "http://x/", 201)
        assert record.request_headers == {"Content-Type": "application/json",
                                          "X-Gateway-Credential": logs.REDACTED}
        assert record.response_headers == {}
        assert record.request_body == "x" * logs.RAW_PREVIEW
        assert record.response_body is None
        logs.RawHttp.exchange("cp", "GET", "http://x/", 200, None, None, {"Retry-After": "3"}, b"resp")
        assert seen[-1].response_body == "resp" and seen[-1].request_body is None
        assert seen[-1].response_headers == {"Retry-After": "3"} and seen[-1].request_headers == {}
        seen.pop()
        raw.setLevel(logging.INFO)
        logs.RawHttp.exchange("cp", "GET", "http://x/", 200)
        assert len(seen) == 1, "dumped although debug is off"
    finally:
        raw.removeHandler(handler)
        raw.setLevel(level)
    assert logs._preview("abc") == "abc" and logs._preview(b"\xff") == "\ufffd"


def test_the_longest_secret_is_scrubbed_first_and_six_characters_is_enough():
    redactor = Redactor()
    redactor.add_secret("zzzzzz")
    redactor.add_secret("aaaaaazzzzzz")  # contains the other one
    assert redactor.text("key aaaaaazzzzzz") == "key " + REDACTED
    redactor.add_secret("12345")
    assert redactor.text("zzzzzz 12345") == REDACTED + " 12345"
    redactor.add_secret(None)
    redactor.add_secret("zzzzzz")  # again: no change
    assert redactor.text("zzzzzz") == REDACTED


def test_lists_are_redacted_item_by_item_under_their_key():
    redactor = Redactor()
    assert redactor.value("items", [{"Authorization": "x"}, "Bearer abcdefgh12345678", 3]) == [
        {"Authorization": REDACTED}, "Bearer " + REDACTED, 3]
    assert redactor.value("items", ("a", "b")) == ["a", "b"]


class RecordingLog:
    def __init__(self):
        self.lines = []

    def info(self, msg, extra=None):
        self.lines.append(("INFO", msg, extra))

    def warning(self, msg, extra=None):
        self.lines.append(("WARN", msg, extra))


def test_readiness_transitions_are_logged_once_each_with_their_reason():
    state = {"poll": Check(True, "polling"), "mcp": Check(True, "up")}
    readiness = Readiness()
    readiness.add("poll", lambda: state["poll"])
    readiness.add("mcp", lambda: state["mcp"])
    log = RecordingLog()
    watch = health.ReadinessLog(readiness, log)
    assert watch.observe() == Check(True, "ready")
    assert watch.observe() == Check(True, "ready")
    assert log.lines == [("INFO", "readiness: ready", {"ready": True})]

    state["mcp"] = Check(False, "mcp server down for 5 s", 1.0)
    state["poll"] = Check(False, "control plane unreachable for 61 s", 2.0)
    assert watch.observe() == Check(False, "control plane unreachable for 61 s", 2.0)
    assert log.lines[-1] == ("WARN", "readiness: not ready: control plane unreachable for 61 s",
                             {"ready": False, "input": "poll",
                              "reason": "control plane unreachable for 61 s"})
    # the same words with new numbers: the same state, not a transition
    state["poll"] = Check(False, "control plane unreachable for 75 s", 2.0)
    assert watch.observe().reason == "control plane unreachable for 75 s"
    assert len(log.lines) == 2
    # the first failing input changes: a transition, even with the same words
    state["poll"] = Check(True, "polling")
    state["mcp"] = Check(False, "control plane unreachable for 75 s", 3.0)
    watch.observe()
    assert log.lines[-1][2]["input"] == "mcp" and len(log.lines) == 3
    state["mcp"] = Check(False, "mcp server refused", 3.0)
    watch.observe()
    assert log.lines[-1][1] == "readiness: not ready: mcp server refused" and len(log.lines) == 4
    state["mcp"] = Check(True, "up")
    assert watch.observe() == Check(True, "ready")
    assert log.lines[-1] == ("INFO", "readiness: ready", {"ready": True}) and len(log.lines) == 5
    state["mcp"] = Check(False, "mcp server refused", 4.0)
    watch.observe()  # the same reason as before recovery is a new outage: logged again
    assert len(log.lines) == 6 and log.lines[-1][0] == "WARN"


def test_raw_previews_hide_header_values_and_stop_at_the_preview_size():
    from tunnel_client.observe import logs
    assert logs._preview(None) is None
    body = json.dumps({"commands": [{"headers": {"Authorization": "Bearer t0ken-value",
                                                 "Content-Type": "application/json"},
                                     "jsonrpc": {"id": 1}}],
                       "resp_headers": {"Set-Cookie": "s=1", "Retry-After": "3"}})
    for raw in (body, body.encode()):
        shown = json.loads(logs._preview(raw))
        assert shown["commands"][0]["headers"] == {"Authorization": logs.REDACTED,
                                                   "Content-Type": "application/json"}
        assert shown["resp_headers"] == {"Set-Cookie": logs.REDACTED, "Retry-After": "3"}
        assert shown["commands"][0]["jsonrpc"] == {"id": 1}
    assert logs._preview('{"headers": ["not", "a", "mapping"]}') == \
        '{"headers": ["not", "a", "mapping"]}'
    assert logs._preview("{not json") == "{not json"
    assert logs._preview('{"text": "h\u00e9"}') == '{"text": "h\u00e9"}'  # not escaped
    long = "x" * (logs.RAW_PREVIEW + 10)
    assert logs._preview(long) == "x" * logs.RAW_PREVIEW
    assert logs._preview(long.encode()) == "x" * logs.RAW_PREVIEW
    huge = b"y" * (16 * logs.RAW_PREVIEW + 1)  # too big to decode whole: only its head is
    assert logs._preview(huge) == "y" * logs.RAW_PREVIEW
    exact = "z" * logs.RAW_PREVIEW
    assert logs._preview(exact) == exact and logs._preview(exact.encode()) == exact


def test_raw_previews_at_the_size_where_bodies_stop_being_parsed():
    from tunnel_client.observe import logs
    limit = 16 * logs.RAW_PREVIEW
    head = b'{"headers": {"Authorization": "Bearer t0ken-value"}, "pad": "'
    exact = head + b"p" * (limit - len(head) - 2) + b'"}'
    assert len(exact) == limit  # still parsed: its headers are hidden
    assert "t0ken-value" not in logs._preview(exact) and logs.REDACTED in logs._preview(exact)
    # one byte more is only cut, never decoded whole: a two-byte character split by the cut
    # reads as a replacement character
    over = b"{" + "\u00e9".encode() * (limit // 2)
    assert len(over) == limit + 1
    assert logs._preview(over) == over[:logs.RAW_PREVIEW].decode("utf-8", "replace")
    assert logs._preview(over).endswith("\ufffd")
