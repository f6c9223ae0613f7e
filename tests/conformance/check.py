"""Judging one run of a case: what the wsevents side sent against what the case expects."""

from __future__ import annotations

import struct
from collections.abc import Sequence

from cases import Case
from peer import FrameSpec, PeerResult, Send, Step, Wait

from helpers import CLOSE, TEXT

__all__ = ["steps_for", "problems", "echoed_close", "SERVER_LIMIT"]

#: The echo side's max_buffer_length unless a case sets its own (section 9 sends 4 MiB).
SERVER_LIMIT = 8 << 20


def steps_for(case: Case) -> Sequence[Step]:
    """The case's steps; a case that expects a normal close waits for its echoes, then closes with 1000."""
    if case.close is not None:
        return case.steps
    return (
        *case.steps,
        Wait(messages=len(case.echo), pongs=len(case.pongs)),
        Send((FrameSpec(CLOSE, struct.pack("!H", 1000)),)),
    )


def _code(body: bytes) -> int:
    return 1005 if len(body) < 2 else struct.unpack("!H", body[:2])[0]


def _short(messages: Sequence[tuple[int, bytes]]) -> str:
    shown = [f"{'text' if op == TEXT else 'binary'}[{len(p)}]" for op, p in messages[:5]]
    return ", ".join(shown) + (f" … ({len(messages)} in all)" if len(messages) > 5 else "")


def echoed_close(r: PeerResult) -> bool:
    """The peer closed first and the wsevents side answered with the same code: a clean closing handshake."""
    return bool(r.closed_first and r.close_frames and r.sent_close is not None) and _code(
        r.close_frames[0]
    ) == _code(r.sent_close or b"")


def problems(case: Case, r: PeerResult, local_code: int | None = None) -> list[str]:
    """Everything wrong with the run (empty: the case passed).

    ``local_code`` is the code the wsevents connection reported in its
    ``"close"`` event: the one it sent for a failure, the peer's (1005 when
    empty) for a clean close, so always the code of the close frame it sent.
    """
    found = [f"RFC violation: {v}" for v in r.violations]
    if r.pings:
        found.append(f"unexpected pings from the wsevents side: {r.pings!r:.200}")
    if r.frames_after_close:
        found.append(f"{r.frames_after_close} frame(s) after the close frame")
    if r.messages != list(case.echo):
        found.append(f"echo: expected {_short(list(case.echo))}, got {_short(r.messages)}")
    if r.pongs != list(case.pongs):
        found.append(f"pongs: expected {list(case.pongs)!r:.200}, got {r.pongs!r:.200}")
    if not r.close_frames:
        found.append("no close frame from the wsevents side")
    else:
        code = _code(r.close_frames[0])
        allowed = case.close if case.close is not None else (1000,)
        if code not in allowed:
            found.append(f"close code {code}, expected one of {allowed}")
        if local_code is not None and local_code != code:
            found.append(f"the wsevents side reported close code {local_code} but sent {code}")
    if not r.tcp_closed:
        found.append("the wsevents side did not close TCP")
    if case.fail_fast and not (r.fail_fast and all(r.fail_fast)):
        found.append(f"not fail-fast: the close frame had not come at the fail-fast points {r.fail_fast}")
    if found and r.notes:
        found.append(f"notes: {r.notes}")
    if found:
        found.append(f"frames: {r.log[:12]}")
    return found
