"""Launching Debian's headless Chromium for the tests (installed by .ci/run; never skipped)."""

from __future__ import annotations

import shutil
from pathlib import Path


def chromium_command(profile: Path, *extra: str) -> list[str]:
    """The command line of a headless Chromium with a fresh ``profile`` and no background traffic."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("chromium is not installed: .ci/run installs Debian's chromium package")
    return [
        path,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        *extra,
    ]
