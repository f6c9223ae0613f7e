"""wsevents.sync stands on the sans-I/O core alone: no asyncio anywhere in what it runs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import wsevents

SRC = Path(wsevents.__file__).resolve().parent

# Run in a fresh interpreter: the package's __init__ (which re-exports the asyncio API) is
# skipped by registering a bare ``wsevents`` package, so that only what wsevents.sync itself
# imports gets imported. Then a whole exchange runs, server and client, and asyncio must
# still be absent from sys.modules.
PROGRAM = textwrap.dedent(
    """
    import sys, threading, types
    package = types.ModuleType("wsevents")
    package.__path__ = [{src!r}]
    sys.modules["wsevents"] = package
    from wsevents.sync import connect, serve

    def echo(conn):
        for message in conn:
            conn.send(message)

    with serve(echo, "127.0.0.1", 0, ping_interval=0.05) as server:
        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        with connect(f"ws://127.0.0.1:{{server.port}}/", ping_interval=0.05) as conn:
            conn.send("hello")
            assert conn.recv(timeout=5) == "hello"
            assert conn.ping().wait(5)
        server.shutdown()
        thread.join(10)
    loaded = sorted(name for name in sys.modules if name == "asyncio" or name.startswith("asyncio."))
    print("asyncio modules:", loaded)
    sys.exit(1 if loaded else 0)
    """
)


def test_an_exchange_through_wsevents_sync_imports_no_asyncio() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM.format(src=str(SRC))], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "asyncio modules: []" in result.stdout


def test_the_program_would_see_asyncio() -> None:
    """The probe itself can fail: importing the asyncio layer through it is caught."""
    program = PROGRAM.format(src=str(SRC)).replace(
        "from wsevents.sync import connect, serve",
        "from wsevents.sync import connect, serve\nimport wsevents.aio.client",
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "'asyncio'" in result.stdout
