"""A blocking echo server on the sans-I/O protocol objects alone: plain sockets, no asyncio.

python samples/sans_io_echo.py [PORT]

All the I/O is here and it is short: read from the socket, hand the bytes to a
protocol object, write what it gives back. ServerHandshake does the opening
handshake, WebSocketCore the frames (pings answered, closes echoed, rules
enforced); neither calls this code, it pulls their events. One connection at a
time keeps it readable; wsevents.sync is the full version of this loop
(a thread per connection, timeouts, the server's hooks).

Only the ``import wsevents`` of the package itself loads asyncio (its
``__init__`` re-exports the asyncio API); tests/test_samples.py runs this file
with that ``__init__`` skipped and checks that asyncio is never imported.
"""

import socket
import sys

from wsevents.protocol.core import WebSocketCore
from wsevents.protocol.events import BINARY, TEXT
from wsevents.protocol.opening import HandshakeState, ServerHandshake


def receive(sock: socket.socket, protocol: ServerHandshake | WebSocketCore) -> None:
    """One read from the socket into ``protocol``: bytes, or the end of the peer's side."""
    data = sock.recv(65536)
    if data:
        protocol.receive_data(data)
    else:
        protocol.receive_eof()


def handshake(sock: socket.socket) -> bytes | None:
    """Answer the upgrade request; the bytes that followed it (the first frames), or None."""
    opening = ServerHandshake()
    while opening.state is HandshakeState.READING:
        receive(sock, opening)
    # The server's hooks (verify_client, select_protocol) would answer here; this one takes all.
    if opening.state is HandshakeState.UPGRADE and opening.admit(full=False):
        opening.accept(None)
    sock.sendall(opening.data_to_send())  # the 101, or the refusal
    return opening.leftover if opening.state is HandshakeState.ACCEPTED else None


def echo(sock: socket.socket, first_frames: bytes) -> None:
    """Send each message back until the client closes (or breaks a rule)."""
    core = WebSocketCore(client=False, max_message_size=1 << 20)
    core.receive_data(first_frames)
    pieces: list[bytes] = []
    while True:
        for event in core.events_received():
            if event[0] == TEXT:
                core.send_text(event[1])
            elif event[0] == BINARY:
                pieces.append(bytes(event[1]))  # a view into the core's buffer: copy it
                if event[2]:  # the message's last piece
                    core.send_binary(b"".join(pieces))
                    pieces.clear()
            # PING: the core queued its pong; CLOSE or FAIL: it queued the close frame.
        for chunk in core.data_to_send():
            sock.sendall(chunk)
        if not core.reading:  # the closing handshake is done: the server closes TCP first
            return
        receive(sock, core)


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    with socket.create_server(("127.0.0.1", port)) as listener:
        print(f"sans-I/O echo server: ws://127.0.0.1:{listener.getsockname()[1]}/", flush=True)
        while True:
            sock, _ = listener.accept()
            with sock:
                try:
                    first_frames = handshake(sock)
                    if first_frames is not None:
                        echo(sock, first_frames)
                except ConnectionError:  # the client went away without a close: serve the next one
                    pass


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C: stop without a traceback
        pass
