"""The control-plane client: poll, respond and metadata, with the protocol's retry rules.

One ``BackoffGate`` is shared by every worker: when the control plane says "slow down"
(429/5xx/outage) or "not allowed" (401/403) all workers wait, and after the pause a single
worker probes before the others resume, so ten workers never hammer a service that asked
for a pause.
"""

import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable, List, Mapping, Optional, Set, Tuple
from urllib.parse import quote

import requests

from tunnel_client import CLIENT_NAME, USER_AGENT, __version__, wire
from tunnel_client.errors import ControlPlaneError, brief
from tunnel_client.net import (Backoff, ConnectObserver, Route, SessionPool,
                               connects_observed, describe_failure, parse_retry_after)
from tunnel_client.net.failures import summarize
from tunnel_client.observe.instruments import Instruments
from tunnel_client.observe.logs import RawHttp, get_logger

log = get_logger("controlplane")

POLL_BACKOFF = Backoff(initial=0.2, maximum=10.0)
AUTH_BACKOFF = Backoff(initial=15.0, maximum=300.0, jitter=0.1)
POST_BACKOFF = Backoff(initial=0.2, maximum=10.0)
POST_ATTEMPTS = 3
RETRYABLE_POST_STATUSES = (408, 429, 502, 503, 504)
ERROR_BODY_LIMIT = 64 * 1024

# Mitigations for the stable error codes most operators meet (error_body.code in
# tests/contract/wire.schema.json), in our words.
MITIGATIONS = {
    "invalid_tunnel_id_format": "use the exact tunnel ID from the tunnel settings page in "
                                "control_plane.tunnel_id",
    "tunnel_active_organization_required": "set control_plane.organization_id "
                                           "(--control-plane.organization-id)",
    "tunnel_use_forbidden": "use an API key of a principal that may use this tunnel, or "
                            "recreate the tunnel in the key's organization or workspace",
    "tunnel_missing_principals": "use a runtime API key that belongs to the tunnel's "
                                 "organization or workspace",
    "tunnel_request_mismatch": "check that control_plane.tunnel_id is the tunnel that issued "
                               "the command",
    "rate_limit_exceeded": "reduce MCP request volume; the client backs off automatically",
    "tunnel_queue_full": "add healthy tunnel-client capacity or reduce MCP concurrency",
    "tunnel_transport_unavailable": "transient; the client retries",
    "pending_request_not_found": "none needed for isolated races",
    "request_body_too_large": "the MCP reply exceeded the service limit; return less data",
}


@dataclass(frozen=True)
class TunnelMetadata:
    id: str
    name: str
    description: str


def parse_api_error(body: bytes) -> Tuple[Optional[str], str, Optional[str]]:
    """(code, message, type) from ``{"error":{...}}``, top-level fields, or ``detail``."""
    try:
        data = wire.loads(body[:ERROR_BODY_LIMIT].decode("utf-8", "replace"))
    except ValueError:
        text = body[:1024].decode("utf-8", "replace").strip()
        return None, text, None
    if isinstance(data, dict):
        err = data.get("error") if isinstance(data.get("error"), dict) else data
        message = err.get("message") or data.get("detail") or ""
        code = err.get("code") if isinstance(err.get("code"), str) else None
        kind = err.get("type") if isinstance(err.get("type"), str) else None
        return code, str(message), kind
    return None, str(data)[:1024], None


def api_error(resp: requests.Response, what: str) -> ControlPlaneError:
    try:
        body = resp.raw.read(ERROR_BODY_LIMIT, decode_content=True) if resp.raw else b""
    except Exception:  # the status is what matters; the body is best effort
        body = b""
    code, message, _ = parse_api_error(body or b"")
    if resp.status_code == 407:
        # A plain-HTTP target through a proxy gets the proxy's 407 as its answer.
        line = ("the proxy rejected the credentials (407 Proxy Authentication Required); "
                "check the user and password in the proxy URL")
        return ControlPlaneError("%s failed: %s" % (what, line), status=407, transport=True,
                                 summary=line)
    mitigation = MITIGATIONS.get(code or "")
    if resp.status_code == 401 and not mitigation:
        mitigation = "check control_plane.api_key: the control plane rejected the key"
    if resp.status_code == 403 and not mitigation:
        mitigation = "the key lacks the tunnel permission (api.organization.tunnel.use)"
    line = "HTTP %d" % resp.status_code
    if code:
        line += " %s" % code
    if message:
        line += ": %s" % (message if len(message) <= 200 else message[:200] + "...")
    if mitigation:
        line += " (%s)" % mitigation
    return ControlPlaneError("%s failed: %s" % (what, line), status=resp.status_code, code=code,
                             summary=line, detail=message or None,
                             retry_after=parse_retry_after(resp.headers.get("Retry-After")),
                             request_id=resp.headers.get("X-Request-Id"))


def transport_error(exc: Exception, what: str, route: Optional[Route] = None
                    ) -> ControlPlaneError:
    failure = wire.classify_exception(exc)
    kind, line = summarize(exc, route)
    return ControlPlaneError("%s failed: %s" % (what, line), transport=True,
                             code=failure.source, kind=kind, summary=line,
                             detail=describe_failure(exc, route))


POLL, PROBE = "poll", "probe"
PROBE_TIMEOUT = 0.001  # a probe only needs a verdict: timeout_ms=1, the contract's minimum


class BackoffGate:
    """The shared pause in front of every poll.

    ``wait()`` blocks while paused. Until a poll has succeeded (at startup, and again after
    any failure) exactly one worker is let through, as a short *probe* poll; the others wait
    for its verdict. Failures while already paused extend the pause to any longer
    Retry-After but do not count again, so one outage seen by ten workers costs one backoff
    step, not ten, and a wrong key costs one poll per backoff step, not one per worker.
    A success only counts for a poll sent after the latest failure: a long poll that was
    already waiting when another worker met a 429 says nothing about the service now. Nor
    does it lift a pause that began after it was sent (a failure's, or a Retry-After a
    response POST met); but a response POST's pause is a request to slow down, not a
    failure, so a poll answered during it still proves the service is up.
    """

    def __init__(self, policy: Backoff = POLL_BACKOFF, auth_policy: Backoff = AUTH_BACKOFF):
        self.policy = policy
        self.auth_policy = auth_policy
        self._cond = threading.Condition()
        self._paused_until = 0.0
        self._paused_at = float("-inf")  # when the latest pause (of either kind) began
        self._failed_at = float("-inf")  # when the latest failed poll was recorded
        self._failures = 0
        self._proven = False
        self._probing = False
        self._closed = False
        self.reason = ""

    def wait(self, stop: threading.Event) -> Optional[str]:
        """Block until this worker may poll: POLL or PROBE; None when stopping."""
        with self._cond:
            while True:
                if stop.is_set() or self._closed:
                    return None
                now = time.monotonic()
                if now < self._paused_until:
                    self._cond.wait(self._paused_until - now)
                    continue
                if self._proven and self._failures == 0:
                    return POLL
                if not self._probing:
                    self._probing = True
                    return PROBE
                self._cond.wait()

    def success(self, sent_at: float) -> bool:
        """A poll sent at ``sent_at`` (monotonic) succeeded; False when it does not count
        because a failed poll was recorded after it was sent."""
        with self._cond:
            if sent_at < self._failed_at:
                # Overtaken by a later failure: that verdict stands, but a probe that ended
                # this way must let the next probe go after the pause.
                self._probing = False
                self._cond.notify_all()
                return False
            self._failures = 0
            self._proven = True
            self._probing = False
            if sent_at >= self._paused_at:  # a pause that began later stays in force
                self._paused_until = 0.0
                self.reason = ""
            self._cond.notify_all()
            return True

    def failure(self, error: ControlPlaneError) -> float:
        """Record a failed poll; returns the pause now in force (seconds)."""
        with self._cond:
            now = time.monotonic()
            if now >= self._paused_until:
                self._failures += 1
            policy = self.auth_policy if error.is_auth else self.policy
            delay = max(policy.delay(self._failures), error.retry_after or 0.0)
            self._paused_until = max(self._paused_until, now + delay)
            self._paused_at = self._failed_at = now
            self._probing = False
            self._proven = False
            self.reason = str(error)
            self._cond.notify_all()
            return self._paused_until - now

    def pause(self, seconds: float, reason: str):
        """Pause polling without counting a failure (e.g. Retry-After on a response POST)."""
        with self._cond:
            now = time.monotonic()
            self._paused_until = max(self._paused_until, now + seconds)
            self._paused_at = now
            self.reason = reason
            self._cond.notify_all()

    def close(self):
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def failures(self) -> int:
        return self._failures

    def paused_for(self) -> float:
        """Seconds left of the pause in force (0 when polls may go)."""
        with self._cond:
            return max(0.0, self._paused_until - time.monotonic())


