"""Knowing a socket's peers: ``peers``, ``wait_for_peers``, ``wait_for_subscribers`` and ``socket_events``.

Written once for every flavour: each call looks at once and, when it must
wait, builds the steps that wait on the socket's monitor (and, for
``wait_for_subscribers``, on the XPUB itself); see
:mod:`agentzero.manager.monitors` for how the monitor is read without ever
stalling libzmq's I/O thread.
"""

from __future__ import annotations

import time
from typing import Any

import zmq

from agentzero.errors import PeersNotVisible, SocketClosed, WrongSocketType
from agentzero.manager.backend import CLOSED_ERRNOS, NOBLOCK, POLLIN, raw_recv
from agentzero.manager.buffers import guarded
from agentzero.manager.checks import check_seconds, closed_error
from agentzero.manager.frames import discard_rest_of_message
from agentzero.manager.monitors import PeerMonitor, SocketEvent, drain, start_monitor
from agentzero.manager.table import SocketRecord
from agentzero.manager.waits import Steps, Waits

__all__ = ["Peers", "SocketEvent"]

_monotonic = time.monotonic
_SUBSCRIBE, _UNSUBSCRIBE = b"\x01", b"\x00"
#: how often a wait for peers looks whether a host name failed to resolve, in milliseconds (asyncio)
RESOLVING_SLICE_MS = 50.0
_INPROC_ONLY = "it is bound or connected over inproc:// only, where libzmq reports no connections"


