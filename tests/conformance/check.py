"""Judging one run of a case: what the wsevents side sent against what the case expects."""

from __future__ import annotations

import struct
from collections.abc import Sequence

from cases import Case
from peer import FrameSpec, PeerResult, Send, Step, Wait

from helpers import CLOSE, TEXT

__all__ = ["steps_for", "problems", "SERVER_LIMIT"]

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


def problems(case: Case, r: PeerResult) -> list[str]:
    """Everything wrong with the run (empty: the case passed)."""
    found = [f"RFC violation: {v}" for v in r.violations]
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
    if not r.tcp_closed:
        found.append("the wsevents side did not close TCP")
    if case.fail_fast and not (r.fail_fast and all(r.fail_fast)):
        found.append(f"not fail-fast: the close frame had not come at the fail-fast points {r.fail_fast}")
    if found and r.notes:
        found.append(f"notes: {r.notes}")
    if found:
        found.append(f"frames: {r.log[:12]}")
    return found
