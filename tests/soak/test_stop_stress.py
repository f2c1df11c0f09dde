"""Stop stress: start and stop the daemon hundreds of times, in every configuration the
samples produce and in random phases of its life, and report the worst stop times.

``make stop-stress`` runs it (STOP_STRESS_STOPS, default 300; STOP_STRESS_SEED), and
``make soak`` runs a shorter one; plain ``make test`` collects and skips it. See
stopstress.py for the configurations, the phases and the bounds.
"""

import os

import pytest

from tests.soak import stopstress
from tests.soak.conftest import STOP_STRESS_VARIABLE


@pytest.mark.slow
@pytest.mark.stop_stress
def test_every_stop_ends_promptly_and_every_call_in_flight_is_answered(tmp_path):
    stops = int(os.environ[STOP_STRESS_VARIABLE])
    seed = int(os.environ.get("TUNNEL_CLIENT_STOP_STRESS_SEED", "1"))

    def progress(index, stop):
        if stop.problem or stop.seconds > stop.bound:
            print("stop %d (%s/%s): %.2fs %s" % (index, stop.config, stop.phase,
                                                 stop.seconds, stop.problem))

    results = stopstress.run(stops, seed, str(tmp_path), progress)
    print("\nstop stress, %d stops, seed %d\n%s" % (stops, seed, stopstress.report(results)))
    problems = stopstress.failures(results)
    for stop in results:
        if stop.log_path and (stop.problem or stop.seconds > stop.bound):
            with open(stop.log_path, errors="replace") as handle:
                print("---- daemon log of %s/%s ----\n%s" % (stop.config, stop.phase,
                                                           handle.read()[-20000:]))
    assert not problems, "\n".join(problems)
