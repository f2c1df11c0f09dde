"""Wiring and lifecycle: build the parts from a Config, start them, drain, stop.

Startup order: housekeeping, pid file, bindings (stdio children are spawned before the
first poll), admin listener, workers. Shutdown: stop polling at once, let in-flight
commands finish within the drain budget, stop children, remove the files we wrote.
"""

import os
import secrets
import threading
import time
from typing import List, Optional

from tunnel_client import __version__, wire
from tunnel_client.admin.server import AdminServer
from tunnel_client.config import Config
from tunnel_client.config.reload import plan as reload_plan
from tunnel_client.config.secrets import exposure_warnings, secret_env_names, secret_values
from tunnel_client.controlplane import ControlPlane, TunnelMetadata
from tunnel_client.errors import ControlPlaneError, StartupError
from tunnel_client.housekeeping import Housekeeping
from tunnel_client.mcp.binding import Binding
from tunnel_client.mcp.harpoon import HarpoonBinding, HarpoonOptions
from tunnel_client.mcp.http import HttpBinding
from tunnel_client.mcp.router import Router
from tunnel_client.mcp.childenv import child_environment
from tunnel_client.mcp.stdio import StdioBinding, StdioPolicy
from tunnel_client.mcp.targets import HostPolicy, Registry, Target
from tunnel_client.net import Backoff, TrustStore, resolve_route
from tunnel_client.net.proxycheck import ProxyHealth
from tunnel_client.observe.health import Check, PollHealth, Readiness
from tunnel_client.observe.instruments import Instruments
from tunnel_client.oauth import Discoverer
from tunnel_client.policy import from_config as build_policy_gate, policies_of
from tunnel_client.observe import process
from tunnel_client.observe.logs import REDACTOR, RawHttp, get_logger
from tunnel_client.observe.recent import RecentCounts
from tunnel_client.observe.watch import INTERVAL as WATCH_INTERVAL, Watch
from tunnel_client.observe.stopping import StopWatch
from tunnel_client.observe.systemd import Notifier
from tunnel_client.worker import InFlight, PollLog, Worker

log = get_logger("process")

METADATA_BACKOFF = Backoff(initial=2.0, maximum=300.0)
# systemd hears READY=1 at the first successful poll, or after this long at the latest: a
# control plane that is down at boot must not exhaust the unit's start limit and leave it
# dead (systemd's default start timeout is 90 s). /readyz keeps telling the truth.
READY_FALLBACK = 45.0
# With nothing in flight a stop takes well under this; past it the workers get a thread dump.
IDLE_STOP_EXPECTED = 2.0


