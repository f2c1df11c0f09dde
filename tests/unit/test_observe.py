"""Redaction of structured log fields and the poll-health verdict behind /readyz."""

import pytest

from tunnel_client.observe import health
from tunnel_client.observe.health import PollHealth
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
    poll = PollHealth()  # the default grace (60 s)
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
