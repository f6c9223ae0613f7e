"""Property tests of wsevents.sync: any sequence of messages (sizes around the frame-length encodings
and the size limit, compressed or not) comes back whole and in order; a message one byte over the
limit fails the connection with 1009, after every message before it reached the application."""

from __future__ import annotations

from collections.abc import Iterator
from queue import Queue
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsevents import ConnectionClosed
from wsevents.sync import Connection, Server, connect

from .conftest import SyncServe, url

LIMIT = 70000
# The lengths where the frame header changes (7-bit, 16-bit, 64-bit) and the limit itself.
EDGES = [0, 1, 124, 125, 126, 127, 65535, 65536, 65537, LIMIT - 1, LIMIT]

sizes = st.one_of(st.sampled_from(EDGES), st.integers(0, LIMIT))
messages = st.builds(
    lambda size, text, seed: ("é" * (size // 2) + "a" * (size % 2)) if text else bytes([seed]) * size,
    sizes,
    st.booleans(),
    st.integers(0, 255),
)

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(params=[True, False], ids=["deflate", "plain"])
def echo_server(request: pytest.FixtureRequest, sync_serve: SyncServe) -> Iterator[Server]:
    yield sync_serve(compression=request.param, max_buffer_length=LIMIT)


@SETTINGS
@given(sequence=st.lists(messages, max_size=12))
def test_any_sequence_round_trips_in_order(echo_server: Server, sequence: list[str | bytes]) -> None:
    with connect(url(echo_server), max_buffer_length=LIMIT) as conn:
        for message in sequence:
            conn.send(message)
        assert [conn.recv(timeout=10) for _ in sequence] == sequence
    assert conn.close_code == 1000


@pytest.fixture(params=[True, False], ids=["deflate", "plain"])
def recording_server(
    request: pytest.FixtureRequest, sync_serve: SyncServe
) -> Iterator[tuple[Server, Queue[Any]]]:
    """A server that reads until the end and reports what it got: the messages, then the close code."""
    results: Queue[Any] = Queue()

    def record(conn: Connection) -> None:
        got: list[str | bytes] = []
        try:
            while True:
                got.append(conn.recv(timeout=10))
        except ConnectionClosed as exc:
            results.put((got, exc.code))

    yield sync_serve(record, compression=request.param, max_buffer_length=LIMIT), results


@SETTINGS
@given(before=st.lists(messages, max_size=4), text=st.booleans())
def test_one_byte_over_the_limit_fails_with_1009_after_the_messages_before_it(
    recording_server: tuple[Server, Queue[Any]], before: list[str | bytes], text: bool
) -> None:
    server, results = recording_server
    over: str | bytes = "x" * (LIMIT + 1) if text else b"x" * (LIMIT + 1)
    with connect(url(server), max_buffer_length=4 * LIMIT) as conn:
        for message in [*before, over]:
            conn.send(message)
        with pytest.raises(ConnectionClosed) as info:
            conn.recv(timeout=10)
        assert info.value.code == 1009
    # Every message parsed before the excess reached the application, in order, then the 1009.
    assert results.get(timeout=10) == (before, 1009)
