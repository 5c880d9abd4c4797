"""The asyncio strategy of the waiting layer (see :mod:`agentzero.waiting`).

A coroutine first tries its operation without blocking; only when ZeroMQ
says "not now" does it come here and await the socket. The socket's
descriptor (``zmq.FD``) is edge-triggered: it becomes readable when the
socket's ``EVENTS`` may have changed, and whoever touches the socket may
consume that signal. So, as in :class:`~agentzero.waiting.GreenWaiting`, the
tasks waiting on a socket are listed on its record, one reader callback per
socket (``loop.add_reader``) wakes them, and after every operation through
the manager the socket's ``EVENTS`` are read again and the next waiter whose
condition now holds is woken: one per direction, so 200 tasks waiting on one
socket do not stampede, and a task woken for a message it then does not take
(it was cancelled, or timed out) hands the turn on to the next.

The reader watches a duplicate of the descriptor (``os.dup``): asyncio keeps
one reader per descriptor number, and ``zmq.asyncio`` registers its own on
the socket's descriptor; watching a duplicate leaves that one untouched, so
a socket of this manager can still be awaited with ``zmq.asyncio``'s own calls.
An operation made on the socket behind the manager's back can consume an
edge; a waiter then notices within :data:`ASYNCIO_FALLBACK_SLICE` seconds.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import OrderedDict
from typing import Any

import zmq

from agentzero._backend import CLOSED_ERRNOS, POLLIN, POLLOUT, events
from agentzero.errors import SocketClosed
from agentzero.records import ManagerState, SocketRecord
from agentzero.waiting import (
    Waiting,
    check_mechanism,
    check_milliseconds,
    closed_error,
    forget_closed_sockets,
    wait_arguments,
)

#: the longest a waiting task trusts the edge-triggered descriptor, in seconds
ASYNCIO_FALLBACK_SLICE = 1.0

_monotonic = time.monotonic
_WOKEN = "woken"
_CLOSED = "closed"
_SLICE_ENDED = "slice ended"


class _Sleeper:
    """One task (or one :meth:`AsyncioWaiting.poll` call) waiting on one socket."""

    __slots__ = ("future", "mechanism", "woken")

    def __init__(self, mechanism: int, future: asyncio.Future[str] | None = None) -> None:
        self.mechanism = mechanism
        self.future = future
        self.woken = False


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


class AsyncioWaiting(Waiting):
    """Await the socket's descriptor with the running loop's reader and a timer; see the module's text.

    The blocking :meth:`~agentzero.waiting.Waiting.wait` and
    :meth:`~agentzero.waiting.Waiting.poll` are not for this strategy: its
    manager awaits :meth:`until_ready` and :meth:`poll_ready` instead.
    """

    def prepare(self, record: SocketRecord) -> None:
        record.waiters = []

    async def until_ready(
        self, record: SocketRecord, mechanism: int, seconds: float, slice_ms: float
    ) -> bool:
        """Wait up to ``seconds`` for ``record``'s socket to be ready for ``mechanism``; tell whether it is.

        Raises
        ------
        SocketClosed
            when the socket is closed before or while waiting.
        """
        if self._ready(record, mechanism):
            return True
        if seconds <= 0:
            return False
        loop = asyncio.get_running_loop()
        sleeper = _Sleeper(mechanism)
        waiters = record.waiters
        waiters.append(sleeper)
        slice_s = min(slice_ms / 1000.0, ASYNCIO_FALLBACK_SLICE)
        deadline = _monotonic() + seconds
        try:
            self._watch(record, loop)
            while True:
                remaining = deadline - _monotonic()
                if remaining <= 0:
                    return False
                future = sleeper.future = loop.create_future()
                sleeper.woken = False
                timer = loop.call_later(min(remaining, slice_s), _settle, future, _SLICE_ENDED)
                try:
                    outcome = await future
                finally:
                    timer.cancel()
                    sleeper.future = None
                if outcome is _CLOSED:
                    raise SocketClosed(record.name)
                if self._ready(record, mechanism):
                    return True
        finally:
            self._leave(record, sleeper, loop)

    async def poll_ready(
        self, records: list[tuple[SocketRecord, int]], timeout_ms: float
    ) -> list[tuple[SocketRecord, int]]:
        """Wait up to ``timeout_ms`` for any ``(record, mechanism)``; return those ready, with events."""
        if not records:
            return []
        loop = asyncio.get_running_loop()
        deadline = _monotonic() + timeout_ms / 1000.0
        sleepers: list[tuple[SocketRecord, _Sleeper]] = []
        try:
            while True:
                ready = []
                for record, mechanism in records:
                    try:
                        found = events(record.socket) & mechanism
                    except zmq.ZMQError as exc:
                        if exc.errno in CLOSED_ERRNOS:
                            raise closed_error(record.name, exc) from None
                        raise
                    if found:
                        ready.append((record, found))
                remaining = deadline - _monotonic()
                if ready or remaining <= 0:
                    return ready
                future = loop.create_future()
                if not sleepers:
                    for record, mechanism in records:
                        sleeper = _Sleeper(mechanism)
                        record.waiters.append(sleeper)
                        sleepers.append((record, sleeper))
                        self._watch(record, loop)
                for _, sleeper in sleepers:
                    sleeper.future = future
                    sleeper.woken = False
                timer = loop.call_later(min(remaining, ASYNCIO_FALLBACK_SLICE), _settle, future, _SLICE_ENDED)
                try:
                    outcome = await future
                finally:
                    timer.cancel()
                    for _, sleeper in sleepers:
                        sleeper.future = None
                if outcome is _CLOSED:
                    closed = [record.name for record, sleeper in sleepers if sleeper.woken]
                    raise SocketClosed(closed[0] if closed else "(engage)")
        finally:
            for record, sleeper in sleepers:
                self._leave(record, sleeper, loop)

    def after_operation(self, record: SocketRecord) -> None:
        try:
            ready = events(record.socket)
        except zmq.ZMQError:
            return
        self._wake(record, ready)

    def closing(self, record: SocketRecord) -> None:
        for sleeper in record.waiters:
            future = sleeper.future
            if future is not None and not future.done():
                sleeper.woken = True
                future.set_result(_CLOSED)
        watch = record.watcher
        if watch is not None:
            record.watcher = None
            self._unwatch(watch)
            os.close(watch.fd)

    # -- the reader and the turns -------------------------------------------------------------

    @staticmethod
    def _ready(record: SocketRecord, mechanism: int) -> bool:
        try:
            return bool(events(record.socket) & mechanism)
        except zmq.ZMQError as exc:
            if exc.errno in CLOSED_ERRNOS:
                raise closed_error(record.name, exc) from None
            raise

    def _watch(self, record: SocketRecord, loop: asyncio.AbstractEventLoop) -> None:
        """Make sure the running loop's reader watches ``record``'s descriptor."""
        watch: _Watch | None = record.watcher
        if watch is not None and watch.loop is not loop:
            # the manager moved to another loop (a second asyncio.run): follow it
            self._unwatch(watch)
            watch.loop = loop
        if watch is None:
            # the socket is alive (its EVENTS were just read), so record.fd is still its descriptor
            watch = record.watcher = _Watch(loop, os.dup(record.fd))
        if not watch.active:
            loop.add_reader(watch.fd, self._on_descriptor, record)
            watch.active = True

    @staticmethod
    def _unwatch(watch: _Watch) -> None:
        if watch.active:
            watch.active = False
            if not watch.loop.is_closed():
                watch.loop.remove_reader(watch.fd)

    def _leave(self, record: SocketRecord, sleeper: _Sleeper, loop: asyncio.AbstractEventLoop) -> None:
        waiters = record.waiters
        try:
            waiters.remove(sleeper)
        except ValueError:
            return
        if waiters:
            # this task may have been woken for something it will not take
            # (time-out, cancellation, or simply not yet done): let the next waiter look,
            # after this task's own operation
            loop.call_soon(self._recheck, record)
        elif record.watcher is not None:
            self._unwatch(record.watcher)

    def _on_descriptor(self, record: SocketRecord) -> None:
        """The socket's descriptor became readable: its EVENTS may have changed."""
        try:
            ready = events(record.socket)
        except zmq.ZMQError:
            self.closing(record)
            return
        self._wake(record, ready)

    def _recheck(self, record: SocketRecord) -> None:
        if record.waiters:
            self.after_operation(record)

    @staticmethod
    def _wake(record: SocketRecord, ready: int) -> None:
        """Wake the first sleeper for each direction that is ready, and no more."""
        unclaimed = ready & (POLLIN | POLLOUT)
        for sleeper in record.waiters:
            if not unclaimed:
                return
            claim = sleeper.mechanism & unclaimed
            if not claim:
                continue
            unclaimed &= ~claim
            future = sleeper.future
            if sleeper.woken or future is None or future.done():
                # already on its way (or checking EVENTS itself): it holds this direction
                continue
            sleeper.woken = True
            future.set_result(_WOKEN)


