"""Process basics for /metrics (RSS, CPU, fds, threads, start time), from /proc."""

import os
import resource
import threading
import time

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_START = time.time()


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * _PAGE
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def register(registry):
    registry.gauge("process_resident_memory_bytes", "Resident memory size in bytes."
                   ).set_function(rss_bytes)
    registry.counter_function("process_cpu_seconds_total",
                              "User and system CPU time in seconds.", cpu_seconds)
    registry.gauge("process_open_fds", "Open file descriptors.").set_function(open_fds)
    registry.gauge("process_threads", "Live threads.").set_function(threading.active_count)
    registry.gauge("process_start_time_seconds", "Unix time the process started."
                   ).set_function(lambda: _START)
    build_info(registry)


def build_info(registry):
    """Constant 1 labelled with what is running, like node_exporter's build_info."""
    import platform

    from tunnel_client import __version__
    registry.gauge("tunnel_client_build_info", "Version of tunnel-client and its Python "
                   "(value 1).", ("version", "python_version", "urllib3_version")).set(
        1, version=__version__, python_version=platform.python_version(),
        urllib3_version=_version_of("urllib3"))


def _version_of(module: str) -> str:
    try:
        return str(__import__(module).__version__)
    except (ImportError, AttributeError):
        return "unknown"
