"""The stdio stub, recording what it executes: one JSON line per ``tools/call`` with the
caller's unique ``input``, so the soak can count executions from the server's side.

    python -m tests.soak.recording_stub --record PATH [stub flags...]
"""

import json
import os
import sys
import threading

from tunnel_client.devtools import stub

_lock = threading.Lock()
_path = None


class RecordingStub(stub.StubServer):
    def record(self, msg: dict):
        if msg.get("method") != "tools/call":
            return
        params = msg.get("params") if isinstance(msg.get("params"), dict) else {}
        arguments = params.get("arguments") if isinstance(params.get("arguments"), dict) else {}
        line = json.dumps({"pid": os.getpid(), "tool": params.get("name"),
                           "input": arguments.get("input")})
        with _lock, open(_path, "a") as handle:
            handle.write(line + "\n")


def main(argv):
    global _path
    if "--record" not in argv:
        raise SystemExit("usage: recording_stub --record PATH [stub flags]")
    at = argv.index("--record")
    _path = argv[at + 1]
    rest = argv[:at] + argv[at + 2:]
    stub.StubServer = RecordingStub  # serve_stdio builds its server from this name
    return stub.run(stub.build_parser().parse_args(rest))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
