"""Ordinary mistakes with the asyncio manager's coroutines, each reported by mypy --strict."""

from __future__ import annotations

import agentzero.asyncio


async def asyncio_mistakes(sockets: agentzero.asyncio.SocketManager) -> None:
    await sockets.recv_safe("in", timout=1)  # mistake
    await sockets.send_safe(7, "data")  # mistake
    ready: bool = await sockets.engage(timeout=10)  # mistake
    await sockets.send_multipart_safe("out", [b"a"], polling_timeout=10)  # mistake
    sockets.recv_multipart_safe("in", timeout="soon")  # mistake
    async for event in sockets.subscribe("events", keep_polling=True):  # mistake
        print(event.topic, ready)
