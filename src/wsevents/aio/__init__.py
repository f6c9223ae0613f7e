"""The asyncio layer: sockets, TLS, timers and flow control around the sans-I/O core."""
