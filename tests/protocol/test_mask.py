"""wsevents.protocol._mask: XOR masking (RFC 6455 section 5.3)."""

from __future__ import annotations

import pytest

from helpers import naive_mask
from wsevents.protocol import _mask
from wsevents.protocol._mask import mask, mask_python

KEYS = [
    b"\x00\x00\x00\x00",
    b"\xff\xff\xff\xff",
    b"\x37\xfa\x21\x3d",
    b"\x01\x02\x03\x04",
    b"\x80\x00\x00\x01",
]

DATA = bytes((i * 37 + 11) & 0xFF for i in range(71))


@pytest.mark.parametrize("key", KEYS, ids=lambda k: k.hex())
def test_mask_python_matches_naive_for_every_length(key: bytes) -> None:
    for n in range(71):
        data = DATA[:n]
        assert mask_python(data, key) == naive_mask(data, key), n


@pytest.mark.parametrize("key", KEYS, ids=lambda k: k.hex())
def test_mask_python_on_memoryview_and_bytearray(key: bytes) -> None:
    for n in range(71):
        expected = naive_mask(DATA[:n], key)
        assert mask_python(memoryview(DATA)[:n], key) == expected
        assert mask_python(bytearray(DATA[:n]), key) == expected


@pytest.mark.parametrize("start", range(5))
def test_mask_python_on_a_memoryview_slice_not_at_the_start(start: int) -> None:
    # A slice of a bigger buffer, as the parser hands it (offset into its buffer).
    key = b"\x37\xfa\x21\x3d"
    view = memoryview(DATA)[start : start + 40]
    assert mask_python(view, key) == naive_mask(DATA[start : start + 40], key)


def test_mask_python_returns_bytes_of_the_same_length() -> None:
    # Leading/trailing zero bytes must survive the big-integer round trip.
    key = b"\x00\x00\x00\x00"
    data = b"\x00\x00abc\x00\x00"
    out = mask_python(data, key)
    assert type(out) is bytes
    assert out == data
    assert mask_python(b"", b"\x01\x02\x03\x04") == b""


@pytest.mark.parametrize("key", KEYS, ids=lambda k: k.hex())
def test_masking_twice_gives_the_data_back(key: bytes) -> None:
    assert mask_python(mask_python(DATA, key), key) == DATA


def test_rfc6455_example() -> None:
    # RFC 6455 section 5.7: "Hello" masked with 37 fa 21 3d.
    assert mask_python(b"Hello", b"\x37\xfa\x21\x3d") == bytes.fromhex("7f9f4d5158")


@pytest.mark.parametrize("key", KEYS, ids=lambda k: k.hex())
def test_public_mask_agrees_with_the_python_fallback(key: bytes) -> None:
    for n in (0, 1, 3, 4, 5, 70):
        assert mask(DATA[:n], key) == mask_python(DATA[:n], key)
        assert mask(memoryview(DATA)[:n], key) == mask_python(DATA[:n], key)


def test_mask_is_one_of_the_two_builds() -> None:
    assert _mask.mask is mask_python or getattr(_mask.mask, "__module__", "").startswith("wsevents._speedups")
