"""Runs the Autobahn|Testsuite case files with ``kosoku`` and reads its verdicts.

``kosoku`` (a dev dependency) runs Autobahn's own case files: ``-m fuzzingclient``
drives a server under test, ``-m fuzzingserver`` serves the cases to a client
under test. Both write Autobahn's ``index.json`` (``{agent: {case: {"behavior",
"behaviorClose", "reportfile", ...}}}``) and one JSON report per case, which is
what the tests read. The executable is the one next to ``sys.executable``, so
the tests use the venv's copy whatever ``PATH`` says.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

KOSOKU = Path(sys.executable).parent / "kosoku"

#: Section 9 (limits and performance: 64 MiB messages, a million frames) is left to benchmarks.
SECTION_9 = "9.*"

#: ``WSEVENTS_AUTOBAHN=full`` runs every case of the compression sections 12 and 13. Each of their
#: 216 cases sends 1000 messages and waits for each echo (16 B to 128 KiB, compressed both ways):
#: about 10 minutes per side on two cores. By default the 16 B to 1 KiB ones run (x.y.1-x.y.4 of
#: every offer and window combination) and 12.y.11 (8 KiB messages in 256-byte frames, for the
#: fragmented path), which keeps ``make test`` within a couple of minutes.
FULL = os.environ.get("WSEVENTS_AUTOBAHN") == "full"

#: The subsections of 12 (5 client offers) and 13 (7 offer/accept pairs), each of 18 cases.
_COMPRESSION_SUBSECTIONS = {12: 5, 13: 7}


def compression_cases(numbers: Iterable[int], sections: Iterable[int] = (12, 13)) -> list[str]:
    """Cases x.y.n, for n in ``numbers``, of every subsection y of ``sections`` (12 and 13)."""
    return [
        f"{section}.{sub}.{n}"
        for section in sections
        for sub in range(1, _COMPRESSION_SUBSECTIONS[section] + 1)
        for n in numbers
    ]


#: The compression cases this run covers, and the ones it leaves out.
ALL_COMPRESSION = compression_cases(range(1, 19))
COMPRESSION = ALL_COMPRESSION if FULL else compression_cases(range(1, 5)) + compression_cases([11], [12])
SKIPPED_COMPRESSION = [case for case in ALL_COMPRESSION if case not in COMPRESSION]
#: What the tables say of the compression cases run.
SCOPE = "all of 12 and 13" if FULL else "12 and 13: x.y.1-4 and 12.y.11"


def excluding(taken: Iterable[str]) -> list[str]:
    """kosoku ``-x`` patterns for "everything but section 9, skipped compression cases and ``taken``"."""
    return [SECTION_9, *SKIPPED_COMPRESSION, *taken]


BEHAVIORS = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")
#: Close verdicts that count as conformant (kosoku also reports UNCLEAN, WRONG CODE, FAILED BY CLIENT...).
GOOD_CLOSE = frozenset({"OK", "INFORMATIONAL"})

#: The longest a whole kosoku run may take before the test gives up on it.
RUN_TIMEOUT = 1200.0 if FULL else 180.0


@dataclass(frozen=True)
class Verdict:
    """One case's verdicts, with kosoku's explanation of them."""

    case: str
    behavior: str
    behavior_close: str
    result: str
    result_close: str

    @property
    def section(self) -> str:
        """The case's Autobahn section, e.g. ``"6"`` for 6.4.1."""
        return self.case.partition(".")[0]

    @property
    def acceptable(self) -> bool:
        """Not FAILED (nor ERROR: kosoku could not run it), and a conformant close."""
        return self.behavior not in ("FAILED", "ERROR") and self.behavior_close in GOOD_CLOSE

    def describe(self) -> str:
        """One line for a failure message."""
        return (
            f"{self.case}: behavior={self.behavior} ({self.result}) "
            f"close={self.behavior_close} ({self.result_close})"
        )


def case_key(case: str) -> list[int]:
    """Numeric order: 1.1.10 after 1.1.9."""
    return [int(part) for part in case.split(".")]


def read_reports(outdir: Path) -> dict[str, Verdict]:
    """The verdicts of every case in a kosoku report directory, by case id."""
    index = json.loads((outdir / "index.json").read_text())
    verdicts: dict[str, Verdict] = {}
    for cases in index.values():
        for case, entry in cases.items():
            detail = json.loads((outdir / entry["reportfile"]).read_text())
            verdicts[case] = Verdict(
                case, entry["behavior"], entry["behaviorClose"], detail["result"], detail["resultClose"]
            )
    return verdicts


def kosoku() -> str:
    """The venv's kosoku executable; a missing one is a set-up error that says how to fix it."""
    if not KOSOKU.exists():
        raise AssertionError(f"{KOSOKU} is missing: install the dev extras (pip install -e '.[dev]')")
    return str(KOSOKU)


def selection_args(include: Sequence[str], exclude: Sequence[str]) -> list[str]:
    """kosoku's ``-i`` / ``-x`` options (case ids or ``*`` globs)."""
    args: list[str] = []
    for pattern in include:
        args += ["-i", pattern]
    for pattern in exclude:
        args += ["-x", pattern]
    return args


