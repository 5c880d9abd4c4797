"""What a :class:`~agentzero.core.SocketManager` keeps: its state, and one record per named socket.

Every part of the manager (sockets, addresses, waiting, messaging, security,
logging) is a mixin over :class:`ManagerState`, which declares the state they
share and the one way to find a socket's record by name.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable

import zmq

from agentzero._backend import fileno
from agentzero.errors import SocketNotFound

if TYPE_CHECKING:
    from agentzero.logs import ZMQPubHandler
    from agentzero.waiting import Waiting


class SocketRecord:
    """What the manager remembers of one named socket besides the socket itself.

    ``waiters`` and ``watcher`` belong to the waiting layer: the green layer
    keeps there the greenlets waiting on this socket and its descriptor's
    watcher; the plain layer leaves ``waiters`` empty.
    """

    __slots__ = (
        "name",
        "socket",
        "socket_type",
        "polling_mechanism",
        "binds",
        "connects",
        "subscriptions",
        "options",
        "max_size",
        "fd",
        "waiters",
        "watcher",
    )

    def __init__(self, name: Any, socket: Any, socket_type: int, max_size: int | None = None) -> None:
        self.name = name
        self.socket = socket
        self.socket_type = socket_type
        self.polling_mechanism = 0
        self.binds: list[str] = []
        self.connects: list[str] = []
        self.subscriptions: set[bytes] = set()
        #: option -> value, as set through the manager (subscriptions apart)
        self.options: dict[int, Any] = {}
        #: the largest whole message accepted, in bytes (``None``: no limit)
        self.max_size = max_size
        self.fd = fileno(socket)
        self.waiters: Any = ()
        self.watcher: Any = None

    @property
    def type_name(self) -> str:
        """The socket type's name, e.g. ``'PUSH'``."""
        try:
            return zmq.SocketType(self.socket_type).name
        except ValueError:
            return str(self.socket_type)

    def __repr__(self) -> str:
        return f"<SocketRecord {self.name!r} {self.type_name} binds={self.binds} connects={self.connects}>"


class ManagerState:
    """The state every part of the manager shares (set up by ``SocketManager.__init__``)."""

    zmq: Any
    context: Any
    poller: Any
    timeout: float
    polling_timeout: float
    max_message_size: int | None
    serialization_backend: Any
    # name -> socket, in creation order
    sockets: OrderedDict[Any, Any]
    # name -> the address the socket was last bound or connected to
    addresses: OrderedDict[Any, str]
    # socket -> the polling mechanism it is registered with (as agentzero 0.4.6 kept it)
    registry: OrderedDict[Any, int]
    _records: dict[Any, SocketRecord]
    _waiting: Waiting
    _pack: Callable[[Any], bytes]
    _unpack: Callable[[bytes], Any]
    _log_handlers: dict[tuple[Any, str], ZMQPubHandler]
    _attached_loggers: list[tuple[Any, ZMQPubHandler]]
    _released: dict[str, float]
    _authenticator: Any

    def get_record(self, name: Any) -> SocketRecord:
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
        except KeyError:
            return self._adopt(name)

    def _adopt(self, name: Any) -> SocketRecord:
        """Make a record for a socket put in :attr:`sockets` by hand, or raise :class:`SocketNotFound`."""
        socket = self.sockets.get(name) if isinstance(self.sockets, dict) else None
        if socket is None or not hasattr(socket, "getsockopt"):
            raise SocketNotFound(self, name) from None
        record = self._records[name] = SocketRecord(
            name, socket, int(socket.getsockopt(zmq.TYPE)), self.max_message_size
        )
        self._waiting.prepare(record)
        return record
