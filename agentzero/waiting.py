"""The waiting layer: the one place where agentzero waits for a socket.

Every ``*_safe`` call first tries its operation without blocking; only when
ZeroMQ says "not now" does it come here. How to wait depends on the
concurrency model, chosen once when the manager is built:

* :class:`PlainWaiting` blocks the thread in ``zmq_poll`` (level-triggered).
* :class:`GreenWaiting` parks the greenlet and lets the others run. A
  socket's descriptor (``zmq.FD``) is edge-triggered: whoever touches the
  socket may consume the signal that a message arrived. So the greenlets
  waiting on a socket are listed on its record, one persistent watcher per
  socket wakes them, and after every operation through the manager the
  socket's ``EVENTS`` are read again and the next waiter whose condition now
  holds is woken (one per direction: 200 waiters on a socket do not stampede).
  An operation made on the socket behind the manager's back can still consume
  an edge; a waiter then notices within :data:`GREEN_FALLBACK_SLICE` seconds.

Timeouts are checked here too: :func:`check_seconds` and
:func:`check_milliseconds` accept finite, non-negative numbers only.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from typing import Any

import zmq

from agentzero._backend import CLOSED_ERRNOS, POLLIN, POLLOUT, events, fileno
from agentzero.errors import SocketClosed
from agentzero.records import ManagerState, SocketRecord

#: the longest a green waiter trusts the edge-triggered descriptor, in seconds
GREEN_FALLBACK_SLICE = 1.0

_monotonic = time.monotonic
_BOTH = POLLIN | POLLOUT
_WOKEN = object()
_CLOSED = object()
_SLICE_ENDED = object()


#: the longest single zmq_poll libzmq takes (a C int of milliseconds, about 24.8 days)
_MAX_POLL_MS = 2**31 - 1


def _finite_number(value: Any) -> bool:
    """Whether ``value`` is an int or float (not a bool) that is finite, however large."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def check_seconds(name: str, value: Any) -> float:
    """Return ``value`` if it is a finite number of seconds >= 0, else raise ``ValueError`` naming ``name``.

    >>> check_seconds('timeout', 0.5)
    0.5
    >>> check_seconds('timeout', float('nan'))
    Traceback (most recent call last):
    ...
    ValueError: timeout must be a number >= 0, got nan (a finite number of seconds)
    """
    if not _finite_number(value) or value < 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r} (a finite number of seconds)")
    seconds: float = value
    return seconds


