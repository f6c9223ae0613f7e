"""The sans-I/O WebSocket core: bytes in, handler calls and bytes out.

Nothing here imports asyncio, socket or ssl; every rule is tested by feeding bytes.
"""
