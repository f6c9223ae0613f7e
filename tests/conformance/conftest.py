"""Prints a per-section summary of the conformance cases, for both sides."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from cases import CASES, SECTIONS

_SECTION_OF = {c.id: c.section for c in CASES}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for outcome in ("passed", "failed", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            nodeid = getattr(report, "nodeid", "")
            if (
                "conformance/test_" not in nodeid
                or getattr(report, "when", "call") != "call"
                and outcome == "passed"
            ):
                continue
            side = "server" if "test_server.py" in nodeid else "client"
            case_id = nodeid.rpartition("[")[2].rstrip("]")
            section = _SECTION_OF.get(case_id)
            if section is None:
                continue
            counts[(section, side)][0 if outcome == "passed" else 1] += 1
    if not counts:
        return
    terminalreporter.section("conformance summary (RFC 6455 / RFC 7692, Autobahn-style sections)")
    terminalreporter.write_line(f"{'section':<32} {'server':>16} {'client':>16}")
    totals = {"server": [0, 0], "client": [0, 0]}
    for section in sorted({s for s, _ in counts}, key=int):
        row = [f"{section} {SECTIONS[section]}"]
        for side in ("server", "client"):
            passed, failed = counts.get((section, side), [0, 0])
            totals[side][0] += passed
            totals[side][1] += failed
            row.append(f"{passed}/{passed + failed} passed")
        terminalreporter.write_line(f"{row[0]:<32} {row[1]:>16} {row[2]:>16}")
    terminalreporter.write_line(
        f"{'all':<32} {totals['server'][0]:>7}/{sum(totals['server'])} passed "
        f"{totals['client'][0]:>7}/{sum(totals['client'])} passed"
    )
