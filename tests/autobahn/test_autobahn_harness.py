"""The harness that runs kosoku: it never leaves a kosoku process behind."""

from __future__ import annotations

import asyncio
import sys

import pytest
from autobahn_suite import Verdict, _finish, check

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


def verdict(case: str, behavior: str = "OK", close: str = "OK") -> Verdict:
    return Verdict(case, behavior, close, f"result of {case}", f"close of {case}")


def test_a_failure_names_every_case_that_did_not_pass() -> None:
    verdicts = {
        v.case: v
        for v in (
            verdict("1.1.1"),
            verdict("5.15", "NON-STRICT"),
            verdict("6.4.1", "FAILED"),
            verdict("7.1.5", close="UNCLEAN"),
            verdict("3.2", "NON-STRICT"),
        )
    }
    with pytest.raises(AssertionError) as info:
        check(verdicts, allowed_non_strict={"3.2"})
    lines = str(info.value).splitlines()
    assert lines[0] == "3 Autobahn case(s) not passed:"
    assert [line.partition(":")[0] for line in lines[1:]] == ["6.4.1", "7.1.5", "5.15"]
    assert "result of 6.4.1" in lines[1]
    check({"3.2": verdicts["3.2"], "1.1.1": verdicts["1.1.1"]}, allowed_non_strict={"3.2"})
