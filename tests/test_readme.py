"""The README's examples run and print what they claim, and its links lead somewhere in the repository."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


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


def without_code(markdown: str) -> str:
    return re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M)


def anchors(page: Path) -> set[str]:
    """The anchors GitHub makes for the headings of ``page``."""
    headings = re.findall(r"^#+ (.+)$", without_code(page.read_text()), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_links_stay_in_the_repository() -> None:
    """Every relative link of the shipped Markdown names a file of this repository (the README once
    pointed at an API contract outside it) and, with ``#``, a heading of that file."""
    pages = [README, *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "samples").rglob("*.md"))]
    checked = 0
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", without_code(page.read_text())):
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            assert linked.is_relative_to(ROOT) and linked.exists(), f"{page.name}: {target}"
            if anchor:
                assert anchor in anchors(linked), f"{page.name}: {target}"
            checked += 1
    assert checked >= 10
