"""TLS: a wss:// echo server and a client that trusts a certificate authority made at run time.

pip install trustme
python samples/wss/wss_echo.py
"""

import asyncio
import ssl
import tempfile
from pathlib import Path

import trustme

import wsevents


async def main() -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    with tempfile.TemporaryDirectory() as tmp:
        certfile, keyfile = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert.cert_chain_pems[0].write_to_path(str(certfile))
        cert.private_key_pem.write_to_path(str(keyfile))

        def on_connection(conn: wsevents.Connection) -> None:
            conn.on("text", lambda text: conn.send_text(f"secure echo: {text}"))

        server = wsevents.create_server(
            on_connection, secure=True, certfile=str(certfile), keyfile=str(keyfile)
        )
        await server.listen(0, "127.0.0.1")

    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with wsevents.connect(f"wss://localhost:{server.port}/", ssl=client_context) as client:
        await client.send_text("hello over TLS")
        print(await client.recv())
        print("cipher:", client.transport.get_extra_info("cipher")[0])  # type: ignore[union-attr]
    await server.close()


asyncio.run(main())
