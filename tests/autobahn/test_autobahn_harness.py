"""The harness that runs kosoku: it never leaves a kosoku process behind."""

from __future__ import annotations

import asyncio
import sys

import pytest
from autobahn_suite import _finish

# Stands in for a kosoku run that goes on (it only sleeps).
LONG_RUN = [sys.executable, "-c", "import time; time.sleep(60)"]


async def start_long_run() -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *LONG_RUN, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )


async def test_a_cancelled_wait_kills_the_run() -> None:
    # What happens to one run of the server test's gather when the other fails.
    proc = await start_long_run()
    try:
        waiting = asyncio.ensure_future(_finish(proc, 60))
        await asyncio.sleep(0.1)
        assert not waiting.done()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert proc.returncode is not None, "the run outlived the cancelled wait"
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_run_past_its_timeout_is_killed_and_reported() -> None:
    proc = await start_long_run()
    try:
        with pytest.raises(AssertionError, match="did not finish within 0 s"):
            await _finish(proc, 0.2)
        assert proc.returncode is not None
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
