"""What each ``wsevents`` command does, below the argument parsing of ``wsevents.cli``.

``serve.py``: ``wsevents serve`` and ``wsevents run`` (one process or workers);
``listening.py``: what they say about where they listen, or why they cannot;
``connect.py``: ``wsevents connect``, with ``terminal.py`` for the interactive side.
The exit codes are here, once, for all of them (their meaning is in ``wsevents.cli``).
"""

from __future__ import annotations

__all__ = ["EXIT_OK", "EXIT_CLOSED", "EXIT_USAGE", "EXIT_NETWORK", "EXIT_HANDSHAKE", "EXIT_TLS"]

EXIT_OK, EXIT_CLOSED, EXIT_USAGE, EXIT_NETWORK, EXIT_HANDSHAKE, EXIT_TLS = 0, 1, 2, 3, 4, 5
