"""The docs are true: every Python example in docs/*.md runs, and the API reference is current
and covers every public name."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import wsevents

DOCS = Path(__file__).resolve().parents[1] / "docs"
EXAMPLES = [
    (path.name, i, code)
    for path in sorted(DOCS.glob("*.md"))
    for i, code in enumerate(re.findall(r"```python\n(.*?)```", path.read_text(), re.S))
]


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 6


@pytest.mark.parametrize(("name", "index", "code"), EXAMPLES, ids=[f"{n}-{i}" for n, i, _ in EXAMPLES])
def test_example_runs(name: str, index: int, code: str) -> None:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip(), "an example shows what it does"


def test_guide_examples_print_what_their_comments_say() -> None:
    outputs = {
        i: subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
        for name, i, code in EXAMPLES
        if name == "guide.md"
    }
    assert outputs[0].splitlines() == ["echo: hi"]
    assert outputs[1].splitlines() == ["echo: hi"]
    assert outputs[2].splitlines() == ["received 1048576 bytes"]
    assert outputs[3].splitlines() == ["agreed on chat.v1", "Invalid handshake: no protocol was negotiated"]
    assert outputs[4].splitlines() == ["refused with 401", "closed with 1009"]
    assert outputs[5].splitlines() == [
        "delivered to 3",
        "['news for everyone', 'news for everyone', 'news for everyone']",
        "b'hello over HTTP\\n'",
    ]


def test_reference_is_current_and_complete() -> None:
    sys.path.insert(0, str(DOCS))
    try:
        import gen_reference
    finally:
        sys.path.remove(str(DOCS))
    text = gen_reference.render()
    assert (DOCS / "reference.md").read_text() == text, "run: python docs/gen_reference.py"
    for name in wsevents.__all__:
        assert f"`wsevents.{name}`" in text, name
        obj = getattr(wsevents, name)
        if inspect.isclass(obj) and not issubclass(obj, (BaseException, int)):
            for member, value in vars(obj).items():
                if not member.startswith("_") and (callable(value) or isinstance(value, property)):
                    if member in ("CONNECTING", "OPEN", "CLOSING", "CLOSED"):
                        continue
                    assert f"`{name}.{member}" in text, f"{name}.{member}"


def test_readme_links_the_docs() -> None:
    readme = (DOCS.parent / "README.md").read_text()
    assert "docs/guide.md" in readme and "docs/reference.md" in readme
