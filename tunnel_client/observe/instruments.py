"""Every metric the daemon exports, declared in one place.

Names follow the official Go client where it has one, so dashboards carry over;
the rest are ours (stdio supervision, response delivery, process basics).
"""

from tunnel_client.observe.metrics import LATENCY_BUCKETS_MS, SECONDS_BUCKETS, Registry


class Instruments:
    def __init__(self, registry: Registry = None):
        r = self.registry = registry or Registry()
        # polling
        self.polled = r.counter("commands_polled_total", "Commands received from polls.")
        self.poll_cycles = r.counter("commands_poll_cycles_total", "Polls completed.")
        self.poll_errors = r.counter("commands_poll_errors_total", "Failed polls.",
                                     ("error_kind",))
        self.poll_latency = r.histogram("commands_poll_latency_seconds", "Poll duration.",
                                        ("error",), buckets=SECONDS_BUCKETS + (35, 120))
        self.poll_last_success = r.gauge("commands_poll_last_successful_timestamp_seconds",
                                         "Unix time of the last successful poll.")
        self.skipped = r.counter("commands_queue_drops_total",
                                 "Polled commands that could not be executed.",
                                 ("drop_reason",))
        self.command_age = r.histogram("commands_age_seconds",
                                       "Time from enqueue (created_at) to poll receipt.",
                                       buckets=SECONDS_BUCKETS)
        # workers
        self.pool_capacity = r.gauge("dispatcher_worker_pool_capacity", "Worker threads.")
        self.pool_occupancy = r.gauge("dispatcher_worker_pool_occupancy",
                                      "Workers currently running a command.")
        self.latency = r.histogram(
            "command_end_to_end_latency_milliseconds", "Command latency.",
            ("tunnel_id", "tunnel_service_status", "latency_type", "request_kind",
             "request_method", "channel"), buckets=LATENCY_BUCKETS_MS, max_series=500)
        self.unsupported_channel = r.counter(
            "command_unsupported_channel_total", "Commands for channels with no binding.",
            ("tunnel_id", "channel", "command_type"), max_series=100)
        self.expired = r.counter("commands_expired_total",
                                 "Commands dropped because their response deadline passed.",
                                 ("stage",))
        self.completed = r.counter(
            "commands_completed_total",
            "Commands by how they ended, exactly one sample per command: ok, upstream_error "
            "(the MCP server's JSON-RPC error), failed (synthesized by the tunnel client; "
            "source says why), expired (deadline passed; source is the stage), dropped (no "
            "answer delivered).", ("outcome", "source"), max_series=200)
        # response delivery
        self.posts = r.counter("response_posts_total", "Response POSTs by final outcome.",
                               ("resp_type", "outcome"))
        self.post_retries = r.counter("response_post_retries_total",
                                      "Response POST attempts after the first.",
                                      ("resp_type",))
        # stdio supervision
        self.stdio_restarts = r.counter("mcp_stdio_restarts_total",
                                        "stdio MCP server restarts.", ("channel", "reason"))
        self.stdio_relayed_requests = r.counter(
            "mcp_stdio_relayed_requests_total",
            "Server-to-client requests from a stdio server relayed to the caller.",
            ("channel", "method"))
        self.stdio_unrouted_notifications = r.counter(
            "mcp_stdio_unrouted_notifications_total",
            "stdio server notifications outside any single call (no caller can get them).",
            ("channel", "method"))
        self.stdio_generation = r.gauge("mcp_stdio_generation",
                                        "Current stdio process generation (1 = first spawn), per "
                                        "MCP era the child serves.", ("channel", "era"))
        self.stdio_last_exchange = r.gauge(
            "mcp_stdio_last_exchange_timestamp_seconds",
            "Unix time of the last JSON-RPC reply read from the stdio server.", ("channel",))
        self.stdio_dropped_lines = r.counter("mcp_stdio_dropped_lines_total",
                                             "stdout lines dropped (not JSON or too long).",
                                             ("channel", "reason"))
        self.stdio_local_answers = r.counter(
            "mcp_stdio_local_answers_total",
            "Messages answered by the tunnel client instead of the stdio server.",
            ("channel", "method"))
        # policy and audit
        self.policy_decisions = r.counter(
            "policy_decisions_total", "Policy decisions by channel, deciding rule and result "
            "(allow, deny, limit, shadow_deny, shadow_limit).", ("channel", "rule", "result"),
            max_series=300)
        self.policy_reloads = r.counter("policy_reloads_total", "Policy reloads (SIGHUP).",
                                        ("result",))
        self.audit_records = r.counter("audit_records_total", "Audit records written.")
        self.audit_failures = r.counter("audit_write_failures_total",
                                        "Audit records that could not be written.")
        # health
        self.liveness = r.gauge("liveness", "1 while the process serves /healthz.")
        self.readiness = r.gauge("readiness", "1 while /readyz answers 200.")
