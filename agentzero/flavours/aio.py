"""The asyncio flavour: await the socket's descriptor with the running loop's reader and a timer.

The turn-taking is :mod:`agentzero.flavours.cooperative`'s; this module
supplies asyncio's primitives: a future to park on, ``loop.add_reader`` on
the descriptor, ``call_later`` and ``call_soon``; and :func:`adrive`, which
awaits the steps of a call that must wait.

The reader watches a duplicate of the descriptor (``os.dup``): asyncio keeps
one reader per descriptor number, and ``zmq.asyncio`` registers its own on
the socket's descriptor; watching a duplicate leaves that one untouched, so a
socket of this manager can still be awaited with ``zmq.asyncio``'s own calls.
A manager may move to another loop of its thread (a second ``asyncio.run``)
between calls: the reader follows it, and a waiter whose loop was closed
while it waited is dropped the next time the socket is looked at.
"""

from __future__ import annotations

import asyncio
import os
import time
import types
from typing import Any, Callable, Generator

from agentzero.flavours.base import driving
from agentzero.flavours.cooperative import FALLBACK_SLICE, Cooperative
from agentzero.manager.table import SocketRecord
from agentzero.manager.turns import SLICE_ENDED

#: the longest a waiting task trusts the edge-triggered descriptor, in seconds
ASYNCIO_FALLBACK_SLICE = FALLBACK_SLICE
#: the longest ``bind`` waits, holding the loop, for an address this manager just released
ASYNCIO_REBIND_GRACE = 0.01


class _Watch:
    """The reader watching a duplicate of one socket's descriptor, in one loop."""

    __slots__ = ("active", "fd", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        self.loop = loop
        self.fd = fd
        self.active = False


def _settle(future: asyncio.Future[str], outcome: str) -> None:
    if not future.done():
        future.set_result(outcome)


@types.coroutine
def adrive(steps: Any) -> Generator[Any, Any, Any]:
    """Await the ``steps`` of a call that must wait to their end; return the call's result.

    The loop is :func:`agentzero.flavours.base.driving`'s, each wait awaited.
    """
    return (yield from driving(steps, awaiting=True))


class AsyncioFlavour(Cooperative):
    """Await the socket; see :mod:`agentzero.flavours.cooperative` and the module's text."""

    name = "asyncio"
    rebind_grace = ASYNCIO_REBIND_GRACE

    async def wait(self, record: SocketRecord, mechanism: int, seconds: float, slice_ms: float) -> bool:
        """Wait up to ``seconds`` for the socket to be ready for ``mechanism``, letting other tasks run."""
        return bool(await adrive(self.wait_steps(record, mechanism, seconds, slice_ms)))

    async def poll(self, items: list[tuple[SocketRecord, int]], timeout_ms: float) -> list[tuple[Any, int]]:
        """Wait up to ``timeout_ms`` for any of ``(record, mechanism)``; return ``(socket, events)`` ready."""
        ready: list[tuple[Any, int]] = await adrive(self.poll_steps(items, timeout_ms))
        return ready

    async def park(self, handle: asyncio.Future[str], seconds: float) -> str:
        timer = handle.get_loop().call_later(seconds, _settle, handle, SLICE_ENDED)
        try:
            return await handle
        finally:
            timer.cancel()

    def resolve_soon(self, resolve: Callable[[], Any], done: Callable[[Any], None]) -> bool:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop to block
            return False
        loop.run_in_executor(None, resolve).add_done_callback(done)
        return True

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds``, letting other tasks run (a send that a ready socket refused)."""
        await asyncio.sleep(seconds)

    def nap(self, seconds: float) -> None:
        # only bind's rebind grace naps, for at most ASYNCIO_REBIND_GRACE in all
        time.sleep(min(seconds, ASYNCIO_REBIND_GRACE))

    # -- asyncio's primitives ---------------------------------------------------------------------

    def _new_handle(self) -> asyncio.Future[str]:
        return asyncio.get_running_loop().create_future()

    def _fire(self, handle: asyncio.Future[str], outcome: str) -> None:
        if not handle.done() and not handle.get_loop().is_closed():
            handle.set_result(outcome)

    def _wake(self, record: SocketRecord, ready: int) -> None:
        waiters = record.waiters
        if any(_stale(sleeper) for sleeper in waiters):
            # parked in a loop that was closed under it: that task never runs again
            waiters[:] = [sleeper for sleeper in waiters if not _stale(sleeper)]
        super()._wake(record, ready)

    def _watch(self, record: SocketRecord) -> None:
        loop = asyncio.get_running_loop()
        watch: _Watch | None = record.watcher
        if watch is not None and watch.loop is not loop:
            # the manager moved to another loop (a second asyncio.run): follow it
            self._unwatch(record)
            watch.loop = loop
        if watch is None:
            # the socket is alive (its EVENTS were just read), so record.fd is still its descriptor
            watch = record.watcher = _Watch(loop, os.dup(record.fd))
        if not watch.active:
            loop.add_reader(watch.fd, self._on_descriptor, record)
            watch.active = True

    def _unwatch(self, record: SocketRecord) -> None:
        watch: _Watch = record.watcher
        if watch.active:
            watch.active = False
            if not watch.loop.is_closed():
                watch.loop.remove_reader(watch.fd)

    def _drop_watch(self, record: SocketRecord) -> None:
        self._unwatch(record)
        os.close(record.watcher.fd)
        record.watcher = None

    def _soon(self, callback: Callable[[SocketRecord], None], record: SocketRecord) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a coroutine closed outside its loop (garbage collected): nobody to tell
            return
        loop.call_soon(callback, record)


def _stale(sleeper: Any) -> bool:
    handle = sleeper.handle
    return handle is not None and handle.get_loop().is_closed()