def check_milliseconds(name: str, value: Any, positive: bool = False) -> float:
    """Return ``value`` if it is a finite number of milliseconds (> 0 when ``positive``), else raise.

    >>> check_milliseconds('polling_timeout', 0, positive=True)
    Traceback (most recent call last):
    ...
    ValueError: polling_timeout must be a number > 0, got 0 (a finite number of milliseconds)
    """
    if not _finite_number(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a number {bound}, got {value!r} (a finite number of milliseconds)")
    milliseconds: float = value
    return milliseconds


def check_mechanism(polling_mechanism: Any, registering: bool = False) -> int:
    """Return ``polling_mechanism`` if it is ``POLLIN``, ``POLLOUT`` or both (or 0 when ``registering``)."""
    if (
        not isinstance(polling_mechanism, int)
        or isinstance(polling_mechanism, bool)
        or polling_mechanism & ~_BOTH
        or (polling_mechanism == 0 and not registering)
    ):
        allowed = "0, " if registering else ""
        raise ValueError(
            f"polling_mechanism must be {allowed}zmq.POLLIN, zmq.POLLOUT or zmq.POLLIN | zmq.POLLOUT, "
            f"got {polling_mechanism!r}"
        )
    return int(polling_mechanism)


def closed_error(name: Any, error: zmq.ZMQError) -> SocketClosed:
    """The library error for a ``ZMQError`` that means the socket is gone."""
    reason = "its context was terminated" if error.errno == zmq.ETERM else "the socket was closed"
    return SocketClosed(name, reason)


class Waiting:
    """How one manager waits; one instance per manager, chosen by :func:`choose_waiting`."""

    green = False

    def prepare(self, record: SocketRecord) -> None:
        """Set up the waiting state of a new socket record."""

    def wait(self, record: SocketRecord, mechanism: int, seconds: float, slice_ms: float) -> bool:
        """Wait up to ``seconds`` for ``record``'s socket to be ready for ``mechanism``; tell whether it is.

        Raises :class:`SocketClosed` when the socket is closed meanwhile.
        """
        raise NotImplementedError

    def poll(
        self, items: list[tuple[Any, int]], timeout_ms: float, records: dict[Any, SocketRecord] | None = None
    ) -> list[tuple[Any, int]]:
        """Poll ``(socket, mechanism)`` pairs once, for up to ``timeout_ms``; return the ready ones.

        ``records`` (socket -> record) lets a strategy hear of the manager's own
        operations on those sockets while it polls.
        """
        raise NotImplementedError

    def after_operation(self, record: SocketRecord) -> None:
        """Called after an operation on a socket that has waiters: wake those that may go on."""

    def closing(self, record: SocketRecord) -> None:
        """Called before the manager closes the socket: wake every waiter, release watchers."""

    def pause(self, seconds: float) -> None:
        """Sleep without holding up the other greenlets (or threads)."""
        time.sleep(seconds)


class PlainWaiting(Waiting):
    """Block the calling thread in ``zmq_poll``, in slices of at most ``polling_timeout``."""

    def wait(self, record: SocketRecord, mechanism: int, seconds: float, slice_ms: float) -> bool:
        socket = record.socket
        deadline = _monotonic() + seconds
        while True:
            remaining_ms = (deadline - _monotonic()) * 1000.0
            try:
                slice_now = math.ceil(max(0.0, min(slice_ms, remaining_ms, _MAX_POLL_MS)))
                if zmq.zmq_poll([(socket, mechanism)], slice_now):
                    return True
            except zmq.ZMQError as exc:
                if exc.errno in CLOSED_ERRNOS:
                    raise closed_error(record.name, exc) from None
                raise
            if remaining_ms <= 0 or _monotonic() >= deadline:
                return False

    def poll(
        self, items: list[tuple[Any, int]], timeout_ms: float, records: dict[Any, SocketRecord] | None = None
    ) -> list[tuple[Any, int]]:
        if not items:
            return []
        return list(zmq.zmq_poll(items, min(math.ceil(timeout_ms), _MAX_POLL_MS)))


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


def choose_waiting(zmq_module: Any) -> Waiting:
    """Return the waiting layer for ``zmq`` or ``zmq.green``."""
    if getattr(zmq_module, "__name__", "") == "zmq.green":
        return GreenWaiting()
    return PlainWaiting()


def forget_closed_sockets(manager: Any) -> None:
    """Drop from ``registry`` (and the poller) the sockets closed behind the manager's back.

    Polling a closed socket would fail, or poll descriptor 0; ``engage`` calls this first.
    """
    for socket in [socket for socket in manager.registry if getattr(socket, "closed", False)]:
        del manager.registry[socket]
        try:
            manager.poller.unregister(socket)
        except KeyError:
            pass


class WaitingCalls(ManagerState):
    """The manager's public waiting calls: :meth:`engage`, :meth:`ready` and :meth:`wait_until_ready`."""

    def engage(self, timeout: float | None = None) -> OrderedDict[Any, int]:
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

        Raises
        ------
        ValueError
            when ``timeout`` is negative, infinite or not a number.
        """
        timeout_ms = self.polling_timeout if timeout is None else check_milliseconds("timeout", timeout)
        forget_closed_sockets(self)
        items = [(socket, mechanism) for socket, mechanism in self.registry.items() if mechanism]
        if not items:
            return OrderedDict()
        try:
            records = (
                {record.socket: record for record in self._records.values()} if self._waiting.green else None
            )
            return OrderedDict(self._waiting.poll(items, timeout_ms, records))
        except zmq.ZMQError as exc:
            if exc.errno in CLOSED_ERRNOS:
                raise closed_error("(engage)", exc) from None
            raise

    def ready(self, name: Any, polling_mechanism: int, timeout: float | None = None) -> Any:
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
        return self.wait_until_ready(name, polling_mechanism, polling_ms / 1000.0, max(polling_ms, 1))

    def wait_until_ready(
        self,
        name: Any,
        polling_mechanism: int,
        timeout: float | None = None,
        polling_timeout: float | None = None,
    ) -> Any:
        """Wait until the named socket is ready, yielding to other greenlets meanwhile.

        This is the one place where agentzero waits: every ``*_safe`` call that
        cannot complete at once comes here (through :class:`Waiting`).

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
        seconds = self.timeout if timeout is None else check_seconds("timeout", timeout)
        slice_ms = (
            self.polling_timeout
            if polling_timeout is None
            else check_milliseconds("polling_timeout", polling_timeout, positive=True)
        )
        return record.socket if self._waiting.wait(record, mechanism, seconds, slice_ms) else None
