"""Mutation testing of the core rooms, one module group at a time (``make mutation``).

Each group is mutated by mutmut in its own scratch copy under ``.cache/mutation/<group>``
(the checkout is never modified) against the fast in-process tests that cover it; the
score per group and every surviving mutant are printed, and the surviving mutants' diffs
are saved next to the copy. Mutants judged equivalent (no behaviour can tell them apart)
are listed in ``mutation/equivalent.txt`` with the reason and left out of the score.

    python -m mutation.run                 # every group
    python -m mutation.run wire health     # some groups
    python -m mutation.run --list          # the groups, their sources and tests
    python -m mutation.run --report stdio  # score the last run again (equivalents edited)
"""

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from typing import Dict, List, NamedTuple, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, ".cache", "mutation")
EQUIVALENT = os.path.join(ROOT, "mutation", "equivalent.txt")
TARGET = 80.0
PATIENCE = "3"  # seconds a test waits for what should come at once (10 in the suite)


class Group(NamedTuple):
    sources: Tuple[str, ...]  # fnmatch globs relative to the checkout
    tests: Tuple[str, ...]
    # Only mutants of these classes/functions count, when a module holds more than the
    # room (logs.py: the redaction, not the formatters).
    only: Tuple[str, ...] = ()
    # Functions that run once at import, before mutmut switches a mutant on: their mutants
    # can never be selected by a test in process (a broken one breaks every test at import).
    import_time: Tuple[str, ...] = ()
    # Test processes at once. Tests that mostly wait (on a child's reply or exit, on a
    # Retry-After, on a loopback server) run more of them than there are cores.
    children: int = 0  # 0: --children
    # Runs in a lane of its own, alongside the other groups one after another: its tests
    # spend much of their time waiting on children, which leaves CPU for the others.
    own_lane: bool = False


# The core rooms and the fast tests that cover them. A glob, not a file, for the stdio
# rooms so a module split into a package is picked up as it is.
GROUPS: Dict[str, Group] = {
    "wire": Group(("tunnel_client/wire.py",),
                  ("tests/unit/test_wire.py", "tests/unit/test_wire_exact.py")),
    "controlplane": Group(("tunnel_client/controlplane.py",),
                          ("tests/unit/test_controlplane.py",), children=4),
    "stdio": Group(("tunnel_client/mcp/stdio*",),
                   ("tests/unit/stdio", "tests/fuzz/test_stdio_lines.py"), children=4,
                   own_lane=True),
    "http": Group(("tunnel_client/mcp/http.py",),
                  ("tests/unit/test_http_binding.py", "tests/unit/test_http_resume.py"),
                  children=3),
    "harpoon": Group(("tunnel_client/mcp/harpoon.py", "tunnel_client/mcp/targets.py"),
                     ("tests/unit/test_harpoon.py",)),
    "config": Group(("tunnel_client/config/loader.py",),
                    ("tests/unit/test_config.py",),
                    import_time=("_build_section_classes", "_class_name")),
    "redaction": Group(("tunnel_client/observe/logs.py",),
                       ("tests/unit/test_observe.py",),
                       only=("Redactor", "RedactionFilter", "RawHttp", "_preview")),
    "health": Group(("tunnel_client/observe/health.py",),
                    ("tests/unit/test_observe.py", "tests/unit/test_health_signals.py")),
}

MUTMUT_CONFIG = """[mutmut]
source_paths = tunnel_client/
only_mutate =
{only}
pytest_add_cli_args_test_selection =
{tests}
pytest_add_cli_args = -p no:cacheprovider -q -x
also_copy =
    conftest.py
use_git_change_detection = false
timeout_multiplier = 5

"""


def equivalents() -> Dict[str, str]:
    """mutant name -> why it is equivalent."""
    found = {}
    if os.path.exists(EQUIVALENT):
        with open(EQUIVALENT, encoding="utf-8") as handle:
            for line in handle:
                line = line.strip()
                if line and not line.startswith("#"):
                    name, _, why = line.partition(" ")
                    found[name] = why.strip()
    return found


