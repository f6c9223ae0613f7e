"""samples/sync_echo.py runs and prints what it promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "sync_echo.py"


def test_sync_echo_sample() -> None:
    done = subprocess.run([sys.executable, str(SAMPLE)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == [
        "echo: hello",
        "echo: b'\\x00\\x01\\x02'",
        "pong: True",
        "closed: 1000",
    ]