class _Lane(ConnectObserver):
    """One worker's keep-alive lane to the control plane: its session's transport adapter
    and the prepared requests it sends again and again.

    The hot path (poll, then POST the replies) goes through requests' public transport
    adapter interface with requests prepared once, which skips per-call merging, cookie and
    redirect handling that a control-plane exchange never needs; bodies are always read so
    the connection goes back to the pool instead of being reconnected.
    """

    def __init__(self, session, url: str, stopping: threading.Event):
        self.adapter = session.get_adapter(url)
        self.stopping = stopping  # the control plane's: set once, polls must end
        self.thread = threading.get_ident()
        self.info = None
        self.poll = self.probe = self.post = None
        self.conn = None  # the connection this lane's requests use (a poll's is cut on stop)
        self.polling = False  # waiting for a poll's response headers
        self.opening = False  # opening a connection: nothing sent on it yet

    def observed(self):
        """Around every request of this lane: each connection it opens becomes ``conn``.
        Connections are per lane and used one request at a time, so ``conn`` is always the
        one the next poll waits on, whichever request opened it."""
        return connects_observed(self)

    def connecting(self, conn):
        self.opening = True

    def connected(self, conn):
        self.opening = False
        if conn is None:
            return
        # Recorded before ``stopping`` is read, while interrupt_polls sets ``stopping``
        # before reading ``conn``: one of the two always sees the other.
        self.conn = conn
        if self.stopping.is_set() and self.polling:
            _shut(conn)


