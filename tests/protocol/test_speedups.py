"""The compiled mask and the pure one are the same function; `make test` runs the suite on both paths.

``pip install -e .`` (as `make test` does) always builds the C speed-up, so it is in use, unless
WSEVENTS_NO_SPEEDUPS=1 asks for the pure path (the suite's second run).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from wsevents.protocol import _mask


def test_the_speedups_are_in_use_unless_turned_off() -> None:
    if os.environ.get("WSEVENTS_NO_SPEEDUPS"):
        assert not _mask.SPEEDUPS and _mask.mask is _mask.mask_python
    else:
        assert _mask.SPEEDUPS, "the C speed-up was not built: reinstall with `pip install -e .`"
        assert _mask.mask is not _mask.mask_python


def test_env_var_forces_the_pure_path() -> None:
    code = "from wsevents.protocol import _mask; print(_mask.SPEEDUPS, _mask.mask is _mask.mask_python)"
    env = dict(os.environ, WSEVENTS_NO_SPEEDUPS="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


@pytest.mark.parametrize("n", [0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 125, 126, 1000, 65536 + 3])
def test_compiled_mask_matches_python(n: int) -> None:
    # Imported directly: it is built even when WSEVENTS_NO_SPEEDUPS=1 keeps it out of use.
    from wsevents._speedups import mask as c_mask  # type: ignore[import-not-found]

    data = os.urandom(n)
    key = os.urandom(4)
    expected = _mask.mask_python(data, key)
    assert c_mask(data, key) == expected
    assert c_mask(bytearray(data), key) == expected
    assert c_mask(memoryview(data), key) == expected
    with pytest.raises(ValueError):
        c_mask(data, b"abc")
