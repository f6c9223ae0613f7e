"""Model-based test of a real connection pair on 127.0.0.1 against RFC 6455's rules.

A Hypothesis state machine drives a wsevents server connection and a wsevents
client connected to it over loopback, each through its public API: text and
binary sends from either side, ``recv()`` (also a second concurrent one),
pings, cancelled ``recv()`` and cancelled ``close()`` waits, closes from either
side with any code that may be sent. Every call is bounded (``BOUND`` seconds):
none may hang.

The model, checked as messages arrive and when the pair is finished:

* a message sent while neither side had started closing is received by the
  other side's ``recv()``, in send order, nothing lost, duplicated or changed;
  messages sent after a close started may be lost, but only at the tail;
* a second ``recv()`` while one waits raises ``ConcurrencyError`` at once;
* a send or ping on a side that is not OPEN raises ``InvalidState`` at the call;
* close codes as RFC 6455 section 7 says: each side's ``"close"`` reports the
  code the other side sent, and a side that did not close itself echoes the
  closer's code (an empty close frame is seen as 1005);
* after the close, both sides are CLOSED, ``wait_closed()`` returns even when an
  earlier ``wait_for(close(), t)`` timed out, and ``recv()`` raises
  ``ConnectionClosed`` once the queue is drained.

Each example has its own event loop, server and client; each rule runs in that
loop and then lets I/O settle briefly.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

import wsevents
from wsevents import ConcurrencyError, Connection, ConnectionClosed, InvalidState

pytestmark = pytest.mark.timeout(120)

BOUND = 2.0  # seconds any single call may take
SETTLE = 0.005  # seconds of I/O after each rule
SIDES = ("client", "server")
CODES = st.sampled_from([None, 1000, 1001, 1003, 1008, 1011, 3000, 4000, 4999])
PAYLOADS = st.one_of(st.text(max_size=20), st.binary(max_size=20))


def new_loop() -> asyncio.AbstractEventLoop:
    if os.environ.get("WSEVENTS_TEST_UVLOOP"):
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def other(side: str) -> str:
    return "server" if side == "client" else "client"


class PairMachine(RuleBasedStateMachine):
    """A real pair driven at random, checked against a model of what must arrive and how it closes."""

    loop: asyncio.AbstractEventLoop
    server: wsevents.Server
    conns: dict[str, Connection]

    def __init__(self) -> None:
        super().__init__()
        self.loop = new_loop()
        # Messages sent to each side, in order, each with "must arrive" (sent before any close).
        self.sent: dict[str, list[tuple[str | bytes, bool]]] = {side: [] for side in SIDES}
        self.received: dict[str, list[str | bytes]] = {side: [] for side in SIDES}
        self.reading: dict[str, asyncio.Task[str | bytes] | None] = {side: None for side in SIDES}
        # The code each side sent when it started a close itself ("" for none).
        self.initiated: dict[str, int | None | str] = {side: "" for side in SIDES}
        self.close_events: dict[str, list[tuple[int, str]]] = {side: [] for side in SIDES}
        self.closing_started = False
        self.opened = False

    # -- running things in the machine's loop ----------------------------------------------

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro`` to its end (bounded), then let the sockets settle."""

        async def bounded() -> Any:
            try:
                return await asyncio.wait_for(coro, BOUND)
            finally:
                await asyncio.sleep(SETTLE)

        return self.loop.run_until_complete(bounded())

    def settle(self) -> None:
        self.loop.run_until_complete(asyncio.sleep(SETTLE))

    def state(self, side: str) -> wsevents.ReadyState:
        return self.conns[side].ready_state

    async def left_open(self, side: str) -> None:
        """Wait until ``side`` is no longer OPEN (``run`` bounds the wait): no event marks it."""
        while self.state(side) == Connection.OPEN:
            await asyncio.sleep(0.001)

    # -- set-up and tear-down -----------------------------------------------------------

    @initialize()
    def open_pair(self) -> None:
        async def start() -> None:
            self.server = await wsevents.create_server(close_timeout=BOUND / 2).listen(0, "127.0.0.1")
            accepted: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
            self.server.on("connection", lambda c: accepted.done() or accepted.set_result(c))
            client = await wsevents.connect(f"ws://127.0.0.1:{self.server.port}/", close_timeout=BOUND / 2)
            self.conns = {"client": client, "server": await accepted}

        self.run(start())
        self.opened = True
        for side in SIDES:
            events = self.close_events[side]
            self.conns[side].on("close", lambda code, reason, events=events: events.append((code, reason)))

    def teardown(self) -> None:
        try:
            if self.opened:
                self.finish_and_check()
        finally:
            self.shut_down()

    def shut_down(self) -> None:
        async def stop() -> None:
            for conn in getattr(self, "conns", {}).values():
                if conn.transport is not None and conn.ready_state != Connection.CLOSED:
                    conn.transport.abort()
            if hasattr(self, "server"):
                await asyncio.wait_for(self.server.close(), BOUND)

        try:
            self.loop.run_until_complete(stop())
            pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.wait(pending, timeout=BOUND))
        finally:
            self.loop.close()

    # -- the rules ----------------------------------------------------------------------

    @rule(side=st.sampled_from(SIDES), data=PAYLOADS)
    def send(self, side: str, data: str | bytes) -> None:
        conn = self.conns[side]
        if self.state(side) != Connection.OPEN:
            with pytest.raises(InvalidState):
                conn.send(data)
            return
        result = conn.send(data)
        self.sent[other(side)].append((data, not self.closing_started))
        self.run(_await(result))

    @rule(side=st.sampled_from(SIDES))
    def start_recv(self, side: str) -> None:
        task = self.reading[side]
        if task is not None and not task.done():
            # Only one reader at a time: the second is refused at once, the first goes on.
            with pytest.raises(ConcurrencyError):
                self.run(self.conns[side].recv())
            return
        self.collect(side)
        self.reading[side] = self.loop.create_task(self.conns[side].recv())
        self.settle()
        self.collect(side)

    @rule(side=st.sampled_from(SIDES))
    def cancel_recv(self, side: str) -> None:
        task = self.reading[side]
        if task is None:
            return
        if not task.done():
            task.cancel()
            self.loop.run_until_complete(asyncio.wait({task}, timeout=BOUND))
            assert task.done(), "a cancelled recv() did not end"
        self.collect(side)  # a message it got before the cancel counts; a cancel loses none

    @rule(side=st.sampled_from(SIDES), payload=st.binary(max_size=125))
    def ping(self, side: str, payload: bytes) -> None:
        conn = self.conns[side]
        if self.state(side) != Connection.OPEN:
            with pytest.raises(InvalidState):
                conn.send_ping(payload)
            return
        self.run(_await(conn.send_ping(payload)))

    @rule(side=st.sampled_from(SIDES), code=CODES, give_up_waiting=st.booleans())
    def close(self, side: str, code: int | None, give_up_waiting: bool) -> None:
        conn = self.conns[side]
        if self.state(side) == Connection.OPEN:
            self.initiated[side] = code
            self.closing_started = True
        closing = conn.close(code)
        if give_up_waiting:
            # A caller that stops waiting must not cancel the close itself (wait_closed later).
            try:
                self.loop.run_until_complete(asyncio.wait_for(closing, 0))
            except asyncio.TimeoutError:
                pass
            self.settle()
        else:
            self.run(_await(closing))
            assert self.state(side) == Connection.CLOSED

    @rule()
    def wait_a_little(self) -> None:
        self.loop.run_until_complete(asyncio.sleep(0.02))
        for side in SIDES:
            self.collect(side)

    # -- the model ----------------------------------------------------------------------

    def collect(self, side: str) -> None:
        """Take the result of a finished recv() on ``side`` into the model and check it."""
        task = self.reading[side]
        if task is None or not task.done():
            return
        self.reading[side] = None
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            self.received[side].append(task.result())
            self.check_prefix(side)
        else:
            assert isinstance(error, ConnectionClosed), repr(error)

    def check_prefix(self, side: str) -> None:
        got = self.received[side]
        expected = [message for message, _must in self.sent[side]]
        assert got == expected[: len(got)], f"{side} received {got!r}, sent to it {expected!r}"

    def finish_and_check(self) -> None:
        # Whatever the rules left open is closed from the client, like a user would.
        if self.state("client") == Connection.OPEN and self.state("server") == Connection.OPEN:
            self.initiated["client"] = 1000
            self.closing_started = True
            self.conns["client"].close(1000)
        elif self.state("client") == Connection.OPEN:
            # The server's close is on its way: the client answers it by itself. (Closing the
            # client here would race it: a 1000 crossing the server's close would be what the
            # server reports, when the model expects the echo of its own code.)
            self.run(self.left_open("client"))
        for side in SIDES:
            self.run(self.conns[side].wait_closed())
            assert self.state(side) == Connection.CLOSED
            task = self.reading[side]
            if task is not None:
                self.loop.run_until_complete(asyncio.wait({task}, timeout=BOUND))
                assert task.done(), f"a recv() on the {side} did not end after the close"
                self.collect(side)
            # Drain what is queued; then recv() raises ConnectionClosed.
            while True:
                try:
                    self.received[side].append(self.run(self.conns[side].recv()))
                except ConnectionClosed:
                    break
            self.check_prefix(side)
            must = [message for message, must in self.sent[side] if must]
            assert self.received[side][: len(must)] == must, f"{side} lost messages sent before any close"
        self.check_close_codes()

    def check_close_codes(self) -> None:
        for side in SIDES:
            events = self.close_events[side]
            assert len(events) == 1, f"{side} emitted close {events!r}"
            peer_code = self.initiated[other(side)]
            own_code = self.initiated[side]
            # The peer's own close if it started one, else its echo of ours.
            expected = peer_code if peer_code != "" else own_code
            assert expected != "", "nobody started the close"
            assert events[0][0] == (1005 if expected is None else expected), (side, events, self.initiated)


async def _await(awaitable: Any) -> None:
    await awaitable


PairMachine.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_connection_pair_against_the_rfc_model = PairMachine.TestCase
