"""The chaos soak runs only from ``make soak`` (which sets TUNNEL_CLIENT_SOAK_MINUTES):
plain ``make test`` collects and skips it."""

import os

import pytest

SOAK_VARIABLE = "TUNNEL_CLIENT_SOAK_MINUTES"


def pytest_configure(config):
    config.addinivalue_line("markers", "soak: the chaos soak; runs only from make soak")


def pytest_collection_modifyitems(config, items):
    if os.environ.get(SOAK_VARIABLE):
        return
    skip = pytest.mark.skip(reason="the chaos soak runs from `make soak` (%s unset)"
                            % SOAK_VARIABLE)
    for item in items:
        if item.get_closest_marker("soak") is not None:
            item.add_marker(skip)
