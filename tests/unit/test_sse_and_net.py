import email.utils
import threading
import time

import pytest

from tunnel_client import net
from tunnel_client.config.values import ProxySetting
from tunnel_client.controlplane import PROBE, POLL, BackoffGate
from tunnel_client.errors import ControlPlaneError
from tunnel_client.sse import EventTooLarge, SseParser


def events(*chunks):
    parser = SseParser()
    found = []
    for chunk in chunks:
        found.extend(parser.feed(chunk))
    return found


def test_sse_events_comments_and_keepalives():
    found = events(b": ping\n\n", b"event: message\nid: 7\ndata: {\"a\":1}\n\n", b"\n\n",
                   b"data: line1\ndata: line2\n\n")
    assert [(e.event, e.id, e.data) for e in found] == [
        ("message", "7", '{"a":1}'), ("message", "7", "line1\nline2")]  # the id persists


def test_sse_handles_every_line_ending_split_across_chunks():
    found = events(b"data: a\r", b"\n\r", b"\ndata: b\r\rdata:c\n", b"\n")
    assert [e.data for e in found] == ["a", "b", "c"]


def test_sse_multibyte_characters_split_across_chunks():
    payload = "data: \u00e9t\u00e9 \u2713\n\n".encode("utf-8")
    found = events(*[payload[i:i + 1] for i in range(len(payload))])
    assert found[0].data == "\u00e9t\u00e9 \u2713"


def test_sse_bounds_event_size():
    parser = SseParser(max_event_bytes=100)
    with pytest.raises(EventTooLarge):
        parser.feed(b"data: " + b"x" * 200 + b"\n")


def test_sse_priming_event_leaves_an_id_and_retry_for_reconnection():
    parser = SseParser()
    assert parser.last_event_id is None and parser.retry_ms is None
    assert parser.feed(b"id: ev-1\nretry: 500\ndata:\n\n") == []  # nothing to dispatch
    assert (parser.last_event_id, parser.retry_ms) == ("ev-1", 500)
    for bad in (b"retry: soon\n\n", b"retry: -5\n\n", "retry: \u0661\n\n".encode()):
        parser.feed(bad)
    assert parser.retry_ms == 500  # only ASCII digits set the delay


def test_sse_new_stream_drops_a_half_event_but_keeps_id_and_retry():
    parser = SseParser()
    parser.feed(b"id: 4\nretry: 20\n\nevent: message\ndata: half")
    parser.new_stream()
    found = parser.feed(b"data: whole\n\n")
    assert [(e.event, e.id, e.data) for e in found] == [("message", "4", "whole")]
    assert parser.retry_ms == 20


@pytest.mark.parametrize("value,expected", [
    ("2", 2.0), (" 5 ", 5.0), ("0", None), ("120", 60.0), ("99999999999999999999", 60.0),
    ("soon", None), ("", None), (None, None), ("-3", None)])
def test_retry_after_seconds(value, expected):
    assert net.parse_retry_after(value) == expected


def test_retry_after_http_date():
    now = time.time()
    assert net.parse_retry_after(email.utils.formatdate(now + 10, usegmt=True), now) == \
        pytest.approx(10, abs=1)
    assert net.parse_retry_after(email.utils.formatdate(now - 10, usegmt=True), now) is None


def test_backoff_grows_and_is_capped():
    policy = net.Backoff(initial=0.2, maximum=10.0, jitter=0.0)
    assert [policy.delay(n) for n in (1, 2, 3, 10)] == [0.2, 0.4, 0.8, 10.0]
    jittered = net.Backoff(initial=1.0, jitter=0.2)
    assert all(0.8 <= jittered.delay(1) <= 1.0 for _ in range(50))


@pytest.mark.parametrize("host,port,no_proxy,bypass", [
    ("api.example.com", 443, "example.com", True), ("api.example.com", 443, ".example.com", True),
    ("example.com", 443, ".example.com", True), ("badexample.com", 443, "example.com", False),
    ("10.1.2.3", 443, "10.0.0.0/8", True), ("127.0.0.1", 80, "localhost,127.0.0.1", True),
    ("host", 8080, "host:9090", False), ("host", 9090, "host:9090", True),
    ("anything", 1, "*", True), ("::1", 80, "::1", True)])
def test_no_proxy_matching(host, port, no_proxy, bypass):
    assert net.no_proxy_matches(host, port, no_proxy) is bypass


