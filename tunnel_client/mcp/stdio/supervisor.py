"""Supervision of one stdio child lineage: spawn, notice the exit, restart with backoff,
give up on a crash loop.

The state lives in one ``Enum`` and changes in one method (``_move``). Generation numbers
tell a child from its successors, so news about a dead child (its exit, a reply it wrote
just before dying) can never be mistaken for news about the running one. Only this room
starts processes (through ``ChildProcess``, which owns ``subprocess``).
"""

import collections
import enum
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional, Union

from tunnel_client import wire
from tunnel_client.errors import ChildGaveUp, StartupError
from tunnel_client.mcp.process import ChildProcess
from tunnel_client.mcp.stdio.policy import MAX_BACKOFF, RESTART_WAIT_CAP, StdioPolicy, seconds
from tunnel_client.observe.logs import get_logger

log = get_logger("stdio")


class ChildState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    RESTARTING = "restarting"
    GAVE_UP = "failed"
    STOPPED = "stopped"


class DownReason(enum.Enum):
    """Why a child went away; the value is the metric label."""

    EXIT = "exit"
    SIGNAL = "signal"
    HEALTH = "health"
    STUCK = "stuck"
    SPAWN_FAILED = "spawn_failed"


_ALLOWED = {
    ChildState.NEW: {ChildState.RUNNING, ChildState.STOPPED, ChildState.GAVE_UP},
    ChildState.RUNNING: {ChildState.RESTARTING, ChildState.GAVE_UP, ChildState.STOPPED},
    ChildState.RESTARTING: {ChildState.RUNNING, ChildState.RESTARTING, ChildState.GAVE_UP,
                            ChildState.STOPPED},
    ChildState.GAVE_UP: {ChildState.STOPPED},
    ChildState.STOPPED: set(),
}


@dataclass(frozen=True)
class Running:
    """The child a call may use, with the generation its messages belong to."""

    child: ChildProcess
    generation: int


@dataclass(frozen=True)
class Unavailable:
    """No child will serve this call (gave up, stopped, or the restart took too long)."""

    failure: wire.TunnelFailure


@dataclass(frozen=True)
class Expired:
    """The caller's deadline passed while waiting."""


