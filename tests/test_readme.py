"""The README's examples run and print what they claim."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def examples() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) == 2, "the README has an events-style and an async-style example"
    return blocks


def run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_events_style_example() -> None:
    out = run(examples()[0])
    assert out.splitlines() == ["new connection to /chat?room=1", "received HELLO"]


def test_async_style_example() -> None:
    out = run(examples()[1])
    assert out.splitlines() == ["hello", "b'\\x00\\x01\\x02'"]
