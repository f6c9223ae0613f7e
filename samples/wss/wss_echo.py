"""TLS: a wss:// echo server and a client that trusts its self-signed certificate.

python samples/wss/wss_echo.py   (needs the openssl command, to make the certificate)
"""

import asyncio
import ssl
import subprocess
import tempfile
from pathlib import Path

import wsevents


def self_signed(certfile: Path, keyfile: Path) -> None:
    """A certificate for localhost and 127.0.0.1, valid one day, and its key (no passphrase)."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(keyfile), "-out", str(certfile)],
        check=True,
        capture_output=True,
    )


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        certfile, keyfile = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        self_signed(certfile, keyfile)

        def on_connection(conn: wsevents.Connection) -> None:
            conn.on("text", lambda text: conn.send_text(f"secure echo: {text}"))

        server = wsevents.create_server(
            on_connection, secure=True, certfile=str(certfile), keyfile=str(keyfile)
        )
        await server.listen(0, "127.0.0.1")
        # A self-signed certificate is its own authority: the client trusts it as such.
        client_context = ssl.create_default_context(cafile=str(certfile))

    async with wsevents.connect(f"wss://localhost:{server.port}/", ssl=client_context) as client:
        await client.send_text("hello over TLS")
        print(await client.recv())
        print("cipher:", client.transport.get_extra_info("cipher")[0])  # type: ignore[union-attr]
    await server.close()


asyncio.run(main())
