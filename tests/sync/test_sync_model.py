"""Property tests of wsevents.sync: any sequence of messages (sizes around the frame-length encodings
and the size limit, compressed or not) comes back whole and in order; a message one byte over the
limit fails the connection with 1009, after every message before it reached the application; and a
state machine interleaves sends, receives, pings and the close."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from queue import Queue
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from wsevents import ConnectionClosed, InvalidState
from wsevents.sync import Connection, ReadyState, Server, connect, serve

from .conftest import SyncServe, echo, url

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


class ConnectionMachine(RuleBasedStateMachine):
    """Sends, receives, pings and a close in any order, against an echo server.

    The model: the echoes come back in the order sent; a ping is answered;
    after the close, sends are refused and ``recv()`` returns a prefix of the
    echoes not yet read (the server's handler may not have echoed them all
    before the close crossed), then raises ``ConnectionClosed`` with 1000.
    """

    def __init__(self) -> None:
        super().__init__()
        self.server = serve(echo, "127.0.0.1", 0, max_buffer_length=LIMIT)
        self.thread = threading.Thread(target=self.server.serve_forever, name="test-serve-forever")
        self.thread.start()
        # Room for every echo a run can leave unread (at most 15 of at most LIMIT bytes): the
        # reader is never held back, so pings are always answered (backpressure holds back pongs
        # too, as docs/sync.md says).
        self.conn = connect(url(self.server), max_buffer_length=16 * LIMIT)
        self.expected: deque[str | bytes] = deque()
        self.closed = False

    @rule(message=messages)
    def send(self, message: str | bytes) -> None:
        if self.closed:
            with pytest.raises(InvalidState):
                self.conn.send(message)
        else:
            self.conn.send(message)
            self.expected.append(message)

    @precondition(lambda self: self.expected and not self.closed)
    @rule()
    def receive(self) -> None:
        assert self.conn.recv(timeout=10) == self.expected.popleft()

    @precondition(lambda self: not self.closed)
    @rule()
    def ping(self) -> None:
        assert self.conn.ping().wait(10)

    @rule()
    def close(self) -> None:
        self.conn.close()
        self.closed = True

    @invariant()
    def state_matches(self) -> None:
        assert (self.conn.state is ReadyState.OPEN) is not self.closed

    def teardown(self) -> None:
        self.conn.close()
        rest = []
        with pytest.raises(ConnectionClosed) as info:
            while True:
                rest.append(self.conn.recv(timeout=10))
        assert info.value.code == 1000
        assert rest == list(self.expected)[: len(rest)]
        self.server.shutdown()
        self.thread.join(10)


ConnectionMachine.TestCase.settings = settings(
    max_examples=15, stateful_step_count=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestConnectionMachine = ConnectionMachine.TestCase