class Supervisor:
    def __init__(self, channel: str, argv, env, policy: StdioPolicy, metrics,
                 on_message: Callable[[int, dict], None],
                 on_down: Callable[[int], None],
                 on_fatal: Callable[[Exception], None], label: str = ""):
        self.channel = channel
        self.argv = list(argv)
        self.env = env
        self.policy = policy
        self.metrics = metrics
        self.on_message = on_message
        self.on_down = on_down
        self.on_fatal = on_fatal
        self.label = label  # which era this lineage serves, for logs
        self.scheduler = None
        self._cond = threading.Condition()
        self.state = ChildState.NEW
        self.reason = "not started"
        self.since = time.time()
        self.generation = 0
        self.child: Optional[ChildProcess] = None
        self.restarts = collections.deque()
        self.total_restarts = 0
        self._kill_reason = None  # (DownReason, text) of a kill we asked for
        self._fields = {"channel": channel}

    # --- the one place state changes --------------------------------------------------------

    def _move(self, to: ChildState, why: str):
        """With the lock held."""
        if to not in _ALLOWED[self.state]:
            raise RuntimeError("stdio supervisor: %s -> %s is not a transition"
                               % (self.state.name, to.name))
        self.state, self.reason, self.since = to, why, time.time()
        self._cond.notify_all()

    # --- lifecycle --------------------------------------------------------------------------

    def start(self, scheduler):
        self.scheduler = scheduler
        self._spawn()

    def _spawn(self):
        """Start the next generation. The generation and RUNNING are recorded before the
        process starts, so an exit at once is a transition from RUNNING, never a race."""
        with self._cond:
            if self.state in (ChildState.STOPPED, ChildState.GAVE_UP):
                return
            self.generation += 1
            generation = self.generation
            child = ChildProcess(
                self.argv, self.env, self.channel, generation, self.policy.max_line,
                on_message=lambda msg: self.on_message(generation, msg),
                on_exit=lambda code: self._exited(generation, code),
                on_dropped=lambda reason: self.metrics.stdio_dropped_lines.inc(
                    channel=self.channel, reason=reason))
            self.child = child
            self._move(ChildState.RUNNING, "running")
        self._publish(generation)
        child.start()

    def claim(self, label: str):
        """This lineage now serves ``label`` (an MCP era) through all its restarts."""
        with self._cond:
            self.label = label
            generation = self.generation
        self._publish(generation)

    def _publish(self, generation: int):
        if self.label:  # a child no era has claimed yet has no series of its own
            self.metrics.stdio_generation.set(generation, channel=self.channel,
                                              era=self.label)

    def _respawn(self):
        with self._cond:
            if self.state is not ChildState.RESTARTING:
                return
        try:
            self._spawn()
        except StartupError as exc:
            self._down(self.generation, DownReason.SPAWN_FAILED, "could not start (%s)" % exc)

    def stop(self):
        with self._cond:
            if self.state is not ChildState.STOPPED:
                self._move(ChildState.STOPPED, "stopped")
            child = self.child
        if child is not None:
            child.stop(self.policy.stop_grace)

    def kill(self, generation: int, reason: DownReason, text: str):
        """Replace a child that is alive but useless (stuck, not answering)."""
        with self._cond:
            if generation != self.generation:
                return
            self._kill_reason = (reason, text)
            child = self.child
        child.kill()

    def _exited(self, generation: int, code):
        if code is not None and code < 0:
            self._down(generation, DownReason.SIGNAL, "was killed by signal %d" % -code)
        else:
            self._down(generation, DownReason.EXIT, "exited with code %s" % code)

    def _down(self, generation: int, kind: DownReason, text: str):
        """The child of ``generation`` is gone: restart it, or give up on a crash loop."""
        now = time.monotonic()
        gave_up = None
        delay = 0.0
        with self._cond:
            if generation != self.generation:
                return
            if self._kill_reason is not None:
                (kind, text), self._kill_reason = self._kill_reason, None
            stopping = self.state is ChildState.STOPPED
            if not stopping:
                window = self.policy.restart_window
                while self.restarts and now - self.restarts[0] > window:
                    self.restarts.popleft()
                if len(self.restarts) >= self.policy.restart_limit:
                    why = ("stdio server %s and was restarted %d times within %s; giving up"
                           % (text, len(self.restarts), seconds(window)))
                    self._move(ChildState.GAVE_UP, why)
                    gave_up = ChildGaveUp("stdio MCP server for channel %s: %s"
                                          % (self.channel, why))
                else:
                    self.restarts.append(now)
                    self.total_restarts += 1
                    delay = min(MAX_BACKOFF, self.policy.restart_backoff *
                                (2 ** (len(self.restarts) - 1)))
                    self._move(ChildState.RESTARTING, "stdio server %s; restart %d of %d "
                               "within %s in %.2fs" % (text, len(self.restarts),
                                                       self.policy.restart_limit,
                                                       seconds(window), delay))
        # Calls of the dead child fail only now: a new call either met the old state and
        # registered before this (and is failed here), or waits for the next generation.
        failed = self.on_down(generation)
        if stopping:
            return
        if gave_up is not None:
            log.error(str(gave_up), extra=self._fields)
            self.on_fatal(gave_up)
            return
        log.warning("stdio MCP server is down; restarting",
                    extra=dict(self._fields, reason=text, generation=generation,
                               era=self.label, retry_in_ms=int(delay * 1000),
                               in_flight_failed=failed))
        self.metrics.stdio_restarts.inc(channel=self.channel, reason=kind.value)
        self.scheduler.call_later(delay, self._respawn, "stdio-restart-" + self.channel)

    # --- what callers wait for --------------------------------------------------------------

    def current(self) -> Optional[Running]:
        with self._cond:
            if self.state is ChildState.RUNNING and self.child is not None:
                return Running(self.child, self.generation)
            return None

    def wait_running(self, deadline: wire.Deadline) -> Union[Running, Unavailable, Expired]:
        """Wait out a restart (bounded), then hand out the running child."""
        limit = deadline.sooner(RESTART_WAIT_CAP)
        with self._cond:
            while self.state in (ChildState.NEW, ChildState.RESTARTING):
                if limit.expired():
                    if deadline.expired():
                        return Expired()
                    return Unavailable(wire.TunnelFailure("connect", "dial", False))
                self._cond.wait(limit.remaining())
            if self.state is not ChildState.RUNNING:
                return Unavailable(wire.TunnelFailure("connect", "dial", False))
            return Running(self.child, self.generation)

    def wait_replaced(self, generation: int, deadline: wire.Deadline) -> bool:
        """Wait until the child of ``generation`` has been replaced by a running one."""
        limit = deadline.sooner(RESTART_WAIT_CAP)
        with self._cond:
            while self.generation == generation or self.state is not ChildState.RUNNING:
                if self.state in (ChildState.GAVE_UP, ChildState.STOPPED) or limit.expired():
                    return False
                self._cond.wait(limit.remaining())
        return True

    def snapshot(self) -> dict:
        with self._cond:
            child = self.child
            return {"state": self.state.value, "reason": self.reason, "since": self.since,
                    "pid": child.pid if child is not None and child.alive else None,
                    "generation": self.generation, "restarts": self.total_restarts}
