"""The Autobahn|Testsuite (run by kosoku's fuzzing client) against wsevents echo **servers**.

Every section but 9 (see :mod:`autobahn_suite` for what runs of 12 and 13), on the C path. A case
FAILED, one kosoku could not run, or a close that is not OK/INFORMATIONAL fails the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from autobahn_peers import COMPRESS_ALL, SERVER_OPTIONS, async_for_echo, events_echo, short_case
from autobahn_suite import (
    COMPRESSION,
    RUN_TIMEOUT,
    SCOPE,
    TABLES,
    check,
    excluding,
    run_fuzzingclient,
    table,
)

import wsevents

pytestmark = [
    pytest.mark.timeout(2 * RUN_TIMEOUT + 30),
]

#: The `async for` echo loop reads a message, then awaits its echo. When the message and a protocol
#: violation arrive in the same read, the connection fails before the echo goes out, and the suite
#: calls that NON-STRICT (RFC 6455 section 7.1.7: the echo of the valid message is expected first).
#: The events style echoes from the listener, before the violation is parsed: no NON-STRICT case.
ASYNC_FOR_NON_STRICT = {"3.2", "3.3", "3.4", "4.1.3", "4.1.4", "4.1.5", "4.2.3", "4.2.4", "4.2.5", "5.15"}

MakeServer = Callable[..., Awaitable[wsevents.Server]]

STYLES: dict[str, Callable[[Any], Any]] = {"events": events_echo, "async for": async_for_echo}


@pytest.mark.parametrize("style", STYLES)
async def test_server_passes_autobahn(style: str, make_server: MakeServer, tmp_path: Path) -> None:
    server = await make_server(SERVER_OPTIONS)
    server.on("connection", STYLES[style])
    # The 16- and 64-byte compression cases go to a server that compresses them (kosoku 0.1.0
    # cannot check an uncompressed echo there; see COMPRESS_ALL).
    compress_all = await make_server({**SERVER_OPTIONS, "compression": COMPRESS_ALL})
    compress_all.on("connection", STYLES[style])
    short = [case for case in COMPRESSION if short_case(case)]

    main, rest = await asyncio.gather(
        run_fuzzingclient(f"127.0.0.1:{server.port}", tmp_path / "main", exclude=excluding(short)),
        run_fuzzingclient(f"127.0.0.1:{compress_all.port}", tmp_path / "short", include=short, parallelism=2),
    )
    verdicts = {**main, **rest}
    TABLES.append(table(f"server, {style} style ({len(verdicts)} cases; {SCOPE})", verdicts.values()))

    check(verdicts, allowed_non_strict=() if style == "events" else ASYNC_FOR_NON_STRICT)
