"""The audit trail's file, key and permissions, as the daemon will meet them."""

import os
import stat

from tunnel_client.doctor.report import CRIT, OK, WARN, Check
from tunnel_client.errors import StartupError
from tunnel_client.policy.audit import read_key

TAIL_BYTES = 4 << 20  # cron runs this every five minutes: the recent records only


def check(cfg) -> Check:
    path, key_file = cfg.audit.file, cfg.audit.key_file
    why = "every command is recorded before its reply; with on_failure deny, calls are " \
          "refused while records cannot be written"
    try:
        key = read_key(key_file)
    except StartupError as exc:
        return Check("audit", CRIT, str(exc), why, next=["create the key file, owned by the "
                                                          "service user, mode 0600"])
    warnings = []
    mode = stat.S_IMODE(os.stat(key_file).st_mode)
    if mode & 0o077:
        warnings.append("key file %s is mode %04o; anyone who can read it can forge records "
                        "(chmod 600)" % (key_file, mode))
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.exists(path):
        if not os.access(path, os.W_OK):
            return Check("audit", CRIT, "audit file %s is not writable" % path, why,
                         next=["chown it to the service user"])
        file_mode = stat.S_IMODE(os.stat(path).st_mode)
        if file_mode & 0o002:
            warnings.append("audit file %s is world-writable (mode %04o)" % (path, file_mode))
    elif not os.path.isdir(directory) or not os.access(directory, os.W_OK):
        return Check("audit", CRIT, "audit directory %s is missing or not writable" % directory,
                     why, next=["create it for the service user (the packages ship "
                                "/var/log/tunnel-client/audit, mode 0750)"])
    summary = "audit file %s writable, key readable" % path
    if os.path.exists(path):
        from tunnel_client.policy.verify import verify_tail
        verdict = verify_tail(path, key, TAIL_BYTES)
        if not verdict.ok and "no audit records" not in verdict.message:
            return Check("audit", CRIT, "audit trail does not verify: " + verdict.summary(),
                         why, next=["keep the file as evidence; `tunnel-client audit verify` "
                                    "with the rotated files and the chain head"])
        if verdict.ok:
            summary += "; trail verifies (%d records)" % verdict.records
    if warnings:
        return Check("audit", WARN, "; ".join(warnings), why)
    return Check("audit", OK, summary)
