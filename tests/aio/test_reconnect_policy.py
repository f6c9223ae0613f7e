"""The reconnecting client's policy, without I/O: backoff delays, their reset, the stop rules.

Times are made up and the RNG is seeded (or a stub that returns an end of its range), so every
delay asserted here is exact.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsevents.aio.reconnect import RETRY_STATUSES, STABLE_AFTER, Backoff, ReconnectPolicy, is_fatal
from wsevents.errors import ConnectionClosed, HandshakeError


class EndOfRange(random.Random):
    """An RNG whose ``uniform(a, b)`` is always ``a`` (``low``) or always ``b``."""

    def __init__(self, high: bool) -> None:
        super().__init__(0)
        self.high = high

    def uniform(self, a: float, b: float) -> float:
        return b if self.high else a


def test_the_ranges_double_from_the_first_delay_up_to_the_largest() -> None:
    lows = Backoff(1.0, 30.0, rng=EndOfRange(high=False))
    highs = Backoff(1.0, 30.0, rng=EndOfRange(high=True))
    assert [lows.next_delay() for _ in range(8)] == [1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0, 15.0]
    assert [highs.next_delay() for _ in range(8)] == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]
    assert lows.attempts == highs.attempts == 8


def test_a_seeded_rng_gives_the_same_delays_and_each_is_in_its_range() -> None:
    one, two = Backoff(0.5, 10.0, rng=random.Random(42)), Backoff(0.5, 10.0, rng=random.Random(42))
    assert [one.next_delay() for _ in range(10)] == [two.next_delay() for _ in range(10)]
    backoff = Backoff(0.5, 10.0, rng=random.Random(7))
    for n in range(20):
        high = min(10.0, 0.5 * 2 ** (n + 1))
        assert max(0.5, high / 2) <= backoff.next_delay() <= high


def test_jitter_spreads_clients_dropped_at_once() -> None:
    delays = {Backoff(1.0, 30.0, rng=random.Random(seed)).next_delay() for seed in range(50)}
    assert len(delays) == 50
    assert min(delays) < 1.2 and max(delays) > 1.8


def test_equal_initial_and_largest_delay_is_a_constant_delay() -> None:
    backoff = Backoff(2.0, 2.0, rng=random.Random(1))
    assert {backoff.next_delay() for _ in range(10)} == {2.0}


def test_a_huge_number_of_attempts_stays_at_the_largest_delay() -> None:
    backoff = Backoff(1.0, 30.0, rng=EndOfRange(high=True))
    backoff.attempts = 10_000  # 2.0 ** 10_001 overflows a float
    assert backoff.next_delay() == 30.0


@pytest.mark.parametrize(("initial", "maximum", "factor"), [(0, 1, 2), (2, 1, 2), (-1, 1, 2), (1, 2, 0.5)])
def test_impossible_backoffs_are_refused(initial: float, maximum: float, factor: float) -> None:
    with pytest.raises(ValueError):
        Backoff(initial, maximum, factor=factor)


def policy(stop_codes: frozenset[int] = frozenset({1008})) -> ReconnectPolicy:
    return ReconnectPolicy(Backoff(1.0, 30.0, rng=EndOfRange(high=True)), stop_codes)


def test_the_backoff_starts_again_after_a_connection_that_stayed_up() -> None:
    p = policy()
    assert [p.after_failure(OSError()) for _ in range(3)] == [2.0, 4.0, 8.0]
    p.opened(100.0)
    assert p.after_close(100.0 + STABLE_AFTER, 1006, by_peer=False) == 2.0


def test_a_connection_dropped_at_once_keeps_the_delays_growing() -> None:
    p = policy()
    assert [p.after_failure(OSError()) for _ in range(3)] == [2.0, 4.0, 8.0]
    p.opened(100.0)
    assert p.after_close(100.0 + STABLE_AFTER - 0.01, 1006, by_peer=False) == 16.0
    # A close without an open before it (the policy's state was consumed) does not reset either.
    assert p.after_close(1000.0, 1006, by_peer=False) == 30.0


@pytest.mark.parametrize("code", [1008, 4001])
def test_a_stop_code_from_the_server_ends_reconnection(code: int) -> None:
    p = policy(frozenset({1008, 4001}))
    p.opened(0.0)
    assert p.after_close(1.0, code, by_peer=True) is None


@pytest.mark.parametrize("code", [1008, 4001])
def test_a_stop_code_of_this_side_is_a_failure_that_is_retried(code: int) -> None:
    # e.g. 1008 when the peer does not read (max_write_buffer): the server said nothing.
    p = policy(frozenset({1008, 4001}))
    p.opened(0.0)
    assert p.after_close(1.0, code, by_peer=False) == 2.0


@pytest.mark.parametrize("code", [1000, 1001, 1006, 1011, 1012, 1013, 4002])
def test_other_close_codes_are_retried(code: int) -> None:
    p = policy(frozenset({1008, 4001}))
    p.opened(0.0)
    assert p.after_close(1.0, code, by_peer=True) == 2.0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 426, 431, 499])
def test_an_http_4xx_at_the_handshake_ends_reconnection(status: int) -> None:
    error = HandshakeError(f"refused with {status}", status)
    assert is_fatal(error)
    assert policy().after_failure(error) is None


@pytest.mark.parametrize(
    "error",
    [
        HandshakeError("timeout", 408),
        HandshakeError("too many", 429),
        HandshakeError("busy", 503),
        HandshakeError("bad gateway", 502),
        HandshakeError("redirect", 301),
        HandshakeError("no HTTP answer"),
        ConnectionRefusedError(111, "refused"),
        TimeoutError(),
        ConnectionClosed(1006, "lost during the handshake"),
        None,
    ],
)
def test_other_failed_attempts_are_retried(error: BaseException | None) -> None:
    assert not is_fatal(error)
    assert policy().after_failure(error) == 2.0
    assert RETRY_STATUSES == {408, 429}


# -- properties ---------------------------------------------------------------------

delays = st.floats(min_value=0.001, max_value=100.0, allow_nan=False, allow_infinity=False)


@given(
    initial=delays,
    ratio=st.floats(min_value=1.0, max_value=1000.0),
    factor=st.floats(min_value=1.0, max_value=4.0),
    seed=st.integers(0, 2**32),
    n=st.integers(1, 80),
)
def test_every_delay_is_within_initial_and_maximum(
    initial: float, ratio: float, factor: float, seed: int, n: int
) -> None:
    maximum = initial * ratio
    backoff = Backoff(initial, maximum, factor=factor, rng=random.Random(seed))
    for _ in range(n):
        assert initial <= backoff.next_delay() <= maximum


@given(initial=delays, ratio=st.floats(min_value=1.0, max_value=1000.0), n=st.integers(1, 80))
def test_the_range_never_shrinks_before_jitter(initial: float, ratio: float, n: int) -> None:
    """The ceiling and the floor of attempt k+1 are at least those of attempt k."""
    maximum = initial * ratio
    lows = Backoff(initial, maximum, rng=EndOfRange(high=False))
    highs = Backoff(initial, maximum, rng=EndOfRange(high=True))
    low_seq = [lows.next_delay() for _ in range(n)]
    high_seq = [highs.next_delay() for _ in range(n)]
    assert high_seq == sorted(high_seq)
    assert low_seq == sorted(low_seq)
    assert all(low <= high for low, high in zip(low_seq, high_seq, strict=True))


@given(
    failures=st.integers(0, 50),
    uptime=st.floats(min_value=0.0, max_value=1000.0),
    seed=st.integers(0, 2**32),
)
def test_a_stable_connection_resets_the_backoff_and_a_short_one_does_not(
    failures: int, uptime: float, seed: int
) -> None:
    p = ReconnectPolicy(Backoff(1.0, 30.0, rng=random.Random(seed)), frozenset({1008}))
    for _ in range(failures):
        p.after_failure(OSError())
    p.opened(50.0)
    delay = p.after_close(50.0 + uptime, 1006, by_peer=True)
    assert delay is not None
    if uptime >= STABLE_AFTER:
        assert p.backoff.attempts == 1 and 1.0 <= delay <= 2.0
    else:
        assert p.backoff.attempts == failures + 1
        high = min(30.0, 2.0 ** (failures + 1))
        assert max(1.0, high / 2) <= delay <= high
