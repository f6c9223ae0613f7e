"""Every sample under samples/ runs and prints what it promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def run(path: Path) -> list[str]:
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.splitlines()


def test_wss_echo() -> None:
    pytest.importorskip("trustme")  # a dev dependency: installed wherever the tests run
    lines = run(SAMPLES / "wss" / "wss_echo.py")
    assert lines[0] == "secure echo: hello over TLS"
    assert lines[1].startswith("cipher: ")


def test_binary_streaming() -> None:
    lines = run(SAMPLES / "binary_streaming.py")
    assert lines[-1] == "sha256 matches: True"
    assert any("received" in line for line in lines[:-1])


def test_broadcast() -> None:
    lines = run(SAMPLES / "broadcast.py")
    assert lines[:5] == [f"tick {t} delivered to 50 clients" for t in range(5)]
    assert lines[-1] == "every client got every tick, in order"


def test_chat_sample_points_at_the_demo() -> None:
    text = (SAMPLES / "chat" / "README.md").read_text()
    assert "wsevents serve" in text
    assert (SAMPLES.parent / "src" / "wsevents" / "demo" / "static" / "index.html").exists()
