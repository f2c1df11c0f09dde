"""Printing and saving results: aligned text tables, CSV, a JSON summary per benchmark
under benchmarks/results/ (gitignored), and the targets table built from those summaries.

``python -m benchmarks.report`` prints the targets table from the latest saved runs.
"""

import csv
import datetime
import json
import math
import os
import platform
from typing import List, Optional, Sequence

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def machine() -> dict:
    return {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(terse=True),
            # Other work on the machine skews latency and throughput, far less CPU per call.
            "load_average_1m": os.getloadavg()[0]}


def fmt(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else "%.*f" % (digits, value)
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    cells = [[str(h) for h in headers]] + [[fmt(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def save(name: str, summary: dict, rows: Optional[List[dict]] = None) -> str:
    """Write results/<name>.json (the latest run) and, with rows, a timestamped CSV."""
    os.makedirs(RESULTS, exist_ok=True)
    summary = dict(summary, machine=machine())
    with open(os.path.join(RESULTS, name + ".json"), "w") as handle:
        json.dump(summary, handle, indent=2, sort_keys=True)
    if not rows:
        return ""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = os.path.join(RESULTS, "%s-%s.csv" % (name, stamp))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def load_saved(name: str) -> Optional[dict]:
    try:
        with open(os.path.join(RESULTS, name + ".json")) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


# --- targets (issue 8) --------------------------------------------------------------------

def _get(summary: Optional[dict], *keys):
    node = summary
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def target_rows(load: Optional[dict], idle: Optional[dict], startup: Optional[dict],
                policy: Optional[dict] = None) -> List[list]:
    """[target, limit, measured, verdict] for every target the saved summaries cover."""
    def row(name, limit, value, ok, unit=""):
        if value is None:
            return [name, limit, "not measured", "-"]
        shown = value if isinstance(value, str) else "%.2f%s" % (value, unit)
        return [name, limit, shown, "met" if ok(value) else "MISSED"]

    t = _get(load, "targets") or {}
    rows = [
        row("added p50 latency, stdio, c=1, 1 KiB", "<= 3 ms", t.get("added_p50_ms_c1_1k"),
            lambda v: v <= 3.0, " ms"),
        row("throughput, stdio, c=16, 1 KiB", ">= 300 calls/s", t.get("rate_c16_1k"),
            lambda v: v >= 300, "/s"),
        row("daemon CPU per call, stdio, c=16, 1 KiB", "<= 1.5 ms", t.get("cpu_ms_c16_1k"),
            lambda v: v <= 1.5, " ms"),
        row("10 x 1-s tool on one stdio server", "<= 1.5 s", t.get("pipelined_10x1s_s"),
            lambda v: v <= 1.5, " s"),
        row("RSS at c=64 (1 KiB)", "<= 90 MB", t.get("rss_mb_c64_1k"), lambda v: v <= 90,
            " MB"),
        row("RSS at c=64 (any payload, peak)", "<= 90 MB", t.get("rss_mb_c64_peak"),
            lambda v: v <= 90, " MB"),
        row("RSS idle (10 workers)", "<= 50 MB", _get(idle, "rss_mb"), lambda v: v <= 50,
            " MB"),
        row("idle CPU (10 workers)", "<= 0.2 % of a core", _get(idle, "cpu_percent"),
            lambda v: v <= 0.2, " %"),
        row("idle wakeups (10 workers)", "<= 5 /s", _get(idle, "wakeups_per_s"),
            lambda v: v <= 5, "/s"),
        row("tunnel-client --version", "<= 150 ms", _get(startup, "version_ms"),
            lambda v: v <= 150, " ms"),
    ]
    doctor = _get(startup, "doctor_offline_ms")
    if isinstance(doctor, str) or doctor is None:
        rows.append(["doctor --offline", "<= 400 ms", doctor or "not measured", "-"])
    else:
        rows.append(row("doctor --offline", "<= 400 ms", doctor, lambda v: v <= 400, " ms"))
    rows.append(row("policy + audit: added daemon CPU/call, c=16", "<= 0.2 ms",
                    _get(policy, "added_cpu_ms"), lambda v: v <= 0.2, " ms"))
    return rows


def print_targets(load=None, idle=None, startup=None, everything: bool = False, policy=None):
    rows = [r for r in target_rows(load, idle, startup, policy)
            if everything or r[2] != "not measured"]
    print("\nTargets (issue 8):")
    print(table(["target", "limit", "measured", "verdict"], rows))


def main():
    saved = {name: load_saved(name) for name in ("load", "idle", "startup", "policy")}
    for name, summary in saved.items():
        where = _get(summary, "machine") or {}
        print("%-8s %s" % (name, "from %s on %s cores, load average %.1f" % (
            where.get("date"), where.get("cores"), where.get("load_average_1m", 0))
            if summary else "no saved run (make %s)" % ("bench" if name == "load"
                                                         else "bench-" + name)))
    print_targets(saved["load"], saved["idle"], saved["startup"], everything=True,
                  policy=saved["policy"])


if __name__ == "__main__":
    main()