class ControlPlane:
    """Poll, respond and metadata against ``{base}{url_path}/v1/tunnels/{id}``."""

    def __init__(self, route: Route, tunnel_id: str, api_key: str, *,
                 poll_timeout: float = 30.0, guardrail: float = 5.0,
                 connect_timeout: float = 10.0, channels: Optional[List[str]] = None,
                 organization_id: Optional[str] = None, extra_headers=(),
                 instance_id: str = "", server_info: Callable[[], str] = lambda: "",
                 instruments: Optional[Instruments] = None, url_path: str = "",
                 auth_backoff: float = AUTH_BACKOFF.initial):
        self.route = route
        self.tunnel_id = tunnel_id
        self.poll_timeout = poll_timeout
        self.poll_window = min(poll_timeout + guardrail, 600.0)
        self.connect_timeout = connect_timeout
        self.server_info = server_info
        self.metrics = instruments or Instruments()
        self.sessions = SessionPool(route)
        self.gate = BackoffGate(auth_policy=Backoff(initial=auth_backoff,
                                                    maximum=max(auth_backoff, 300.0),
                                                    jitter=AUTH_BACKOFF.jitter))
        base = route.target.rstrip("/") + url_path + "/v1/tunnels/" + quote(tunnel_id, safe="")
        self.metadata_url = base
        self.response_url = base + "/response"
        query = "".join("channel=%s&" % quote(c) for c in sorted(channels or ()))
        self.poll_url = "%s/poll?%slimit=1&timeout_ms=%d" % (base, query, int(poll_timeout * 1000))
        self.probe_url = "%s/poll?%slimit=1&timeout_ms=%d" % (
            base, query, max(1, int(min(poll_timeout, PROBE_TIMEOUT) * 1000)))
        headers = {}
        # A mapping, a HeaderList (its ``items`` are pairs) or (name, value) pairs.
        pairs = extra_headers.items() if isinstance(extra_headers, Mapping) \
            else getattr(extra_headers, "items", extra_headers)
        for name, value in pairs or ():
            if name.lower() == "x-tunnel-client-instance-id":
                log.warning("ignoring extra header X-Tunnel-Client-Instance-Id; the client "
                            "sets its own")
                continue
            headers[name] = value
        headers.update({
            "Authorization": "Bearer " + api_key,
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            "X-Tunnel-Client-Name": CLIENT_NAME,
            "X-Tunnel-Client-Version": __version__,
            "X-Tunnel-Client-Instance-Id": instance_id,
        })
        if organization_id:
            headers["OpenAI-Organization"] = organization_id
        self._base_headers = headers
        self._kwargs = route.request_kwargs()
        self._lanes = threading.local()
        self._all_lanes: List[_Lane] = []
        self._all_lanes_lock = threading.Lock()
        self._stopping = threading.Event()

    def _lane(self) -> _Lane:
        """This thread's lane, with requests re-prepared when the server info changes."""
        lane = getattr(self._lanes, "lane", None)
        if lane is None:
            lane = self._lanes.lane = _Lane(self.sessions.get(), self.poll_url, self._stopping)
            with self._all_lanes_lock:
                self._all_lanes.append(lane)
        info = self.server_info()
        if lane.info != info or lane.poll is None:
            headers = self._headers()
            lane.poll = requests.Request("GET", self.poll_url, headers=headers).prepare()
            lane.probe = requests.Request("GET", self.probe_url, headers=headers).prepare()
            lane.post = requests.Request("POST", self.response_url, headers=dict(
                headers, **{"Content-Type": "application/json"})).prepare()
            lane.info = info
        return lane

    def _headers(self, extra=None) -> dict:
        headers = dict(self._base_headers)
        info = self.server_info()
        if info:
            headers["X-Tunnel-MCP-Server-Info"] = info
        if extra:
            headers.update(extra)
        return headers

    # --- poll ----------------------------------------------------------------------------

    def poll(self, probe: bool = False) -> Tuple[List[wire.Command], List[wire.Skipped]]:
        """One long-poll with limit=1 (a short one for a probe). Raises ControlPlaneError."""
        started = time.monotonic()
        lane = self._lane()
        try:
            lane.polling = True  # a probe can bring a command too: cut it the same way
            try:
                if self._stopping.is_set():
                    raise ControlPlaneError("poll skipped: stopping", transport=True)
                with lane.observed():
                    resp = lane.adapter.send(lane.probe if probe else lane.poll, stream=True,
                                             timeout=(self.connect_timeout, self.poll_window),
                                             **self._kwargs)
            finally:
                lane.polling = False
            received_at = time.monotonic()  # the deadline anchor: headers are in
            try:
                if resp.status_code == 204:
                    resp.content  # noqa: B018 - consumed, so the connection is reused
                    commands, skipped = [], []
                elif resp.status_code == 200:
                    commands, skipped = wire.parse_poll_body(resp.content, received_at)
                else:
                    raise api_error(resp, "poll")
                RawHttp.exchange("control-plane", "GET", resp.request.url, resp.status_code,
                                 resp.request.headers, None, resp.headers, resp.content)
            finally:
                resp.close()
        except requests.RequestException as exc:
            error = transport_error(exc, "poll", self.route)
            self._poll_failed(error, started)
            raise error from None
        except wire.ProtocolError as exc:
            error = ControlPlaneError("poll failed: %s" % exc, status=200,
                                      summary="invalid poll response: %s" % exc)
            self._poll_failed(error, started)
            raise error from None
        except ControlPlaneError as error:
            self._poll_failed(error, started)
            raise
        self.metrics.poll_cycles.inc()
        self.metrics.poll_latency.observe(time.monotonic() - started, error="false")
        self.metrics.poll_last_success.set(time.time())
        if commands:
            self.metrics.polled.inc(len(commands))
        if len(commands) + len(skipped) > 1:
            log.error("control-plane returned more commands than requested limit",
                      extra={"limit": 1, "count": len(commands) + len(skipped)})
        return commands, skipped

    def _poll_failed(self, error: ControlPlaneError, started: float):
        self.metrics.poll_errors.inc(error_kind=error.kind)
        self.metrics.poll_latency.observe(time.monotonic() - started, error="true")

    # --- respond -------------------------------------------------------------------------

    def post(self, cmd: wire.Command, reply: wire.Reply, deadline: wire.Deadline) -> str:
        """POST one reply. Returns ``ok``, ``gone`` (404: already fulfilled or unknown;
        terminal, never replayed), ``expired`` (deadline passed) or ``failed``.

        Retries with an identical body: transport errors and 408/429/502/503/504 for
        terminal replies; only 429 and failures before the request was sent for
        notifications, which must never be duplicated.
        """
        lane = self._lane()
        request = lane.post.copy()
        request.prepare_body(wire.encode_response(cmd, reply), None)
        request.headers["X-Tunnel-Shard-Token"] = cmd.shard_token
        client_request_id = cmd.header("X-Request-Id")
        if client_request_id:
            request.headers["X-Client-Request-Id"] = client_request_id
        is_notify = reply.resp_type == wire.RESP_NOTIFY
        fields = {"request_id": cmd.request_id, "resp_type": reply.resp_type,
                  "resp_code": reply.resp_code}
        for attempt in range(1, POST_ATTEMPTS + 1):
            if attempt > 1:
                self.metrics.post_retries.inc(resp_type=reply.resp_type)
            if deadline.expired():
                return self._outcome(reply, "expired")
            timeout = (self.connect_timeout, deadline.remaining(cap=self.poll_window))
            retry_after = None
            try:
                with lane.observed():
                    resp = lane.adapter.send(request, stream=False, timeout=timeout,
                                             **self._kwargs)
                resp.content  # noqa: B018 - read, so the connection goes back to the pool
                RawHttp.exchange("control-plane", "POST", request.url, resp.status_code,
                                 request.headers, request.body, resp.headers, resp.content)
            except requests.RequestException as exc:
                if is_notify and not _failed_before_send(exc):
                    log.warning("response post failed; not retried because the notification "
                                "may have been delivered", extra=dict(fields, error=brief(exc)))
                    return self._outcome(reply, "failed")
                problem = "%s" % wire.classify_exception(exc).transport_error_kind
            else:
                status = resp.status_code
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                resp.close()
                if status == 200:
                    return self._outcome(reply, "ok")
                if status == 404:
                    log.warning("response already fulfilled or unknown request",
                                extra=dict(fields, status=404))
                    return self._outcome(reply, "gone")
                retryable = status == 429 if is_notify else status in RETRYABLE_POST_STATUSES
                if retry_after and status in (429, 503):
                    self.gate.pause(retry_after, "response POST got %d with Retry-After" % status)
                if not retryable:
                    log.error("failed to post response to control plane",
                              extra=dict(fields, status=status))
                    return self._outcome(reply, "failed")
                problem = "HTTP %d" % status
            if attempt == POST_ATTEMPTS:
                break
            delay = max(POST_BACKOFF.delay(attempt), retry_after or 0.0)
            if deadline.bounded and deadline.remaining() <= delay:
                return self._outcome(reply, "expired")
            log.info("response post failed; retrying",
                     extra=dict(fields, problem=problem, attempt=attempt,
                                retry_in_ms=int(delay * 1000)))
            time.sleep(delay)  # bounded backoff between attempts, not synchronisation
        log.error("failed to post response to control plane",
                  extra=dict(fields, attempts=POST_ATTEMPTS, problem=problem))
        return self._outcome(reply, "failed")

    def _outcome(self, reply: wire.Reply, outcome: str) -> str:
        self.metrics.posts.inc(resp_type=reply.resp_type, outcome=outcome)
        return outcome

    # --- metadata ------------------------------------------------------------------------

    def metadata(self, timeout: float = 10.0) -> TunnelMetadata:
        session = self.sessions.get()
        try:
            resp = session.get(self.metadata_url, headers=self._headers(), stream=True,
                               timeout=(self.connect_timeout, timeout), **self._kwargs)
        except requests.RequestException as exc:
            raise transport_error(exc, "tunnel metadata fetch", self.route) from None
        with resp:
            if resp.status_code != 200:
                raise api_error(resp, "tunnel metadata fetch")
            try:
                data = wire.loads(resp.content)
            except ValueError:
                raise ControlPlaneError("tunnel metadata fetch failed: response is not JSON",
                                        status=200) from None
        if not isinstance(data, dict):
            raise ControlPlaneError("tunnel metadata fetch failed: response is not an object",
                                    status=200)
        return TunnelMetadata(str(data.get("id", "")), str(data.get("name", "")),
                              str(data.get("description", "")))

    def interrupt_polls(self):
        """Stopping: end polls still waiting for an answer, so idle workers exit now
        instead of when their poll times out. A poll whose answer has begun to arrive is
        left alone: its commands will be served."""
        self._stopping.set()
        with self._all_lanes_lock:
            lanes = list(self._all_lanes)
        for lane in lanes:
            if lane.polling:
                _shut(lane.conn)

    def opening_polls(self) -> Set[int]:
        """After ``interrupt_polls``: the threads whose poll is still opening its connection
        (resolving, connecting, through a proxy's CONNECT, in a TLS handshake). Such a poll
        can bring no command, since its connection is cut the moment it is up, so a stop
        need not wait for it: opening can take up to the connect timeout per step."""
        with self._all_lanes_lock:
            lanes = list(self._all_lanes)
        return {lane.thread for lane in lanes if lane.polling and lane.opening}

    def close(self):
        self.gate.close()
        self.sessions.close()


def _shut(conn):
    sock = getattr(conn, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _failed_before_send(exc: Exception) -> bool:
    """True when the request certainly never left (connect failure or connect timeout)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    names = {type(e).__name__ for e in wire.exception_chain(exc)}
    return bool(names & {"NewConnectionError", "ConnectTimeoutError", "NameResolutionError"})
