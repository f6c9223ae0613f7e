"""The ``compression`` option: its forms and validation (negotiation and codec: test_deflate.py)."""

from __future__ import annotations

import pytest

from wsevents.protocol.deflate import DeflateConfig


@pytest.mark.parametrize(
    "option",
    [
        {"server_max_window_bits": 16},
        {"client_max_window_bits": 7},
        {"nonsense": 1},
        {"threshold": -1},
        "yes",
    ],
)
def test_bad_compression_options(option: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        DeflateConfig.from_option(option)  # type: ignore[arg-type]


def test_compression_option_forms() -> None:
    assert DeflateConfig.from_option(False) is None
    assert DeflateConfig.from_option(None) is None
    assert DeflateConfig.from_option(True) == DeflateConfig()
    assert DeflateConfig.from_option({"threshold": 0}) == DeflateConfig(threshold=0)
    config = DeflateConfig(level=1)
    assert DeflateConfig.from_option(config) is config
