"""The waiting layer: the one place where agentzero waits for a socket.

Every ``*_safe`` call first tries its operation without blocking; only when
ZeroMQ says "not now" does it come here. How to wait depends on the
concurrency model, chosen once when the manager is built:

* :class:`PlainWaiting` blocks the thread in ``zmq_poll`` (level-triggered).
* :class:`~agentzero.green_waiting.GreenWaiting` parks the greenlet and lets the others run. A
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

from agentzero._backend import CLOSED_ERRNOS, POLLIN, POLLOUT
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


def wait_arguments(manager: Any, timeout: float | None, polling_timeout: float | None) -> tuple[float, float]:
    """Return ``(seconds, slice_ms)`` for a wait: the given timeouts, checked, or the manager's defaults."""
    seconds = manager.timeout if timeout is None else check_seconds("timeout", timeout)
    if polling_timeout is None:
        return seconds, manager.polling_timeout
    return seconds, check_milliseconds("polling_timeout", polling_timeout, positive=True)


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


def choose_waiting(zmq_module: Any) -> Waiting:
    """Return the waiting layer for ``zmq`` or ``zmq.green`` (gevent is imported only for the latter)."""
    if getattr(zmq_module, "__name__", "") == "zmq.green":
        from agentzero.green_waiting import GreenWaiting

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
        seconds, slice_ms = wait_arguments(self, timeout, polling_timeout)
        return record.socket if self._waiting.wait(record, mechanism, seconds, slice_ms) else None