def test_route_precedence_explicit_beats_environment_and_no_proxy():
    trust = net.TrustStore()
    env = {"HTTPS_PROXY": "http://env-proxy:3128", "NO_PROXY": "internal.example"}
    explicit = ProxySetting("http://user:pw@corp-proxy:8080", "control-plane.http-proxy")
    route = net.resolve_route("cp", "https://internal.example", [None, explicit], env, trust)
    assert route.proxy == "http://user:pw@corp-proxy:8080"
    assert route.describe() == "via proxy http://corp-proxy:8080 (from control-plane.http-proxy)"
    assert "pw" not in str(route.as_dict())
    assert net.resolve_route("cp", "https://internal.example", [None], env, trust).proxy is None
    assert net.resolve_route("cp", "https://api.example", [], env, trust).proxy == \
        "http://env-proxy:3128"
    assert net.resolve_route("cp", "https://api.example", [], {"https_proxy": "p:1"},
                             trust).proxy == "http://p:1"
    assert net.resolve_route("cp", "https://api.example", [], {}, trust).proxies == {}


def test_gate_lets_one_probe_through_then_everyone():
    gate = BackoffGate()
    stop = threading.Event()
    assert gate.wait(stop) == PROBE
    gate._cond = WatchedCondition()  # tells when a worker blocks in the gate
    results = []
    waiter = threading.Thread(target=lambda: results.append(gate.wait(stop)))
    waiter.start()
    assert gate._cond.waiting.wait(5), "a second worker must wait for the probe's verdict"
    assert results == []
    assert gate.success(time.monotonic()) is True
    waiter.join(5)
    assert results == [POLL]
    assert gate.wait(stop) == POLL


class WatchedCondition(threading.Condition):
    """A Condition that records that somebody waited on it."""

    def __init__(self):
        super().__init__()
        self.waiting = threading.Event()

    def wait(self, timeout=None):
        self.waiting.set()
        return super().wait(timeout)


def test_a_poll_sent_before_a_pause_does_not_clear_it():
    gate = BackoffGate()
    stop = threading.Event()
    assert gate.wait(stop) == PROBE
    gate.success(time.monotonic())
    long_poll_sent = time.monotonic()  # waiting at the service while another worker...
    gate.failure(ControlPlaneError("429", status=429, retry_after=60))  # ...meets a 429
    assert gate.success(long_poll_sent) is False, "no recovery to report either"
    assert "429" in gate.reason
    results = []
    gate._cond = WatchedCondition()  # tells when a worker blocks in the gate
    waiter = threading.Thread(target=lambda: results.append(gate.wait(stop)))
    waiter.start()
    assert gate._cond.waiting.wait(5), "the Retry-After pause must hold for every worker"
    assert results == []
    gate.close()
    waiter.join(2)
    assert results == [None]


def test_a_probe_overtaken_by_a_failure_lets_the_next_probe_go():
    gate = BackoffGate(policy=net.Backoff(initial=0.05, jitter=0.0))
    stop = threading.Event()
    assert gate.wait(stop) == PROBE
    probe_sent = time.monotonic()
    gate.failure(ControlPlaneError("503", status=503))  # another worker's poll, later
    assert gate.success(probe_sent) is False
    results = []
    waiter = threading.Thread(target=lambda: results.append(gate.wait(stop)))
    waiter.start()
    waiter.join(5)
    assert results == [PROBE], "nobody may probe while a finished probe is still counted"


def test_a_probe_answered_during_a_response_posts_pause_proves_recovery():
    """A response POST's Retry-After asks to slow down; it is not a failed poll. The probe
    still counts, but the pause it did not precede stays in force."""
    gate = BackoffGate()
    stop = threading.Event()
    assert gate.wait(stop) == PROBE
    probe_sent = time.monotonic()
    gate.pause(0.3, "response POST got 429 with Retry-After")
    assert gate.success(probe_sent) is True
    assert gate.paused_for() > 0 and "Retry-After" in gate.reason
    assert gate.wait(stop) == POLL and gate.wait(stop) == POLL  # after the pause, everyone
    assert gate.paused_for() == 0


def test_gate_pauses_for_retry_after_and_counts_one_failure_per_outage():
    gate = BackoffGate(policy=net.Backoff(initial=0.05, jitter=0.0))
    stop = threading.Event()
    gate.wait(stop)
    pause = gate.failure(ControlPlaneError("x", status=429, retry_after=0.3))
    assert pause == pytest.approx(0.3, abs=0.02)
    gate.failure(ControlPlaneError("y", status=503))
    assert gate.failures == 1
    started = time.monotonic()
    assert gate.wait(stop) == PROBE
    assert time.monotonic() - started >= 0.28


def test_gate_auth_failures_use_the_long_backoff_and_stop_wakes_waiters():
    gate = BackoffGate()
    stop = threading.Event()
    gate.wait(stop)
    assert gate.failure(ControlPlaneError("401", status=401)) >= 13.0
    results = []
    waiter = threading.Thread(target=lambda: results.append(gate.wait(stop)))
    waiter.start()
    gate.close()
    waiter.join(2)
    assert results == [None]
