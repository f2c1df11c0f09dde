"""profiles: list, add, show, edit and the built-in samples, from a clean HOME."""

import json
import os
import subprocess
import sys

from tests.support.daemon import ROOT

TID = "tunnel_" + "3" * 32


def cli(home, *args, env=None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CONTROL_PLANE_",
                                                                         "TUNNEL_CLIENT_"))}
    environ.update({"HOME": str(home), "PYTHONPATH": ROOT, "XDG_CONFIG_HOME": ""})
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "tunnel_client", "profiles"] + list(args),
                          capture_output=True, text=True, env=environ, timeout=30)


def test_samples_are_listed_and_shown_with_their_notes(tmp_path):
    listed = cli(tmp_path, "samples", "list")
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == [
        "sample_mcp_enterprise_proxy", "sample_mcp_remote_no_auth", "sample_mcp_stdio_local",
        "sample_mcp_with_dcr"]
    shown = cli(tmp_path, "samples", "show", "sample_mcp_enterprise_proxy")
    for heading in ("Sample:", "Summary:", "Use when:", "Required:", "Optional:", "Notes:"):
        assert heading in shown.stdout
    assert 'ca_bundle: "env:ENTERPRISE_CA_BUNDLE"' in shown.stdout
    unknown = cli(tmp_path, "samples", "show", "nope")
    assert unknown.returncode == 1
    assert 'unknown sample "nope"; run `tunnel-client profiles samples list`' in unknown.stderr


def test_add_list_show_and_no_silent_overwrite(tmp_path):
    assert cli(tmp_path, "list").stdout.startswith("No profiles found in ")
    added = cli(tmp_path, "add", "prod", "--sample", "sample_mcp_remote_no_auth",
                "--tunnel-id", TID, "--mcp-server-url", "http://10.0.0.5:8000/mcp")
    assert added.returncode == 0, added.stderr
    listed = json.loads(cli(tmp_path, "list", "--json").stdout)
    assert [p["name"] for p in listed] == ["prod"]
    assert oct(os.stat(listed[0]["path"]).st_mode & 0o777) == "0o600"
    again = cli(tmp_path, "add", "prod", "--sample", "sample_mcp_stdio_local")
    assert again.returncode == 1 and "already exists; pass --force" in again.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("control_plane:\n  tunnel: x\n")
    refused = cli(tmp_path, "add", "other", "--from-file", str(broken))
    assert refused.returncode == 1 and "unknown key control_plane.tunnel" in refused.stderr
    literal = tmp_path / "literal.yaml"
    literal.write_text("control_plane:\n  tunnel_id: %s\n  api_key: sk-literal-secret-1\n" % TID)
    assert cli(tmp_path, "add", "legacy", "--from-file", str(literal)).returncode == 0
    shown = cli(tmp_path, "show", "legacy").stdout
    assert "sk-literal-secret-1" not in shown and '"[REDACTED]"' in shown


def test_edit_saves_only_a_valid_profile(tmp_path):
    cli(tmp_path, "add", "dev", "--sample", "sample_mcp_stdio_local", "--tunnel-id", TID,
        "--mcp-command", "python3 -m server")
    path = tmp_path / ".config" / "tunnel-client" / "dev.yaml"
    editor = tmp_path / "editor.py"
    editor.write_text("import sys\np = sys.argv[1]\ntext = open(p).read()\n"
                      "open(p, 'w').write(text.replace(%r, %r))\n")
    good = tmp_path / "good-editor"
    good.write_text("#!%s\n" % sys.executable + editor.read_text() % ("level: info", "level: warn"))
    good.chmod(0o755)
    saved = cli(tmp_path, "edit", "dev", env={"EDITOR": str(good)})
    assert saved.returncode == 0, saved.stderr
    assert "level: warn" in path.read_text()
    bad = tmp_path / "bad-editor"
    bad.write_text("#!%s\n" % sys.executable + editor.read_text() % ("level: warn", "levl: warn"))
    bad.chmod(0o755)
    refused = cli(tmp_path, "edit", "dev", env={"EDITOR": str(bad)})
    assert refused.returncode == 1
    assert "profile did not validate; not saving" in refused.stderr
    assert "level: warn" in path.read_text(), "the profile on disk is untouched"
    no_editor = cli(tmp_path, "edit", "dev", env={"EDITOR": "", "VISUAL": ""})
    assert no_editor.returncode == 1 and "set VISUAL or EDITOR" in no_editor.stderr