class Peers(Waits):
    """Who is connected to a socket, and what its monitor saw (see the module's text)."""

    def peers(self, name: str) -> int:
        """Count the socket's peers: its connections whose handshake completed and that are still up.

        Counted since the socket was created (or adopted), over ``tcp://``,
        ``ipc://`` and the other transports libzmq monitors; connections
        over ``inproc://`` are not counted, libzmq reports none.

        Parameters
        ----------
        name : str
            the socket name

        Returns
        -------
        int
            how many peers are connected now.

        Raises
        ------
        SocketNotFound
            when no socket has that name.
        PeersNotVisible
            when the socket is bound or connected over ``inproc://`` only,
            or its monitor could not be started.
        """
        monitor = self._peer_monitor(self.get_record(name), counting=True)
        drain(monitor)
        return monitor.peers

    def wait_for_peers(self, name: str, count: int = 1, timeout: float | None = None) -> bool:
        """Wait until at least ``count`` peers are connected to the socket (see :meth:`peers`).

        Parameters
        ----------
        name : str
            the socket name
        count : int
            how many peers to wait for, at least 1
        timeout : float, optional
            how long to wait, in **seconds**; defaults to the manager's ``timeout``.

        Returns
        -------
        bool
            ``True`` once at least ``count`` peers are up, ``False`` on time-out.

        Raises
        ------
        SocketNotFound
            when no socket has that name.
        PeersNotVisible
            when the socket is bound or connected over ``inproc://`` only,
            or its monitor could not be started.
        SocketClosed
            when the socket is closed while waiting.
        ValueError
            when ``count`` is not a positive whole number, or ``timeout`` is
            negative, infinite or NaN.
        """
        record = self.get_record(name)
        wanted = _check_count(count)
        seconds = self.timeout if timeout is None else check_seconds("timeout", timeout)
        monitor = self._peer_monitor(record, counting=True)
        drain(monitor)
        if monitor.peers >= wanted:
            return True
        return self._finish(self._peers_steps(record, monitor, wanted, seconds, False))

    def wait_for_subscribers(self, name: str, count: int = 1, timeout: float | None = None) -> bool:
        """Wait until subscriptions from at least ``count`` peers reached the named XPUB socket.

        What is counted is the number of connected peers subscribed to one
        same topic: the subscriptions to the most subscribed topic (an XPUB
        made by the manager passes every subscription and unsubscription
        up, ``XPUB_VERBOSER``), at most :meth:`peers`. Once it returns
        ``True``, a message published on that topic reaches those
        subscribers: the XPUB applied their subscriptions before handing
        them over. A peer that subscribes twice to a topic counts twice
        (:meth:`set_topic` never does). This call reads the XPUB's incoming
        messages itself: the subscriptions, and whatever else arrives (an
        XSUB's upstream messages) is dropped.

        Parameters
        ----------
        name : str
            the name of an XPUB socket
        count : int
            how many subscribers to wait for, at least 1
        timeout : float, optional
            how long to wait, in **seconds**; defaults to the manager's ``timeout``.

        Returns
        -------
        bool
            ``True`` once subscriptions from at least ``count`` peers arrived,
            ``False`` on time-out.

        Raises
        ------
        SocketNotFound
            when no socket has that name.
        WrongSocketType
            when the socket is not an XPUB: a PUB never sees its subscriptions.
        PeersNotVisible
            when the socket is bound or connected over ``inproc://`` only,
            or its monitor could not be started.
        SocketClosed
            when the socket is closed while waiting.
        ValueError
            when ``count`` is not a positive whole number, or ``timeout`` is
            negative, infinite or NaN.
        """
        record = self.get_record(name)
        if record.socket_type != zmq.XPUB:
            can = (
                "never sees its subscriptions (only an XPUB does)" if record.socket_type == zmq.PUB else None
            )
            raise WrongSocketType(name, record.type_name, "wait_for_subscribers", "XPUB", can=can)
        wanted = _check_count(count)
        seconds = self.timeout if timeout is None else check_seconds("timeout", timeout)
        monitor = self._peer_monitor(record, counting=True)
        if self._subscribers(record, monitor) >= wanted:
            return True
        return self._finish(self._peers_steps(record, monitor, wanted, seconds, True))

    def socket_events(self, name: str, timeout: float | None = None) -> list[SocketEvent]:
        """Return the monitor events seen on the socket since the last call, oldest first.

        At most :data:`~agentzero.manager.monitors.MAX_EVENTS` are kept
        between two calls: when older ones were dropped, the list starts with
        ``SocketEvent('dropped', '', how_many)``. Retries of a connection that
        cannot be made (``connect_retried``, ``connect_delayed``, ``closed``)
        are not reported: they repeat every reconnect interval.

        Parameters
        ----------
        name : str
            the socket name
        timeout : float, optional
            how long to wait for at least one event, in **seconds**; by
            default (and with ``0``) the events are returned at once.

        Returns
        -------
        list of SocketEvent
            ``(kind, endpoint, value)`` tuples; empty when none came in time.

        Raises
        ------
        SocketNotFound
            when no socket has that name.
        PeersNotVisible
            when the socket's monitor could not be started.
        SocketClosed
            when the socket is closed while waiting.
        ValueError
            when ``timeout`` is negative, infinite or NaN.
        """
        record = self.get_record(name)
        seconds = 0.0 if timeout is None else check_seconds("timeout", timeout)
        monitor = self._peer_monitor(record, counting=False)
        drain(monitor)
        if monitor.events or monitor.dropped or seconds <= 0:
            return monitor.take_events()
        events: list[SocketEvent] = self._finish(self._events_steps(record, monitor, seconds))
        return events

    # -- what the calls share ---------------------------------------------------------------------

    def _peer_monitor(self, record: SocketRecord, counting: bool) -> PeerMonitor:
        """The socket's monitor, started now if it was not; refused when it cannot tell peers."""
        if counting:
            endpoints = record.binds + record.connects
            if endpoints and all(endpoint.startswith("inproc://") for endpoint in endpoints):
                raise PeersNotVisible(record.name, _INPROC_ONLY)
        monitor = start_monitor(self.context, record)
        if monitor.unusable is not None:
            raise PeersNotVisible(record.name, monitor.unusable)
        if monitor.unresolved is not None and counting:
            raise monitor.unresolved
        return monitor

    def _subscribers(self, record: SocketRecord, monitor: PeerMonitor) -> int:
        """Read the XPUB's subscriptions; how many connected peers share the most subscribed topic."""
        try:  # Ctrl-C held back: pyzmq raises one that arrives during a read once the frame is taken
            guarded(self._read_subscriptions, record, monitor.topics)
        except zmq.ZMQError as exc:
            if exc.errno in CLOSED_ERRNOS:
                raise closed_error(record.name, exc) from None
        if record.waiters:
            self._waiting.after_operation(record)
        drain(monitor)
        return min(monitor.peers, max(monitor.topics.values(), default=0))

    def _read_subscriptions(self, record: SocketRecord, topics: dict[bytes, int]) -> None:
        """Count every (un)subscription the XPUB has queued, until ``zmq.Again``; never waits.

        The XPUB gives each once and the count lasts across calls, so a frame
        read is always counted: :func:`~agentzero.manager.buffers.guarded` keeps
        a Ctrl-C from being raised in the read (after the frame was taken), and
        the ``finally`` counts it whatever else is raised after.
        """
        socket = record.socket
        while True:
            frame = raw_recv(socket, NOBLOCK)
            try:
                if record.more():
                    discard_rest_of_message(record, self._waiting)
            except BaseException:  # interrupted between two frames: the rest is no subscription
                discard_rest_of_message(record, self._waiting)
                raise
            finally:  # a frame read is counted, or it would be lost to every later call
                _count(topics, frame)

    def _peers_steps(
        self, record: SocketRecord, monitor: PeerMonitor, wanted: int, seconds: float, subscribers: bool
    ) -> Steps[bool]:
        """Wait on the monitor (and the XPUB, for subscribers) until ``wanted`` are there."""
        deadline = _monotonic() + seconds
        watched = [(monitor.record, POLLIN)]
        if subscribers:
            watched.append((record, POLLIN))
        while True:
            remaining = deadline - _monotonic()
            if remaining <= 0:
                return False
            # while a worker thread resolves a host name, look every RESOLVING_SLICE: it may fail
            slice_ms = min(
                remaining * 1000.0, self.polling_timeout, RESOLVING_SLICE_MS if monitor.resolving else 1e12
            )
            try:
                yield self._waiting.poll, watched, slice_ms
            except SocketClosed:
                raise SocketClosed(record.name) from None
            if record.monitor is None:
                raise SocketClosed(record.name)
            if monitor.unresolved is not None:
                raise monitor.unresolved
            if subscribers:
                found = self._subscribers(record, monitor)
            else:
                drain(monitor)
                found = monitor.peers
            if found >= wanted:
                return True

    def _events_steps(
        self, record: SocketRecord, monitor: PeerMonitor, seconds: float
    ) -> Steps[list[SocketEvent]]:
        """Wait for at least one event; the events then (perhaps none)."""
        deadline = _monotonic() + seconds
        while True:
            remaining = deadline - _monotonic()
            if remaining <= 0:
                return monitor.take_events()
            try:
                yield (
                    self._waiting.poll,
                    [(monitor.record, POLLIN)],
                    min(remaining * 1000.0, self.polling_timeout),
                )
            except SocketClosed:
                raise SocketClosed(record.name) from None
            if record.monitor is None:
                raise SocketClosed(record.name)
            drain(monitor)
            if monitor.events or monitor.dropped:
                return monitor.take_events()


def _check_count(count: Any) -> int:
    """``count`` when it is a whole number of at least 1."""
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"count must be a whole number of at least 1, got {count!r}")
    return count


def _count(topics: dict[bytes, int], frame: bytes) -> None:
    """Count an XPUB's subscription (``b"\\x01" + topic``) or unsubscription (``b"\\x00" + topic``) frame."""
    topic = frame[1:]
    if frame[:1] == _SUBSCRIBE:
        topics[topic] = topics.get(topic, 0) + 1
    elif frame[:1] == _UNSUBSCRIBE and topic in topics:
        topics[topic] -= 1
        if topics[topic] <= 0:
            del topics[topic]
