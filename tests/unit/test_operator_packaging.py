"""The operator glue the packages ship, checked statically: reload, the template unit,
logrotate, NRPE and sudo, cron mail, the rpm build on EL, and a man page that covers every
subcommand."""

import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The installed-package test run (tests/packaging) copies the tests, not the packaging sources.
pytestmark = pytest.mark.skipif(not os.path.isdir(os.path.join(ROOT, "packaging")),
                                reason="the packaging sources are not beside the tests")


def read(*parts):
    with open(os.path.join(ROOT, *parts)) as handle:
        return handle.read()


def unit_value(text, key):
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(key + "=")]


def template_unit():
    return subprocess.run(["sh", os.path.join(ROOT, "packaging/scripts/template-unit.sh"),
                           os.path.join(ROOT, "packaging/systemd/tunnel-client.service")],
                          capture_output=True, text=True, check=True).stdout


def test_the_unit_reloads_with_sighup_and_may_write_its_log_directory():
    unit = read("packaging/systemd/tunnel-client.service")
    assert unit_value(unit, "ExecReload") == ["/bin/kill -HUP $MAINPID"]
    assert unit_value(unit, "LogsDirectory") == ["tunnel-client"]


def test_the_template_unit_keeps_the_hardening_and_uses_per_instance_files():
    unit = read("packaging/systemd/tunnel-client.service")
    template = template_unit()
    assert unit_value(template, "ExecStart") == [
        "/usr/bin/tunnel-client run --config /etc/tunnel-client/%i.yaml"]
    assert unit_value(template, "EnvironmentFile") == ["-/etc/tunnel-client/%i.env"]
    assert unit_value(template, "ConditionPathExists") == ["/etc/tunnel-client/%i.env"]
    for key in ("RuntimeDirectory", "StateDirectory", "LogsDirectory"):
        assert unit_value(template, key) == ["tunnel-client/%i"]
    assert unit_value(template, "ExecReload") == ["/bin/kill -HUP $MAINPID"]
    for key in ("SystemCallFilter", "ProtectSystem", "CapabilityBoundingSet", "User"):
        assert unit_value(template, key) == unit_value(unit, key)
    assert "config.yaml" not in template and "tunnel-client.env" not in template


def test_both_packages_install_the_template_logrotate_nrpe_and_sudoers():
    spec = read("packaging/rpm/tunnel-client.spec")
    for path in ("%{unitdir}/tunnel-client@.service", "/etc/logrotate.d/tunnel-client",
                 "/usr/share/tunnel-client/tunnel-client.nrpe.cfg",
                 "/usr/share/tunnel-client/tunnel-client.sudoers"):
        assert "%{buildroot}" + path in spec
    assert "%config(noreplace) /etc/logrotate.d/tunnel-client" in spec
    build_deb = read("packaging/scripts/build-deb.sh")
    assert "debian/tunnel-client@.service" in build_deb
    assert "debian/tunnel-client.logrotate" in build_deb
    install = read("packaging/debian/tunnel-client.install")
    assert "tunnel-client.nrpe.cfg" in install and "tunnel-client.sudoers" in install


def test_logrotate_reopens_the_file_of_every_instance(tmp_path):
    text = read("packaging/common/tunnel-client.logrotate")
    assert "create 0600 tunnel-client tunnel-client" in text
    assert "--signal=HUP 'tunnel-client.service' 'tunnel-client@*.service'" in text
    if shutil.which("logrotate"):
        # The service account exists only where the package is installed.
        config = tmp_path / "tunnel-client"
        config.write_text(text.replace("tunnel-client tunnel-client", "root root"))
        proc = subprocess.run(["logrotate", "-d", "-s", str(tmp_path / "state"),
                               str(config)], capture_output=True, text=True)
        assert "error" not in proc.stderr.lower(), proc.stderr


def test_nrpe_runs_doctor_as_the_service_user_through_a_narrow_sudo_rule():
    nrpe = read("packaging/common/tunnel-client.nrpe.cfg")
    command = [l for l in nrpe.splitlines() if l.startswith("command[check_tunnel_client]=")]
    assert len(command) == 1
    assert "sudo -n -u tunnel-client /usr/bin/tunnel-client doctor --require-daemon" in \
        command[0]
    assert "--env-file /etc/tunnel-client/tunnel-client.env" in command[0]
    sudoers = read("packaging/common/tunnel-client.sudoers")
    rules = [l for l in sudoers.splitlines() if l and not l.startswith(("#", "Defaults"))]
    assert rules and all(r.endswith("NOPASSWD: /usr/bin/tunnel-client doctor *")
                         and "(tunnel-client)" in r for r in rules)
    if shutil.which("visudo"):
        proc = subprocess.run(["visudo", "-cf", os.path.join(
            ROOT, "packaging/common/tunnel-client.sudoers")], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cron_says_where_mail_goes_and_how_to_watch_instances():
    cron = read("packaging/common/tunnel-client.cron")
    assert "#MAILTO=ops@example.com" in cron and 'MAILTO=""' in cron
    assert "--config /etc/tunnel-client/NAME.yaml --env-file /etc/tunnel-client/NAME.env" in cron


def test_rpm_builds_with_rpmbuild_alone_and_has_an_srpm_target():
    mk = read("mk/packaging.mk")
    assert re.search(r"^rpm srpm:", mk, re.M)
    assert "command -v dpkg-query" in mk and "dnf install rpm-build" in mk
    script = read("packaging/scripts/build-rpm.sh")
    assert "RPM_MODE" in script and "-bs" in script
    # The spec the SRPM carries has its version fixed: rebuildable without our defines.
    assert 'sed "s/%{tc_version}/$version/"' in script


def subcommands():
    from tunnel_client.cli import build_parser
    parser = build_parser()
    action = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"][0]
    return sorted(action.choices)


def test_the_man_page_covers_every_subcommand():
    page = read("packaging/man/tunnel-client.8")
    for name in subcommands():
        assert re.search(r"^\.B tunnel-client %s\b" % re.escape(name), page, re.M), name
        assert re.search(r"^\.B %s\b" % re.escape(name), page, re.M), name
    assert ".SH SIGNALS" in page and "SIGHUP" in page
    if shutil.which("groff"):
        proc = subprocess.run(["groff", "-man", "-Tutf8", "-ww", os.path.join(
            ROOT, "packaging/man/tunnel-client.8")], capture_output=True, text=True)
        assert proc.stderr == "", proc.stderr


@pytest.mark.parametrize("doc", ["docs/operations.md"])
def test_operations_doc_names_the_packaged_admin_url_file(doc):
    text = read(doc)
    assert "/run/tunnel-client/health-url" not in text
    assert "/run/tunnel-client/admin.url" in text
