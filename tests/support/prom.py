"""A small strict parser for the Prometheus text exposition format (0.0.4)."""

import math
import re

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(r"^(%s)(\{(.*)\})? (\S+)$" % _NAME)
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\["\\n])*)"\s*(,|$)')
_TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def parse(text: str):
    """{family: {"type", "help", "samples": [(name, labels, value)]}}; raises ValueError."""
    families, current = {}, None
    seen = set()
    if not text.endswith("\n"):
        raise ValueError("exposition must end with a newline")
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            families.setdefault(name, {"type": None, "help": None, "samples": []})
            families[name]["help"] = line.split(" ", 3)[3] if line.count(" ") >= 3 else ""
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            if kind not in _TYPES:
                raise ValueError("line %d: unknown type %s" % (number, kind))
            family = families.setdefault(name, {"type": None, "help": None, "samples": []})
            if family["samples"]:
                raise ValueError("line %d: TYPE after samples of %s" % (number, name))
            family["type"] = kind
            current = name
            continue
        if line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            raise ValueError("line %d: not a sample: %r" % (number, line))
        name, _, label_text, value = match.groups()
        labels, rest = {}, label_text or ""
        while rest:
            label = _LABEL.match(rest)
            if not label:
                raise ValueError("line %d: bad labels %r" % (number, label_text))
            labels[label.group(1)] = label.group(2)
            rest = rest[label.end():]
        number_value = float(value.replace("+Inf", "inf").replace("-Inf", "-inf"))
        family = current if current and (name == current or name.startswith(current + "_")) \
            else name
        if family not in families or families[family]["type"] is None:
            raise ValueError("line %d: sample %s without a TYPE" % (number, name))
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            raise ValueError("line %d: duplicate series %s" % (number, key))
        seen.add(key)
        families[family]["samples"].append((name, labels, number_value))
    for name, family in families.items():
        if family["type"] == "histogram":
            _check_histogram(name, family["samples"])
    return families


def _check_histogram(name, samples):
    series = {}
    for sample, labels, value in samples:
        base = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        series.setdefault(base, {"buckets": [], "count": None})
        if sample == name + "_bucket":
            le = float(labels["le"].replace("+Inf", "inf"))
            series[base]["buckets"].append((le, value))
        elif sample == name + "_count":
            series[base]["count"] = value
    for base, data in series.items():
        buckets = sorted(data["buckets"])
        counts = [v for _, v in buckets]
        if counts != sorted(counts):
            raise ValueError("%s%s: buckets not cumulative" % (name, base))
        if not buckets or not math.isinf(buckets[-1][0]) or buckets[-1][1] != data["count"]:
            raise ValueError("%s%s: +Inf bucket must equal _count" % (name, base))


def value(families, name, **labels):
    for family in families.values():
        for sample, sample_labels, number in family["samples"]:
            if sample == name and all(sample_labels.get(k) == v for k, v in labels.items()):
                return number
    return None
