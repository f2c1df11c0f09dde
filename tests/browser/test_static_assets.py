"""Checks on the admin UI's files that need no browser (they run everywhere)."""

import os
import re

import pytest

from tunnel_client.admin.server import STATIC_DIR

ASSETS = ("index.html", "app.js", "style.css", "icon.svg")


def read(name):
    with open(os.path.join(STATIC_DIR, name), encoding="utf-8") as handle:
        return handle.read()


@pytest.mark.parametrize("name", ASSETS)
def test_assets_load_nothing_from_another_origin(name):
    text = read(name)
    if name == "icon.svg":  # the SVG namespace is an identifier, not a fetch
        text = text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    if name == "app.js":
        text = text.replace('"http://www.w3.org/2000/svg"', "")
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|@import|url\(", text, re.I), name


def test_script_never_turns_data_into_markup():
    script = read("app.js")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function", "srcdoc"):
        assert sink not in script, sink


def test_page_references_only_shipped_assets_under_a_strict_policy():
    page = read("index.html")
    assert "Content-Security-Policy" in page and "script-src 'self'" in page
    assert "<script>" not in page and not re.search(r"\son[a-z]+=", page)  # nothing inline
    referenced = set(re.findall(r'(?:src|href)="/assets/([^"]+)"', page))
    assert referenced == {"app.js", "style.css", "icon.svg"}
    for name in referenced:
        assert os.path.isfile(os.path.join(STATIC_DIR, name)), name
