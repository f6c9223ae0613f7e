"""The interactive side of ``wsevents connect``: stdin read in a thread, and the terminal."""

from __future__ import annotations

import asyncio
from typing import Any, TextIO

__all__ = ["Terminal", "read_lines"]


def read_lines(loop: asyncio.AbstractEventLoop, stdin: TextIO, queue: asyncio.Queue[str | None],
               prompt: str) -> None:
    """Read stdin in a thread (works for pipes and TTYs alike; readline gives history on a TTY)."""
    interactive = stdin.isatty()
    try:
        while True:
            if interactive:
                try:
                    line = input(prompt)
                except EOFError:
                    break
            else:
                line = stdin.readline()
                if not line:
                    break
                line = line.rstrip("\r\n")
            loop.call_soon_threadsafe(queue.put_nowait, line)
    finally:
        loop.call_soon_threadsafe(queue.put_nowait, None)


class Terminal:
    """What ``connect`` does to a terminal: line editing and history with readline, a ``> ``
    prompt that incoming messages (shown as ``< message``) do not garble, and the terminal's
    settings restored on exit however the session ends (readline changes them while it reads)."""

    def __init__(self, stdin: TextIO, stdout: TextIO) -> None:
        self.stdout = stdout
        self.saved: list[Any] | None = None
        self.readline: Any = None
        self.prompt = ""
        if not stdin.isatty():
            return
        try:
            import termios

            self.saved = termios.tcgetattr(stdin.fileno())
            self.fd = stdin.fileno()
        except (ImportError, OSError, ValueError):  # pragma: no cover - not a POSIX terminal
            pass
        try:
            import readline  # line editing and history for input()

            self.readline = readline
        except ImportError:  # pragma: no cover - Python built without readline
            pass
        if stdout.isatty():
            self.prompt = "> "

    def show(self, text: str) -> None:
        """Print a received message above the line being typed."""
        if not self.prompt:
            self.stdout.write(text + "\n")
        else:
            typed = self.readline.get_line_buffer() if self.readline is not None else ""
            self.stdout.write(f"\r\x1b[K< {text}\n{self.prompt}{typed}")
        self.stdout.flush()

    def leave(self) -> None:
        """Clear the prompt line and give the terminal back as it was."""
        if self.prompt:
            self.stdout.write("\r\x1b[K")
            self.stdout.flush()
        if self.saved is not None:
            import termios

            try:
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
            except OSError:  # pragma: no cover - the terminal went away
                pass
