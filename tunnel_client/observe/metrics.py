"""A small thread-safe metrics registry with Prometheus text exposition (format 0.0.4).

No client library: counters, gauges and histograms with labels, each metric holding at
most ``max_series`` label sets; further label sets are folded into ``other`` so a caller
sending a thousand tool names cannot grow memory or the scrape without bound.
"""

import math
import threading
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

OVERFLOW = "other"
DEFAULT_MAX_SERIES = 200
LATENCY_BUCKETS_MS = (1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000,
                      60000)
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_value(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value)) if isinstance(value, float) else str(value)


class _Metric:
    kind = ""

    def __init__(self, name: str, doc: str, labels: Sequence[str] = (),
                 max_series: int = DEFAULT_MAX_SERIES):
        self.name = name
        self.doc = doc
        self.labels = tuple(labels)
        self.max_series = max_series
        self._lock = threading.Lock()
        self._series: Dict[Tuple[str, ...], object] = {}

    def _key(self, labels: Dict[str, str]) -> Tuple[str, ...]:
        key = tuple(str(labels.get(name, "")) for name in self.labels)
        if key not in self._series and len(self._series) >= self.max_series:
            key = tuple(OVERFLOW for _ in self.labels)
        return key

    def _label_text(self, key: Tuple[str, ...], extra: Sequence[Tuple[str, str]] = ()) -> str:
        pairs = list(zip(self.labels, key)) + list(extra)
        if not pairs:
            return ""
        return "{%s}" % ",".join('%s="%s"' % (k, _escape(v)) for k, v in pairs)

    def header(self) -> List[str]:
        return ["# HELP %s %s" % (self.name, _escape(self.doc)),
                "# TYPE %s %s" % (self.name, self.kind)]


class Counter(_Metric):
    kind = "counter"

    def inc(self, amount: float = 1, **labels):
        with self._lock:
            key = self._key(labels)
            self._series[key] = self._series.get(key, 0) + amount

    def value(self, **labels) -> float:
        with self._lock:
            return self._series.get(tuple(str(labels.get(n, "")) for n in self.labels), 0)

    def total(self) -> float:
        with self._lock:
            return sum(self._series.values())

    def render(self) -> List[str]:
        with self._lock:
            items = sorted(self._series.items())
        return self.header() + ["%s%s %s" % (self.name, self._label_text(k), _format_value(v))
                                for k, v in items]


class Gauge(_Metric):
    kind = "gauge"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._function: Optional[Callable[[], float]] = None

    def set(self, value: float, **labels):
        with self._lock:
            self._series[self._key(labels)] = value

    def inc(self, amount: float = 1, **labels):
        with self._lock:
            key = self._key(labels)
            self._series[key] = self._series.get(key, 0) + amount

    def set_function(self, function: Callable[[], float]):
        """Read the value at scrape time (unlabelled gauges only)."""
        self._function = function

    def value(self, **labels) -> float:
        if self._function is not None:
            return self._function()
        with self._lock:
            return self._series.get(tuple(str(labels.get(n, "")) for n in self.labels), 0)

    def render(self) -> List[str]:
        if self._function is not None:
            try:
                items = [((), float(self._function()))]
            except Exception:  # a broken probe must not break the scrape
                items = []
        else:
            with self._lock:
                items = sorted(self._series.items())
        return self.header() + ["%s%s %s" % (self.name, self._label_text(k), _format_value(v))
                                for k, v in items]


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name, doc, labels=(), buckets=LATENCY_BUCKETS_MS, **kwargs):
        super().__init__(name, doc, labels, **kwargs)
        self.buckets = tuple(sorted(buckets))

    def observe(self, value: float, **labels):
        with self._lock:
            key = self._key(labels)
            state = self._series.get(key)
            if state is None:
                state = self._series[key] = [[0] * len(self.buckets), 0.0, 0]
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    state[0][i] += 1
            state[1] += value
            state[2] += 1

    def count(self, **labels) -> int:
        with self._lock:
            state = self._series.get(tuple(str(labels.get(n, "")) for n in self.labels))
            return state[2] if state else 0

    def render(self) -> List[str]:
        with self._lock:
            items = sorted((k, ([*s[0]], s[1], s[2])) for k, s in self._series.items())
        lines = self.header()
        for key, (counts, total, count) in items:
            for bound, bucket_count in zip(self.buckets, counts):
                lines.append("%s_bucket%s %d" % (self.name, self._label_text(
                    key, [("le", _format_value(float(bound)))]), bucket_count))
            lines.append("%s_bucket%s %d" % (self.name, self._label_text(key, [("le", "+Inf")]),
                                             count))
            lines.append("%s_sum%s %s" % (self.name, self._label_text(key),
                                          _format_value(total)))
            lines.append("%s_count%s %d" % (self.name, self._label_text(key), count))
        return lines


class CounterFunction(Gauge):
    """A counter read at scrape time (e.g. CPU seconds): typed ``counter`` so rate() works."""

    kind = "counter"


class Registry:
    def __init__(self):
        self._metrics: Dict[str, _Metric] = {}
        self._lock = threading.Lock()

    def _add(self, metric):
        with self._lock:
            existing = self._metrics.get(metric.name)
            if existing is not None:
                return existing
            self._metrics[metric.name] = metric
            return metric

    def counter(self, name, doc, labels=(), **kwargs) -> Counter:
        return self._add(Counter(name, doc, labels, **kwargs))

    def gauge(self, name, doc, labels=(), **kwargs) -> Gauge:
        return self._add(Gauge(name, doc, labels, **kwargs))

    def counter_function(self, name, doc, function) -> CounterFunction:
        metric = self._add(CounterFunction(name, doc))
        metric.set_function(function)
        return metric

    def histogram(self, name, doc, labels=(), **kwargs) -> Histogram:
        return self._add(Histogram(name, doc, labels, **kwargs))

    def get(self, name: str) -> _Metric:
        return self._metrics[name]

    def metrics(self) -> Iterable[_Metric]:
        with self._lock:
            return list(self._metrics.values())

    def render(self) -> str:
        lines: List[str] = []
        for metric in sorted(self.metrics(), key=lambda m: m.name):
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"


# Bounded vocabulary for the request_method label: MCP methods, else "other".
KNOWN_METHODS = frozenset((
    "initialize", "ping", "server/discover", "tools/list", "tools/call", "resources/list",
    "resources/read", "resources/templates/list", "resources/subscribe",
    "resources/unsubscribe", "prompts/list", "prompts/get", "completion/complete",
    "logging/setLevel", "tasks/get", "tasks/result", "tasks/list", "tasks/cancel",
    "notifications/initialized", "notifications/cancelled", "notifications/progress",
    "notifications/roots/list_changed"))


def method_label(method: Optional[str]) -> str:
    if method is None:
        return ""
    return method if method in KNOWN_METHODS else OVERFLOW
