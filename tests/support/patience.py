"""How long a test waits for something that should happen at once.

Generous by default, so a slow or loaded machine never fails a test by being slow. The
mutation run (mutation/run.py) shortens it with TUNNEL_CLIENT_TEST_PATIENCE: there a mutant
that loses a reply or an exit makes such a wait run to its end, once per test that waits.
"""

import os

PATIENCE = float(os.environ.get("TUNNEL_CLIENT_TEST_PATIENCE") or 10.0)
