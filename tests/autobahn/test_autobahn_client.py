"""The Autobahn|Testsuite (served by kosoku's fuzzing server) against the wsevents **client**.

Every section but 9 (see :mod:`autobahn_suite` for what runs of 12 and 13), on the C path, with
the events-style echo client of :mod:`autobahn_peers`. A case FAILED, one kosoku could not run,
or a close that is not OK/INFORMATIONAL fails the test.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from autobahn_peers import (
    CLIENT_NO_CONTEXT_TAKEOVER,
    COMPRESS_ALL,
    no_context_takeover_case,
    run_client,
    short_case,
)
from autobahn_suite import (
    COMPRESSION,
    RUN_TIMEOUT,
    SCOPE,
    TABLES,
    Verdict,
    check,
    excluding,
    fuzzingserver,
    table,
)

pytestmark = [
    pytest.mark.timeout(3 * RUN_TIMEOUT + 30),
]

AGENT = "wsevents"


def client_options(case: str | None) -> dict[str, Any]:
    """The client options a case runs with (None: the cases that need nothing special).

    Keepalive pings are off for the same reason as on the servers (see SERVER_OPTIONS). The
    16- and 64-byte compression cases need every message compressed (kosoku 0.1.0, see
    COMPRESS_ALL), and 13.2, 13.5 and 13.6 want ``client_no_context_takeover`` in the offer
    (with the default offer they are UNIMPLEMENTED; docs/guide.md shows this configuration).
    """
    compression: dict[str, Any] = {}
    if case is not None and short_case(case):
        compression |= COMPRESS_ALL
    if case is not None and no_context_takeover_case(case):
        compression |= CLIENT_NO_CONTEXT_TAKEOVER
    return {"ping_interval": None, "compression": compression or True}


def special_groups() -> dict[str, list[str]]:
    """The compression cases that need options of their own, grouped by those options."""
    groups: dict[str, list[str]] = defaultdict(list)
    default = repr(client_options(None))
    for case in COMPRESSION:
        key = repr(client_options(case))
        if key != default:
            groups[key].append(case)
    return groups


async def run_group(outdir: Path, options: dict[str, Any], **selection: Any) -> dict[str, Verdict]:
    async with fuzzingserver(outdir, **selection) as server:
        # A case may take as long as the whole run may (kosoku's own case timeouts are 120-480 s).
        await run_client(f"ws://127.0.0.1:{server.port}", AGENT, options, RUN_TIMEOUT)
        return await server.verdicts()


async def test_client_passes_autobahn(tmp_path: Path) -> None:
    groups = special_groups()
    taken = [case for cases in groups.values() for case in cases]
    verdicts = await run_group(tmp_path / "main", client_options(None), exclude=excluding(taken))
    for n, cases in enumerate(groups.values()):
        verdicts |= await run_group(tmp_path / f"group{n}", client_options(cases[0]), include=cases)
    TABLES.append(table(f"client, events style ({len(verdicts)} cases; {SCOPE})", verdicts.values()))

    check(verdicts)
    unimplemented = [v.describe() for v in verdicts.values() if v.behavior == "UNIMPLEMENTED"]
    assert not unimplemented, "\n".join(unimplemented)
