"""The one table of a manager's sockets: a record per socket, and the 0.4.6 views over it.

Every part of the manager (sockets, addresses, waiting, messaging, security,
logging) is a mixin over :class:`ManagerState`, which holds one
:class:`SocketTable`. ``sockets``, ``addresses`` and ``registry``, the
dictionaries agentzero 0.4.6 users read, are views of that table, and so is
the poller's registration: nothing is kept in step by hand.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

import zmq

from agentzero.errors import SocketNotFound
from agentzero.manager.backend import fileno, more_reader

_ROUTER = int(zmq.ROUTER)


class SocketRecord:
    """What the manager remembers of one socket besides the socket itself.

    ``waiters`` and ``watcher`` belong to the waiting flavour: the sleepers
    waiting on this socket (see :mod:`agentzero.manager.turns`) and its
    descriptor's watcher; the plain flavour leaves ``waiters`` empty.
    A socket registered with ``register_socket`` but never named has a
    record whose ``name`` is ``None``.
    """

    __slots__ = (
        "name",
        "socket",
        "socket_type",
        "routing",
        "polling_mechanism",
        "binds",
        "connects",
        "last_address",
        "subscriptions",
        "options",
        "max_size",
        "fd",
        "waiters",
        "watcher",
        "monitor",
        "more",
    )

    def __init__(self, name: Any, socket: Any, socket_type: int, max_size: int | None = None) -> None:
        self.name = name
        self.socket: zmq.Socket[Any] = socket
        self.socket_type = socket_type
        #: a ROUTER: every message starts with a peer's identity, so the one-frame calls refuse it
        self.routing = socket_type == _ROUTER
        self.polling_mechanism = 0
        self.binds: list[str] = []
        self.connects: list[str] = []
        #: the address the socket was last bound or connected to (``addresses``)
        self.last_address: str | None = None
        self.subscriptions: set[bytes] = set()
        #: option -> value, as set through the manager (subscriptions apart)
        self.options: dict[int, Any] = {}
        #: the largest whole message accepted, in bytes (``None``: no limit)
        self.max_size = max_size
        self.fd = fileno(socket)
        self.waiters: list[Any] = []
        self.watcher: Any = None
        #: its :class:`~agentzero.manager.monitors.PeerMonitor`, once one was started
        self.monitor: Any = None
        #: ``more()``: non-zero when the frame just received has more after it (``zmq.RCVMORE``)
        self.more = more_reader(socket)

    @property
    def type_name(self) -> str:
        """The socket type's name, e.g. ``'PUSH'``."""
        try:
            return zmq.SocketType(self.socket_type).name
        except ValueError:
            return str(self.socket_type)

    def __repr__(self) -> str:
        return f"<SocketRecord {self.name!r} {self.type_name} binds={self.binds} connects={self.connects}>"


