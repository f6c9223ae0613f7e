"""``InStream.read()`` of a whole message: woken once at the end (or past the limit), one join.

A 1 MiB message arrives in about four socket reads; a coroutine waiting in
``read()`` used to be woken (a task step) and to join what had arrived, once per
read. It now sleeps until the message ends or holds more than ``limit`` bytes, and
joins the pieces once, in order.
"""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsevents import InStream, MessageTooBig


class Reading:
    """What the stream asked of the connection: pauses, resumes, a failure."""

    def __init__(self) -> None:
        self.paused = 0
        self.resumed = 0
        self.failures: list[MessageTooBig] = []

    def stream(self, limit: int) -> InStream:
        return InStream(self.pause, self.resume, limit, self.failures.append)

    def pause(self) -> None:
        self.paused += 1

    def resume(self) -> None:
        self.resumed += 1


async def waiting_reader(stream: InStream) -> asyncio.Task[bytes]:
    """A task waiting in ``stream.read()`` (it has run up to its wait)."""
    task = asyncio.ensure_future(stream.read())
    while stream._waiter is None:
        await asyncio.sleep(0)
    return task


async def test_a_waiting_read_is_not_woken_by_each_piece_and_gets_them_joined_in_order() -> None:
    stream = Reading().stream(1 << 20)
    task = await waiting_reader(stream)
    waiter = stream._waiter
    assert waiter is not None
    for piece in (b"first ", b"second ", b"third"):
        stream._feed(piece)
    assert not waiter.done()  # no wake-up per piece
    stream._end()
    assert await asyncio.wait_for(task, 5) == b"first second third"


async def test_a_waiting_read_is_woken_past_the_limit_and_fails_the_message() -> None:
    reading = Reading()
    stream = reading.stream(100)
    task = await waiting_reader(stream)
    stream._feed(b"a" * 60)
    stream._feed(b"b" * 60)  # 120 held: over the limit, reading paused, the reader woken
    assert reading.paused == 1
    with pytest.raises(MessageTooBig):
        await asyncio.wait_for(task, 5)
    assert len(reading.failures) == 1
    # What the reader took released the backpressure, as before.
    assert reading.resumed == 1


async def test_a_waiting_read_is_woken_when_what_it_took_and_what_is_held_pass_the_limit() -> None:
    reading = Reading()
    stream = reading.stream(100)
    task = await waiting_reader(stream)
    stream._feed(b"a" * 60)
    stream._feed(b"a" * 20)  # 80 held: under the limit, the reader sleeps
    stream._wake()  # the reader takes the 80 (as after a wake-up at any earlier point)
    while stream._chunks:
        await asyncio.sleep(0)
    stream._feed(b"b" * 60)  # 60 held, but 140 in the message: it must fail, not sit at 140
    with pytest.raises(MessageTooBig):
        await asyncio.wait_for(task, 5)
    assert len(reading.failures) == 1


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 5000), min_size=1, max_size=12),
    steps=st.lists(st.integers(0, 3), min_size=12, max_size=12),
    seed=st.integers(0, 2**32),
)
def test_pieces_fed_around_the_reader_s_turns_arrive_whole_and_in_order(
    sizes: list[int], steps: list[int], seed: int
) -> None:
    """Pieces fed before the read, while it waits, or between its loop turns: all of them, in order."""
    rng = random.Random(seed)
    pieces = [rng.randbytes(n) for n in sizes]

    async def main() -> None:
        stream = Reading().stream(1 << 20)
        task: asyncio.Task[bytes] | None = None
        for i, piece in enumerate(pieces):
            if task is None and steps[i] == 0:
                task = asyncio.ensure_future(stream.read())
            stream._feed(piece)
            for _ in range(steps[i]):
                await asyncio.sleep(0)
        if task is None:
            task = asyncio.ensure_future(stream.read())
        stream._end()
        assert await asyncio.wait_for(task, 5) == b"".join(pieces)

    asyncio.run(main())