async def _finish(proc: asyncio.subprocess.Process, timeout: float) -> bytes:
    """Wait for kosoku to exit; kill it (and say so) if it outlives ``timeout``.

    Killed too when the wait is cancelled (the other run of a ``gather`` failed, or the test
    ended): a kosoku left behind would go on fuzzing a closed port after the test.
    """
    assert proc.stderr is not None
    try:
        stderr = await asyncio.wait_for(proc.stderr.read(), timeout)
        await asyncio.wait_for(proc.wait(), 5)
    except asyncio.TimeoutError:
        raise AssertionError(f"kosoku did not finish within {timeout:.0f} s") from None
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return stderr


async def run_fuzzingclient(
    address: str, outdir: Path, include: Sequence[str] = (), exclude: Sequence[str] = (), parallelism: int = 4
) -> dict[str, Verdict]:
    """Run the selected cases against the server at ``address`` (``host:port``)."""
    proc = await asyncio.create_subprocess_exec(
        kosoku(), "-m", "fuzzingclient", "-p", str(parallelism), "-o", str(outdir),
        *selection_args(include, exclude), address,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stderr = await _finish(proc, RUN_TIMEOUT)
    if not (outdir / "index.json").exists():
        raise AssertionError(f"kosoku wrote no report (exit {proc.returncode}): {stderr.decode()[-2000:]}")
    return read_reports(outdir)


_LISTENING = re.compile(rb"fuzzingserver listening on ws://[^\s]+:(\d+)")


@dataclass
class FuzzingServer:
    """A running ``kosoku -m fuzzingserver``: where it listens and how to collect its verdicts."""

    port: int
    outdir: Path
    proc: asyncio.subprocess.Process

    async def verdicts(self) -> dict[str, Verdict]:
        """Wait for the run to end (the client visited ``/updateReports``) and read the reports."""
        stderr = await _finish(self.proc, RUN_TIMEOUT)
        if not (self.outdir / "index.json").exists():
            raise AssertionError(
                f"kosoku wrote no report (exit {self.proc.returncode}): {stderr.decode()[-2000:]}"
            )
        return read_reports(self.outdir)


@asynccontextmanager
async def fuzzingserver(
    outdir: Path, include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> AsyncIterator[FuzzingServer]:
    """Start ``kosoku -m fuzzingserver`` on 127.0.0.1 (a free port); stopped on exit whatever happened."""
    proc = await asyncio.create_subprocess_exec(
        kosoku(), "-m", "fuzzingserver", "-o", str(outdir),
        *selection_args(include, exclude), "127.0.0.1:0",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = await asyncio.wait_for(proc.stderr.readline(), 30)
        found = _LISTENING.search(line)
        if found is None:
            raise AssertionError(f"kosoku fuzzingserver did not start: {line.decode()!r}")
        yield FuzzingServer(int(found.group(1)), outdir, proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def problems(verdicts: dict[str, Verdict]) -> list[str]:
    """One line per case that is FAILED (or could not run) or closed in a non-conformant way."""
    return [
        v.describe()
        for case, v in sorted(verdicts.items(), key=lambda kv: case_key(kv[0]))
        if not v.acceptable
    ]


def non_strict(verdicts: dict[str, Verdict]) -> list[str]:
    """The NON-STRICT case ids, in order."""
    return sorted((case for case, v in verdicts.items() if v.behavior == "NON-STRICT"), key=case_key)


def check(verdicts: dict[str, Verdict], allowed_non_strict: Iterable[str] = ()) -> None:
    """Fail with one line per case that is not acceptable, or NON-STRICT and not allowed.

    Every such case is named (a list compared with ``==`` would show only the first difference
    in pytest's default output).
    """
    allowed = set(allowed_non_strict)
    bad = problems(verdicts)
    bad += [verdicts[case].describe() for case in non_strict(verdicts) if case not in allowed]
    assert not bad, f"{len(bad)} Autobahn case(s) not passed:\n" + "\n".join(bad)


def table(title: str, verdicts: Iterable[Verdict]) -> str:
    """A per-section count of the verdicts (ERROR, a case kosoku could not run, counts as FAILED)."""
    counts: Counter[tuple[str, str]] = Counter()
    sections: set[str] = set()
    for v in verdicts:
        sections.add(v.section)
        counts[(v.section, "FAILED" if v.behavior == "ERROR" else v.behavior)] += 1
    header = f"{'section':>7} " + " ".join(f"{b:>13}" for b in BEHAVIORS)
    lines = [title, header]
    for section in sorted(sections, key=int):
        lines.append(f"{section:>7} " + " ".join(f"{counts[(section, b)]:>13}" for b in BEHAVIORS))
    totals = " ".join(f"{sum(n for (_, b), n in counts.items() if b == name):>13}" for name in BEHAVIORS)
    lines.append(f"{'all':>7} {totals}")
    return "\n".join(lines)


#: Tables made by the tests, printed at the end of the run by this directory's conftest.
TABLES: list[str] = []