def prepare(name: str, group: Group) -> str:
    """A fresh scratch copy with a mutmut configuration for this group."""
    where = os.path.join(WORK, name)
    shutil.rmtree(where, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    for part in ("tunnel_client", "tests"):
        shutil.copytree(os.path.join(ROOT, part), os.path.join(where, part), ignore=ignore)
    with open(os.path.join(ROOT, "setup.cfg"), encoding="utf-8") as handle:
        ours = handle.read()
    pytest_section = ours[ours.index("[tool:pytest]"):]
    with open(os.path.join(where, "setup.cfg"), "w", encoding="utf-8") as handle:
        handle.write(MUTMUT_CONFIG.format(
            only="\n".join("    " + glob for glob in group.sources),
            tests="\n".join("    " + test for test in group.tests
                            if os.path.exists(os.path.join(ROOT, test)))))
        handle.write(pytest_section)
    # The copy's root conftest runs each mutant's tests quickest first.
    shutil.copy(os.path.join(ROOT, "mutation", "ordering.py"), os.path.join(where, "conftest.py"))
    return where


def results(where: str, group: Group) -> Dict[str, Tuple[int, str]]:
    """mutant name -> (mutmut exit code, source path), for this group's sources."""
    codes = {}
    base = os.path.join(where, "mutants")
    for folder, _dirs, files in os.walk(os.path.join(base, "tunnel_client")):
        for file in files:
            if not file.endswith(".py.meta"):
                continue
            source = os.path.relpath(os.path.join(folder, file[:-len(".meta")]), base)
            if not any(fnmatch.fnmatch(source, glob) for glob in group.sources):
                continue
            with open(os.path.join(folder, file), encoding="utf-8") as handle:
                for mutant, code in json.load(handle).get("exit_code_by_key", {}).items():
                    codes[mutant] = (code, source)
    if group.only:
        codes = {m: c for m, c in codes.items() if function_of(m).split(".")[0] in group.only}
    if group.import_time:
        codes = {m: c for m, c in codes.items() if function_of(m) not in group.import_time}
    return codes


def function_of(mutant: str) -> str:
    """``pkg.mod.xǁClassǁmethod__mutmut_3`` -> ``Class.method``; ``pkg.mod.x_f__mutmut_1``
    -> ``f``."""
    name = mutant.rsplit(".", 1)[-1].rsplit("__mutmut_", 1)[0]
    if name.startswith("x\u01c1"):
        return ".".join(part for part in name[2:].split("\u01c1") if part)
    return name[2:] if name.startswith("x_") else name


def score(codes: Dict[str, Tuple[int, str]], equivalent: Dict[str, str]) -> dict:
    from mutmut.stats import status_by_exit_code

    tally = {"killed": 0, "survived": 0, "no tests": 0, "timeout": 0, "equivalent": 0,
             "other": 0}
    survivors = []
    for mutant, (code, source) in sorted(codes.items()):
        status = status_by_exit_code[code]
        if mutant in equivalent and status != "killed":
            tally["equivalent"] += 1
            continue
        if status in ("survived", "no tests"):
            survivors.append((mutant, status, source))
        tally[status if status in tally else "other"] += 1
    counted = tally["killed"] + tally["timeout"] + tally["survived"] + tally["no tests"]
    tally["score"] = 100.0 * (tally["killed"] + tally["timeout"]) / counted if counted else 0.0
    tally["survivors"] = survivors
    return tally


def stale_equivalents(codes: Dict[str, Tuple[int, str]], equivalent: Dict[str, str],
                      group: Group) -> List[str]:
    """Entries of the equivalent list for this group's modules that no longer hold: the
    mutant is gone (its function changed, so the numbering did) or a test now kills it."""
    from mutmut.stats import status_by_exit_code

    stale = []
    for mutant in sorted(equivalent):
        source = mutant.rsplit(".", 1)[0].replace(".", "/") + ".py"
        if not any(fnmatch.fnmatch(source, glob) for glob in group.sources):
            continue
        if group.only and function_of(mutant).split(".")[0] not in group.only:
            continue
        if mutant not in codes:
            stale.append("%s (no such mutant)" % mutant)
        elif status_by_exit_code[codes[mutant][0]] == "killed":
            stale.append("%s (killed)" % mutant)
    return stale


def run_group(name: str, group: Group, children: int, equivalent: Dict[str, str],
              report_only: bool = False) -> dict:
    if report_only:  # the last run's results, scored with the current equivalents
        where = os.path.join(WORK, name)
        codes = results(where, group)
        tally = score(codes, equivalent)
        tally["stale"] = stale_equivalents(codes, equivalent, group)
        tally["minutes"] = 0.0
        return tally
    if not any(os.path.exists(os.path.join(ROOT, test)) for test in group.tests):
        # Without a selection mutmut would run the whole suite, end-to-end tests included.
        return dict(score(({}), equivalent), minutes=0.0,
                    error="none of its tests exist: %s" % " ".join(group.tests))
    where = prepare(name, group)
    started = time.monotonic()
    log_path = os.path.join(where, "mutmut.log")
    mutmut = os.path.join(os.path.dirname(sys.executable), "mutmut")
    with open(log_path, "w") as log:
        # pytest starts once per mutant: no scan of installed plugins (anyio's, hypothesis's,
        # which these tests do not use) at each start.
        # A mutant that loses a reply makes the tests wait for it to their bound: a short
        # bound there (tests/support/patience.py) is most of the difference in run time.
        env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
                   TUNNEL_CLIENT_TEST_PATIENCE=PATIENCE)
        code = subprocess.call([mutmut, "run", "--max-children", str(children)], cwd=where,
                               stdout=log, stderr=subprocess.STDOUT, env=env)
    codes = results(where, group)
    tally = score(codes, equivalent)
    tally["stale"] = stale_equivalents(codes, equivalent, group)
    tally["minutes"] = (time.monotonic() - started) / 60
    if code != 0 or tally["other"]:
        # A run that stopped early leaves mutants unchecked: its score is not a result.
        tally["error"] = "mutmut failed (exit %d, %d mutants not checked); see %s" % (
            code, tally["other"], log_path)
    # Untested functions are listed, not diffed; one process diffs every survivor.
    survived = "".join("%s\t%s\n" % (mutant, source)
                       for mutant, status, source in tally["survivors"] if status == "survived")
    with open(os.path.join(where, "survivors.diff"), "w") as out:
        subprocess.run([sys.executable, "-c", DIFFS], cwd=where, input=survived, text=True,
                       stdout=out, stderr=subprocess.STDOUT)
    return tally


