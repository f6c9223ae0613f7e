"""A blocking echo server and client with wsevents.sync: threads, no asyncio.

python samples/sync_echo.py
"""

import threading

from wsevents.sync import Connection, connect, serve


def echo(conn: Connection) -> None:
    """Runs in the connection's own thread; the iteration ends when the client closes."""
    for message in conn:
        conn.send(message)


with serve(echo, "127.0.0.1", 0) as server:
    threading.Thread(target=server.serve_forever).start()
    with connect(f"ws://127.0.0.1:{server.port}/") as conn:
        conn.send("hello")
        print("echo:", conn.recv(timeout=5))
        conn.send(b"\x00\x01\x02")
        print("echo:", conn.recv(timeout=5))
        print("pong:", conn.ping().wait(timeout=5))
    print("closed:", conn.close_code)
# Leaving the with block shuts the server down: serve_forever() returns, its thread ends.
