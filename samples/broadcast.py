"""Broadcasting: one server pushes a ticker to many clients; the frame is serialised once.

python samples/broadcast.py
"""

import asyncio

import wsevents

CLIENTS = 50
TICKS = 5


async def main() -> None:
    server = await wsevents.create_server(compression=False).listen(0, "127.0.0.1")
    clients = [await wsevents.connect(f"ws://127.0.0.1:{server.port}/") for _ in range(CLIENTS)]
    while len(server.connections) < CLIENTS:
        await asyncio.sleep(0.01)
    for tick in range(TICKS):
        delivered = server.broadcast(f"tick {tick}")
        print(f"tick {tick} delivered to {delivered} clients")
    for client in clients:
        assert [await client.recv() for _ in range(TICKS)] == [f"tick {t}" for t in range(TICKS)]
    print("every client got every tick, in order")
    for client in clients:
        await client.close()
    await server.close()


asyncio.run(main())