DIFFS = """import sys
from mutmut.mutation.diff_apply import get_diff_for_mutant
for line in sys.stdin:
    name, path = line.rstrip("\\n").split("\\t")
    print("# " + name)
    print(get_diff_for_mutant(name, path=path) + "\\n")
"""


def summary(name: str, tally: dict) -> str:
    """The report of one group: its score, survivors and where their diffs are."""
    lines = ["\n== %s: %.1f%% killed (%d killed, %d timeout, %d survived, %d no tests, "
             "%d equivalent) in %.1f min" % (
                 name, tally["score"], tally["killed"], tally["timeout"], tally["survived"],
                 tally["no tests"], tally["equivalent"], tally["minutes"])]
    if tally.get("error"):
        lines.append("   " + tally["error"])
    untested: Dict[str, int] = {}
    for mutant, status, _source in tally["survivors"]:
        if status == "survived":
            lines.append("   survived  %s" % mutant)
        else:
            untested[function_of(mutant)] = untested.get(function_of(mutant), 0) + 1
    if untested:
        lines.append("   no tests reach: %s" % ", ".join(
            "%s (%d)" % item for item in sorted(untested.items())))
    if tally.get("stale"):
        lines.append("   out of date in mutation/equivalent.txt: %s" % ", ".join(tally["stale"]))
    if tally["survivors"]:
        lines.append("   diffs: %s" % os.path.relpath(
            os.path.join(WORK, name, "survivors.diff"), ROOT))
    return "\n".join(lines)


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", help="groups to run (default: all)")
    parser.add_argument("--children", type=int, default=2, help="parallel test processes")
    parser.add_argument("--one-by-one", action="store_true",
                        help="run the groups one after another, none in a lane of its own")
    parser.add_argument("--list", action="store_true", help="show the groups and exit")
    parser.add_argument("--report", action="store_true",
                        help="score the last run of each group again, without running it")
    args = parser.parse_args(argv)
    unknown = [g for g in args.groups if g not in GROUPS]
    if unknown:
        parser.error("unknown group %s; choose from %s" % (", ".join(unknown),
                                                           ", ".join(GROUPS)))
    if args.list:
        for name, group in GROUPS.items():
            print("%-13s %s\n%-13s tests: %s" % (name, " ".join(group.sources), "",
                                                 " ".join(group.tests)))
        return 0
    equivalent = equivalents()
    chosen = args.groups or list(GROUPS)
    tallies: Dict[str, dict] = {}
    printing = threading.Lock()

    def run_lane(names: List[str]):
        for name in names:
            tally = run_group(name, GROUPS[name], GROUPS[name].children or args.children,
                              equivalent, args.report)
            tallies[name] = tally
            with printing:
                print(summary(name, tally), flush=True)

    alone = args.one_by_one or args.report or len(chosen) == 1
    lanes = [[name] for name in chosen if GROUPS[name].own_lane and not alone]
    lanes.append([name for name in chosen if [name] not in lanes])
    started = time.monotonic()
    threads = [threading.Thread(target=run_lane, args=(lane,)) for lane in lanes if lane]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = (time.monotonic() - started) / 60
    rows = [(name, tallies[name]) for name in chosen]
    print("\n| module group | mutants | killed | survived | no tests | equivalent | score "
          "| minutes |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, tally in rows:
        mutants = sum(tally[k] for k in ("killed", "timeout", "survived", "no tests",
                                          "equivalent", "other"))
        print("| %s | %d | %d | %d | %d | %d | %.0f%% | %.1f |" % (
            name, mutants, tally["killed"] + tally["timeout"], tally["survived"],
            tally["no tests"], tally["equivalent"], tally["score"], tally["minutes"]))
    print("\ntotal: %.1f min (%s)" % (wall, "one group after another" if len(threads) == 1
                                       else "%s alongside the rest" % ", ".join(
                                           lane[0] for lane in lanes[:-1])))
    weak = [name for name, tally in rows if tally["score"] < TARGET]
    if weak:
        print("\nbelow %d%%: %s" % (TARGET, ", ".join(weak)))
    return 1 if any(tally.get("error") for _name, tally in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
