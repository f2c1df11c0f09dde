"""Writing files other processes read: never half-written, never readable by others."""

import os
import tempfile


def write_private(path: str, text: str, prefix: str = ".tmp-", suffix: str = "") -> None:
    """Replace ``path`` with ``text`` atomically, mode 0600: a reader sees the old file or
    the new one, never a partial write. Raises OSError; no temporary file is left behind."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
