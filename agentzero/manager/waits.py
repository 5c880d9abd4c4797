"""The waiting calls (``wait_until_ready``, ``ready``, ``engage``) and the steps of every call that must wait.

A call that cannot finish at once builds its *steps*: a generator that yields
what to wait for, as ``(wait, *arguments)`` where ``wait`` is an operation of
the manager's flavour (``wait`` for one socket, ``poll`` for several), is
sent back whether the wait succeeded, and returns the call's result. The
manager's ``_finish`` gives the steps to its flavour: the plain and green
managers run them at once (:func:`agentzero.flavours.base.drive`); the
asyncio manager hands them to the coroutine that awaits them. These are the
only decisions about waiting that the calls make, and they are made once.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Callable, Generator, TypeVar

import zmq

from agentzero.manager.backend import (
    NOBLOCK,
    NOT_READY_ERRNOS,
    POLLIN,
    POLLOUT,
    SNDMORE,
    raw_recv,
    raw_send,
)
from agentzero.manager.checks import (
    check_mechanism,
    check_milliseconds,
    check_seconds,
    refused_by_router,
    translate,
    wait_arguments,
)
from agentzero.manager.frames import cut_short
from agentzero.manager.sockets import Sockets
from agentzero.manager.table import SocketRecord

#: How often, at most, :meth:`~agentzero.core.SocketManager.subscribe` checks ``keep_polling``, in seconds.
SUBSCRIBE_CHECK_INTERVAL = 1.0
#: the first and the longest pause, in seconds, of a send that a ready socket refused (see ``_send_steps``)
REFUSED_PAUSE_MIN = 0.001
REFUSED_PAUSE_MAX = 0.05

_T = TypeVar("_T")
#: what is left of a call that must wait: yields ``(wait, *arguments)``, returns the call's result
Steps = Generator[tuple[Any, ...], Any, _T]

_ZMQError = zmq.ZMQError
_monotonic = time.monotonic


class Pending:
    """The steps of a call that must wait, handed back unrun (by the asyncio manager, to be awaited)."""

    __slots__ = ("steps",)

    def __init__(self, steps: Steps[Any]) -> None:
        self.steps = steps


class Waits(Sockets):
    """The waiting calls, and the steps of the calls that must wait, for every flavour."""

    #: the ``taking`` functions (by name) of the receive calls a ROUTER refuses -> the call's name
    _one_frame_takers: dict[str, str] = {}

    def _finish(self, steps: Steps[_T]) -> _T:
        """Run (or hand over) the remaining ``steps`` of a call that must wait; defined by the flavour."""
        raise NotImplementedError

    # -- the waiting calls ------------------------------------------------------------------------

    def wait_until_ready(
        self,
        name: str,
        polling_mechanism: int,
        timeout: float | None = None,
        polling_timeout: float | None = None,
    ) -> zmq.Socket[Any] | None:
        """Wait until the named socket is ready, yielding to other greenlets meanwhile.

        This is the one place where agentzero waits: every ``*_safe`` call that
        cannot complete at once comes here (through the manager's flavour).

        Parameters
        ----------
        name : str
            the socket name
        polling_mechanism : int
            ``zmq.POLLIN`` or ``zmq.POLLOUT`` (or both: ready for either)
        timeout : float, optional
            how long to wait, in **seconds**; defaults to the manager's ``timeout``
            (:data:`~agentzero.core.DEFAULT_TIMEOUT_IN_SECONDS`). ``0`` checks without waiting.
        polling_timeout : float, optional
            the longest single poll, in **milliseconds**; defaults to the manager's
            ``polling_timeout``. The wait never lasts longer than ``timeout``.

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
        return self._finish(self._ready_steps(record, mechanism, seconds, slice_ms))

    def ready(
        self, name: str, polling_mechanism: int, timeout: float | None = None
    ) -> zmq.Socket[Any] | None:
        """Poll once and tell whether the named socket is ready for ``polling_mechanism``.

        Parameters
        ----------
        name : str
            the socket name
        polling_mechanism : int
            ``zmq.POLLIN`` or ``zmq.POLLOUT`` (or both: ready for either)
        timeout : float, optional
            the polling timeout in **milliseconds**; defaults to the manager's ``polling_timeout``.

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
        return Waits.wait_until_ready(self, name, polling_mechanism, polling_ms / 1000.0, max(polling_ms, 1))

    def engage(self, timeout: float | None = None) -> OrderedDict[zmq.Socket[Any], int]:
        """Poll all registered sockets once.

        Parameters
        ----------
        timeout : float, optional
            how long to poll, in **milliseconds**; defaults to the manager's
            ``polling_timeout`` (:data:`~agentzero.core.DEFAULT_POLLING_TIMEOUT`).

        Returns
        -------
        OrderedDict
            ``{socket: event mask}`` of the sockets that are ready (``zmq.POLLIN``,
            ``zmq.POLLOUT`` or both); empty when none became ready in time.

        A socket closed while ``engage`` waits ends the wait: the sockets that
        are ready then (perhaps none) are returned, and the closed one is not
        polled again.

        Raises
        ------
        ValueError
            when ``timeout`` is negative, infinite or not a number.
        """
        timeout_ms = self.polling_timeout if timeout is None else check_milliseconds("timeout", timeout)
        self._forget_closed_sockets()
        return self._finish(self._engage_steps(self._table.registered(), timeout_ms))

    def _forget_closed_sockets(self) -> None:
        """Drop from the poller the sockets closed behind the manager's back (polling them would fail)."""
        for record in self._table.registered():
            if getattr(record.socket, "closed", False):
                self._waiting.closing(record)
                if record.name is None:
                    self._table.remove(record)
                else:
                    self._table.set_mechanism(record, 0)

    # -- receiving, for every receive call ------------------------------------------------------

    def _receive(
        self,
        name: Any,
        timeout: float | None,
        polling_timeout: float | None,
        taking: Callable[[SocketRecord, bytes], _T],
    ) -> _T | None:
        """Receive a message on the named socket and read it with ``taking(record, first frame)``.

        The one fast path of every receive call: try at once without waiting;
        only on "not now" build the steps that wait (:meth:`_recv_steps`).
        ``None`` once ``timeout`` passed. A ROUTER refuses the one-frame
        calls (:attr:`_one_frame_takers`) before anything is received.
        """
        try:
            record = self._records[name]
        except KeyError:
            record = self.get_record(name)
        if record.routing and taking.__name__ in self._one_frame_takers:  # before a frame is taken
            raise refused_by_router(record, self._one_frame_takers[taking.__name__])
        if timeout is not None:
            check_seconds("timeout", timeout)
        try:
            try:
                first = raw_recv(record.socket, NOBLOCK)
            except _ZMQError as exc:
                return self._finish(self._recv_steps(record, exc, timeout, polling_timeout, taking))
            return taking(record, first)
        except BaseException as exc:  # between two frames: a Ctrl-C, or the socket closed
            raised = cut_short(record, self._waiting, exc)
            if raised is exc:
                raise
            raise raised from None

    def _ready_steps(
        self, record: SocketRecord, mechanism: int, seconds: float, slice_ms: float
    ) -> Steps[zmq.Socket[Any] | None]:
        ready = yield self._waiting.wait, record, mechanism, seconds, slice_ms
        return record.socket if ready else None

    def _engage_steps(self, records: list[SocketRecord], timeout_ms: float) -> Steps[OrderedDict[Any, int]]:
        if not records:
            return OrderedDict()
        ready = yield (
            self._waiting.poll,
            [(record, record.polling_mechanism) for record in records],
            timeout_ms,
        )
        return OrderedDict(ready)

    def _send_steps(
        self,
        record: SocketRecord,
        frames: tuple[bytes, ...],
        error: zmq.ZMQError,
        timeout: float | None,
        polling_timeout: float | None,
    ) -> Steps[bool]:
        """Wait until the socket takes the first frame, then send the rest; ``False`` on time-out."""
        seconds, slice_ms = wait_arguments(self, timeout, polling_timeout)
        deadline = _monotonic() + seconds
        flags = NOBLOCK | SNDMORE if len(frames) > 1 else NOBLOCK
        wait = self._waiting.wait
        pause = 0.0
        while True:
            if error.errno not in NOT_READY_ERRNOS:
                raise translate(record, error, True, frames[0])
            remaining = deadline - _monotonic()
            if remaining < 0:
                return False
            if pause:
                # the socket said it was ready, then refused the message: a ROUTER's POLLOUT is
                # any peer's, not this message's peer's (whose queue is full). Nothing will signal
                # that peer's room: pause, longer each time, instead of spinning (and, under
                # gevent or asyncio, starving everyone else) until the timeout
                yield self._waiting.pause, min(pause, remaining)
                pause = min(pause * 2, slice_ms / 1000.0, REFUSED_PAUSE_MAX)
                remaining = deadline - _monotonic()
                if remaining < 0:
                    return False
            if not (yield wait, record, POLLOUT, remaining, slice_ms):
                return False
            try:
                raw_send(record.socket, frames[0], flags)
                break
            except _ZMQError as exc:
                error = exc
                pause = pause or REFUSED_PAUSE_MIN
        rest = self._send_rest(record, frames, 1)
        if rest is not None:
            return (yield from rest)
        if record.waiters:
            self._waiting.after_operation(record)
        return True

    def _send_frames(
        self,
        record: SocketRecord,
        frames: tuple[Any, ...],
        timeout: float | None,
        polling_timeout: float | None,
    ) -> bool:
        """Send ``frames`` as one message: at once when the socket takes the first, else through its steps.

        The one send path of every call of several frames (``publish_safe``,
        ``send_multipart_safe``); ``send_safe``'s one frame keeps its own, inlined.
        """
        try:
            raw_send(record.socket, frames[0], NOBLOCK | SNDMORE if len(frames) > 1 else NOBLOCK)
        except _ZMQError as exc:
            return self._finish(self._send_steps(record, frames, exc, timeout, polling_timeout))
        rest = self._send_rest(record, frames, 1)
        if rest is not None:
            return self._finish(rest)
        if record.waiters:
            self._waiting.after_operation(record)
        return True

    def _send_rest(self, record: SocketRecord, frames: tuple[bytes, ...], start: int) -> Steps[bool] | None:
        """Send ``frames[start:]``, the rest of a message whose first frame was taken.

        libzmq takes every frame of a message once it took the first, so this
        returns ``None`` in practice; should a frame have to wait, it returns
        the steps that wait for it (for as long as needed) and send the rest.
        """
        last = len(frames) - 1
        for index in range(start, last + 1):
            try:
                raw_send(record.socket, frames[index], NOBLOCK if index == last else NOBLOCK | SNDMORE)
            except _ZMQError as exc:
                if exc.errno not in NOT_READY_ERRNOS:
                    raise translate(record, exc, True) from None
                return self._rest_steps(record, frames, index)
        return None

    def _rest_steps(self, record: SocketRecord, frames: tuple[bytes, ...], index: int) -> Steps[bool]:
        wait = self._waiting.wait
        while True:
            yield wait, record, POLLOUT, SUBSCRIBE_CHECK_INTERVAL, self.polling_timeout
            rest = self._send_rest(record, frames, index)
            if rest is None:
                if record.waiters:
                    self._waiting.after_operation(record)
                return True
            rest.close()

    def _recv_steps(
        self,
        record: SocketRecord,
        error: zmq.ZMQError,
        timeout: float | None,
        polling_timeout: float | None,
        taking: Callable[[SocketRecord, bytes], _T],
    ) -> Steps[_T | None]:
        """Wait for a message, then read it with ``taking(record, first frame)``; ``None`` on time-out."""
        seconds, slice_ms = wait_arguments(self, timeout, polling_timeout)
        deadline = _monotonic() + seconds
        wait = self._waiting.wait
        while True:
            if error.errno not in NOT_READY_ERRNOS:
                raise translate(record, error, False)
            remaining = deadline - _monotonic()
            if remaining < 0 or not (yield wait, record, POLLIN, remaining, slice_ms):
                return None
            try:
                try:
                    first = raw_recv(record.socket, NOBLOCK)
                except _ZMQError as exc:
                    error = exc
                    continue
                return taking(record, first)
            except BaseException as exc:  # between two frames: a Ctrl-C, or the socket closed
                raised = cut_short(record, self._waiting, exc)
                if raised is exc:
                    raise
                raise raised from None
