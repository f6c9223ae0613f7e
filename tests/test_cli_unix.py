"""``wsevents serve --unix PATH``: the demo servers on a Unix socket."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "wsevents"]


def test_serve_on_a_unix_socket_echoes_and_removes_it_on_ctrl_c(sock_path: str) -> None:
    proc = subprocess.Popen(
        [*CLI, "serve", "--echo", "--unix", sock_path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        assert ready, "serve printed nothing"
        banner = proc.stdout.readline()
        assert banner == (
            f"wsevents echo server: listening on the Unix socket {sock_path} "
            f"(WebSocket endpoint ws+unix://{sock_path}:/)\n"
        )
        done = subprocess.run(
            [*CLI, "connect", f"ws+unix://{sock_path}:/", "--wait", "0.5"],
            input="over a socket file\n", capture_output=True, text=True, timeout=20,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["over a socket file"]
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    assert not os.path.exists(sock_path)


def test_serve_unix_errors(sock_path: str) -> None:
    Path(sock_path).write_text("")
    done = subprocess.run([*CLI, "serve", "--unix", sock_path], capture_output=True, text=True, timeout=20)
    assert done.returncode == 3
    assert f"cannot listen on the Unix socket {sock_path}: " in done.stderr
    assert "not a socket" in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run(
        [*CLI, "serve", "--unix", sock_path, "--workers", "2", "--broker", "redis://127.0.0.1:6379/0"],
        capture_output=True, text=True, timeout=20,
    )
    assert done.returncode == 2 and "--unix serves from one process" in done.stderr, done.stderr
