"""Shaping results so the caller is only told about what it may use.

List results lose the entries the policy denies (``nextCursor`` is kept, so pagination still
works: a page may simply be shorter). ``initialize`` and ``server/discover`` results lose a
capability whose methods are closed. ``tools/list`` results also teach the gate which tools
the server annotates ``readOnlyHint: true``.
"""

from typing import Any, Dict, Mapping, Optional

# list method -> (item kind, result key, the entry key naming the item)
LIST_METHODS = {
    "tools/list": ("tools", "tools", "name"),
    "prompts/list": ("prompts", "prompts", "name"),
    "resources/list": ("resources", "resources", "uri"),
    "resources/templates/list": ("resources", "resourceTemplates", "uriTemplate"),
}
CAPABILITY_METHODS = {"tools": "tools/list", "prompts": "prompts/list",
                      "resources": "resources/list"}
HANDSHAKE_METHODS = ("initialize", "server/discover")


def read_only_hints(result: Mapping[str, Any]) -> Dict[str, bool]:
    """{tool name: annotated readOnlyHint is true} from a tools/list result."""
    hints = {}
    for tool in result.get("tools") or ():
        if isinstance(tool, dict) and isinstance(tool.get("name"), str):
            annotations = tool.get("annotations")
            hints[tool["name"]] = isinstance(annotations, dict) and \
                annotations.get("readOnlyHint") is True
    return hints


def filter_list(method: str, result: Dict[str, Any], policy, hints) -> Optional[dict]:
    """A copy of ``result`` without the denied entries, or None when nothing changes."""
    kind, key, name_key = LIST_METHODS[method]
    entries = result.get(key)
    if not isinstance(entries, list):
        return None
    kept = [e for e in entries if not isinstance(e, dict) or
            policy.visible(kind, str(e.get(name_key, "")), hints)]
    if len(kept) == len(entries):
        return None
    return dict(result, **{key: kept})


def truthful_capabilities(result: Dict[str, Any], policy) -> Optional[dict]:
    """A copy of an initialize/server/discover result without closed capabilities."""
    caps = result.get("capabilities")
    if not isinstance(caps, dict):
        return None
    changed = dict(caps)
    for capability, method in CAPABILITY_METHODS.items():
        if capability in changed and not policy.method_allowed(method):
            del changed[capability]
    resources = changed.get("resources")
    if isinstance(resources, dict) and resources.get("subscribe") and \
            not policy.method_allowed("resources/subscribe"):
        changed["resources"] = dict(resources, subscribe=False)
    if changed == caps:
        return None
    return dict(result, capabilities=changed)
