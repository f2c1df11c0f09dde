import os

from tunnel_client.config import docs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_configuration_reference_is_generated_from_the_registry():
    with open(os.path.join(ROOT, "docs", "configuration.md")) as handle:
        committed = handle.read()
    assert committed == docs.render(), "docs/configuration.md is stale: run `make docs`"


def test_every_setting_has_a_flag_an_env_var_and_a_doc_line():
    from tunnel_client.config.settings import SETTINGS
    for s in SETTINGS:
        assert s.flag and s.flag.startswith("--"), s.key
        assert s.env, s.key
        assert s.doc.endswith("."), s.key
    assert len({s.env for s in SETTINGS}) == len(SETTINGS)
    assert len({s.flag for s in SETTINGS}) == len(SETTINGS)
