"""Render the configuration reference (docs/configuration.md) from the settings registry.

Run ``make docs``; a test fails when the committed file is out of date.
"""

import sys

from tunnel_client.config.settings import SETTINGS
from tunnel_client.config.values import format_duration

HEADER = """# Configuration reference

Generated from the settings registry (`tunnel_client/config/settings.py`) by `make docs`;
do not edit by hand.

Every setting can come from a flag, an environment variable or the YAML file given with
`--config` / `--profile`. Precedence: **flags > environment > YAML > defaults**. An
environment variable that is set but empty counts as unset (one rule for every setting,
so `MCP_COMMAND=` in an environment file never hides the YAML command); `tunnel-client
doctor` names the source each value came from. List settings repeat the flag; in the
environment they are split as noted.

Values marked *ref* accept `env:VAR` (the variable's value) and `file:PATH` (the file's
contents) instead of a literal. Secrets (the API key, header values) are never echoed in
errors, logs or support bundles. Settings marked **ours** do not exist in the Go client.

"""

SPLIT = {r"\n": "newline-separated", r",": "comma-separated", r"[,;]": "`,` or `;` separated"}


def default_text(s) -> str:
    if s.default_doc:
        return s.default_doc
    if s.default is None or s.default == "":
        return ""
    if isinstance(s.default, bool):
        return "true" if s.default else "false"
    if isinstance(s.default, float) and "DURATION" in (s.metavar or ""):
        return format_duration(s.default)
    return str(s.default)


def render() -> str:
    out = [HEADER]
    sections = {}
    for s in SETTINGS:
        title = s.section or ("selection" if not s.yaml else "top level")
        sections.setdefault(title, []).append(s)
    for title, items in sections.items():
        out.append("## %s\n" % ("`%s`" % title if title not in ("selection", "top level")
                                else title.capitalize()))
        out.append("| YAML key | Flag | Environment | Default | Description |")
        out.append("|---|---|---|---|---|")
        for s in items:
            env = "`%s`" % s.env if s.env else ""
            if s.env_fallbacks:
                env += " (falls back to %s)" % ", ".join("`%s`" % e for e in s.env_fallbacks)
            if s.multiple and s.env_split:
                env += " %s" % SPLIT.get(s.env_split, "list")
            flag = "`%s`" % s.flag if s.flag else ""
            if s.multiple:
                flag += " (repeat)"
            key = "`%s`" % s.key if s.yaml else "(flag/env only)"
            doc = s.doc + (" *Expects %s.*" % s.expect if s.expect else "")
            if s.ours:
                doc += " **ours**"
            if s.secret:
                doc += " *secret*"
            default = default_text(s)
            out.append("| %s | %s | %s | %s | %s |" % (
                key, flag, env, "`%s`" % default if default else "", doc.replace("|", "\\|")))
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render())