class AsyncWaitingCalls(ManagerState):
    """The asyncio manager's waiting coroutines: :meth:`wait_until_ready`, :meth:`ready`, :meth:`engage`."""

    _waiting: AsyncioWaiting

    async def wait_until_ready(
        self,
        name: Any,
        polling_mechanism: int,
        timeout: float | None = None,
        polling_timeout: float | None = None,
    ) -> Any:
        """Wait until the named socket is ready, letting the other tasks run meanwhile.

        Parameters
        ----------
        name : str
            the socket name
        polling_mechanism : int
            ``zmq.POLLIN`` or ``zmq.POLLOUT`` (or both: ready for either)
        timeout : float, optional
            how long to wait, in **seconds**; defaults to the manager's ``timeout``.
            ``0`` checks without waiting.
        polling_timeout : float, optional
            the longest single wait before checking again, in **milliseconds**.
            The wait never lasts longer than ``timeout``.

        Returns
        -------
        zmq.Socket or None
            the socket as soon as it is ready, or ``None`` once ``timeout`` passed.

        Raises
        ------
        SocketNotFound
            when no socket has that name.
        SocketClosed
            when the socket is closed while waiting.
        ValueError
            when ``polling_mechanism`` is invalid or a timeout is negative, infinite or NaN.
        """
        record = self.get_record(name)
        mechanism = check_mechanism(polling_mechanism)
        seconds, slice_ms = wait_arguments(self, timeout, polling_timeout)
        ready = await self._waiting.until_ready(record, mechanism, seconds, slice_ms)
        return record.socket if ready else None

    async def ready(self, name: Any, polling_mechanism: int, timeout: float | None = None) -> Any:
        """Wait once, up to the polling timeout, and tell whether the named socket is ready.

        Parameters
        ----------
        name : str
            the socket name
        polling_mechanism : int
            ``zmq.POLLIN`` or ``zmq.POLLOUT`` (or both: ready for either)
        timeout : float, optional
            how long to wait, in **milliseconds**; defaults to the manager's ``polling_timeout``.

        Returns
        -------
        zmq.Socket or None
            the socket if it is ready, else ``None``.

        Raises
        ------
        SocketNotFound
            when no socket has that name.
        ValueError
            when ``polling_mechanism`` or ``timeout`` is invalid.
        """
        polling_ms = self.polling_timeout if timeout is None else check_milliseconds("timeout", timeout)
        return await self.wait_until_ready(name, polling_mechanism, polling_ms / 1000.0, max(polling_ms, 1))

    async def engage(self, timeout: float | None = None) -> OrderedDict[Any, int]:
        """Wait, up to ``timeout``, until any registered socket is ready for its polling mechanism.

        Parameters
        ----------
        timeout : float, optional
            how long to wait, in **milliseconds**; defaults to the manager's ``polling_timeout``.

        Returns
        -------
        OrderedDict
            ``{socket: event mask}`` of the sockets that are ready; empty when none became ready in time.

        Raises
        ------
        SocketClosed
            when a socket is closed while waiting.
        ValueError
            when ``timeout`` is negative, infinite or not a number.
        """
        timeout_ms = self.polling_timeout if timeout is None else check_milliseconds("timeout", timeout)
        forget_closed_sockets(self)
        items = [
            (record, record.polling_mechanism)
            for record in self._records.values()
            if record.polling_mechanism
        ]
        ready = await self._waiting.poll_ready(items, timeout_ms)
        return OrderedDict((record.socket, found) for record, found in ready)
