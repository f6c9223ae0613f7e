"""Streaming a large binary message: OutStream on the sending side, InStream on the receiving side.

python samples/binary_streaming.py
"""

import asyncio
import hashlib

import wsevents

SIZE = 8 * 1024 * 1024  # more than max_buffer_length: a stream is never closed for its size
STEP = 2 * 1024 * 1024  # progress every 2 MiB


async def main() -> None:
    received: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_connection(conn: wsevents.Connection) -> None:
        async def on_binary(stream: wsevents.InStream) -> None:
            digest = hashlib.sha256()
            # What this loop has read, not stream.bytes_received: that counts what arrived from the
            # socket, including bytes the stream still holds, so it runs ahead of the loop.
            read = 0
            async for chunk in stream:
                digest.update(chunk)
                read += len(chunk)
                if read // STEP > (read - len(chunk)) // STEP:  # just passed a 2 MiB mark
                    print(f"  received {read / 2**20:.2f} MiB")
            received.set_result(digest.hexdigest())

        conn.on("binary", on_binary)

    server = await wsevents.create_server(on_connection, max_buffer_length=1 << 20).listen(0, "127.0.0.1")
    sent = hashlib.sha256()
    async with wsevents.connect(f"ws://127.0.0.1:{server.port}/") as client:
        async with client.begin_binary() as out:
            for i in range(SIZE // 65536):
                chunk = bytes([i % 256]) * 65536
                sent.update(chunk)
                await out.write(chunk)  # waits while the receiver is behind
        same = await received == sent.hexdigest()
        print("sha256 matches:", same)
    await server.close()


asyncio.run(main())
