"""Quickest tests first: the conftest.py of each mutation scratch copy (mutation/run.py
copies it there).

mutmut hands pytest a mutant's tests in no particular order and stops at the first failure,
so a mutant that one quick test kills could still pay for every slow test drawn before it.
Sorting by the durations mutmut measured in its clean run makes the common case cheap.
"""

import json

_durations = {}


def durations():
    """nodeid -> seconds, from the stats mutmut writes before it runs any mutant (absent
    during that first run itself, so an empty answer is not kept)."""
    global _durations
    if not _durations:
        try:
            with open("mutmut-stats.json", encoding="utf-8") as handle:
                _durations = json.load(handle).get("duration_by_test", {})
        except (OSError, ValueError):
            return {}
    return _durations


def pytest_collection_modifyitems(items):
    known = durations()
    if known:
        items.sort(key=lambda item: known.get(item.nodeid, 0.0))
