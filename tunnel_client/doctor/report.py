"""Doctor results and how they are shown: Nagios first line, one line per check,
``--explain`` blocks, ``--json``."""

import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import List

OK, WARN, CRIT, SKIP, UNKNOWN = "OK", "WARN", "CRIT", "SKIP", "UNKNOWN"
EXIT_CODES = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}
_OVERALL = {OK: "OK", WARN: "WARNING", CRIT: "CRITICAL", UNKNOWN: "UNKNOWN"}
_COLOURS = {OK: "32", WARN: "33", CRIT: "31", SKIP: "90", UNKNOWN: "35"}


@dataclass
class Check:
    id: str
    status: str
    summary: str
    why: str = ""
    evidence: List[str] = field(default_factory=list)
    next: List[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        data = {"id": self.id, "status": self.status, "summary": self.summary}
        for key in ("why", "evidence", "next"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        return data


@dataclass
class Report:
    checks: List[Check] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def add(self, check: Check) -> Check:
        self.checks.append(check)
        return check

    @property
    def status(self) -> str:
        statuses = {c.status for c in self.checks}
        for worst in (UNKNOWN, CRIT, WARN):
            if worst in statuses:
                return _OVERALL[worst]
        return "OK"

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def counts(self):
        return {s: sum(1 for c in self.checks if c.status == s) for s in (OK, WARN, CRIT, SKIP)}

    def summary(self) -> str:
        bad = [c for c in self.checks if c.status in (CRIT, UNKNOWN)] or \
            [c for c in self.checks if c.status == WARN]
        if not bad:
            counts = self.counts()
            return "%d checks passed%s" % (counts[OK], ", %d skipped" % counts[SKIP]
                                            if counts[SKIP] else "")
        first = "%s: %s" % (bad[0].id, bad[0].summary)
        return first + (" (+%d more)" % (len(bad) - 1) if len(bad) > 1 else "")

    def perfdata(self) -> str:
        counts = self.counts()
        return "checks=%d warn=%d crit=%d skip=%d time=%.2fs" % (
            len(self.checks), counts[WARN], counts[CRIT], counts[SKIP],
            time.monotonic() - self.started)

    def headline(self) -> str:
        return "TUNNEL-CLIENT %s - %s | %s" % (self.status, self.summary(), self.perfdata())

    def as_json(self) -> str:
        return json.dumps({"status": self.status, "exit_code": self.exit_code,
                           "summary": self.summary(), "perfdata": self.perfdata(),
                           "checks": [c.as_dict() for c in self.checks]}, indent=2)

    def text(self, explain: bool = False, colour: bool = False) -> str:
        lines = [self.headline()]
        for check in self.checks:
            label = check.status
            if colour:
                label = "\033[%sm%-4s\033[0m" % (_COLOURS[check.status], check.status)
            lines.append("%-4s  %-16s %s" % (label, check.id, check.summary))
        if explain:
            for check in self.checks:
                if check.status in (OK, SKIP):
                    continue
                lines.extend(["", "%s  %s" % (check.id, check.status)])
                if check.why:
                    lines.append("  Why this matters: " + check.why)
                if check.evidence:
                    lines.append("  Evidence:")
                    lines.extend("    - " + item for item in check.evidence)
                if check.next:
                    lines.append("  What to do next:")
                    lines.extend("    %d. %s" % (i, step) for i, step in enumerate(check.next, 1))
        return "\n".join(lines)


def use_colour(stream=sys.stdout) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ
