"""The green strategy of the waiting layer (:mod:`agentzero.waiting`): park the greenlet.

A socket's descriptor (``zmq.FD``) is edge-triggered: whoever touches the
socket may consume the signal that a message arrived. So the greenlets waiting
on a socket are listed on its record (:class:`_Sleeper`), one persistent
watcher per socket wakes them, and after every operation through the manager
the socket's ``EVENTS`` are read again and the next waiter whose condition now
holds is woken, one per direction. ``engage()`` polls keep one watcher per
socket across calls (:class:`_PolledSocket`) and hear of the manager's own
operations through a waiter that wants nothing. An operation made behind the
manager's back can still consume an edge; a waiter then notices within
:data:`~agentzero.waiting.GREEN_FALLBACK_SLICE` seconds.
"""

from __future__ import annotations

from typing import Any

import zmq

from agentzero._backend import CLOSED_ERRNOS, events, fileno
from agentzero.errors import SocketClosed
from agentzero.records import SocketRecord
from agentzero.waiting import (
    _CLOSED,
    _SLICE_ENDED,
    _WOKEN,
    GREEN_FALLBACK_SLICE,
    Waiting,
    _monotonic,
    closed_error,
)


class _Sleeper:
    """One greenlet waiting on one socket."""

    __slots__ = ("mechanism", "waiter", "woken")

    def __init__(self, mechanism: int) -> None:
        self.mechanism = mechanism
        self.waiter: Any = None
        self.woken = False


class _Poll:
    """One greenlet polling several sockets (``engage``, ``ready``): its current waiter."""

    __slots__ = ("waiter",)

    def __init__(self) -> None:
        self.waiter: Any = None


class _PolledSocket:
    """A socket that polls watch: one persistent descriptor watcher, and the polls on it."""

    __slots__ = ("marker", "polls", "record", "watcher")

    def __init__(self, watcher: Any) -> None:
        self.watcher = watcher
        self.polls: list[_Poll] = []
        self.record: SocketRecord | None = None
        self.marker = _Sleeper(0)


