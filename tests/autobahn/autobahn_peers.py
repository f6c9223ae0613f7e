"""The wsevents peers the Autobahn suite talks to: echo servers in both styles, and the client driver.

The suite checks an echo peer: every message comes back with its type (text as
text, binary as binary) and its payload, with permessage-deflate on.
"""

from __future__ import annotations

import asyncio
from typing import Any

import wsevents

#: Server options for the suite. No keepalive pings: the 12.x/13.x cases run for seconds, and an
#: unsolicited ping lands in the case's list of received events, which then no longer matches.
SERVER_OPTIONS: dict[str, Any] = {"ping_interval": None, "compression": True}

#: Compression settings that compress every message, however short. kosoku 0.1.0 mishandles an
#: echo that comes back uncompressed in the 16- and 64-byte cases 12.y.1, 12.y.2, 13.y.1 and 13.y.2
#: (its case code hashes a str: "Strings must be encoded before hashing", and the case is an ERROR),
#: and wsevents sends messages under 128 bytes uncompressed by default, which RFC 7692 allows. Those
#: cases run against a peer with this setting instead.
COMPRESS_ALL: dict[str, Any] = {"threshold": 0}

#: The client offer the suite's 13.2, 13.5 and 13.6 cases want: ``client_no_context_takeover``.
#: With the default offer (``client_max_window_bits`` only) their fuzzing server declines it
#: and the cases are UNIMPLEMENTED.
CLIENT_NO_CONTEXT_TAKEOVER: dict[str, Any] = {"client_no_context_takeover": True}


def short_case(case: str) -> bool:
    """Whether ``case`` is one of the 16- and 64-byte compression cases (see :data:`COMPRESS_ALL`)."""
    parts = case.split(".")
    return parts[0] in ("12", "13") and parts[-1] in ("1", "2")


def no_context_takeover_case(case: str) -> bool:
    """Whether ``case`` wants the client to offer ``client_no_context_takeover``."""
    return case.startswith(("13.2.", "13.5.", "13.6."))


def events_echo(conn: wsevents.Connection) -> None:
    """Echo every whole message with a ``"message"`` listener (the events style)."""
    conn.on("message", conn.send)
    # The suite judges errors by what reaches the wire; a listener keeps them from raising in the emitter.
    conn.on("error", lambda exc: None)


async def async_for_echo(conn: wsevents.Connection) -> None:
    """Echo every message with ``async for`` (the async style)."""
    try:
        async for message in conn:
            await conn.send(message)
    except wsevents.ConnectionClosed:
        return  # the cases that close with an error code end the loop this way


async def _run_case(url: str, options: dict[str, Any], timeout: float) -> None:
    """Connect to ``url`` and echo in the events style until the connection is closed."""
    loop = asyncio.get_running_loop()
    closed: asyncio.Future[None] = loop.create_future()

    def done(*_: object) -> None:
        if not closed.done():
            closed.set_result(None)

    conn = wsevents.connect(url, options)
    conn.on("message", conn.send)
    conn.on("close", done)
    # A connection whose handshake fails (an answer the client must refuse) may end with "error" alone.
    conn.on("error", lambda exc: done() if conn.ready_state == wsevents.Connection.CLOSED else None)
    try:
        await asyncio.wait_for(closed, timeout)
    finally:
        if conn.ready_state != wsevents.Connection.CLOSED and conn.transport is not None:
            conn.transport.abort()


async def run_client(
    base_url: str, agent: str, options: dict[str, Any], case_timeout: float, parallelism: int = 2
) -> int:
    """Drive every case the fuzzing server at ``base_url`` serves; return how many there were.

    Up to ``parallelism`` cases run at once (the fuzzing server keeps them apart by case number);
    each gets ``case_timeout`` seconds.
    """
    async with wsevents.connect(f"{base_url}/getCaseCount") as conn:
        count = int(await asyncio.wait_for(conn.recv(), 10))
    slots = asyncio.Semaphore(parallelism)

    async def run(case: int) -> None:
        async with slots:
            await _run_case(f"{base_url}/runCase?case={case}&agent={agent}", options, case_timeout)

    await asyncio.gather(*(run(case) for case in range(1, count + 1)))
    # The fuzzing server writes its reports and ends the run when this connection closes.
    await _run_case(f"{base_url}/updateReports?agent={agent}", {}, 10)
    return count
