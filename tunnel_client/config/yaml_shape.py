"""Checks on a YAML node graph before it becomes data.

YAML aliases let a few hundred bytes describe gigabytes ("billion laughs"): PyYAML builds
the aliased objects once, but anything that walks the result (schema validation, error
messages, exports) expands them. Duplicate mapping keys are legal YAML that silently keeps
the last value. Both are refused here, with the lines involved.
"""

from typing import Optional

MAX_NODES = 100000  # a real configuration has a few hundred


class _TooLarge(Exception):
    pass


def problem(root) -> Optional[str]:
    """One line describing what is wrong with the composed document, or None."""
    if root is None:
        return None
    try:
        _size(root, {}, set())
    except _TooLarge:
        return ("YAML aliases expand to more than %d values; remove the anchors and aliases "
                "(&name / *name)" % MAX_NODES)
    except RecursionError:
        return "the YAML document nests too deeply"
    return _duplicates(root, set())


def _size(node, sizes, visiting) -> int:
    """Nodes in the expanded document, each shared (aliased) node counted every time."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in visiting:
        raise _TooLarge()  # a recursive alias expands forever
    visiting.add(key)
    total = 1
    value = node.value
    if isinstance(value, list):
        for item in value:
            if isinstance(item, tuple):  # a mapping's (key, value) pair
                total += _size(item[0], sizes, visiting) + _size(item[1], sizes, visiting)
            else:
                total += _size(item, sizes, visiting)
            if total > MAX_NODES:
                raise _TooLarge()
    visiting.discard(key)
    sizes[key] = total
    return total


def _duplicates(node, seen) -> Optional[str]:
    if id(node) in seen:
        return None
    seen.add(id(node))
    value = node.value
    if not isinstance(value, list):
        return None
    if node.id == "mapping":
        first = {}
        for key_node, _ in value:
            if key_node.id != "scalar":
                continue
            if key_node.value in first:
                return ("key %r appears twice, on lines %d and %d; keep one"
                        % (key_node.value, first[key_node.value] + 1,
                           key_node.start_mark.line + 1))
            first[key_node.value] = key_node.start_mark.line
    for item in value:
        for child in (item if isinstance(item, tuple) else (item,)):
            found = _duplicates(child, seen)
            if found:
                return found
    return None