class GreenWaiting(Waiting):
    """Park the greenlet on the socket's descriptor watcher and a timer; see the module's text."""

    green = True

    def __init__(self) -> None:
        from gevent.hub import Waiter, get_hub

        self._hub = get_hub()
        self._get_hub = get_hub
        self._loop = self._hub.loop
        self._Waiter = Waiter
        #: socket -> its watcher for engage() and the polls waiting on it (see poll())
        self._polling: dict[Any, _PolledSocket] = {}

    def prepare(self, record: SocketRecord) -> None:
        record.waiters = []

    def wait(self, record: SocketRecord, mechanism: int, seconds: float, slice_ms: float) -> bool:
        if seconds <= 0:  # only look: no watcher, no sleeper
            try:
                return bool(events(record.socket) & mechanism)
            except zmq.ZMQError as exc:
                if exc.errno in CLOSED_ERRNOS:
                    raise closed_error(record.name, exc) from None
                raise
        self._check_thread()
        sleeper = _Sleeper(mechanism)
        waiters = record.waiters
        waiters.append(sleeper)
        watcher = record.watcher
        if watcher is None:
            watcher = record.watcher = self._loop.io(record.fd, 1)
        if not watcher.active:
            watcher.start(self._on_descriptor, record)
        slice_s = min(slice_ms / 1000.0, GREEN_FALLBACK_SLICE)
        deadline = _monotonic() + seconds
        try:
            while True:
                try:
                    if events(record.socket) & mechanism:
                        return True
                except zmq.ZMQError as exc:
                    if exc.errno in CLOSED_ERRNOS:
                        raise closed_error(record.name, exc) from None
                    raise
                remaining = deadline - _monotonic()
                if remaining <= 0:
                    return False
                waiter = sleeper.waiter = self._Waiter(self._hub)
                sleeper.woken = False
                timer = self._loop.timer(min(remaining, slice_s))
                timer.start(waiter.switch, _SLICE_ENDED)
                try:
                    outcome = waiter.get()
                finally:
                    timer.close()
                    sleeper.waiter = None
                if outcome is _CLOSED:
                    raise SocketClosed(record.name)
        finally:
            waiters.remove(sleeper)
            if waiters:
                # this greenlet may have been woken for a message it will not take:
                # let the next waiter look (after this greenlet's own operation)
                self._loop.run_callback(self._recheck, record)
            elif record.watcher is not None:
                record.watcher.stop()

    def poll(
        self, items: list[tuple[Any, int]], timeout_ms: float, records: dict[Any, SocketRecord] | None = None
    ) -> list[tuple[Any, int]]:
        # Each polled socket keeps one watcher across calls (self._polling), started only
        # while a poll waits on it. closing() stops it before libzmq frees the descriptor:
        # an active watcher on a freed (and maybe reused) descriptor aborts libev.
        deadline = _monotonic() + timeout_ms / 1000.0
        items = list(items)
        polling = _Poll()
        watched: list[_PolledSocket] = []
        try:
            while True:
                ready = []
                closed = False
                for item in list(items):
                    socket, mechanism = item
                    try:
                        found = events(socket) & mechanism
                    except zmq.ZMQError as exc:
                        if exc.errno not in CLOSED_ERRNOS:
                            raise
                        # closed while polling: return, so the caller polls what is there now
                        items.remove(item)
                        closed = True
                        continue
                    if found:
                        ready.append((socket, found))
                remaining = deadline - _monotonic()
                if ready or closed or remaining <= 0:
                    return ready
                if not watched:
                    self._check_thread()
                    watched = [self._watch(socket, polling, records) for socket, _ in items]
                waiter = polling.waiter = self._Waiter(self._hub)
                timer = self._loop.timer(min(remaining, GREEN_FALLBACK_SLICE))
                timer.start(waiter.switch, _SLICE_ENDED)
                try:
                    waiter.get()
                finally:
                    timer.close()
                    polling.waiter = None
        finally:
            for polled in watched:
                if polling in polled.polls:
                    polled.polls.remove(polling)
                if not polled.polls:
                    if polled.watcher is not None:
                        polled.watcher.stop()
                    record = polled.record
                    if record is not None and polled.marker in record.waiters:
                        record.waiters.remove(polled.marker)
                        if not record.waiters and record.watcher is not None:
                            record.watcher.stop()  # as wait() does when its last waiter leaves

    def _check_thread(self) -> None:
        if self._get_hub() is not self._hub:
            raise RuntimeError(
                "a green SocketManager waits only in the thread that created it "
                "(its gevent hub); use one manager per thread"
            )

    def _watch(self, socket: Any, polling: _Poll, records: dict[Any, SocketRecord] | None) -> _PolledSocket:
        polled = self._polling.get(socket)
        if polled is None:
            polled = self._polling[socket] = _PolledSocket(self._loop.io(fileno(socket), 1))
        if not polled.polls and records is not None:
            # a waiter that wants nothing (mechanism 0) keeps the manager's operations on
            # this socket calling after_operation(), which wakes the polls: no lost edge
            polled.record = records.get(socket)
            if polled.record is not None:
                polled.record.waiters.append(polled.marker)
        polled.polls.append(polling)
        if not polled.watcher.active:
            polled.watcher.start(self._on_polled, polled)
        return polled

    def _on_polled(self, polled: _PolledSocket) -> None:
        """A polled socket's descriptor became readable: every poll on it looks again."""
        for polling in polled.polls:
            if polling.waiter is not None:
                self._loop.run_callback(polling.waiter.switch, _WOKEN)

    def after_operation(self, record: SocketRecord) -> None:
        try:
            ready = events(record.socket)
        except zmq.ZMQError:
            return
        self._wake(record, ready)
        if ready:
            polled = self._polling.get(record.socket)
            if polled is not None and polled.polls:
                self._on_polled(polled)

    def closing(self, record: SocketRecord) -> None:
        polled = self._polling.pop(record.socket, None)
        if polled is not None:
            polled.watcher.close()
            polled.watcher = None
            for polling in polled.polls:
                if polling.waiter is not None:
                    self._loop.run_callback(polling.waiter.switch, _CLOSED)
        for sleeper in record.waiters:
            if sleeper.waiter is not None and not sleeper.woken:
                sleeper.woken = True
                self._loop.run_callback(sleeper.waiter.switch, _CLOSED)
        if record.watcher is not None:
            record.watcher.stop()
            record.watcher.close()
            record.watcher = None

    def pause(self, seconds: float) -> None:
        import gevent

        gevent.sleep(seconds)

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

    def _wake(self, record: SocketRecord, ready: int) -> None:
        """Wake the first sleeper for each direction that is ready, and no more."""
        unclaimed = ready
        for sleeper in record.waiters:
            if not unclaimed:
                return
            claim = sleeper.mechanism & unclaimed
            if not claim:
                continue
            if sleeper.woken or sleeper.waiter is None:
                # already on its way (or checking EVENTS itself): it holds this direction
                unclaimed &= ~claim
                continue
            sleeper.woken = True
            unclaimed &= ~claim
            self._loop.run_callback(sleeper.waiter.switch, _WOKEN)
