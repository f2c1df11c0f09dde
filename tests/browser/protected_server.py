"""An OAuth-protected MCP server for the admin UI's OAuth panel.

Every MCP request gets a 401 naming the resource metadata. The authorization-server
metadata lists one endpoint of each kind the panel tells apart: on the server's own
loopback host (registered as a Harpoon target), public (reached directly), and private on
another host (rejected). One endpoint carries markup the page must show as text.
"""

import json

PRMD_PATH = "/.well-known/oauth-protected-resource/mcp"
AS_PATH = "/.well-known/oauth-authorization-server"
JWKS_MARKUP = "<b>jwks-markup</b>"
PUBLIC_TOKEN_ENDPOINT = "https://idp.example.com/oauth/token"
OFF_ORIGIN_HOST = "10.1.2.3"


def protected_mcp(scripted):
    """A started Scripted server (from the ``scripted`` fixture) serving the documents."""
    documents = {}

    def handler(request):
        if request["path"] in documents:
            return 200, {"Content-Type": "application/json"}, json.dumps(
                documents[request["path"]]).encode()
        if request["path"].startswith("/.well-known/"):
            return 404, {}, b""
        return 401, {"WWW-Authenticate": 'Bearer resource_metadata="%s%s"' % (
            base, PRMD_PATH)}, b""

    server = scripted(handler)
    base = server.url.rsplit("/", 1)[0]
    documents[PRMD_PATH] = {"resource": server.url, "authorization_servers": [base],
                            "scopes_supported": ["tools.read", "tools.call"]}
    documents[AS_PATH] = {"issuer": base, "authorization_endpoint": base + "/authorize",
                          "registration_endpoint": base + "/register",
                          "token_endpoint": PUBLIC_TOKEN_ENDPOINT,
                          "revocation_endpoint": "http://%s/revoke" % OFF_ORIGIN_HOST,
                          "jwks_uri": "https://idp.example.com/jwks?" + JWKS_MARKUP}
    return server
