"""What the green and asyncio flavours share: parking on a socket's descriptor, and taking turns.

A cooperative wait must not block the thread: the task (or greenlet) parks
until the socket's descriptor fires or a slice of time ends. Who parks, who
is woken and who is told of a close is decided by
:mod:`agentzero.manager.turns`; the waiting loops themselves
(:meth:`Cooperative.wait_steps`, :meth:`Cooperative.poll_steps`) are
written here once, as steps that yield ``(park, handle, seconds)``. Each
flavour supplies the primitives: a handle to park on, how to fire it, how to
watch a descriptor, how to run a callback soon, and ``park`` itself
(blocking the greenlet, or awaited by the task).

An operation made on the socket behind the manager's back can consume an
edge of the descriptor; a waiter then notices within :data:`FALLBACK_SLICE`.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import zmq

from agentzero.errors import SocketClosed
from agentzero.flavours.base import Flavour
from agentzero.manager.backend import CLOSED_ERRNOS, events
from agentzero.manager.checks import closed_error
from agentzero.manager.table import SocketRecord
from agentzero.manager.turns import CLOSED, WOKEN, Sleeper, leave, to_close, to_wake
from agentzero.manager.waits import Steps

#: the longest a parked waiter trusts the edge-triggered descriptor, in seconds
FALLBACK_SLICE = 1.0

_monotonic = time.monotonic


class Cooperative(Flavour):
    """The turn-taking of the green and asyncio flavours over a few primitives of theirs."""

    # -- the primitives each cooperative flavour supplies --------------------------------------

    def _new_handle(self) -> Any:
        """Something to park on (a gevent ``Waiter``, an asyncio future)."""
        raise NotImplementedError

    def _fire(self, handle: Any, outcome: str) -> None:
        """Wake whoever parks on ``handle`` with ``outcome``; harmless when it already went on."""
        raise NotImplementedError

    def _watch(self, record: SocketRecord) -> None:
        """Make sure the socket's descriptor calls :meth:`_on_descriptor` when it fires."""
        raise NotImplementedError

    def _unwatch(self, record: SocketRecord) -> None:
        """Stop watching the descriptor (nobody waits); keep what can be started again."""
        raise NotImplementedError

    def _drop_watch(self, record: SocketRecord) -> None:
        """Stop and release the descriptor's watcher for good: the socket is closing."""
        raise NotImplementedError

    def _soon(self, callback: Callable[[SocketRecord], None], record: SocketRecord) -> None:
        """Run ``callback(record)`` soon, after the current task's own work."""
        raise NotImplementedError

    # -- the waiting loops, as steps -------------------------------------------------------------

    def wait_steps(self, record: SocketRecord, mechanism: int, seconds: float, slice_ms: float) -> Steps[Any]:
        """Wait up to ``seconds`` for the socket to be ready for ``mechanism``; return whether it is.

        Yields ``(park, handle, seconds)``; raises :class:`SocketClosed` when
        the socket is closed before or while waiting.
        """
        if self._ready(record, mechanism):
            return True
        if seconds <= 0:
            return False
        sleeper = Sleeper(mechanism)
        record.waiters.append(sleeper)
        slice_s = min(slice_ms / 1000.0, FALLBACK_SLICE)
        deadline = _monotonic() + seconds
        try:
            self._watch(record)
            while True:
                remaining = deadline - _monotonic()
                if remaining <= 0:
                    return False
                handle = self._new_handle()
                sleeper.park(handle)
                try:
                    outcome = yield self.park, handle, min(remaining, slice_s)
                finally:
                    sleeper.handle = None
                if outcome is CLOSED:
                    raise SocketClosed(record.name)
                if self._ready(record, mechanism):
                    return True
        finally:
            self._leave(record, sleeper)

    def poll_steps(self, items: list[tuple[SocketRecord, int]], timeout_ms: float) -> Steps[Any]:
        """Wait up to ``timeout_ms`` for any ``(record, mechanism)``; return ``(socket, events)`` ready.

        A socket closed meanwhile ends the wait: what is ready then (perhaps
        nothing) is returned, so the caller polls the sockets there are now.
        """
        deadline = _monotonic() + timeout_ms / 1000.0
        sleepers: list[tuple[SocketRecord, Sleeper]] = []
        try:
            while True:
                ready = []
                closed = False
                for record, mechanism in items:
                    try:
                        found = events(record.socket) & mechanism
                    except zmq.ZMQError as exc:
                        if exc.errno not in CLOSED_ERRNOS:
                            raise
                        closed = True
                        continue
                    if found:
                        ready.append((record.socket, found))
                remaining = deadline - _monotonic()
                if ready or closed or remaining <= 0:
                    return ready
                if not sleepers:
                    for record, mechanism in items:
                        sleepers.append((record, Sleeper(mechanism)))
                        record.waiters.append(sleepers[-1][1])
                        self._watch(record)
                handle = self._new_handle()
                for _, sleeper in sleepers:
                    sleeper.park(handle)
                try:
                    yield self.park, handle, min(remaining, FALLBACK_SLICE)
                finally:
                    for _, sleeper in sleepers:
                        sleeper.handle = None
        finally:
            for record, sleeper in sleepers:
                self._leave(record, sleeper)

    def park(self, handle: Any, seconds: float) -> Any:
        """Park on ``handle`` for up to ``seconds``; return the outcome it was fired with."""
        raise NotImplementedError

    # -- turns -----------------------------------------------------------------------------------

    def after_operation(self, record: SocketRecord) -> None:
        try:
            ready = events(record.socket)
        except zmq.ZMQError:
            return
        self._wake(record, ready)

    def closing(self, record: SocketRecord) -> None:
        for sleeper in to_close(record.waiters):
            self._fire(sleeper.handle, CLOSED)
        if record.watcher is not None:
            self._drop_watch(record)

    def _on_descriptor(self, record: SocketRecord) -> None:
        """The socket's descriptor fired: its ``EVENTS`` may have changed."""
        try:
            ready = events(record.socket)
        except zmq.ZMQError:
            self.closing(record)
            return
        self._wake(record, ready)

    def _wake(self, record: SocketRecord, ready: int) -> None:
        for sleeper in to_wake(record.waiters, ready):
            self._fire(sleeper.handle, WOKEN)

    def _recheck(self, record: SocketRecord) -> None:
        if record.waiters:
            self.after_operation(record)

    def _leave(self, record: SocketRecord, sleeper: Sleeper) -> None:
        if leave(record.waiters, sleeper):
            # this one may have been woken for something it will not take: let the next
            # waiter look, after this one's own operation
            self._soon(self._recheck, record)
        elif record.watcher is not None:
            self._unwatch(record)

    @staticmethod
    def _ready(record: SocketRecord, mechanism: int) -> bool:
        try:
            return bool(events(record.socket) & mechanism)
        except zmq.ZMQError as exc:
            if exc.errno in CLOSED_ERRNOS:
                raise closed_error(record.name, exc) from None
            raise
