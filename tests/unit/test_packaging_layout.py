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


def test_every_data_file_is_declared_package_data():
    """A data directory is a namespace package with its own package_data entry: declared
    that way the wheel carries it and the build has nothing to warn about."""
    import configparser
    import fnmatch

    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    declared = {package: [p.strip() for p in patterns.split(",")]
                for package, patterns in cfg["options.package_data"].items()}
    for directory, _, files in os.walk(os.path.join(ROOT, "tunnel_client")):
        data = [f for f in files if not f.endswith((".py", ".pyc"))]
        if "__pycache__" in directory or not data:
            continue
        package = os.path.relpath(directory, ROOT).replace(os.sep, ".")
        patterns = declared.get(package, [])
        for name in data:
            assert any(fnmatch.fnmatch(name, p) for p in patterns), \
                "%s/%s is not in setup.cfg [options.package_data]" % (package, name)
