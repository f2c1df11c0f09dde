"""The chaos soak and the stop stress run only from ``make soak`` / ``make stop-stress``
(which set TUNNEL_CLIENT_SOAK_MINUTES / TUNNEL_CLIENT_STOP_STRESS): plain ``make test``
collects and skips them."""

import os

import pytest

SOAK_VARIABLE = "TUNNEL_CLIENT_SOAK_MINUTES"
STOP_STRESS_VARIABLE = "TUNNEL_CLIENT_STOP_STRESS"  # how many stops

_GATES = {"soak": (SOAK_VARIABLE, "the chaos soak runs from `make soak`"),
          "stop_stress": (STOP_STRESS_VARIABLE,
                          "the stop stress runs from `make stop-stress` or `make soak`")}


def pytest_configure(config):
    config.addinivalue_line("markers", "soak: the chaos soak; runs only from make soak")
    config.addinivalue_line("markers", "stop_stress: hundreds of daemon stops; runs only from "
                                       "make stop-stress and make soak")


def pytest_collection_modifyitems(config, items):
    for marker, (variable, reason) in _GATES.items():
        if os.environ.get(variable):
            continue
        skip = pytest.mark.skip(reason="%s (%s unset)" % (reason, variable))
        for item in items:
            if item.get_closest_marker(marker) is not None:
                item.add_marker(skip)
