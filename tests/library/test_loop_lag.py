"""The asyncio manager never blocks its event loop: a ticker keeps ticking through the slow corners.

A task sleeps 1 ms at a time and records the gaps between its ticks while the
manager rebinds an address right after closing it, connects by host name,
sends multipart messages at the high-water mark (waiting, then timing out),
starts and stops CURVE authentication and closes sockets with queued
messages. The longest gap must stay under 20 ms.
"""

from __future__ import annotations

import asyncio
import time

import pytest
import zmq
import zmq.asyncio

from agentzero.asyncio import SocketManager
from agentzero.util import curve_keypair
from tests.conftest import terminate

LONGEST_GAP = 0.020


async def _ticker(gaps: list[float], stop: asyncio.Event) -> None:
    last = time.monotonic()
    while not stop.is_set():
        await asyncio.sleep(0.001)
        now = time.monotonic()
        gaps.append(now - last)
        last = now


async def _slow_corners(sockets: SocketManager) -> None:
    # rebind an address right after closing it (libzmq frees the listener in the background)
    for _ in range(20):
        sockets.create("server", zmq.PULL)
        _, address = sockets.bind_to_random_port("server", zmq.POLLIN, local_address="tcp://127.0.0.1")
        sockets.close("server", linger=0)
        sockets.ensure_and_bind("server", zmq.PULL, address, zmq.POLLIN)
        sockets.close("server", linger=0)
        await asyncio.sleep(0)
    # connect by host name
    sockets.create("sink", zmq.PULL)
    _, address = sockets.bind_to_random_port("sink", 0, local_address="tcp://127.0.0.1")
    port = address.rsplit(":", 1)[1]
    sockets.ensure_and_connect("named", zmq.PUSH, f"tcp://localhost:{port}", 0)
    assert await sockets.send_safe("named", "resolved", timeout=1)
    # multipart at the high-water mark: nobody reads "full-in", so the sends wait, then give up
    sockets.create("full-in", zmq.PULL)
    sockets.set_socket_option("full-in", zmq.RCVHWM, 2)
    sockets.bind("full-in", "inproc://loop-lag-full", 0)
    sockets.create("full-out", zmq.PUSH)
    sockets.set_socket_option("full-out", zmq.SNDHWM, 2)
    sockets.connect("full-out", "inproc://loop-lag-full", 0)
    sent = 0
    for _ in range(50):
        if not await sockets.send_multipart_safe("full-out", [b"head", b"x" * 1000], timeout=0.05):
            break
        sent += 1
    assert sent < 50  # the high-water mark was reached: the last send waited and timed out
    # start and stop CURVE authentication, several times
    public, _ = curve_keypair()
    for _ in range(5):
        sockets.start_authenticator([public])
        await asyncio.sleep(0.002)
        sockets._authenticator.stop()
        sockets._authenticator = None
    # close sockets with queued messages (the default linger)
    for number in range(5):
        name = f"queued-{number}"
        sockets.ensure_and_connect(name, zmq.PUSH, f"tcp://127.0.0.1:{port}", 0)
        await sockets.send_safe(name, {"queued": number}, timeout=0.1)
        sockets.close(name, linger=200)  # delivered in the background, or dropped after 200 ms
    sockets.close("named", linger=0)
    sockets.close("sink", linger=0)


@pytest.mark.timeout(60)
def test_the_asyncio_manager_never_blocks_its_event_loop():
    context = zmq.asyncio.Context()
    sockets = SocketManager(context=context, timeout=5)

    async def scenario() -> list[float]:
        gaps: list[float] = []
        stop = asyncio.Event()
        ticking = asyncio.create_task(_ticker(gaps, stop))
        await asyncio.sleep(0.01)
        try:
            await _slow_corners(sockets)
        finally:
            stop.set()
            await ticking
        return gaps

    try:
        gaps = asyncio.run(scenario())
    finally:
        sockets.close_all(linger=0)
        terminate(context)
    assert len(gaps) > 50
    assert max(gaps) < LONGEST_GAP, f"the loop stalled for {max(gaps) * 1000:.1f} ms"
