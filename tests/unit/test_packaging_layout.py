import os

from setuptools import find_packages

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_every_source_directory_is_a_package_setup_cfg_will_ship():
    """`packages = find:` skips a directory without __init__.py: pip install and the .deb
    would silently leave it out while an editable install still works."""
    found = set(find_packages(ROOT, include=["tunnel_client", "tunnel_client.*"]))
    for directory, _, files in os.walk(os.path.join(ROOT, "tunnel_client")):
        if "__pycache__" in directory or not any(f.endswith(".py") for f in files):
            continue
        package = os.path.relpath(directory, ROOT).replace(os.sep, ".")
        assert package in found, "%s has no __init__.py: it would not be installed" % package
