"""Each socket's monitor: libzmq's connection events, read without ever stalling its I/O thread.

libzmq sends a socket's monitor events from its I/O thread with a blocking
send to an ``inproc://`` PAIR. With the default high-water marks that pipe
holds about 2,000 events: once it is full, the I/O thread blocks, and every
connection of the context stalls. The manager's reader PAIR is given a
receive high-water mark of 0 before it connects, which makes an inproc pipe
unbounded (libzmq's ``socket_base_t::connect_internal``), so the I/O thread
never waits for it. The events are taken from the pipe into a bounded buffer
(:data:`MAX_EVENTS`, the oldest dropped and counted) when the manager is
asked about the socket's peers, and when the socket is bound, connected or
disconnected: never per message.

Only the events that say who is there are asked for (not ``bind_failed``:
``bind`` raises then, and libzmq's sending of that event clobbers the
``errno`` the error is made of). A peer that is not
there makes libzmq repeat ``connect_delayed``, ``connect_retried`` and
``closed`` every reconnect interval, which would pile up unread for as long
as nobody asks. libzmq reports nothing over ``inproc://``: a monitor is
started at a socket's first ``tcp://``, ``ipc://`` (or other network) bind
or connect, or when asked, and costs nothing before.
"""

from __future__ import annotations

import errno
import itertools
import struct
from collections import deque
from typing import Any, NamedTuple

import zmq

from agentzero.manager.backend import NOBLOCK, RCVMORE, raw_get, raw_recv
from agentzero.manager.table import SocketRecord

#: how many events a socket's buffer keeps for :meth:`socket_events`; older ones are dropped and counted
MAX_EVENTS = 1000
#: the events asked of libzmq (see the module's text)
MONITORED = int(
    zmq.EVENT_CONNECTED
    | zmq.EVENT_ACCEPTED
    | zmq.EVENT_LISTENING
    | zmq.EVENT_ACCEPT_FAILED
    | zmq.EVENT_CLOSE_FAILED
    | zmq.EVENT_DISCONNECTED
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)
_CONNECTED = (int(zmq.EVENT_CONNECTED), int(zmq.EVENT_ACCEPTED))
_SUCCEEDED = int(zmq.EVENT_HANDSHAKE_SUCCEEDED)
_FAILED = (
    int(zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL),
    int(zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL),
    int(zmq.EVENT_HANDSHAKE_FAILED_AUTH),
)
_DISCONNECTED = int(zmq.EVENT_DISCONNECTED)
_STOPPED = int(zmq.EVENT_MONITOR_STOPPED)
_HEAD = struct.Struct("=HI")  # libzmq's version 1 events: a 16-bit event number, a 32-bit value
_KINDS = {int(event): str(event.name).lower() for event in zmq.Event if event.name}
_numbers = itertools.count()


class SocketEvent(NamedTuple):
    """One of libzmq's monitor events, as :meth:`~agentzero.core.SocketManager.socket_events` gives it.

    >>> event = SocketEvent('handshake_succeeded', 'tcp://127.0.0.1:5000', 0)
    >>> kind, endpoint, value = event
    >>> kind
    'handshake_succeeded'
    """

    #: libzmq's event name in lower case, without ``EVENT_`` (``'connected'``, ``'disconnected'``...);
    #: ``'dropped'`` when ``value`` events were dropped from a full buffer before the next ones
    kind: str
    #: the endpoint libzmq names: the address bound to, for a connection accepted there; the
    #: address connected to, for a connection made
    endpoint: str
    #: libzmq's value: the connection's descriptor for ``accepted``, ``connected`` and
    #: ``disconnected``; an error number or ZMTP protocol error code for the failures; else 0
    value: int


def event_kind(number: int) -> str:
    """libzmq's name of event ``number``, lower case, without ``EVENT_``.

    >>> event_kind(int(zmq.EVENT_HANDSHAKE_FAILED_AUTH))
    'handshake_failed_auth'
    """
    return _KINDS.get(number, f"event_{number}")


