"""Who holds a TCP port? Read from /proc where the system shows it (Linux; another user's
process needs root), so "address already in use" can name Tomcat or Jenkins."""

import os
from typing import Optional

_LISTEN = "0A"


def _listening_inodes(port: int):
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as handle:
                next(handle, None)
                for line in handle:
                    fields = line.split()
                    if len(fields) > 9 and fields[3] == _LISTEN and \
                            int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(fields[9])
        except (OSError, ValueError):
            continue
    return inodes


def port_holder(port: int) -> Optional[str]:
    """``"java (pid 1234, user tomcat)"`` or None when the system does not show it."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    targets = {"socket:[%s]" % inode for inode in inodes}
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    for pid in pids:
        fd_dir = "/proc/%s/fd" % pid
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # another user's process: only root sees its descriptors
        for fd in fds:
            try:
                if os.readlink(os.path.join(fd_dir, fd)) in targets:
                    return _describe(pid)
            except OSError:
                continue
    return None


def _describe(pid: str) -> str:
    try:
        with open("/proc/%s/comm" % pid) as handle:
            name = handle.read().strip()
    except OSError:
        name = "?"
    user = ""
    try:
        import pwd
        user = ", user %s" % pwd.getpwuid(os.stat("/proc/%s" % pid).st_uid).pw_name
    except (OSError, KeyError, ImportError):
        pass
    return "%s (pid %s%s)" % (name, pid, user)
