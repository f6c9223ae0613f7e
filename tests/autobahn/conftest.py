"""Prints the per-section Autobahn tables the tests made, after the run."""

from __future__ import annotations

from typing import Any

from autobahn_suite import TABLES


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TABLES:
        return
    terminalreporter.section("Autobahn|Testsuite (kosoku), every section but 9")
    for text in TABLES:
        terminalreporter.write_line(text)
        terminalreporter.write_line("")
