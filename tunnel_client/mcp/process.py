"""A stdio MCP server process: spawn, read, write, drain stderr, stop.

The process knows pipes and signals, not MCP. Its reader thread hands every parsed
stdout message to ``on_message``; when stdout ends it reaps the child and calls
``on_exit``. stderr is drained line by line into the log, bounded and rate limited, so the
child can never block on a full pipe. Writes time out, so a child that stops reading stdin
cannot wedge a worker.
"""

import os
import select
import signal
import subprocess
import threading
import time
from typing import Callable, Dict, Optional, Sequence

from tunnel_client import wire
from tunnel_client.errors import ChildGone, StartupError
from tunnel_client.observe.logs import get_logger

log = get_logger("stdio")

STDERR_LINE_LIMIT = 4096
STDERR_RATE = 20.0  # lines per second logged; the rest are counted and summarized
STDERR_BURST = 100
STDERR_SUMMARY_INTERVAL = 5.0  # seconds between reports of suppressed stderr lines
GARBAGE_PREVIEW = 120


class _RateLimit:
    """Token bucket for log lines, with a count of what it suppressed."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()
        self.suppressed = 0

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        self.suppressed += 1
        return False


class _SuppressedSummary:
    """Reports how many stderr lines the rate limit swallowed since the last report."""

    def __init__(self, limit: _RateLimit, fields: dict):
        self.limit, self.fields = limit, fields
        self.reported = 0
        self.reported_at = time.monotonic()

    def report_if_due(self):
        if time.monotonic() - self.reported_at >= STDERR_SUMMARY_INTERVAL:
            self.report()

    def report(self):
        if self.limit.suppressed > self.reported:
            log.warning("stdio server stderr is noisy; suppressed lines",
                        extra=dict(self.fields, suppressed=self.limit.suppressed - self.reported))
            self.reported = self.limit.suppressed
        self.reported_at = time.monotonic()


def _split_lines(data: bytes, limit: int):
    """Complete lines of ``data`` (a line over ``limit`` bytes is cut into pieces) and
    the unfinished rest."""
    lines = []
    start = 0
    while True:
        end = data.find(b"\n", start, start + limit + 1)
        if end >= 0:
            lines.append(data[start:end])
            start = end + 1
        elif len(data) - start > limit:
            lines.append(data[start:start + limit])
            start += limit
        else:
            return lines, data[start:]


class ChildProcess:
    def __init__(self, argv: Sequence[str], env: Dict[str, str], channel: str,
                 generation: int, max_line: int,
                 on_message: Callable[[dict], None], on_exit: Callable[[int], None],
                 on_dropped: Callable[[str], None] = lambda reason: None):
        self.argv = list(argv)
        self.env = env
        self.channel = channel
        self.generation = generation
        self.max_line = max_line
        self.on_message = on_message
        self.on_exit = on_exit
        self.on_dropped = on_dropped
        self.proc: Optional[subprocess.Popen] = None
        self.started_at = 0.0
        self.returncode: Optional[int] = None
        self._write_lock = threading.Lock()
        # start() and stop() in turn: a stop that lands while the supervisor is still
        # starting this child must not leave it running with nobody to stop it.
        self._life = threading.Lock()
        self._stop_asked = False
        # A kill that lands before the process exists (the watchdog or the pinger acting on
        # a generation still being started) is carried out as soon as it does.
        self._kill_asked = False
        self._started = threading.Event()  # set once Popen returned (or failed)
        self._exited = threading.Event()
        self._fields = {"channel": channel, "generation": generation}

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and not self._exited.is_set()

    def start(self):
        with self._life:
            if self._stop_asked:  # stopped before it ever ran: nothing to start
                self._exited.set()
                self._started.set()
                return
            self._start()
            if self._kill_asked:
                self._signal(signal.SIGKILL)

    def _start(self):
        try:
            # A new session keeps the terminal's Ctrl-C away from the child: the daemon
            # stops it itself after draining in-flight calls.
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, env=self.env, close_fds=True,
                start_new_session=True)
        except FileNotFoundError:
            self._exited.set()
            raise StartupError("stdio MCP command for channel %s: executable %r not found; "
                               "check mcp.command and PATH" % (self.channel, self.argv[0])) from None
        except PermissionError:
            self._exited.set()
            raise StartupError("stdio MCP command for channel %s: %r is not executable"
                               % (self.channel, self.argv[0])) from None
        except OSError as exc:
            self._exited.set()
            raise StartupError("stdio MCP command for channel %s could not start: %s"
                               % (self.channel, exc)) from None
        finally:
            self._started.set()
        self.started_at = time.monotonic()
        # Writes go straight to the non-blocking fd (see send), never through the buffer.
        os.set_blocking(self.proc.stdin.fileno(), False)
        name = "stdio-%s-%d" % (self.channel, self.generation)
        threading.Thread(target=self._read_stdout, name=name + "-out", daemon=True).start()
        threading.Thread(target=self._drain_stderr, name=name + "-err", daemon=True).start()
        log.info("stdio MCP command started",
                 extra=dict(self._fields, pid=self.proc.pid, command=" ".join(self.argv)))

    # --- output --------------------------------------------------------------------------

    def _read_stdout(self):
        stream = self.proc.stdout
        garbage = _RateLimit(5, 20)
        try:
            while True:
                line = stream.readline(self.max_line + 1)
                if not line:
                    break
                if len(line) > self.max_line and not line.endswith(b"\n"):
                    skipped = len(line) + self._skip_rest_of_line(stream)
                    log.warning("stdio server wrote a line over the size limit; dropped it",
                                extra=dict(self._fields, bytes=skipped, limit=self.max_line))
                    self.on_dropped("too_long")
                    continue
                line = line.strip()
                if not line:
                    continue
                try:
                    message = wire.loads(line)
                except ValueError:
                    if garbage.allow():
                        log.warning("stdio server wrote a line that is not JSON; skipped it",
                                    extra=dict(self._fields, preview=line[:GARBAGE_PREVIEW]
                                               .decode("utf-8", "replace")))
                    self.on_dropped("not_json")
                    continue
                self.on_message(message)
        except Exception:  # a broken reader must still reap the child below
            log.exception("stdio reader failed", extra=self._fields)
        finally:
            try:
                self.returncode = self.proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                # stdout closed but the process lives on: it can no longer answer anyone.
                log.warning("stdio server closed stdout but kept running; killing it",
                            extra=self._fields)
                self.kill()
                self.returncode = self.proc.wait()
            self._exited.set()
            self.on_exit(self.returncode)

    def _skip_rest_of_line(self, stream) -> int:
        skipped = 0
        while True:
            chunk = stream.readline(1 << 20)
            skipped += len(chunk)
            if not chunk or chunk.endswith(b"\n"):
                return skipped

    def _drain_stderr(self):
        """Log stderr line by line, rate limited. What the limit suppresses is reported
        on a timer and when stderr ends, so a flood that stops is never left unreported."""
        fd = self.proc.stderr.fileno()
        limit = _RateLimit(STDERR_RATE, STDERR_BURST)
        summary = _SuppressedSummary(limit, self._fields)
        pending = b""
        try:
            while True:
                ready, _, _ = select.select([fd], [], [], STDERR_SUMMARY_INTERVAL)
                chunk = os.read(fd, 65536) if ready else None
                if chunk == b"":
                    break
                if chunk:
                    pending += chunk
                    lines, pending = _split_lines(pending, STDERR_LINE_LIMIT)
                    for raw in lines:
                        text = raw.rstrip(b"\r").decode("utf-8", "replace")
                        if text and limit.allow():
                            summary.report()  # before the line, so the log reads in order
                            log.info(text, extra=dict(self._fields, stream="stderr"))
                summary.report_if_due()
        except (OSError, ValueError):
            pass
        finally:
            if pending.strip() and limit.allow():
                log.info(pending.rstrip(b"\r\n").decode("utf-8", "replace"),
                         extra=dict(self._fields, stream="stderr"))
            summary.report()

    # --- input ---------------------------------------------------------------------------

    def send(self, data: bytes, timeout: Optional[float] = None):
        """Write one framed message. Raises ChildGone when the pipe is closed and
        TimeoutError when the child does not read its input in time; a partial write
        leaves the stream unusable, so the caller must then kill the child."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._started.wait(timeout):
            raise TimeoutError("stdio server is still starting")
        if not self._write_lock.acquire(timeout=-1 if timeout is None else max(0.0, timeout)):
            raise TimeoutError("another write to the stdio server is still blocked")
        try:
            if self.proc is None or self._exited.is_set():
                raise ChildGone("stdio server has exited")
            fd = self.proc.stdin.fileno()
            view = memoryview(data)
            while view:
                try:
                    # Try first: a pipe with room takes the line at once, and select()
                    # is only needed when the child has fallen behind.
                    view = view[os.write(fd, view):]
                    continue
                except BlockingIOError:
                    pass
                except (BrokenPipeError, ValueError, OSError) as exc:
                    raise ChildGone("stdio server closed its input: %s" % exc) from None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError("stdio server did not read its input in time")
                select.select([], [fd], [], left)
        finally:
            self._write_lock.release()

    # --- stopping ------------------------------------------------------------------------

    def kill(self):
        with self._life:
            self._kill_asked = True
        self._signal(signal.SIGKILL)

    def _signal(self, signum: int):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signum)
            except OSError:
                pass

    def stop(self, grace: float):
        """Close stdin, then SIGTERM after ``grace``, then SIGKILL after ``grace`` more."""
        with self._life:
            self._stop_asked = True
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        if self._exited.wait(grace):
            return
        self._signal(signal.SIGTERM)
        if self._exited.wait(grace):
            return
        log.warning("stdio server ignored SIGTERM; killing it", extra=self._fields)
        self.kill()
        self._exited.wait(5.0)

    def wait_exited(self, timeout: float) -> bool:
        return self._exited.wait(timeout)
