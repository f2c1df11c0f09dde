"""Is the daemon flat? Snapshots of its RSS, threads and open fds taken at comparable
moments: just before each SIGKILL of the stdio server, when the server has been up for a
whole kill interval under the same steady load. The first snapshot after warm-up is the
baseline; every later one must stay within the bounds below.

Bounds, and why:
* threads: +2. Steady state is fixed (main, workers, admin, housekeeping, the server's
  reader and stderr drain); the slack covers a housekeeping job or a late reader of the
  previous server still being reaped.
* open fds: +4. A server holds 3 pipes; the slack covers one restart still closing the
  previous server's pipes and one control-plane connection being replaced.
* RSS: +8 MB over the baseline for the whole run, whatever its length. Python's heap
  settles within the warm-up; a per-call leak of even 100 bytes would cross this in a
  10-minute soak (about 60,000 calls).
"""

from dataclasses import dataclass
from typing import List

from benchmarks import procstat

THREAD_SLACK = 2
FD_SLACK = 4
RSS_SLACK_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Snapshot:
    at: float
    rss: int
    threads: int
    fds: int


def snapshot(pid: int, at: float) -> Snapshot:
    return Snapshot(at, procstat.rss_bytes(pid), procstat.threads(pid), procstat.open_fds(pid))


def growth(snapshots: List[Snapshot], warmup_until: float) -> dict:
    """Baseline, worst later value, and which bounds were crossed."""
    steady = [s for s in snapshots if s.at >= warmup_until]
    if len(steady) < 2:
        return {"snapshots": len(steady), "crossed": ["fewer than 2 snapshots after warm-up"]}
    base, later = steady[0], steady[1:]
    worst = Snapshot(later[-1].at, max(s.rss for s in later), max(s.threads for s in later),
                     max(s.fds for s in later))
    crossed = []
    if worst.threads > base.threads + THREAD_SLACK:
        crossed.append("threads %d -> %d" % (base.threads, worst.threads))
    if worst.fds > base.fds + FD_SLACK:
        crossed.append("open fds %d -> %d" % (base.fds, worst.fds))
    if worst.rss > base.rss + RSS_SLACK_BYTES:
        crossed.append("RSS %.1f MB -> %.1f MB" % (base.rss / 1e6, worst.rss / 1e6))
    return {"snapshots": len(steady), "baseline": base, "worst": worst,
            "last": later[-1], "crossed": crossed}
