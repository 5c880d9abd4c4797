"""Socket bookkeeping: creating, finding, registering, configuring and resetting named sockets.

Closing them is :mod:`agentzero.manager.closing`'s.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import zmq

from agentzero.errors import SocketAlreadyExists, SocketClosed
from agentzero.manager.checks import check_linger, check_mechanism, check_milliseconds, check_seconds
from agentzero.manager.closing import DEFAULT_LINGER, Closing
from agentzero.manager.options import apply_option, encoded_topic
from agentzero.manager.table import SocketRecord, SocketTable
from agentzero.serializers import JSON, frame_packer, frame_unpacker, frames_unpacker, message_packer


class Sockets(Closing):
    """Create, find, register, configure, reset and close the manager's named sockets."""

    def _set_up(
        self,
        module: Any,
        context: Any,
        serialization_backend: Any,
        polling_timeout: float,
        timeout: float,
        max_message_size: int | None,
        waiting: Any,
        linger: int | None = DEFAULT_LINGER,
    ) -> None:
        """Check the constructor's arguments and set up the state every flavour of manager shares."""
        check_linger(linger)
        backend = serialization_backend if serialization_backend is not None else JSON()
        if not (callable(getattr(backend, "pack", None)) and callable(getattr(backend, "unpack", None))):
            raise TypeError(f"serialization_backend must have pack() and unpack(), got {backend!r}")
        if max_message_size is not None and (
            not isinstance(max_message_size, int)
            or isinstance(max_message_size, bool)
            or not 1 <= max_message_size < 2**63  # libzmq's MAXMSGSIZE is a 64-bit int
        ):
            raise ValueError(f"max_message_size must be a positive number of bytes, got {max_message_size!r}")
        self.polling_timeout = check_milliseconds("polling_timeout", polling_timeout, positive=True)
        self.timeout = check_seconds("timeout", timeout)
        self.zmq = module
        self.context = context
        self.serialization_backend = backend
        self._pack = message_packer(backend)
        #: always one frame (large buffers inline): what the routing calls send as their data
        self._pack_one = frame_packer(backend)
        self._unpack = frame_unpacker(backend)
        self._unpack_frames = frames_unpacker(backend)
        self.max_message_size = max_message_size
        self.linger = linger
        self._waiting = waiting
        self.poller = module.Poller()
        table = self._table = SocketTable(self.poller, self._adopt)
        self._records = table.by_name
        self.sockets = table.sockets
        self.addresses = table.addresses
        self.registry = table.registry
        self._log_handlers = {}
        self._attached_loggers = {}
        self._released = OrderedDict()
        self._authenticator = None

    @property
    def timeout(self) -> float:
        """How long the ``*_safe`` calls wait by default, in seconds; may be changed at any time."""
        return self._timeout

    @timeout.setter
    def timeout(self, seconds: float) -> None:
        self._timeout = check_seconds("timeout", seconds)

    def create(self, name: str, socket_type: int) -> zmq.Socket[Any]:
        """Create a named socket by type.

        A ROUTER socket gets ``zmq.ROUTER_MANDATORY``: a message to a peer
        that is not connected raises :class:`~agentzero.errors.PeerUnreachable`
        instead of being dropped silently (set it back to ``0`` with
        :meth:`set_socket_option` to have ZeroMQ drop such messages).

        Parameters
        ----------
        name : str
            the socket name
        socket_type : int
            a valid socket type (i.e: ``zmq.REQ``, ``zmq.PUB``, ``zmq.PAIR``, ...)

        Returns
        -------
        zmq.Socket
            the socket itself

        Raises
        ------
        SocketAlreadyExists
            when a socket of that name exists.
        ValueError
            when ``socket_type`` is not a socket type.
        SocketClosed
            when the manager's context was terminated (or closed).
        """
        if name in self._records:
            raise SocketAlreadyExists(self, name)
        try:
            zmq.SocketType(socket_type)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"invalid socket type {socket_type!r} for socket {name!r}") from exc
        try:
            socket: zmq.Socket[Any] = self.context.socket(socket_type)
        except zmq.ZMQError as exc:
            # pyzmq refuses a terminated context with ENOTSUP, libzmq with ETERM
            if exc.errno == zmq.ETERM or getattr(self.context, "closed", False):
                raise SocketClosed(name, "its context was terminated") from None
            raise
        self._table.add(SocketRecord(name, socket, int(socket_type), self.max_message_size))
        if socket_type == zmq.XPUB:  # every subscription is seen: see wait_for_subscribers
            socket.setsockopt(zmq.XPUB_VERBOSER, 1)
        if self.max_message_size is not None:
            self.set_socket_option(name, zmq.MAXMSGSIZE, self.max_message_size)
        if socket_type == zmq.ROUTER:  # a message to a peer that is gone raises, instead of vanishing
            self.set_socket_option(name, zmq.ROUTER_MANDATORY, 1)
        return socket

    def get_by_name(self, name: str, socket_type: int | None = None) -> zmq.Socket[Any]:
        """Return an existing socket by name.

        Parameters
        ----------
        name : str
            the socket name
        socket_type : int, optional
            accepted for compatibility with older examples; ignored (the
            socket is returned whatever its type).

        Returns
        -------
        zmq.Socket
            the socket (a ``zmq.green`` socket under a green manager)

        Raises
        ------
        SocketNotFound
            when no socket has that name.
        """
        return self.get_record(name).socket

    def get_or_create(self, name: str, socket_type: int, polling_mechanism: int) -> zmq.Socket[Any]:
        """Ensure that a socket exists and is registered with ``polling_mechanism``.

        An existing socket of that name is returned as it is (its type is not changed).

        Parameters
        ----------
        name : str
            the socket name
        socket_type : int
            a valid socket type, used when the socket has to be created
        polling_mechanism : int
            ``zmq.POLLIN``, ``zmq.POLLOUT`` or ``zmq.POLLIN | zmq.POLLOUT``

        Returns
        -------
        zmq.Socket
            the socket itself

        Raises
        ------
        ValueError
            when ``socket_type`` or ``polling_mechanism`` is invalid.
        """
        check_mechanism(polling_mechanism, registering=True)
        if name not in self._records:
            self.create(name, socket_type)
        return self.register_socket(self._records[name].socket, polling_mechanism)

    def register_socket(self, socket: zmq.Socket[Any], polling_mechanism: int) -> zmq.Socket[Any]:
        """Register ``socket`` in the poller with ``polling_mechanism``.

        Registering an already registered socket replaces its mechanism, as
        ``zmq.Poller.register`` does; ``0`` keeps the socket out of the poller
        (for a PUSH or PUB that :meth:`engage` should not report as always
        writable). :attr:`registry` maps each registered socket to its mechanism.

        Parameters
        ----------
        socket : zmq.Socket
            the socket instance
        polling_mechanism : int
            ``0``, ``zmq.POLLIN``, ``zmq.POLLOUT`` or ``zmq.POLLIN | zmq.POLLOUT``

        Returns
        -------
        zmq.Socket
            the socket itself

        Raises
        ------
        ValueError
            when ``polling_mechanism`` is not 0, ``zmq.POLLIN``, ``zmq.POLLOUT`` or both.
        """
        mechanism = check_mechanism(polling_mechanism, registering=True)
        record = self._table.record_of(socket)
        if record is None:
            if not mechanism:
                return socket
            record = self._record(None, socket)
            self._table.add(record)
        self._table.set_mechanism(record, mechanism)
        return socket

    def set_socket_option(self, name: str, option: int, value: Any) -> None:
        """Call ``setsockopt`` on the named socket.

        ``zmq.HWM`` sets both ``SNDHWM`` and ``RCVHWM``; text values are encoded
        as UTF-8; ``zmq.MAXMSGSIZE`` also becomes the socket's limit for whole
        (multipart) messages.

        Parameters
        ----------
        name : str
            the socket name
        option : int
            the option from the zmq module, e.g. ``zmq.LINGER``, ``zmq.SUBSCRIBE``
        value : int, bytes or str
            the option's value

        Raises
        ------
        SocketNotFound
            when no socket has that name.
        WrongSocketType
            when subscribing (or unsubscribing) a socket that is not a SUB.
        SocketOptionError
            when libzmq refuses the option or its value, or the value does not
            fit the option (e.g. text for a number, a number over libzmq's
            ``int``, text UTF-8 cannot encode); nothing is changed or recorded.
        SocketClosed
            when the socket was closed behind the manager's back.
        """
        apply_option(self.get_record(name), option, value)

    def set_topic(self, name: str, topic: str | bytes) -> None:
        """Subscribe the named SUB socket to ``topic`` (a prefix; ``''`` means everything).

        A shortcut to ``set_socket_option(name, zmq.SUBSCRIBE, topic)``; subscribing
        twice to the same topic does nothing more.

        Parameters
        ----------
        name : str
            the socket name
        topic : str or bytes
            the topic prefix; text is encoded as UTF-8

        Returns
        -------
        None

        Raises
        ------
        SocketNotFound
            when no socket has that name.
        WrongSocketType
            when the socket is not a SUB socket.
        TypeError
            when ``topic`` is neither text nor bytes.
        SocketOptionError
            when ``topic`` is text that UTF-8 cannot encode (a lone surrogate).
        """
        topic_bytes = encoded_topic(name, topic)
        if topic_bytes not in self.get_record(name).subscriptions:
            self.set_socket_option(name, zmq.SUBSCRIBE, topic_bytes)

    def _record(self, name: Any, socket: Any) -> SocketRecord:
        """A new record for a socket made elsewhere (set in :attr:`sockets` by hand, or registered)."""
        return SocketRecord(name, socket, int(socket.getsockopt(zmq.TYPE)), self.max_message_size)

    def _adopt(self, name: Any, socket: Any) -> None:
        """Name a socket made elsewhere, as ``sockets[name] = socket`` did in agentzero 0.4.6."""
        if not hasattr(socket, "getsockopt"):
            raise TypeError(f"sockets[{name!r}] must be a zmq socket, got {socket!r}")
        if name in self._records:
            raise SocketAlreadyExists(self, name)
        known = self._table.record_of(socket)
        mechanism = known.polling_mechanism if known is not None else 0
        if known is not None:  # registered by hand before it was named: keep its mechanism
            self._table.remove(known)
        record = self._record(name, socket)
        self._table.add(record)
        self._table.set_mechanism(record, mechanism)