class Service:
    def __init__(self, cfg: Config, log_setup=None, reload_config=None):
        self.cfg = cfg
        self.reload_config = reload_config  # re-reads flags > env > YAML on SIGHUP
        self.log_setup = log_setup
        self.instance_id = secrets.token_hex(16)
        self.started_at = time.time()
        self.metrics = Instruments()
        self.stop_event = threading.Event()
        self.hurry = threading.Event()
        self.stopwatch = StopWatch(cfg.shutdown.drain_timeout)
        self.exit_code = 0
        self.fatal_reason: Optional[str] = None
        self.metadata: Optional[TunnelMetadata] = None
        self.metadata_error: Optional[str] = None
        # Time-critical jobs and network jobs never share a thread (see housekeeping.py).
        self.housekeeping = Housekeeping("housekeeping")
        self.network_jobs = Housekeeping("network-jobs")
        self.trust = TrustStore(cfg.ca_bundle)
        self._metadata_attempts = 0
        _register_secrets(cfg)
        RawHttp.enabled = bool(cfg.log.http_raw_unsafe)

        self.bindings: List[Binding] = [self._binding(spec) for spec in cfg.bindings]
        self.harpoon = self._harpoon()
        self.router = Router(self.bindings, cfg.control_plane.poll_channels, self.harpoon)
        self.discoverer = self._discoverer()
        cp = cfg.control_plane
        self.cp_route = resolve_route(
            "control-plane", cp.base_url, [cp.http_proxy, cfg.http_proxy], cfg.environ,
            self.trust, (cp.client_cert, cp.client_key) if cp.client_cert else None)
        self.controlplane = ControlPlane(
            self.cp_route, cp.tunnel_id, cp.api_key or "", poll_timeout=cp.poll_timeout,
            guardrail=cp.poll_deadline_guardrail, connect_timeout=cp.connect_timeout,
            channels=cp.poll_channels, organization_id=cp.organization_id,
            extra_headers=cp.extra_headers, instance_id=self.instance_id,
            server_info=self.router.server_info, instruments=self.metrics,
            url_path=cp.url_path, auth_backoff=cp.auth_backoff)
        self.poll_health = PollHealth(cfg.health.poll_failure_grace,
                                      on_first_success=self._first_poll)
        self.readiness = Readiness()
        self.readiness.add("control_plane", self.poll_health.check)
        self.startup_wait_error: Optional[str] = None
        if self.discoverer is not None:
            self.readiness.add("oauth_discovery", self._oauth_check)
        self.readiness.add("mcp_startup_wait", lambda: Check(
            False, "mcp startup wait failed: %s" % self.startup_wait_error)
            if self.startup_wait_error else Check(True, "no wait pending"))
        for binding in self.router.bindings:
            self.readiness.add("channel:" + binding.channel, binding.health)
        self.policy = build_policy_gate(cfg, self.metrics)
        if self.policy is not None and self.policy.audit is not None:
            self.readiness.add("audit", self.policy.audit.check)
        self.inflight = InFlight(self.metrics.pool_occupancy)
        self.recent = RecentCounts()
        self.watch = Watch(self.readiness, self.poll_health,
                           lambda: [b.describe() for b in self.router.bindings],
                           cfg.mcp.stdio.restart_limit, cfg.mcp.stdio.restart_window,
                           self.recent)
        poll_log = PollLog()
        size = cfg.mcp.max_concurrent_requests
        self.metrics.pool_capacity.set(size)
        self.workers = [Worker(i, self.controlplane, self.router, self.stop_event,
                               self.poll_health, self.inflight, self.metrics, poll_log,
                               cp.tunnel_id or "", self.policy, cfg.log.access, self.recent)
                        for i in range(size)]
        self._pid_written = False
        process.register(self.metrics.registry)
        self.proxy_health = ProxyHealth(
            [self.cp_route] + [b.route for b in self.router.bindings
                               if getattr(b, "route", None) is not None],
            self.metrics.registry)
        self.notifier = Notifier(cfg.environ)
        self._ready_lock = threading.Lock()
        self._ready_sent = False
        self.admin = AdminServer(self, cfg.health.listen_addr, cfg.health.unix_socket,
                                 cfg.health.url_file, cfg.admin_ui.allow_remote,
                                 cfg.admin_ui.token)

    # --- construction --------------------------------------------------------------------

    def _binding(self, spec) -> Binding:
        cfg = self.cfg
        if spec.transport == "stdio":
            stdio = cfg.mcp.stdio
            binding = StdioBinding(
                spec.channel, spec.argv,
                child_environment(cfg.environ, secret_values(cfg), stdio.inherit_secrets,
                                  secret_env_names(cfg)),
                StdioPolicy(restart_limit=stdio.restart_limit,
                            restart_window=stdio.restart_window,
                            restart_backoff=stdio.restart_backoff,
                            health_interval=stdio.health_interval,
                            health_timeout=stdio.health_timeout,
                            max_line=stdio.max_message_bytes, stop_grace=stdio.stop_grace,
                            ttl=cfg.mcp.connection_max_ttl),
                instruments=self.metrics, on_fatal=self.fail)
            binding.set_roots(_roots_for(cfg, spec.channel))
            return binding
        cert = spec.client_cert or cfg.mcp.client_cert
        key = spec.client_key or cfg.mcp.client_key
        route = resolve_route("mcp:" + spec.channel, spec.url,
                              [spec.http_proxy, cfg.mcp.http_proxy, cfg.http_proxy],
                              cfg.environ, self.trust, (cert, key) if cert else None,
                              spec.unix_socket)
        return HttpBinding(spec, route, cfg.mcp.extra_headers or None,
                           connect_timeout=cfg.mcp.connect_timeout,
                           read_timeout=cfg.mcp.read_timeout,
                           ttl=cfg.mcp.connection_max_ttl,
                           probe_interval=cfg.mcp.http_probe_interval,
                           discovery_headers=cfg.mcp.discovery_extra_headers)

    def _harpoon(self) -> HarpoonBinding:
        cfg = self.cfg
        registry = Registry()
        for spec in cfg.harpoon.targets or ():
            registry.add(Target(spec.label, spec.url, spec.description,
                                unix_socket=spec.unix_socket))
        h = cfg.harpoon
        return HarpoonBinding(
            registry, HarpoonOptions(h.allow_plaintext_http, h.max_response_bytes,
                                     h.max_redirects, h.capture_payloads),
            ([h.http_proxy, cfg.http_proxy], cfg.environ, self.trust), self.metrics)

    def _discoverer(self) -> Optional[Discoverer]:
        main = self.router.route("main")
        if not isinstance(main, HttpBinding):
            return None  # stdio servers have no HTTP OAuth surface; main may not be polled
        h = self.cfg.harpoon
        main.discoverer = Discoverer(main, self.harpoon.registry, HostPolicy(
            h.hosts_include_loopback, h.hosts_include_private, h.hosts_include_suffix or (),
            h.hosts_include_regex or ()))
        return main.discoverer

    def _oauth_check(self) -> Check:
        result = self.discoverer.result
        if result.state == "pending":
            return Check(False, "oauth discovery pending")
        if result.state == "failed":
            return Check(False, "oauth discovery failed: %s" % result.error, result.fetched_at)
        return Check(True, "oauth metadata %s" % (
            "not advertised" if result.state == "not_advertised" else
            "from %s" % result.metadata_source), result.fetched_at)

    def _run_discovery(self):
        """At start, and again every 30 s while it fails (a readiness input depends on it)."""
        if self.stop_event.is_set():
            return None
        result = self.discoverer.run()
        return 30.0 if result.state == "failed" else None

    # --- lifecycle -----------------------------------------------------------------------

    def start(self):
        cfg = self.cfg
        if self.log_setup is not None:
            self.log_setup.set_context(client_instance_id=self.instance_id,
                                       tunnel_id=cfg.control_plane.tunnel_id)
        if self.policy is not None:
            self.policy.start()  # the audit file opens first: nothing to undo if it cannot
        self.housekeeping.start()
        self.network_jobs.start()
        self._write_pid_file()
        started: List[Binding] = []
        try:
            for binding in self.router.bindings:
                # An HTTP binding's jobs are probes over the network; stdio ones are not.
                binding.start(self.housekeeping if binding.transport == "stdio"
                              else self.network_jobs)
                started.append(binding)
        except BaseException:
            for binding in started:
                binding.stop()
            self._remove_pid_file()
            raise
        try:
            self.admin.start()
        except BaseException:
            for binding in started:
                binding.stop()
            self._remove_pid_file()
            raise
        log.info("control-plane route resolved", extra={"route": self.cp_route.describe()})
        for binding in self.router.bindings:
            log.info("mcp channel route resolved", extra={"binding": binding.describe()})
        self.network_jobs.call_later(0, self._fetch_metadata, "tunnel-metadata")
        self.housekeeping.call_later(WATCH_INTERVAL, self._watch, "readiness-watch")
        if self.notifier.enabled:
            self.housekeeping.call_later(READY_FALLBACK, self._first_poll, "systemd-ready")
        interval = cfg.proxy.check_interval
        if interval and self.proxy_health.routes:
            self.network_jobs.call_later(0, lambda: (self.proxy_health.run_once(), interval)[1],
                                         "proxy-health")
        main = self.router.route("main")
        if cfg.mcp.startup_wait_timeout > 0 and isinstance(main, HttpBinding):
            # Polling starts once the sidecar's MCP listener accepts (or the wait runs out):
            # commands polled earlier would only fail.
            threading.Thread(target=self._wait_then_start_workers, args=(main,),
                             name="startup-wait", daemon=True).start()
        else:
            self._start_workers()
        for warning in self.warnings():
            log.warning(warning)
        if cfg.admin_ui.open_browser and self.admin.url:
            threading.Thread(target=_open_browser, args=(self.admin.url + "/ui",),
                             name="open-browser", daemon=True).start()
        log.info("tunnel-client started", extra={
            "version": __version__, "workers": len(self.workers),
            "channels": [b.channel for b in self.router.bindings],
            "config_source": cfg.source.describe(),
            "health_url": self.admin.url, "ui_url": self.admin.ui_url})

    def _start_workers(self):
        if self.discoverer is not None:
            self.network_jobs.call_later(0, self._run_discovery, "oauth-discovery")
        for worker in self.workers:
            worker.start()

    def _wait_then_start_workers(self, binding: HttpBinding):
        error = binding.wait_until_listening(self.cfg.mcp.startup_wait_timeout,
                                             self.stop_event)
        if self.stop_event.is_set():
            return
        if error:
            self.startup_wait_error = error
            log.warning("MCP startup wait failed; starting the poller anyway",
                        extra={"error": error})
        else:
            log.info("MCP server is listening; starting the poller")
        self._start_workers()

    @property
    def admin_url(self) -> Optional[str]:
        return self.admin.url

    def _first_poll(self):
        """systemd hears READY=1 once the tunnel really works (or at READY_FALLBACK), then
        the watchdog starts."""
        with self._ready_lock:
            if self._ready_sent:
                return
            self._ready_sent = True
        self.notifier.send("READY=1", "STATUS=" + self.ready().reason)
        if self.notifier.watchdog_interval:
            self.housekeeping.every(self.notifier.watchdog_interval, self._watchdog,
                                    "systemd-watchdog")

    def _watch(self) -> Optional[float]:
        if self.stop_event.is_set():  # a stopping daemon is not "not ready" news
            return None
        return self.watch.tick()

    def _watchdog(self):
        # Only pet the watchdog while the workers that do the job are alive.
        started = [worker for worker in self.workers if worker.ident is not None]
        if started and all(w.is_alive() for w in started) and not self.stop_event.is_set():
            self.notifier.send("WATCHDOG=1", "STATUS=" + self.ready().reason)

    def warnings(self) -> List[str]:
        found = exposure_warnings(self.cfg)
        if self.cfg.log.http_raw_unsafe:
            found.append("raw HTTP logging is enabled (log.http_raw_unsafe); payloads may "
                         "appear in logs")
        for route in [self.cp_route] + [b.route for b in self.router.bindings
                                        if getattr(b, "route", None) is not None]:
            if route.proxy and route.proxy.startswith("https://"):
                found.append("the proxy for %s uses https://; most corporate proxies speak "
                             "plain HTTP on their port (use http://proxy:port)" % route.name)
        return found

    def reload(self):
        """SIGHUP: re-read the configuration off the signal handler and apply what can
        change while running (policy, the audit file, the operator's stdio roots); the
        rest needs a restart."""
        if self.reload_config is not None:
            self.housekeeping.call_later(0, self._reload, "reload")

    def _reload(self):
        try:
            fresh = self.reload_config()
            policies = policies_of(fresh)
        except Exception as exc:  # a bad edit must not take down the daemon or its policy
            log.error("reload: configuration not reloaded; keeping the running one: %s" % exc)
            if self.policy is not None:
                log.error("policy reload failed; keeping the current policy")
                self.metrics.policy_reloads.inc(result="failed")
                self.policy.reload(self.policy.policies)  # the audit file is reopened all the same
            return None
        live, restart = reload_plan(self.cfg, fresh)
        self._apply_log_settings(fresh, live, restart)
        for binding in self.router.bindings:
            if isinstance(binding, StdioBinding):
                binding.set_roots(_roots_for(fresh, binding.channel))
        if self.policy is not None:
            self.policy.reload(policies)
            self.metrics.policy_reloads.inc(result="ok")
            log.info("policy reloaded", extra={"channels": sorted(policies.channels)})
        elif policies or fresh.audit.file:
            restart.append("policy/audit (turned on since the daemon started)")
            live = [key for key in live if not key.startswith(("policy.", "audit."))]
        log.info("reload: %s" % ("applied %s" % ", ".join(live) if live else "no live change"),
                 extra={"applied": live, "needs_restart": restart})
        if restart:
            log.warning("reload: changed settings need a restart to take effect: %s"
                        % ", ".join(restart), extra={"needs_restart": restart})
        return None

    def _apply_log_settings(self, fresh: Config, live: List[str], restart: List[str]):
        if "log.level" in live:
            self.set_log_level(fresh.log.level)
        if "log.file" in live:
            handler = self.log_setup.file_handler if self.log_setup is not None else None
            if handler is not None and fresh.log.file:
                handler.path = fresh.log.file
                self.log_setup.reopen()
            else:
                restart.append("log.file (between stderr and a file)")
                live.remove("log.file")
        if "log.access" in live:
            for worker in self.workers:
                worker.access_log = fresh.log.access

    def set_log_level(self, level: str):
        if self.log_setup is not None:
            self.log_setup.set_level(level)
            log.warning("runtime log level updated", extra={"new_level": level})

    def _fetch_metadata(self):
        """For diagnostics only; retried with backoff instead of once (Go client: once)."""
        if self.stop_event.is_set():
            return None
        try:
            self.metadata = self.controlplane.metadata()
        except ControlPlaneError as exc:
            self.metadata_error = str(exc)
            self._metadata_attempts += 1
            log.warning("tunnel metadata fetch failed",
                        extra={"error": str(exc), "attempt": self._metadata_attempts})
            return METADATA_BACKOFF.delay(self._metadata_attempts)
        self.metadata_error = None
        log.info("tunnel metadata fetched", extra={"tunnel_name": self.metadata.name,
                                                   "description": self.metadata.description})
        return None

    def fail(self, exc: Exception):
        """A part of the service cannot go on (e.g. a stdio server that cannot stay up)."""
        if self.fatal_reason is None:
            self.fatal_reason = str(exc)
            self.exit_code = 1
        self.hurry.set()
        self.stop_event.set()

    def request_stop(self, reason: str = "stop requested"):
        if self.stop_event.is_set():
            log.warning("second stop request (%s); skipping the rest of the drain" % reason)
            self.hurry.set()
            self.stopwatch.dump("second stop request (%s)" % reason)
        else:
            log.info("stop requested (%s)" % reason)
        self.stop_event.set()

    def wait(self):
        self.stop_event.wait()

    def shutdown(self) -> int:
        """Stop polling, drain, stop the parts; each phase is logged with its duration."""
        budget = self.cfg.shutdown.drain_timeout
        busy = self.inflight.count
        log.info("stopping: polling stopped, draining in-flight commands",
                 extra={"in_flight": busy, "drain_timeout_s": budget})
        watch = self.stopwatch
        watch.begin()
        with watch.phase("stop polling"):
            self.stop_event.set()
            self.notifier.send("STOPPING=1", "STATUS=draining %d in-flight commands" % busy)
            self.controlplane.gate.close()
            self.controlplane.interrupt_polls()
        drain = wire.Deadline.after(budget)
        with watch.phase("drain in-flight", in_flight=busy) as fields:
            if not self.inflight.wait_idle(budget, self.hurry):
                fields["abandoned"] = self.inflight.count
                log.warning("drain budget exhausted; abandoning in-flight commands",
                            extra={"in_flight": self.inflight.count})
        with watch.phase("workers exit") as fields:
            fields["left_opening_a_poll"] = self._join_workers(drain)
            fields["still_running"] = [w.name for w in self.workers if w.is_alive()
                                       and w.name not in fields["left_opening_a_poll"]]
        with watch.phase("stop mcp bindings",
                         channels=[b.channel for b in self.router.bindings]):
            for binding in self.router.bindings:
                binding.stop()
            self.harpoon.stop()
        if self.policy is not None:
            with watch.phase("close the audit trail"):
                self.policy.close()
        with watch.phase("stop housekeeping"):
            self.housekeeping.stop()
            self.network_jobs.stop()
        with watch.phase("stop admin server"):
            self.admin.stop()
        with watch.phase("close connections"):
            self.controlplane.close()
            self.trust.close()
            self._remove_pid_file()
        summary = watch.finish()
        if self.fatal_reason:
            log.error("tunnel-client stopped: %s" % self.fatal_reason, extra=summary)
        else:
            log.info("tunnel-client stopped", extra=summary)
        return self.exit_code

    def _join_workers(self, drain: wire.Deadline) -> List[str]:
        """A worker whose poll brought commands as the stop began is still serving them:
        the MCP servers stay up until every worker is out (or the budget is spent). A worker
        whose poll is still opening its connection brings nothing and is not waited for
        (the names of those are returned). With nothing in flight every other worker leaves
        at once; one that does not is a bug worth a thread dump."""
        reported = False
        left_behind = []
        for worker in self.workers:
            while worker.is_alive() and not drain.expired() and not self.hurry.is_set():
                if worker.ident in self.controlplane.opening_polls():
                    left_behind.append(worker.name)
                    break
                worker.join(min(0.1, drain.remaining()))
                if not reported and worker.is_alive() and self.inflight.count == 0 and \
                        self.stopwatch.elapsed() >= IDLE_STOP_EXPECTED:
                    reported = True
                    running = [w.name for w in self.workers if w.is_alive()]
                    log.warning("workers still running with nothing in flight",
                                extra={"workers": running})
                    self.stopwatch.dump("%d workers still running %.1fs into the stop with "
                                        "nothing in flight" % (len(running),
                                                               self.stopwatch.elapsed()))
        self.inflight.wait_idle(drain.remaining() or 0.0, self.hurry)
        return left_behind

    # --- files ---------------------------------------------------------------------------

    def _write_pid_file(self):
        path = self.cfg.process.pid_file
        if not path:
            return
        try:
            with open(path, "w") as handle:
                handle.write("%d\n" % os.getpid())
        except OSError as exc:
            raise StartupError("cannot write pid file %s: %s" % (path, exc.strerror or exc))
        self._pid_written = True
        log.info("pid file written", extra={"path": path})

    def _remove_pid_file(self):
        if self._pid_written:
            try:
                os.unlink(self.cfg.process.pid_file)
            except OSError:
                pass
            self._pid_written = False

    # --- status --------------------------------------------------------------------------

    def ready(self) -> Check:
        return self.readiness.evaluate()


def _roots_for(cfg: Config, channel: str):
    return tuple(uri for only, uri in cfg.mcp.roots or () if only in (None, channel))


def _register_secrets(cfg: Config):
    """Tell the log redactor every secret value this process holds (a safety net): the key,
    every configured header value, proxy passwords, target URL credentials."""
    for value in secret_values(cfg):
        REDACTOR.add_secret(value)


def _open_browser(url: str):
    """``admin_ui.open_browser``, for desktops; on a headless VM it just logs."""
    import webbrowser
    try:
        opened = webbrowser.open(url)
    except Exception:  # a broken browser setup must not disturb the daemon
        opened = False
    if not opened:
        log.info("no browser to open the admin UI; browse to it yourself", extra={"url": url})
