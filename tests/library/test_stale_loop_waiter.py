"""A task left waiting when its event loop was closed does not slow down, or break, the loops after it."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from typing import Any

import pytest
import zmq
import zmq.asyncio

from agentzero.asyncio import SocketManager
from agentzero.flavours.aio import ASYNCIO_FALLBACK_SLICE
from tests.conftest import terminate

#: a message that arrives while a task waits is received well within this (the fallback slice is 1 s)
PROMPT = ASYNCIO_FALLBACK_SLICE / 4


@pytest.fixture
def pair():
    """A manager with a PULL socket bound on tcp, and an outside PUSH socket connected to it."""
    actx = zmq.asyncio.Context()
    manager = SocketManager(context=actx, timeout=5)
    manager.create("in", zmq.PULL)
    manager.bind("in", "tcp://127.0.0.1:*", zmq.POLLIN)
    outside = zmq.Context()
    push = outside.socket(zmq.PUSH)
    push.connect(manager.addresses["in"])
    yield manager, push
    push.close(linger=0)
    terminate(outside)
    manager.close_all(linger=0)
    terminate(actx)


def _leave_a_waiter_in_a_closed_loop(manager: SocketManager, call: Any) -> Any:
    """Start ``call`` on a ``new_event_loop()`` and close that loop while the task still waits."""
    loop = asyncio.new_event_loop()
    task = loop.create_task(call())
    loop.run_until_complete(asyncio.sleep(0.05))
    assert not task.done()
    loop.close()
    return task


def _complaints(loop: asyncio.AbstractEventLoop, reports: list[str]) -> None:
    def handler(_: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        reports.append(f"{context.get('message')}: {context.get('exception')!r}")

    loop.set_exception_handler(handler)


async def _receive_three(manager: SocketManager, push: zmq.Socket[Any], reports: list[str]) -> list[float]:
    """Receive three messages sent from outside while the task waits; return how long each took."""
    _complaints(asyncio.get_running_loop(), reports)
    delays = []
    for number in range(3):
        threading.Timer(0.02, push.send_json, args=(number,)).start()
        started = time.monotonic()
        assert await manager.recv_safe("in", timeout=5) == number
        delays.append(time.monotonic() - started)
    return delays


@pytest.mark.parametrize("collect", [False, True], ids=["task-kept", "task-collected"])
def test_a_waiter_whose_loop_was_closed_does_not_delay_later_loops(pair, collect, caplog):
    manager, push = pair
    left = _leave_a_waiter_in_a_closed_loop(manager, lambda: manager.recv_safe("in", timeout=30))
    if collect:
        del left
        gc.collect()
    reports: list[str] = []
    for _ in range(3):
        delays = asyncio.run(_receive_three(manager, push, reports))
        assert max(delays) < PROMPT, delays
    assert reports == []
    assert "Event loop is closed" not in caplog.text


def test_an_engage_left_in_a_closed_loop_does_not_delay_later_loops(pair, caplog):
    manager, push = pair
    _leave_a_waiter_in_a_closed_loop(manager, lambda: manager.engage(timeout=30_000))
    reports: list[str] = []

    async def engage_then_receive() -> float:
        _complaints(asyncio.get_running_loop(), reports)
        threading.Timer(0.02, push.send_json, args=("hello",)).start()
        started = time.monotonic()
        assert await manager.engage(timeout=5000) == {manager.sockets["in"]: zmq.POLLIN}
        elapsed = time.monotonic() - started
        assert await manager.recv_safe("in", timeout=0) == "hello"
        return elapsed

    for _ in range(3):
        assert asyncio.run(engage_then_receive()) < PROMPT
    assert reports == []
    assert "Event loop is closed" not in caplog.text
