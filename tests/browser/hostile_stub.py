"""The stdio MCP stub, after writing markup to stderr.

The daemon logs a stdio server's stderr lines as messages, so this plants untrusted
markup in the admin UI's log view; the page must show it as text.
"""

import sys

from tunnel_client.devtools import stub

MARKUP = '<img src=x onerror="window.__pwned=1"><b>stderr-markup</b>'

if __name__ == "__main__":
    sys.stderr.write(MARKUP + "\n")
    sys.stderr.flush()
    sys.exit(stub.run(stub.build_parser().parse_args()))
