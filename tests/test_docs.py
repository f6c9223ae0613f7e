"""The docs are true: every Python example in docs/*.md runs, and the API reference is current
and covers every public name."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import wsevents
from wsevents.aio.options import ClientOptions, ServerOptions

DOCS = Path(__file__).resolve().parents[1] / "docs"
EXAMPLES = [
    (path.name, i, code)
    for path in sorted(DOCS.glob("*.md"))
    for i, code in enumerate(re.findall(r"```python\n(.*?)```", path.read_text(), re.S))
]


@functools.cache
def run_example(code: str) -> subprocess.CompletedProcess[str]:
    """Run an example as its own program (once, however many tests look at it)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize(("name", "index", "code"), EXAMPLES, ids=[f"{n}-{i}" for n, i, _ in EXAMPLES])
def test_example_runs(name: str, index: int, code: str) -> None:
    done = run_example(code)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip(), "an example shows what it does"


def test_guide_examples_print_what_their_comments_say() -> None:
    outputs = {i: run_example(code).stdout for name, i, code in EXAMPLES if name == "guide.md"}
    assert outputs[0].splitlines() == ["echo: hi"]
    assert outputs[1].splitlines() == ["echo: hi"]
    assert outputs[2].splitlines() == ["received 1048576 bytes"]
    assert outputs[3].splitlines() == ["agreed on chat.v1", "Invalid handshake: no protocol was negotiated"]
    secure, refused = outputs[4].splitlines()
    assert secure == "secure echo: hi"
    assert re.fullmatch("refused: self[- ]signed certificate", refused), refused  # OpenSSL 3 / 1.1
    assert outputs[5].splitlines() == ["refused with 401", "closed with 1009"]
    assert outputs[6].splitlines() == [
        "delivered to 3",
        "['news for everyone', 'news for everyone', 'news for everyone']",
        "b'hello over HTTP\\n'",
    ]
    log = outputs[7].splitlines()
    assert re.fullmatch(r"INFO wsevents: listening on 127\.0\.0\.1 port \d+", log[0])
    assert re.fullmatch(r"INFO wsevents: connection from \('127\.0\.0\.1', \d+\) to /", log[1])
    assert "DEBUG wsevents: <Connection server '/' OPEN> received text message of 2 bytes" in log
    assert "DEBUG wsevents: <Connection client '/' OPEN> sent text message of 2 characters" in log


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


def reference_text() -> str:
    return (DOCS / "reference.md").read_text()


async def test_reference_covers_every_public_attribute_of_live_objects() -> None:
    """Instance attributes are invisible to ``vars(cls)``: look at real objects instead."""
    arrived: asyncio.Future[tuple[wsevents.Connection, wsevents.InStream]] = (
        asyncio.get_running_loop().create_future()
    )

    def on_connection(conn: wsevents.Connection) -> None:
        def on_binary(stream: wsevents.InStream) -> None:
            if not arrived.done():
                arrived.set_result((conn, stream))

        conn.on("binary", on_binary)

    server = await wsevents.create_server(on_connection).listen(0, "127.0.0.1")
    try:
        async with wsevents.connect(f"ws://127.0.0.1:{server.port}/") as client:
            out = client.begin_binary()
            await out.end(b"x")
            accepted, stream = await asyncio.wait_for(arrived, 5)
            objects: list[tuple[str, object]] = [
                ("Server", server),
                ("Connection", accepted),
                ("Connection", client),
                ("InStream", stream),
                ("OutStream", out),
                ("HandshakeError", wsevents.HandshakeError("refused", 403)),
                ("ProtocolError", wsevents.ProtocolError("bad", 1002)),
                ("MessageTooBig", wsevents.MessageTooBig("big")),
                ("ConnectionClosed", wsevents.ConnectionClosed(1000, "bye")),
            ]
            text = reference_text()
            for name, obj in objects:
                for attr in vars(obj):
                    if not attr.startswith("_"):
                        assert f"### `{name}.{attr}`" in text, f"{name}.{attr} is not in docs/reference.md"
    finally:
        await server.close(graceful=True)


def test_reference_lists_every_option() -> None:
    text = reference_text()
    for cls in (ServerOptions, ClientOptions):
        for field in dataclasses.fields(cls):
            if not field.name.startswith("_"):
                assert f"| `{field.name}` |" in text, field.name


def test_examples_need_nothing_but_wsevents() -> None:
    """An example must run where ``make demo`` installed wsevents alone (the TLS one needed trustme)."""
    for name, index, code in EXAMPLES:
        for module in re.findall(r"^(?:import|from) (\w+)", code, re.M):
            assert module == "wsevents" or module in sys.stdlib_module_names, (name, index, module)


def test_install_commands_install_from_a_checkout() -> None:
    """wsevents is not on PyPI: a ``pip install`` of it in the docs names a path, never the bare name."""
    root = DOCS.parent
    pages = [root / "README.md", *sorted(DOCS.glob("*.md")), *sorted((root / "samples").rglob("*.md"))]
    commands = [(page.name, args) for page in pages for args in re.findall(r"pip install ([^`\n#]*)",
                                                                            page.read_text())]
    assert any("-e ." in args for _, args in commands), "the docs say how to install from a checkout"
    for page, args in commands:
        for arg in args.split():
            assert not re.fullmatch(r"['\"]?wsevents(\[[\w,]+\])?['\"]?", arg), (page, args)


def test_readme_links_the_docs() -> None:
    readme = (DOCS.parent / "README.md").read_text()
    assert "docs/guide.md" in readme and "docs/reference.md" in readme
