"""A server process of a cluster, for the two-process test: ``python peer.py REDIS_URL``.

It prints its port, then obeys its clients: ``join ROOM`` (answered "joined ROOM") and
``publish ROOM TEXT``.
"""

from __future__ import annotations

import sys

import wsevents


def serve(conn: wsevents.Connection) -> None:
    def on_text(text: str) -> None:
        verb, _, rest = text.partition(" ")
        if verb == "join":
            conn.join(rest)
            conn.send_text(f"joined {rest}")
        elif verb == "publish":
            room, _, message = rest.partition(" ")
            assert conn.server is not None
            conn.server.publish(room, message)

    conn.on("text", on_text)


def main() -> None:
    server = wsevents.create_server(serve, broker=sys.argv[1])
    server.listen(0, "127.0.0.1", lambda: print(server.port, flush=True))
    wsevents.run()


if __name__ == "__main__":
    main()