class SocketTable:
    """Every socket of one manager: by name (in creation order) and by socket.

    It is the only writer of the poller's registration and of the three
    dictionaries agentzero 0.4.6 users read (:attr:`sockets`,
    :attr:`addresses`, :attr:`registry`): they mirror the records, kept in
    step here and nowhere else.

    Parameters
    ----------
    poller : zmq.Poller
        kept registered with each socket's polling mechanism
    adopt : callable
        ``adopt(name, socket)``, called for ``sockets[name] = socket`` written by hand
    """

    def __init__(self, poller: Any, adopt: Callable[[Any, Any], None]) -> None:
        self.poller = poller
        #: name -> record, in creation order
        self.by_name: dict[Any, SocketRecord] = {}
        #: socket -> record, named or only registered
        self.by_socket: dict[Any, SocketRecord] = {}
        #: name -> socket
        self.sockets = SocketsView(adopt, self)
        #: name -> the address the socket was last bound or connected to
        self.addresses: OrderedDict[Any, str] = OrderedDict()
        #: socket -> the polling mechanism it is registered with
        self.registry: OrderedDict[Any, int] = OrderedDict()

    def add(self, record: SocketRecord) -> None:
        """Add a new record (a named socket, or a socket only registered when ``name`` is ``None``)."""
        if record.name is not None:
            self.by_name[record.name] = record
            OrderedDict.__setitem__(self.sockets, record.name, record.socket)
        self.by_socket[record.socket] = record

    def remove(self, record: SocketRecord) -> None:
        """Forget ``record``: its name, its address, its socket and its registration."""
        self.set_mechanism(record, 0)
        if record.name is not None and self.by_name.get(record.name) is record:
            del self.by_name[record.name]
            OrderedDict.pop(self.sockets, record.name, None)
            self.addresses.pop(record.name, None)
        if self.by_socket.get(record.socket) is record:
            del self.by_socket[record.socket]

    def record_of(self, socket: Any) -> SocketRecord | None:
        """The record of ``socket``, or ``None`` for a socket the manager does not know."""
        try:
            return self.by_socket.get(socket)
        except TypeError:  # an unhashable stranger
            return None

    def set_mechanism(self, record: SocketRecord, mechanism: int) -> None:
        """Register ``record``'s socket with ``mechanism`` (``0``: out of the poller)."""
        if mechanism:
            self.poller.register(record.socket, mechanism)
            self.registry[record.socket] = mechanism
        elif record.polling_mechanism or record.socket in self.registry:
            try:
                self.poller.unregister(record.socket)
            except KeyError:
                pass
            self.registry.pop(record.socket, None)
        record.polling_mechanism = mechanism

    def unregister_named(self) -> None:
        """Take every named socket out of the poller (``close_all``), in O(1) each.

        ``zmq.Poller.unregister`` renumbers every socket registered after the
        one it removes: taken last registered first, there is none.
        """
        by_socket = self.by_socket
        for socket in reversed(list(self.registry)):
            record = by_socket.get(socket)
            if record is not None and record.name is not None:
                self.set_mechanism(record, 0)

    def set_address(self, record: SocketRecord, address: str | None) -> None:
        """Remember the address ``record``'s socket was last bound or connected to (``None``: none)."""
        record.last_address = address
        if record.name is not None:
            if address is None:
                self.addresses.pop(record.name, None)
            else:
                self.addresses[record.name] = address

    def registered(self) -> list[SocketRecord]:
        """The records whose sockets are registered, in the order they were registered."""
        by_socket = self.by_socket
        return [by_socket[socket] for socket in self.registry if socket in by_socket]


class SocketsView(OrderedDict):  # type: ignore[type-arg]
    """``name -> socket`` in creation order, kept by :class:`SocketTable`; a socket set by hand is adopted."""

    def __init__(self, adopt: Callable[[Any, Any], None], table: SocketTable) -> None:
        super().__init__()
        self._adopt = adopt
        self._table = table

    def __setitem__(self, name: Any, socket: Any) -> None:
        self._adopt(name, socket)

    def __delitem__(self, name: Any) -> None:
        self._table.remove(self._table.by_name[name])

    def __reduce__(self) -> Any:  # a copy or a pickle is a plain OrderedDict
        return (OrderedDict, (list(self.items()),))


class ManagerState:
    """The state every part of the manager shares (set up by ``Sockets._set_up``)."""

    zmq: Any
    context: Any
    poller: Any
    timeout: float
    polling_timeout: float
    max_message_size: int | None
    linger: int | None
    serialization_backend: Any
    sockets: SocketsView
    addresses: OrderedDict[Any, str]
    registry: OrderedDict[Any, int]
    _table: SocketTable
    #: the table's ``by_name`` itself, held here for the hot paths (one lookup less)
    _records: dict[Any, SocketRecord]
    _waiting: Any
    #: one frame's bytes, or a list of frames (a serializer's large buffers, see ``message_packer``)
    _pack: Callable[[Any], bytes | list[Any]]
    _pack_one: Callable[[Any], bytes]
    _unpack: Callable[[bytes], Any]
    #: the serializer's ``unpack_frames`` when it reads messages of several frames, else ``None``
    _unpack_frames: Callable[[list[Any]], Any] | None
    #: socket name -> topic -> its ZMQPubHandler (see :mod:`agentzero.loggers`)
    _log_handlers: dict[Any, dict[str, Any]]
    #: ZMQPubHandler -> the loggers ``get_logger`` attached it to
    _attached_loggers: dict[Any, list[Any]]
    #: released endpoint (see ``released_key``) -> until when ``bind`` may wait for it, oldest first
    _released: OrderedDict[str, float]
    _authenticator: Any

    def get_record(self, name: str) -> SocketRecord:
        """Return what the manager remembers of the named socket (type, addresses, topics).

        Parameters
        ----------
        name : str
            the socket name

        Returns
        -------
        SocketRecord
            the socket's record: its type, addresses, subscriptions and options.

        Raises
        ------
        SocketNotFound
            when no socket has that name.
        """
        try:
            return self._records[name]
        except (KeyError, TypeError):
            raise SocketNotFound(self, name) from None
