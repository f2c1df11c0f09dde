// tunnel-client admin page: plain JS, no build step, no other origin.
// Every string from the daemon (log messages above all) is untrusted: it only ever
// reaches the page as a text node (textContent / createTextNode), never as markup.
(function () {
  "use strict";

  var params = new URLSearchParams(window.location.search);
  // ?interval=ms lets tests (and impatient operators) sample faster; default 2 s.
  var REFRESH_MS = Math.max(250, parseInt(params.get("interval"), 10) || 2000);
  var SAMPLES = 90;            // sparkline history (3 min at the default interval)
  var RATE_WINDOW_MS = 60000;  // "+N in the last minute" on the counters
  var MAX_EVENTS = 2000;       // log events kept in memory
  var MAX_ROWS = 500;          // log rows kept in the page
  var LEVEL_RANK = { debug: 10, info: 20, warn: 30, error: 40 };
  var HARPOON_HISTORY = 100;   // calls the daemon keeps; the page asks for all of them

  var state = {
    instance: null,       // client_instance_id: a change means the daemon restarted
    samples: [],          // [{t, counters..., latSum, latCount, buckets, latency}]
    events: [],           // log events, oldest first
    lastSeq: 0,
    logsLoaded: false,
    levelPending: false,
    levels: [],
    lastOk: null,
    rendered: {},         // JSON of what a panel last drew (see changed())
    harpoonCalls: [],     // the last /api/harpoon/calls reply, oldest first
    openPayloads: {},     // call key -> true while its payloads are unfolded
  };

  // --- DOM helpers (text only) -----------------------------------------------------

  function $(id) { return document.getElementById(id); }

  // el("td", {class: "x", title: "y"}, "text", childNode, ...): attributes and text only.
  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (name) {
        if (attrs[name] !== null && attrs[name] !== undefined) {
          node.setAttribute(name, String(attrs[name]));
        }
      });
    }
    for (var i = 2; i < arguments.length; i++) { append(node, arguments[i]); }
    return node;
  }

  function append(node, child) {
    if (child === null || child === undefined || child === false) { return; }
    if (Array.isArray(child)) { child.forEach(function (c) { append(node, c); }); return; }
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }

  function setText(id, value) {
    var node = typeof id === "string" ? $(id) : id;
    if (node) { node.textContent = value === null || value === undefined ? "—" : String(value); }
  }

  function replaceChildren(node) {
    while (node.firstChild) { node.removeChild(node.firstChild); }
    for (var i = 1; i < arguments.length; i++) { append(node, arguments[i]); }
  }

  function badge(ok, yes, no) {
    return el("span", { class: "badge " + (ok ? "badge-ok" : "badge-bad") }, ok ? yes : no);
  }

  // --- formatting ----------------------------------------------------------------------

  function pad(n, width) { n = String(n); while (n.length < (width || 2)) { n = "0" + n; } return n; }

  function clock(date, millis) {
    var text = pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds());
    return millis ? text + "." + pad(date.getMilliseconds(), 3) : text;
  }

  function absolute(epochSeconds) {
    var date = new Date(epochSeconds * 1000);
    var today = new Date();
    var day = date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate());
    return (date.toDateString() === today.toDateString() ? "" : day + " ") + clock(date);
  }

  function duration(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 60) { return seconds + " s"; }
    if (seconds < 3600) { return Math.floor(seconds / 60) + " min " + (seconds % 60) + " s"; }
    if (seconds < 86400) { return Math.floor(seconds / 3600) + " h " + Math.floor(seconds % 3600 / 60) + " min"; }
    return Math.floor(seconds / 86400) + " d " + Math.floor(seconds % 86400 / 3600) + " h";
  }

  function ago(epochSeconds) {
    if (!epochSeconds) { return null; }
    return absolute(epochSeconds) + " (" + duration(Date.now() / 1000 - epochSeconds) + " ago)";
  }

  function millis(value) {
    if (value === null || value === undefined || !isFinite(value)) { return "—"; }
    if (value >= 1000) { return (value / 1000).toFixed(value >= 10000 ? 0 : 1) + " s"; }
    return (value >= 10 ? Math.round(value) : value.toFixed(1)) + " ms";
  }

  function bytes(value) {
    if (value === null || value === undefined) { return null; }
    var units = ["B", "KiB", "MiB", "GiB"];
    var i = 0;
    while (value >= 1024 && i < units.length - 1) { value /= 1024; i++; }
    return value.toFixed(i ? 1 : 0) + " " + units[i];
  }

  function levelOf(event) {
    var name = String(event.level || "info").toLowerCase();
    if (name === "warning") { name = "warn"; }
    if (name === "critical") { name = "error"; }
    return LEVEL_RANK[name] ? name : "info";
  }

  // --- HTTP ------------------------------------------------------------------------------

  function request(path, options) {
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, 8000);
    options = Object.assign({ cache: "no-store", signal: controller.signal }, options || {});
    return fetch(path, options).finally(function () { clearTimeout(timer); });
  }

  function getJSON(path) {
    return request(path).then(function (reply) {
      if (!reply.ok) { throw new Error(path + " answered " + reply.status); }
      return reply.json();
    });
  }

  // A panel's own endpoint: a failure becomes {unavailable: why} so that panel says so
  // without marking the whole page stale.
  function optional(path) {
    return getJSON(path).catch(function (error) { return { unavailable: error.message }; });
  }

  function getText(path) {
    return request(path).then(function (reply) {
      if (!reply.ok) { throw new Error(path + " answered " + reply.status); }
      return reply.text();
    });
  }

  // --- Prometheus text -------------------------------------------------------------------

  var SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
  var LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

  function parseMetrics(text) {
    var samples = [];
    text.split("\n").forEach(function (line) {
      if (!line || line.charAt(0) === "#") { return; }
      var match = SAMPLE_LINE.exec(line);
      if (!match) { return; }
      var labels = {};
      var label;
      LABEL.lastIndex = 0;
      while ((label = LABEL.exec(match[2] || "")) !== null) {
        labels[label[1]] = label[2].replace(/\\n/g, "\n").replace(/\\(.)/g, "$1");
      }
      samples.push({ name: match[1], labels: labels, value: parseFloat(match[3]) });
    });
    return samples;
  }

  function total(samples, name, keep) {
    var sum = 0;
    var seen = false;
    samples.forEach(function (s) {
      if (s.name === name && (!keep || keep(s.labels))) { sum += s.value; seen = true; }
    });
    return seen ? sum : null;
  }

  // The handling time the tunnel client controls; other latency types include queueing.
  function handlingLatency(labels) {
    return labels.latency_type === undefined || labels.latency_type === "poll_to_response";
  }

  function takeSample(metrics, status) {
    var m = parseMetrics(metrics);
    var buckets = {};
    m.forEach(function (s) {
      if (s.name === "command_end_to_end_latency_milliseconds_bucket" && handlingLatency(s.labels)) {
        buckets[s.labels.le] = (buckets[s.labels.le] || 0) + s.value;
      }
    });
    var postOutcome = function (names) {
      return function (labels) { return names.indexOf(labels.outcome) >= 0; };
    };
    return {
      t: Date.now(),
      polled: total(m, "commands_polled_total") || 0,
      posted: total(m, "response_posts_total", postOutcome(["ok", "gone"])) || 0,
      pollErrors: total(m, "commands_poll_errors_total") || 0,
      postErrors: total(m, "response_posts_total", postOutcome(["failed", "expired"])) || 0,
      restarts: total(m, "mcp_stdio_restarts_total") || 0,
      busy: status.workers ? status.workers.busy : total(m, "dispatcher_worker_pool_occupancy"),
      capacity: status.workers ? status.workers.capacity : total(m, "dispatcher_worker_pool_capacity"),
      latSum: total(m, "command_end_to_end_latency_milliseconds_sum", handlingLatency) || 0,
      latCount: total(m, "command_end_to_end_latency_milliseconds_count", handlingLatency) || 0,
      buckets: buckets,
      rss: total(m, "process_resident_memory_bytes"),
      cpu: total(m, "process_cpu_seconds_total"),
      fds: total(m, "process_open_fds"),
      threads: total(m, "process_threads"),
      harpoonCalls: total(m, "harpoon_call_total"),
      harpoonUnsuccessful: total(m, "harpoon_call_total", function (labels) {
        return labels.outcome !== "success";
      }),
      latency: null,
    };
  }

  function addSample(sample) {
    var previous = state.samples[state.samples.length - 1];
    if (previous && sample.latCount < previous.latCount) { state.samples = []; previous = null; }
    if (previous && sample.latCount > previous.latCount) {
      sample.latency = (sample.latSum - previous.latSum) / (sample.latCount - previous.latCount);
    }
    state.samples.push(sample);
    if (state.samples.length > SAMPLES) { state.samples.shift(); }
  }

  // The quantile of the commands seen in the sampled window, from histogram bucket deltas.
  function windowQuantile(q) {
    var first = state.samples[0];
    var last = state.samples[state.samples.length - 1];
    if (!first || !last || last.latCount <= first.latCount) { return null; }
    var bounds = Object.keys(last.buckets).filter(function (le) { return le !== "+Inf"; })
      .map(function (le) { return { le: le, bound: parseFloat(le) }; })
      .sort(function (a, b) { return a.bound - b.bound; });
    var count = last.latCount - first.latCount;
    for (var i = 0; i < bounds.length; i++) {
      var seen = last.buckets[bounds[i].le] - (first.buckets[bounds[i].le] || 0);
      if (seen >= q * count) { return bounds[i].bound; }
    }
    return Infinity;
  }

  // --- rendering: status -------------------------------------------------------------

  function renderHeader(status) {
    var meta = status.tunnel_metadata;
    setText("tunnel-name", meta && meta.name ? meta.name : "Tunnel");
    setText("tunnel-id", status.control_plane_tunnel_id || (meta && meta.id));
    var ready = status.readiness && status.readiness.ready;
    var node = $("readiness-badge");
    node.className = "badge " + (ready ? "badge-ok" : "badge-bad");
    node.textContent = ready ? "ready" : "not ready";
    document.title = (ready ? "" : "(not ready) ") + "tunnel-client · " +
      (meta && meta.name ? meta.name : status.control_plane_tunnel_id || "");
    setText("footer-version", "tunnel-client " + status.version);
  }

  function renderReadiness(status) {
    var readiness = status.readiness || { ready: false, reason: "unknown", inputs: [] };
    var stateNode = $("readiness-state");
    stateNode.className = "state " + (readiness.ready ? "state-ok" : "state-bad");
    stateNode.textContent = readiness.ready ? "Ready" : "Not ready";
    setText("readiness-reason", readiness.ready && readiness.reason === "ready" ? "" : readiness.reason);
    var rows = (readiness.inputs || []).map(function (input) {
      return el("tr", { "data-input": input.name, class: input.ok ? "" : "row-bad" },
        el("td", null, el("code", null, input.name)),
        el("td", null, badge(input.ok, "ok", "failing")),
        el("td", { class: "wrap" }, input.reason || ""),
        el("td", { class: "nowrap", title: input.since ? new Date(input.since * 1000).toISOString() : "" },
          input.since ? ago(input.since) : "—"));
    });
    replaceChildren(document.querySelector("#readiness-inputs tbody"), rows);

    var poll = status.poll || {};
    setText("poll-last-success", poll.last_success ? ago(poll.last_success) : "never");
    setText("poll-failures", poll.consecutive_failures === undefined ? null :
      poll.consecutive_failures + (poll.failing_since ? " (failing since " + absolute(poll.failing_since) + ")" : ""));
    var pollError = $("poll-last-error");
    pollError.className = poll.auth_error ? "text-bad" : "";
    var line = poll.auth_error || poll.last_error;
    var opened = pollError.querySelector("details");
    replaceChildren(pollError, [
      el("span", { class: "poll-error-line" }, line ? line + (poll.last_error_kind ? " [" + poll.last_error_kind + "]" : "") : "none"),
      poll.last_error_detail ? el("details", { class: "poll-error-detail", open: opened && opened.open ? "" : null },
        el("summary", null, "details"), el("pre", null, poll.last_error_detail)) : null]);

    var warnings = (status.warnings || []).slice();
    if (status.tunnel_metadata_error) {
      warnings.push("tunnel metadata: " + status.tunnel_metadata_error);
    }
    if (status.raw_http_logging_enabled) {
      warnings.push("raw HTTP logging is enabled: logs may contain request bodies");
    }
    var list = $("warnings");
    list.hidden = warnings.length === 0;
    replaceChildren(list, warnings.map(function (w) { return el("li", null, String(w)); }));
  }

  // One stdio child (a channel has one per MCP era in use): era, pid, generation, restarts.
  function childLines(child) {
    return [
      (child.era ? (child.era === "legacy" ? "legacy era" : child.era + " era") + ": " : "") +
        (child.pid ? "pid " + child.pid : "no process"),
      [child.generation !== undefined ? "generation " + child.generation : "",
        child.restarts !== undefined ? child.restarts + " restart" + (child.restarts === 1 ? "" : "s") : ""]
        .filter(Boolean).join(" · "),
      child.handshake ? "handshake " + child.handshake : "",
    ].filter(Boolean);
  }

  function renderChannels(status) {
    var rows = (status.channels || []).map(function (ch) {
      var stdio = ch.transport_kind === "stdio";
      var processLines = stdio ? (ch.children && ch.children.length ? ch.children : [ch])
        .map(childLines).reduce(function (all, lines) { return all.concat(lines); }, []) : ["—"];
      var off = ch.healthy === null || ch.enabled === false;
      var health = off ? el("span", { class: "badge badge-unknown" }, "off")
        : ch.healthy && ch.warning ? el("span", { class: "badge badge-warn", title: ch.warning }, "at risk")
        : badge(ch.healthy, "healthy", "unhealthy");
      var budget = ch.restart_budget;
      return el("tr", { "data-channel": ch.name,
        class: off ? "row-off" : !ch.healthy ? "row-bad" : ch.warning ? "row-warn" : "" },
        el("td", null, el("strong", null, ch.name)),
        el("td", null, stdio ? "stdio" : (ch.transport_kind || "?")),
        el("td", { class: "channel-health" }, health,
          ch.state && !off ? el("span", { class: "muted" }, " " + ch.state) : null,
          budget ? el("div", { class: "restart-budget" + (budget.nearly_spent ? " text-warn" : " muted"),
            "data-used": budget.used, "data-limit": budget.limit },
            "restarts " + budget.used + " of " + budget.limit + " in " + budget.window_seconds + " s") : null),
        el("td", { class: "wrap" }, el("code", { class: "channel-target" }, stdio ? ch.command : ch.url)),
        el("td", { class: "nowrap" }, processLines.map(function (line) { return el("div", null, line); })),
        el("td", { class: "wrap" }, ch.reason || ""));
    });
    if (!rows.length) { rows = [el("tr", null, el("td", { colspan: 6 }, "No channels configured."))]; }
    replaceChildren(document.querySelector("#channels tbody"), rows);
  }

  function renderDetails(status, sample) {
    var route = status.control_plane_route || {};
    var facts = [
      ["Version", status.version],
      ["Instance id", status.client_instance_id],
      ["Started", status.started_at ? absolute(status.started_at) + " (up " + duration(status.uptime_seconds) + ")" : null],
      ["Configuration", status.config_source],
      ["Control plane", status.control_plane_base_url],
      ["Control-plane route", route.route_mode ? route.route_mode + (route.proxy_url ? " via " + route.proxy_url : "") +
        (route.proxy_source ? " (" + route.proxy_source + ")" : "") : null],
      ["Poll timeout", status.control_plane_poll_timeout],
      ["MCP server URL", status.mcp_server_url],
      ["Workers", status.workers ? status.workers.capacity : null],
      ["Daemon log level", status.log_level],
      ["Admin UI", status.ui_url],
      ["Memory (RSS)", bytes(sample.rss)],
      ["CPU time", sample.cpu === null ? null : sample.cpu.toFixed(1) + " s"],
      ["Open files / threads", sample.fds === null ? null : sample.fds + " / " + sample.threads],
    ];
    (status.mcp_routes || []).forEach(function (r) {
      facts.push(["Route " + r.name, r.target + " — " + r.route_mode + (r.proxy_url ? " via " + r.proxy_url : "")]);
    });
    var items = [];
    facts.forEach(function (fact) {
      if (fact[1] === null || fact[1] === undefined || fact[1] === "") { return; }
      items.push(el("dt", null, fact[0]), el("dd", null, String(fact[1])));
    });
    replaceChildren($("details"), items);
  }

  // --- rendering: counters and sparkline ---------------------------------------------

  function rateSince(key) {
    var last = state.samples[state.samples.length - 1];
    var base = null;
    for (var i = state.samples.length - 1; i >= 0; i--) {
      if (last.t - state.samples[i].t > RATE_WINDOW_MS) { break; }
      base = state.samples[i];
    }
    if (!base || base === last || last[key] === null || base[key] === null) { return null; }
    return last[key] - base[key];
  }

  function setTile(id, value, note, alarm) {
    var tile = $(id);
    tile.setAttribute("data-value", value === null ? "" : String(value));
    tile.classList.toggle("tile-alarm", !!alarm);
    setText(tile.querySelector(".tile-value"), value === null ? "—" : value);
    setText(tile.querySelector(".tile-rate"), note || "");
  }

  // "+N in the last min" only once this page has watched for a minute; before that the
  // window it covers is said plainly.
  function perMinute(key) {
    var delta = rateSince(key);
    if (delta === null) { return ""; }
    var first = state.samples[0], last = state.samples[state.samples.length - 1];
    var covered = last.t - first.t;
    return "+" + delta + (covered >= RATE_WINDOW_MS ? " in the last min" : " in the last " + Math.max(1, Math.round(covered / 1000)) + " s");
  }

  // The daemon counts each command's outcome and what happened in the last minute itself.
  function outcomeCounts(status) {
    var o = status.outcomes || {};
    var pick = function (counts) {
      counts = counts || {};
      var n = function (k) { return counts[k] || 0; };
      return { failed: n("failed") + n("expired") + n("dropped"), upstream: n("upstream_error"),
        poll: n("poll_error"), restarts: n("restart"), detail: n("failed") + " failed · " + n("expired") + " expired · " + n("dropped") + " dropped" };
    };
    return { total: pick(o.total), recent: pick(o.last_window), window: o.window_seconds || 60 };
  }

  function renderCounters(status) {
    var s = state.samples[state.samples.length - 1];
    setTile("counter-polled", s.polled, perMinute("polled"));
    setTile("counter-posted", s.posted, perMinute("posted"));
    var o = outcomeCounts(status || {});
    var errors = o.total.failed + o.total.upstream;
    var recent = o.recent.failed + o.recent.upstream;
    setTile("counter-errors", errors, "+" + recent + " in the last min · " + o.total.detail +
      " · " + o.total.upstream + " MCP server errors · " + o.total.poll + " poll errors", recent > 0);
    setTile("counter-restarts", s.restarts, "+" + o.recent.restarts + " in the last min", o.recent.restarts > 0);
    setTile("counter-inflight", s.busy, s.capacity === null ? "" : "of " + s.capacity + " workers",
      s.capacity && s.busy >= s.capacity);
  }

  var SVG_NS = "http://www.w3.org/2000/svg";

  function svg(tag, attrs) {
    var node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs).forEach(function (name) { node.setAttribute(name, String(attrs[name])); });
    return node;
  }

  function renderSparkline() {
    var chart = $("latency-spark");
    var width = 600, height = 64, top = 4;
    var values = state.samples.map(function (s) { return s.latency; });
    var max = values.reduce(function (m, v) { return v !== null && v > m ? v : m; }, 0);
    var scale = Math.max(max * 1.15, 1);
    var step = width / (SAMPLES - 1);
    var offset = SAMPLES - values.length;  // newest sample at the right edge
    var nodes = [svg("line", { x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5, class: "spark-axis" })];
    var run = [];
    var flush = function () {
      if (run.length === 1) {
        nodes.push(svg("circle", { cx: run[0][0], cy: run[0][1], r: 2.5, class: "spark-dot" }));
      } else if (run.length > 1) {
        nodes.push(svg("polyline", { points: run.map(function (p) { return p.join(","); }).join(" "),
          class: "spark-line" }));
      }
      run = [];
    };
    values.forEach(function (v, i) {
      if (v === null) { flush(); return; }
      var x = ((offset + i) * step).toFixed(1);
      var y = (height - (v / scale) * (height - top)).toFixed(1);
      run.push([x, y]);
    });
    flush();
    replaceChildren(chart, nodes);
    var latest = null;
    for (var i = values.length - 1; i >= 0; i--) { if (values[i] !== null) { latest = values[i]; break; } }
    setText("latency-last", millis(latest));
    setText("latency-max", max ? millis(max) : "—");
    var p95 = windowQuantile(0.95);
    setText("latency-p95", p95 === null ? "—" : p95 === Infinity ? "> largest bucket" : "≤ " + millis(p95));
    chart.setAttribute("data-points", String(values.filter(function (v) { return v !== null; }).length));
    setText("latency-hint", "One point per " + (REFRESH_MS / 1000) + " s sample with commands; gaps are idle samples.");
  }

  // --- rendering: Harpoon --------------------------------------------------------------

  // Redraw a panel only when its data changed, so an unfolded row or a text selection
  // survives the sampling loop.
  function changed(key, data) {
    var text = JSON.stringify(data);
    if (state.rendered[key] === text) { return false; }
    state.rendered[key] = text;
    return true;
  }

  function plural(count, noun) { return count + " " + noun + (count === 1 ? "" : "s"); }

  // Untrusted JSON values (documents from the MCP server) as one line of text.
  function textOf(value) {
    if (value === null || value === undefined) { return ""; }
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  function renderHarpoon(replies, sample) {
    var unavailable = replies.status.unavailable || replies.targets.unavailable ||
      replies.calls.unavailable;
    if (unavailable) {
      setHarpoonState("unavailable", "badge-unknown", "Harpoon details unavailable: " + unavailable);
      $("harpoon-targets-block").hidden = true;
      $("harpoon-calls-block").hidden = true;
      return;
    }
    var targets = replies.targets.targets || [];
    var calls = replies.calls.calls || [];
    renderHarpoonStatus(replies.status, sample);
    $("harpoon-targets-block").hidden = targets.length === 0;
    $("harpoon-calls-block").hidden = !replies.status.enabled && calls.length === 0;
    if (changed("harpoonTargets", targets)) {
      replaceChildren(document.querySelector("#harpoon-targets tbody"), targets.map(harpoonTargetRow));
    }
    var labels = targets.map(function (target) { return target.label; });
    if (changed("harpoonCalls", [calls, labels])) {
      state.harpoonCalls = calls;
      fillCallFilter(targets, calls);
      renderHarpoonCalls(calls);
    }
  }

  // --- policy and audit -----------------------------------------------------------------

  function renderPolicy(reply) {
    var node = $("policy-state");
    if (reply.unavailable || !reply.enabled) {
      node.className = "badge badge-unknown";
      node.textContent = reply.unavailable ? "unavailable" : "off";
      setText("policy-summary", reply.unavailable || "Every call is forwarded and none is " +
        "recorded: " + reply.reason + " (docs/policy.md).");
      $("policy-decisions-block").hidden = true;
      return;
    }
    var audit = reply.audit;
    var broken = audit && !audit.writable;
    node.className = "badge " + (broken ? "badge-bad" : "badge-ok");
    node.textContent = broken ? "audit failing" : "on";
    var parts = Object.keys(reply.policy).sort().map(function (channel) {
      var p = reply.policy[channel];
      return channel + ": " + p.mode + (p.read_only ? ", read-only" : "");
    });
    if (!parts.length) { parts.push("no channel policy"); }
    parts.push(audit ? "audit " + audit.file + " · chain head " + audit.head.seq + ":" +
      audit.head.digest.slice(0, 16) + "… · on failure " + audit.on_failure +
      (audit.write_failures ? " · " + plural(audit.write_failures, "write failure") : "") +
      (broken ? " · " + audit.error : "") : "no audit trail");
    setText("policy-summary", parts.join(" · "));
    var recent = reply.recent || [];
    $("policy-decisions-block").hidden = recent.length === 0;
    if (changed("policyRecent", recent)) {
      replaceChildren(document.querySelector("#policy-decisions tbody"), recent.map(decisionRow));
    }
  }

  function decisionRow(d) {
    var refused = d.decision === "deny" || d.decision === "limit";
    var shadow = d.decision.indexOf("shadow_") === 0;
    return el("tr", { class: refused ? "row-bad" : "" },
      el("td", { class: "nowrap", title: isoTime(d.time) }, callTime(d.time)),
      el("td", null, d.channel),
      el("td", null, d.method || "—"),
      el("td", { class: "wrap" }, textOf(d.name) || "—"),
      el("td", null, el("span", { class: refused ? "text-bad" : (shadow ? "muted" : "text-ok") },
        d.decision)),
      el("td", { class: "wrap" }, d.rule || "—"),
      el("td", null, httpStatus(d.status)));
  }

  function setHarpoonState(word, badgeClass, summary) {
    var node = $("harpoon-state");
    node.className = "badge " + badgeClass;
    node.textContent = word;
    setText("harpoon-summary", summary);
  }

  function renderHarpoonStatus(status, sample) {
    if (!status.enabled) {
      setHarpoonState("off", "badge-unknown", "Harpoon is off: " + (status.reason || "no reason given") +
        (status.targets ? "." : " (register one with --harpoon.target label=NAME,url=URL)."));
      return;
    }
    setHarpoonState("on", "badge-ok", [
      plural(status.targets, "target"),
      status.allow_plaintext_http ? "plaintext HTTP allowed" : "HTTPS only",
      "responses up to " + bytes(status.max_response_bytes),
      "up to " + plural(status.max_redirects, "redirect"),
      "payload capture " + (status.capture_payloads ? "on" : "off"),
      callTotals(sample),
    ].join(" · "));
  }

  // Totals since the daemon started, from harpoon_call_total (the history keeps only 100).
  function callTotals(sample) {
    if (!sample.harpoonCalls) { return "no calls since start"; }
    return plural(sample.harpoonCalls, "call") + " since start" +
      (sample.harpoonUnsuccessful ? ", " + sample.harpoonUnsuccessful + " not successful" : "");
  }

  function harpoonTargetRow(target) {
    var kind = target.category === target.source ? target.category
      : target.category + " / " + target.source;
    return el("tr", { "data-label": target.label },
      el("td", null, el("strong", null, target.label),
        el("div", { class: "muted" }, (target.allowed_methods || []).join(" "))),
      el("td", null, kind,
        target.inclusion_reason ? el("div", { class: "muted" }, target.inclusion_reason) : null),
      el("td", null, (target.tags || []).length ? target.tags.map(function (tag) {
        return el("span", { class: "tag" }, tag);
      }) : el("span", { class: "muted" }, "—")),
      el("td", { class: "wrap" }, el("code", { class: "target-url" }, target.url),
        target.unix_socket ? el("div", { class: "muted" }, "over unix socket " + target.unix_socket) : null),
      el("td", { class: "wrap" }, target.description || ""));
  }

  // Labels of the targets and of past calls (a call can outlive its target).
  function fillCallFilter(targets, calls) {
    var select = $("harpoon-call-filter");
    var chosen = select.value;
    var labels = [];
    targets.concat(calls).forEach(function (item) {
      if (labels.indexOf(item.label) < 0) { labels.push(item.label); }
    });
    labels.sort();
    replaceChildren(select, el("option", { value: "" }, "all targets"), labels.map(function (label) {
      return el("option", { value: label }, label);
    }));
    select.value = labels.indexOf(chosen) >= 0 ? chosen : "";
  }

  function renderHarpoonCalls(calls) {
    var label = $("harpoon-call-filter").value;
    var shown = calls.filter(function (call) { return !label || call.label === label; }).reverse();
    replaceChildren(document.querySelector("#harpoon-calls tbody"), shown.map(harpoonCallRow));
    document.querySelector("#harpoon-calls-block .scroll").hidden = shown.length === 0;
    var empty = $("harpoon-calls-empty");
    empty.hidden = shown.length > 0;
    setText(empty, label ? "No calls to " + label + " among the last " + HARPOON_HISTORY + "."
      : "No calls yet. Calls arrive on the harpoon channel (call_target).");
  }

  function harpoonCallRow(call) {
    var ok = call.outcome === "success";
    return el("tr", { "data-label": call.label, class: ok ? "" : "row-bad" },
      el("td", { class: "nowrap", title: isoTime(call.timestamp) }, callTime(call.timestamp)),
      el("td", { title: call.url }, el("strong", null, call.label)),
      el("td", null, call.method),
      el("td", { class: "call-status" }, httpStatus(call.status)),
      el("td", { class: "nowrap" }, millis(call.latency_ms)),
      el("td", { class: "wrap" }, call.resp_bytes === undefined ? "—" : bytes(call.resp_bytes),
        call.response_content_type ? el("div", { class: "muted" }, call.response_content_type) : null),
      el("td", { class: "wrap call-outcome" },
        el("span", { class: ok ? "text-ok" : "text-bad" }, call.outcome || "unknown"),
        call.error ? el("span", { class: "call-error" }, " — " + call.error) : null,
        payloads(call)));
  }

  function isoTime(epochSeconds) {
    return epochSeconds ? new Date(epochSeconds * 1000).toISOString() : "";
  }

  // Milliseconds tell apart calls within one second; another day shows its date.
  function callTime(epochSeconds) {
    if (!epochSeconds) { return "—"; }
    var date = new Date(epochSeconds * 1000);
    return date.toDateString() === new Date().toDateString() ? clock(date, true) : absolute(epochSeconds);
  }

  function httpStatus(status) {
    if (status === null || status === undefined) {
      return el("span", { class: "muted", title: "no HTTP response" }, "—");
    }
    return el("span", { class: "badge " + (status < 400 ? "badge-ok" : "badge-bad") }, status);
  }

  // Bodies exist only with harpoon.capture_payloads; folded by default, and kept
  // unfolded across redraws.
  function payloads(call) {
    var parts = [["request", call.request_body], ["response", call.response_body],
      ["response as sent (harpoon:// rewritten)", call.response_body_transformed]]
      .filter(function (part) { return part[1] !== undefined && part[1] !== null; });
    if (!parts.length) { return null; }
    var key = call.timestamp + "|" + call.label;
    var box = el("details", { class: "payload" }, el("summary", null, "payloads"),
      parts.map(function (part) {
        return [el("div", { class: "muted" }, part[0]), el("pre", null, part[1])];
      }));
    box.open = !!state.openPayloads[key];
    box.addEventListener("toggle", function () {
      if (box.open) { state.openPayloads[key] = true; } else { delete state.openPayloads[key]; }
    });
    return box;
  }

  // --- rendering: OAuth -----------------------------------------------------------------

  var OAUTH_STATES = {
    ok: ["Discovered", "state-ok"],
    not_advertised: ["Not advertised", "state-ok"],
    pending: ["Pending", "state-muted"],
    failed: ["Failed", "state-bad"],
    disabled: ["Disabled", "state-muted"],
  };
  var OAUTH_EXPLAINED = {
    not_advertised: "the MCP server publishes no OAuth metadata at its well-known URLs; " +
      "connectors need none.",
    pending: "discovery has not finished yet.",
  };
  var METADATA_SOURCES = {
    www_authenticate: "the WWW-Authenticate challenge",
    well_known_path: "the path-specific well-known URL",
    well_known_root: "the root well-known URL",
  };
  // [name, key in auth_server_metadata, role the daemon names in rejected_endpoints]
  var AS_ENDPOINTS = [
    ["Metadata document", "url", "auth-server-metadata"],
    ["Issuer", "issuer", "issuer"],
    ["Authorization", "authorization_endpoint", "authorization-endpoint"],
    ["Token", "token_endpoint", "token-endpoint"],
    ["Registration", "registration_endpoint", "registration-endpoint"],
    ["Revocation", "revocation_endpoint", "revocation-endpoint"],
    ["Introspection", "introspection_endpoint", "introspection-endpoint"],
    ["JWKS", "jwks_uri", "jwks-uri"],
  ];

  function renderOAuth(oauth, targets) {
    if (!changed("oauth", [oauth, targets])) { return; }
    var known = oauth.unavailable ? ["Unavailable", "state-muted"]
      : OAUTH_STATES[oauth.state] || [textOf(oauth.state), "state-muted"];
    var node = $("oauth-state");
    node.className = "state " + known[1];
    node.textContent = known[0];
    node.setAttribute("data-state", oauth.unavailable ? "unavailable" : textOf(oauth.state));
    setText("oauth-reason", oauth.unavailable || oauth.reason || oauth.error ||
      OAUTH_EXPLAINED[oauth.state] || "");
    $("oauth-found").hidden = oauth.state !== "ok";
    if (oauth.state === "ok") {
      renderOAuthFacts(oauth);
      renderOAuthEndpoints(oauth, targets);
      renderOAuthRegistrations(oauth, targets);
    }
    renderOAuthAttempts(oauth);
  }

  function renderOAuthFacts(oauth) {
    var documentBody = oauth.document || {};
    var servers = documentBody.authorization_servers;
    var scopes = documentBody.scopes_supported;
    var facts = [
      ["Resource metadata (PRMD)", oauth.url],
      ["Found through", (METADATA_SOURCES[oauth.metadata_source] || textOf(oauth.metadata_source)) +
        (oauth.status_code ? " · HTTP " + oauth.status_code : "")],
      ["Resource", textOf(documentBody.resource)],
      ["Authorization server", textOf(Array.isArray(servers) ? servers[0] : servers)],
      ["Scopes", Array.isArray(scopes) ? scopes.map(textOf).join(" ") : textOf(scopes)],
      ["Fetched", oauth.fetched_at ? absolute(oauth.fetched_at) : null],  // drawn once, so no "ago"
    ];
    var items = [];
    facts.forEach(function (fact) {
      if (!fact[1]) { return; }
      items.push(el("dt", null, fact[0]), el("dd", null, String(fact[1])));
    });
    replaceChildren($("oauth-facts"), items);
  }

  // A detached link parses a URL the way the daemon compares them (case of scheme and
  // host, default port, empty path) without fetching anything.
  var URL_PARSER = document.createElement("a");

  function sameAddress(a, b) {
    URL_PARSER.href = a;
    var first = URL_PARSER.href;
    URL_PARSER.href = b;
    return first === URL_PARSER.href;
  }

  function targetFor(url, targets) {
    return targets.filter(function (t) { return sameAddress(t.url, url); })[0] || null;
  }

  // Rejections read "<role> <url without its path>: why" or "<role>: why", so the role
  // is what identifies the endpoint.
  function rejectedRole(role, oauth) {
    return (oauth.rejected_endpoints || []).some(function (why) {
      why = textOf(why);
      return why.indexOf(role + " ") === 0 || why.indexOf(role + ":") === 0;
    });
  }

  // How the tunnel service reaches an endpoint: through a Harpoon target, not at all
  // (rejected), or directly (only private endpoints on the MCP server's host are registered).
  function tunnelRoute(url, role, oauth, targets) {
    var target = targetFor(url, targets);
    if (target) { return el("code", { class: "text-ok" }, "harpoon://" + target.label); }
    if (rejectedRole(role, oauth)) { return el("span", { class: "text-bad" }, "rejected (see below)"); }
    return el("span", { class: "muted" }, "directly (not registered)");
  }

  function renderOAuthEndpoints(oauth, targets) {
    var meta = oauth.auth_server_metadata || {};
    var rows = [];
    AS_ENDPOINTS.forEach(function (endpoint) {
      var url = textOf(meta[endpoint[1]]);
      if (!url) { return; }
      rows.push(el("tr", { "data-endpoint": endpoint[1] },
        el("td", { class: "nowrap" }, endpoint[0]),
        el("td", { class: "wrap" }, el("code", null, url)),
        el("td", { class: "wrap" }, tunnelRoute(url, endpoint[2], oauth, targets))));
    });
    replaceChildren(document.querySelector("#oauth-endpoints tbody"), rows);
    $("oauth-endpoints").hidden = rows.length === 0;
    var empty = $("oauth-endpoints-empty");
    empty.hidden = rows.length > 0;
    setText(empty, "No authorization-server metadata: the resource metadata names no " +
      "authorization server, or none of its metadata documents answered (see the attempts).");
  }

  function renderOAuthRegistrations(oauth, targets) {
    var labels = [];
    (oauth.registered_targets || []).forEach(function (label) {
      if (labels.indexOf(label) < 0) { labels.push(label); }  // one URL can serve two roles
    });
    var registered = labels.map(function (label) {
      var target = targets.filter(function (t) { return t.label === label; })[0];
      return el("li", { "data-label": label }, el("code", null, "harpoon://" + label),
        target ? el("span", { class: "muted" }, " → " + target.url) : null);
    });
    var rejected = (oauth.rejected_endpoints || []).map(function (why) {
      return el("li", { class: "text-bad" }, textOf(why));
    });
    replaceChildren($("oauth-registered"), registered.length ? registered
      : el("li", { class: "muted" }, "None: no private endpoint on the MCP server's host."));
    replaceChildren($("oauth-rejected"), rejected.length ? rejected
      : el("li", { class: "muted" }, "None."));
  }

  function attemptResult(attempt) {
    return [attempt.status_code ? "HTTP " + attempt.status_code : null, textOf(attempt.error) || null,
      attempt.issuer_mismatch ? "issuer differs: " + textOf(attempt.metadata_issuer) : null,
      attempt.selected ? "used" : null].filter(Boolean).join(" · ") || "—";
  }

  function renderOAuthAttempts(oauth) {
    var rows = (oauth.attempts || []).map(function (a) {
      return ["resource metadata (" + textOf(a.source) + ")", a];
    }).concat((oauth.auth_server_attempts || []).map(function (a) {
      return [textOf(a.document) + " (" + textOf(a.path_style) + ")", a];
    })).map(function (pair) {
      return el("tr", { class: pair[1].selected ? "row-selected" : "" },
        el("td", { class: "nowrap" }, pair[0]),
        el("td", { class: "wrap" }, el("code", null, textOf(pair[1].url))),
        el("td", { class: "wrap" }, attemptResult(pair[1])));
    });
    replaceChildren(document.querySelector("#oauth-attempts tbody"), rows);
    $("oauth-attempts-block").hidden = rows.length === 0;
    setText(document.querySelector("#oauth-attempts-block summary"),
      "Discovery attempts (" + rows.length + ")");
  }

  // --- refresh loop -------------------------------------------------------------------

  function showBanner(text) {
    var banner = $("banner");
    banner.hidden = !text;
    banner.textContent = text || "";
    document.body.classList.toggle("stale", !!text);
  }

  function refresh() {
    return Promise.all([getJSON("/api/status"), getText("/metrics"),
      optional("/api/harpoon/status"), optional("/api/harpoon/targets"),
      optional("/api/harpoon/calls?limit=" + HARPOON_HISTORY), optional("/api/oauth"),
      optional("/api/audit?limit=50"),
    ]).then(function (replies) {
      var status = replies[0];
      if (state.instance !== status.client_instance_id) {
        var restarted = state.instance !== null;
        state.instance = status.client_instance_id;
        state.samples = [];
        if (restarted) { resetLogs(); }
      }
      var sample = takeSample(replies[1], status);
      addSample(sample);
      renderHeader(status);
      renderReadiness(status);
      renderChannels(status);
      renderCounters(status);
      renderSparkline();
      renderDetails(status, sample);
      renderHarpoon({ status: replies[2], targets: replies[3], calls: replies[4] }, sample);
      renderOAuth(replies[5], replies[3].targets || []);
      renderPolicy(replies[6]);
      if (!state.levelPending) { markLevel(status.log_level); }
      state.lastOk = new Date();
      setText("last-refresh", "updated " + clock(state.lastOk));
      showBanner(null);
      return pollLogs();
    }).catch(function (error) {
      showBanner("Cannot reach the tunnel-client admin API (" + error.message + "). Retrying; " +
        (state.lastOk ? "the data below is from " + clock(state.lastOk) + "." : "no data yet."));
      var node = $("readiness-badge");
      node.className = "badge badge-unknown";
      node.textContent = "unreachable";
      setStreamState("retrying", "reconnecting…");
    }).then(function () {
      setTimeout(refresh, REFRESH_MS);
    });
  }

  // --- logs ---------------------------------------------------------------------------

  var HIDDEN_FIELDS = { seq: 1, time: 1, level: 1, msg: 1, message: 1, component: 1,
    client_instance_id: 1, tunnel_id: 1, traceback: 1,
    detail: 1 };  // a library's own error text: in the full event, one click away

  function fieldsText(event) {
    return Object.keys(event).filter(function (k) { return !HIDDEN_FIELDS[k]; }).map(function (k) {
      var v = event[k];
      return k + "=" + (typeof v === "string" ? (/^[^\s"=]+$/.test(v) ? v : JSON.stringify(v)) : JSON.stringify(v));
    }).join(" ");
  }

  function passes(event) {
    if (LEVEL_RANK[levelOf(event)] < LEVEL_RANK[$("log-filter-level").value]) { return false; }
    var needle = $("log-filter-text").value.trim().toLowerCase();
    if (!needle) { return true; }
    var hay = [event.msg, event.message, event.component, fieldsText(event)].join(" ").toLowerCase();
    return hay.indexOf(needle) >= 0;
  }

  function logRow(event) {
    var level = levelOf(event);
    var when = event.time ? new Date(event.time) : null;
    var row = el("div", { class: "log-row lvl-" + level, "data-seq": event.seq, tabindex: 0,
      title: "Click for the full event" },
      el("span", { class: "log-time", title: event.time || "" },
        when && !isNaN(when) ? clock(when, true) : String(event.time || "")),
      el("span", { class: "log-level" }, level.toUpperCase()),
      el("span", { class: "log-comp" }, String(event.component || "")),
      el("span", { class: "log-msg" }, String(event.msg !== undefined ? event.msg : event.message || "")),
      el("span", { class: "log-fields" }, fieldsText(event)));
    var toggle = function () {
      var open = row.querySelector(".log-json");
      if (open) { row.removeChild(open); return; }
      row.appendChild(el("pre", { class: "log-json" }, JSON.stringify(event, null, 2)));
    };
    row.addEventListener("click", function (e) {
      if (window.getSelection && String(window.getSelection())) { return; }  // selecting text
      if (e.target.closest && e.target.closest(".log-json")) { return; }
      toggle();
    });
    row.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); toggle(); }
    });
    return row;
  }

  function renderLogs() {
    var list = $("log-list");
    var rows = [];
    for (var i = state.events.length - 1; i >= 0 && rows.length < MAX_ROWS; i--) {
      if (passes(state.events[i])) { rows.push(logRow(state.events[i])); }
    }
    replaceChildren(list, rows);
    $("log-empty").hidden = rows.length > 0;
  }

  function addEvent(event) {
    if (typeof event.seq === "number") {
      if (event.seq <= state.lastSeq) { return; }  // already shown (reconnect overlap)
      state.lastSeq = event.seq;
    }
    state.events.push(event);
    if (state.events.length > MAX_EVENTS) { state.events.shift(); }
    if (!passes(event)) { return; }
    var list = $("log-list");
    list.insertBefore(logRow(event), list.firstChild);  // newest first
    while (list.childNodes.length > MAX_ROWS) { list.removeChild(list.lastChild); }
    $("log-empty").hidden = true;
  }

  function setStreamState(name, text) {
    $("logs").setAttribute("data-stream", name);
    var node = $("stream-state");
    node.className = "stream-state stream-" + name;
    node.textContent = text;
  }

  // New events since the last one we have, fetched with every refresh. A short request
  // instead of an open-ended stream lets the page settle: headless screenshots with a
  // virtual time budget, printing and load checks all wait for the network to go idle.
  function pollLogs() {
    if (!state.logsLoaded) { return Promise.resolve(); }
    return getJSON("/api/logs?since=" + state.lastSeq + "&limit=" + MAX_ROWS).then(function (data) {
      (data.events || []).forEach(addEvent);
      setStreamState("open", "live");
    }).catch(function () {
      setStreamState("retrying", "reconnecting…");
    });
  }

  function loadLogs() {
    setStreamState("connecting", "connecting…");
    return getJSON("/api/logs?limit=" + MAX_ROWS).then(function (data) {
      (data.events || []).forEach(function (event) {
        if (typeof event.seq === "number" && event.seq <= state.lastSeq) { return; }
        state.events.push(event);
        if (typeof event.seq === "number") { state.lastSeq = event.seq; }
      });
      renderLogs();
      setStreamState("open", "live");
    }).catch(function () {
      renderLogs();
      setStreamState("retrying", "reconnecting…");
    }).then(function () {
      state.logsLoaded = true;
    });
  }

  function resetLogs() {
    state.events = [];
    state.lastSeq = 0;
    loadLogs();
  }

  // --- daemon log level ---------------------------------------------------------------

  function markLevel(level) {
    var buttons = document.querySelectorAll("#level-buttons button");
    Array.prototype.forEach.call(buttons, function (button) {
      button.setAttribute("aria-pressed", button.getAttribute("data-level") === level ? "true" : "false");
    });
  }

  function setLevel(level) {
    state.levelPending = true;
    setText("level-message", "setting " + level + "…");
    $("level-message").className = "level-message";
    request("/api/log-level", {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ level: level }),
    }).then(function (reply) {
      return reply.json().then(function (data) {
        if (!reply.ok) { throw new Error(data.error || "answered " + reply.status); }
        markLevel(data.level);
        setText("level-message", "daemon now logs " + data.level + " and above");
      });
    }).catch(function (error) {
      $("level-message").className = "level-message text-bad";
      setText("level-message", "could not change the level: " + error.message);
    }).then(function () {
      state.levelPending = false;
    });
  }

  function buildLevelButtons(info) {
    state.levels = info.supported_levels || ["debug", "info", "warn", "error"];
    replaceChildren($("level-buttons"), state.levels.map(function (level) {
      var button = el("button", { type: "button", class: "seg", "data-level": level,
        "aria-pressed": "false", title: "Record " + level + " and above" }, level);
      button.addEventListener("click", function () { setLevel(level); });
      return button;
    }));
    markLevel(info.level);
  }

  function loadLevel() {
    return getJSON("/api/log-level").then(buildLevelButtons).catch(function (error) {
      setText("level-message", "log level unavailable: " + error.message);
    });
  }

  // --- wiring -------------------------------------------------------------------------

  function start() {
    $("bundle-minutes").addEventListener("change", function (e) {
      $("bundle-link").setAttribute("href", "/api/logs/export?minutes=" + encodeURIComponent(e.target.value));
    });
    $("log-filter-level").addEventListener("change", renderLogs);
    $("log-filter-text").addEventListener("input", renderLogs);
    $("harpoon-call-filter").addEventListener("change", function () {
      renderHarpoonCalls(state.harpoonCalls);
    });
    loadLevel();
    refresh();
    loadLogs();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
