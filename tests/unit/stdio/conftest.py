import os
import signal
import threading

import pytest

from tunnel_client import wire
from tests.unit.stdio.sessions import Child, Session
from tests.support.patience import PATIENCE


@pytest.fixture
def child(tmp_path):
    made = []

    def make(*flags, **kw):
        made.append(Child(tmp_path, *flags, **kw))
        return made[-1]

    yield make
    for each in made:
        each.close()


@pytest.fixture
def session():
    made = []

    def make(argv, **kw):
        made.append(Session(argv, **kw))
        return made[-1]

    yield make
    for each in made:
        each.close()


def _children():
    """Process ids of this process's children (from every thread)."""
    pids = set()
    for task in os.listdir("/proc/self/task"):
        try:
            with open("/proc/self/task/%s/children" % task) as handle:
                pids.update(int(pid) for pid in handle.read().split())
        except OSError:
            pass  # the thread ended meanwhile
    return pids


def _ran_over(signum, frame):
    raise TimeoutError("a stdio room test ran over %d s" % TEST_LIMIT)


TEST_LIMIT = 15  # none needs more than a second or two; a hang fails instead of stalling


@pytest.fixture(autouse=True)
def bounded_and_tidy():
    """A test that hangs fails at TEST_LIMIT (the mutation check meets many that would
    hang forever), and every server process a test started is gone once the test has
    stopped what it made: a child left running would outlive the daemon that should have
    stopped it."""
    before = _children()
    previous = signal.signal(signal.SIGALRM, _ran_over)
    signal.setitimer(signal.ITIMER_REAL, TEST_LIMIT)
    try:
        yield
        deadline = wire.Deadline.after(PATIENCE / 2)
        left = _children() - before
        while left and not deadline.expired():
            threading.Event().wait(0.02)
            left = _children() - before
        assert not left, "child processes still running after the test: %s" % sorted(left)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
