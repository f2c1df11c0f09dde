"""What /proc says about one process: CPU time, RSS, threads, open fds, context switches.

Read from outside the process, so the numbers include nothing the benchmark itself does.
CPU comes from /proc/<pid>/stat (utime + stime, which include threads that have exited);
context switches are summed over /proc/<pid>/task/* (live threads only).
"""

import os
from dataclasses import dataclass
from typing import Dict, List, Optional

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _status(pid: int, task: Optional[int] = None) -> Dict[str, str]:
    path = "/proc/%d/status" % pid if task is None else "/proc/%d/task/%d/status" % (pid, task)
    values = {}
    with open(path) as handle:
        for line in handle:
            name, _, value = line.partition(":")
            values[name] = value.strip()
    return values


def rss_bytes(pid: int) -> int:
    return int(_status(pid)["VmRSS"].split()[0]) * 1024


def peak_rss_bytes(pid: int) -> int:
    return int(_status(pid)["VmHWM"].split()[0]) * 1024


def threads(pid: int) -> int:
    return int(_status(pid)["Threads"])


def open_fds(pid: int) -> int:
    return len(os.listdir("/proc/%d/fd" % pid))


def task_switches(pid: int) -> Dict[int, int]:
    """Voluntary + involuntary context switches per live thread (tid -> count)."""
    found = {}
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            status = _status(pid, int(task))
        except OSError:
            continue  # the thread ended between listing and reading
        found[int(task)] = int(status["voluntary_ctxt_switches"]) + \
            int(status["nonvoluntary_ctxt_switches"])
    return found


def context_switches(pid: int) -> int:
    """Switches of every live thread summed: each one is a wakeup."""
    return sum(task_switches(pid).values())


def children(pid: int) -> List[int]:
    """Direct child processes of ``pid`` (the stdio MCP servers of a daemon)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(name))
    return sorted(found)


@dataclass(frozen=True)
class Sample:
    cpu: float
    rss: int
    threads: int
    fds: int
    switches: int


def sample(pid: int) -> Sample:
    return Sample(cpu_seconds(pid), rss_bytes(pid), threads(pid), open_fds(pid),
                  context_switches(pid))