class PeerMonitor:
    """The reader of one socket's monitor, what it has seen, and its peers.

    Peers are counted per connection: ``connected`` or ``accepted`` (with its
    descriptor) opens one, ``handshake_succeeded`` or a ``handshake_failed_*``
    settles the oldest open one of that endpoint (libzmq's version 1 events
    carry no descriptor there), ``disconnected`` ends it; a connection ended
    after a successful handshake is a peer lost.
    """

    __slots__ = (
        "reader",
        "record",
        "events",
        "dropped",
        "handshaking",
        "up",
        "topics",
        "unusable",
        "unresolved",
        "resolving",
    )

    def __init__(self, socket_name: Any) -> None:
        self.reader: Any = None
        #: a record of the reader alone, for the flavour's waits (never in the manager's table)
        self.record: SocketRecord | None = None
        self.events: deque[SocketEvent] = deque()
        self.dropped = 0
        #: endpoint -> descriptors of the connections whose handshake is not over
        self.handshaking: dict[str, list[int]] = {}
        #: (endpoint, descriptor) of every connection whose handshake succeeded and that is up
        self.up: set[tuple[str, int]] = set()
        #: topic -> subscriptions minus unsubscriptions seen on an XPUB (see ``wait_for_subscribers``)
        self.topics: dict[bytes, int] = {}
        #: why no monitor could be started (``None``: it runs)
        self.unusable: str | None = None
        #: the error of a host name to connect to that did not resolve (asyncio: found out later)
        self.unresolved: Exception | None = None
        #: how many host names to connect to a worker thread is still resolving (asyncio)
        self.resolving = 0

    @property
    def peers(self) -> int:
        """How many connections completed their handshake and are up."""
        return len(self.up)

    def take(self, number: int, endpoint: str, value: int) -> None:
        """Follow one event: the peers it opens or ends, and the buffer."""
        if number in _CONNECTED:
            self.handshaking.setdefault(endpoint, []).append(value)
        elif number == _SUCCEEDED:
            pending = self.handshaking.get(endpoint)
            # -1 - n: no descriptor was seen for it (never equal to a real one)
            self.up.add((endpoint, pending.pop(0) if pending else -1 - len(self.up)))
        elif number in _FAILED:
            pending = self.handshaking.get(endpoint)
            if pending:
                pending.pop(0)
        elif number == _DISCONNECTED:
            self.end(endpoint, value)
        elif number == _STOPPED:
            return
        if len(self.events) >= MAX_EVENTS:
            self.events.popleft()
            self.dropped += 1
        self.events.append(SocketEvent(event_kind(number), endpoint, value))

    def end(self, endpoint: str, descriptor: int) -> None:
        """A connection ended: forget it, a peer when its handshake had succeeded."""
        if (endpoint, descriptor) in self.up:
            self.up.discard((endpoint, descriptor))
            return
        pending = self.handshaking.get(endpoint)
        if pending and descriptor in pending:
            pending.remove(descriptor)
            return
        unknown = [key for key in self.up if key[0] == endpoint and key[1] < 0]
        if unknown:
            self.up.discard(unknown[0])

    def forget(self, endpoint: str) -> None:
        """The socket disconnected from ``endpoint`` itself: libzmq reports no ``disconnected`` then."""
        self.handshaking.pop(endpoint, None)
        self.up = {key for key in self.up if key[0] != endpoint}

    def take_events(self) -> list[SocketEvent]:
        """The buffered events, oldest first (after a ``dropped`` one when some were lost); empties it."""
        taken = list(self.events)
        if self.dropped:
            taken.insert(0, SocketEvent("dropped", "", self.dropped))
            self.dropped = 0
        self.events.clear()
        return taken


def start_monitor(context: Any, record: SocketRecord) -> PeerMonitor:
    """Start monitoring ``record``'s socket (once); its monitor, ``unusable`` when that failed.

    The reader is a plain ``zmq.Socket`` of the manager's context (only its
    descriptor and raw calls are used); its receive high-water mark is 0
    before it connects, so the pipe from libzmq's monitor is unbounded.
    """
    monitor = record.monitor
    if monitor is not None:
        return monitor  # type: ignore[no-any-return]
    monitor = record.monitor = PeerMonitor(record.name)
    address = f"inproc://agentzero-monitor-{next(_numbers)}-{id(monitor):x}"
    reader = None
    try:
        # libzmq's own PAIR first: when the context has no room for it, nothing is left to clean
        record.socket.monitor(address, MONITORED)
        reader = zmq.Socket(context, zmq.PAIR)
        reader.setsockopt(zmq.LINGER, 0)
        reader.setsockopt(zmq.RCVHWM, 0)
        reader.connect(address)
    except zmq.ZMQError as exc:
        try:
            record.socket.disable_monitor()
        except zmq.ZMQError:
            pass
        if reader is not None:
            reader.close(0)
        full = exc.errno == errno.EMFILE
        limit = f" (the context's MAX_SOCKETS is {_max_sockets(context)})" if full else ""
        monitor.unusable = f"its monitor could not be started: {exc.strerror}{limit}"
        return monitor
    monitor.reader = reader
    monitor.record = SocketRecord(record.name, reader, int(zmq.PAIR))
    return monitor


def drain(monitor: PeerMonitor) -> None:
    """Take every event waiting in the monitor's pipe (see :meth:`PeerMonitor.take`)."""
    reader = monitor.reader
    if reader is None:
        return
    take = monitor.take
    while True:
        try:
            head = raw_recv(reader, NOBLOCK)
            endpoint = raw_recv(reader, NOBLOCK) if raw_get(reader, RCVMORE) else b""
        except zmq.ZMQError:
            return  # drained (EAGAIN), or closed
        if len(head) == _HEAD.size:
            number, value = _HEAD.unpack(head)
            take(number, endpoint.decode("utf-8", "replace"), value)


def stop_monitor(record: SocketRecord, waiting: Any) -> None:
    """Stop the socket's monitor and close its reader, before the socket closes; never blocks.

    The last event libzmq sends when its monitor stops goes into the unbounded
    pipe, and the reader closes with linger 0, dropping whatever is unread.
    Whoever waits on the reader hears that the socket closed.
    """
    monitor, record.monitor = record.monitor, None
    if monitor is None or monitor.reader is None:
        return
    waiting.closing(monitor.record)
    try:
        record.socket.disable_monitor()
    except (zmq.ZMQError, AttributeError):
        pass
    monitor.reader.close(0)
    monitor.reader = None


def _max_sockets(context: Any) -> Any:
    try:
        return context.get(zmq.MAX_SOCKETS)
    except zmq.ZMQError:
        return "reached"
