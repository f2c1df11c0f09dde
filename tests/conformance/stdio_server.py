"""The MCP Python SDK's conformance "everything" server, served over stdio.

Usage: python stdio_server.py PYTHON_SDK_DIR -- where PYTHON_SDK_DIR is a local copy of
the modelcontextprotocol/python-sdk repository. The server itself ships only an HTTP entry
point; its ``mcp`` object serves stdio as well, which is what the stdio binding needs.
"""

import os
import sys


def main():
    root = sys.argv[1]
    sys.path[:0] = [os.path.join(root, "src"), os.path.join(root, "src", "mcp-types"),
                    os.path.join(root, "examples", "servers", "everything-server")]
    from mcp_everything_server.server import mcp

    mcp.run(transport="stdio")


if __name__ == "__main__":
    main()
