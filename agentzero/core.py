"""The :class:`SocketManager`: named ZeroMQ sockets sharing one poller.

Every ``*_safe`` call first tries its operation without blocking and only
waits when the socket is not ready; all waiting goes through one primitive,
:meth:`SocketManager.wait_until_ready`, which never overshoots its timeout and,
with ``zmq.green``, yields to other greenlets while it waits.
"""

from __future__ import annotations

import select as _select
import time
from typing import Any, Callable, Iterator, NamedTuple

import zmq as _zmq

from agentzero.errors import (
    DeserializationError,
    SocketAlreadyExists,
    SocketBindError,
    SocketConnectError,
    SocketNotFound,
)
from agentzero.logs import ZMQPubHandler
from agentzero.serializers import JSON, BaseSerializer
from agentzero.util import fix_zeromq_tcp_address

__all__ = [
    "DEFAULT_POLLING_TIMEOUT",
    "DEFAULT_TIMEOUT_IN_SECONDS",
    "Event",
    "SocketManager",
    "ZMQPubHandler",
    "zmq",
]

#: How long :meth:`SocketManager.wait_until_ready` waits by default, in seconds.
DEFAULT_TIMEOUT_IN_SECONDS = 10
#: The longest single poll, in milliseconds.
DEFAULT_POLLING_TIMEOUT = 10000
#: How often, at most, :meth:`SocketManager.subscribe` checks ``keep_polling``, in seconds.
SUBSCRIBE_CHECK_INTERVAL = 1.0

# The documentation's examples do ``from agentzero.core import zmq``.
zmq = _zmq

_NOBLOCK = _zmq.NOBLOCK
_POLLIN = _zmq.POLLIN
_POLLOUT = _zmq.POLLOUT
_Again = _zmq.Again
_ZMQError = _zmq.ZMQError
_monotonic = time.monotonic
_BOTH = _POLLIN | _POLLOUT


class Event(NamedTuple):
    """An event received from a SUB socket: its topic frame and its deserialized data.

    It unpacks like a pair:

    >>> event = Event(b'logs', {'stdout': 'hello world'})
    >>> topic, data = event
    >>> event.topic, event.data
    (b'logs', {'stdout': 'hello world'})
    """

    #: the topic frame exactly as received (bytes)
    topic: bytes
    #: the payload, deserialized with the manager's serializer
    data: Any


class _SocketRecord:
    """What the manager remembers of one named socket besides the socket itself."""

    __slots__ = ("socket_type", "polling_mechanism", "binds", "connects", "subscriptions", "options")

    def __init__(self, socket_type: int) -> None:
        self.socket_type = socket_type
        self.polling_mechanism = 0
        self.binds: list[str] = []
        self.connects: list[str] = []
        self.subscriptions: set[bytes] = set()
        #: option -> value, as set through the manager (subscriptions apart)
        self.options: dict[int, Any] = {}


class SocketManager:
    """High-level abstraction for zeromq's non-blocking api.

    Creates, retrieves, connects and binds sockets by name, keeps them all in
    one poller, and waits for a socket to become ready to receive, send or both.

    Parameters
    ----------
    zmq : module, optional
        ``zmq`` or ``zmq.green``; defaults to ``zmq``. With ``zmq.green`` every
        wait is cooperative: other greenlets run while one waits.
    context : zmq.Context, optional
        where the sockets are created; defaults to the shared context of the
        ``zmq`` module (``zmq.Context.instance()``, or
        :data:`agentzero.zero.context` for ``zmq.green``).
    serialization_backend : BaseSerializer, optional
        used by the ``*_safe`` calls; defaults to :class:`agentzero.serializers.JSON`.
    polling_timeout : float
        the longest single poll, in milliseconds.
    timeout : float
        how long the ``*_safe`` calls wait by default, in seconds.
    max_message_size : int, optional
        the largest message, in bytes, that sockets created by this manager
        accept from a peer over tcp or ipc (``zmq.MAXMSGSIZE``): a peer that
        sends a larger one is disconnected and the message dropped; the
        receiving socket keeps working.

    Notes
    -----
    A SocketManager, like its sockets, belongs to one thread. Under gevent use
    one context for the whole process, across all greenlets.

    >>> import zmq
    >>> from agentzero.core import SocketManager
    >>> context = zmq.Context()
    >>> with SocketManager(zmq, context) as sockets:
    ...     _ = sockets.ensure_and_bind('pipe-in', zmq.PULL, 'inproc://doc-pipe', zmq.POLLIN)
    ...     _ = sockets.ensure_and_connect('pipe-out', zmq.PUSH, 'inproc://doc-pipe', zmq.POLLOUT)
    ...     sockets.send_safe('pipe-out', {'pipeline': 'video-download'})
    ...     sockets.recv_safe('pipe-in')
    True
    {'pipeline': 'video-download'}
    >>> context.term()
    """

    def __init__(
        self,
        zmq: Any = None,
        context: Any = None,
        serialization_backend: BaseSerializer | None = None,
        polling_timeout: float = DEFAULT_POLLING_TIMEOUT,
        timeout: float = DEFAULT_TIMEOUT_IN_SECONDS,
        max_message_size: int | None = None,
    ) -> None:
        self.zmq = zmq if zmq is not None else _zmq
        self._green = getattr(self.zmq, "__name__", "") == "zmq.green"
        self.context = context if context is not None else _default_context(self.zmq)
        backend = serialization_backend if serialization_backend is not None else JSON()
        if not (callable(getattr(backend, "pack", None)) and callable(getattr(backend, "unpack", None))):
            raise TypeError(f"serialization_backend must have pack() and unpack(), got {backend!r}")
        self.serialization_backend = backend
        self._pack = getattr(backend, "pack_bytes", None) or BaseSerializer.pack_bytes.__get__(backend)
        self._unpack = backend.unpack
        if max_message_size is not None and (not isinstance(max_message_size, int) or max_message_size < 1):
            raise ValueError(f"max_message_size must be a positive number of bytes, got {max_message_size!r}")
        self.max_message_size = max_message_size
        self.polling_timeout = _positive("polling_timeout", polling_timeout)
        self.timeout = _non_negative("timeout", timeout)
        self.poller = self.zmq.Poller()
        #: name -> socket, in creation order
        self.sockets: dict[Any, Any] = {}
        #: name -> the address the socket was last bound or connected to
        self.addresses: dict[Any, str] = {}
        self._records: dict[Any, _SocketRecord] = {}
        self._log_handlers: dict[tuple[Any, str], ZMQPubHandler] = {}
        self._released: dict[str, float] = {}  # endpoint -> until when a rebind may wait for it
        self._authenticator: Any = None

    def __repr__(self) -> str:
        return f"SocketManager(sockets={list(self.sockets)!r})"

    def __enter__(self) -> SocketManager:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close_all()

    def __del__(self) -> None:
        try:
            self.close_all()
        except Exception:  # noqa: S110 - a finalizer must never raise
            pass

    # -- creating and finding sockets -------------------------------------------------

    def create(self, name: Any, socket_type: int) -> Any:
        """Create a named socket by type.

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
        """
        if name in self.sockets:
            raise SocketAlreadyExists(self, name)
        try:
            _zmq.SocketType(socket_type)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"invalid socket type {socket_type!r} for socket {name!r}") from exc
        socket = self.context.socket(socket_type)
        self.sockets[name] = socket
        self._records[name] = _SocketRecord(socket_type)
        if self.max_message_size is not None:
            self.set_socket_option(name, _zmq.MAXMSGSIZE, self.max_message_size)
        return socket

    def get_by_name(self, name: Any, socket_type: int | None = None) -> Any:
        """Return an existing socket by name.

        Parameters
        ----------
        name : str
            the socket name
        socket_type : int, optional
            accepted for compatibility with older examples; ignored.

        Raises
        ------
        SocketNotFound
            when no socket has that name.
        """
        try:
            return self.sockets[name]
        except KeyError:
            raise SocketNotFound(self, name) from None

    def get_or_create(self, name: Any, socket_type: int, polling_mechanism: int) -> Any:
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
        """
        socket = self.sockets.get(name)
        if socket is None:
            socket = self.create(name, socket_type)
        return self.register_socket(socket, polling_mechanism)

    def register_socket(self, socket: Any, polling_mechanism: int) -> Any:
        """Register ``socket`` in the poller with ``polling_mechanism``.

        Registering an already registered socket replaces its mechanism, as
        ``zmq.Poller.register`` does; ``0`` keeps the socket out of the poller
        (for a PUSH or PUB that :meth:`engage` should not report as always
        writable).

        Parameters
        ----------
        socket : zmq.Socket
            the socket instance
        polling_mechanism : int
            ``zmq.POLLIN``, ``zmq.POLLOUT`` or ``zmq.POLLIN | zmq.POLLOUT``

        Returns
        -------
        zmq.Socket
            the socket itself

        Raises
        ------
        ValueError
            when ``polling_mechanism`` is not 0, ``zmq.POLLIN``, ``zmq.POLLOUT`` or both.
        """
        _check_mechanism(polling_mechanism, registering=True)
        if polling_mechanism:
            self.poller.register(socket, polling_mechanism)
        else:
            self._unregister(socket, None)
        record = self._record_of(socket)
        if record is not None:
            record.polling_mechanism = polling_mechanism
        return socket

    # -- addresses -----------------------------------------------------------------------

    def bind(self, socket_name: Any, address: str, polling_mechanism: int) -> Any:
        """Bind a socket to an address and register it with ``polling_mechanism``.

        Host names in ``tcp://`` addresses are resolved first (ZeroMQ binds only
        to IP addresses and interfaces); ``tcp://*:port``, ``ipc://`` and
        ``inproc://`` work as usual. :attr:`addresses` records the endpoint
        ZeroMQ reports, so a wildcard port shows the real one.

        Parameters
        ----------
        socket_name : str
            the socket name
        address : str
            a valid zeromq address (i.e: ``inproc://whatevs``)
        polling_mechanism : int
            ``zmq.POLLIN``, ``zmq.POLLOUT`` or ``zmq.POLLIN | zmq.POLLOUT``

        Returns
        -------
        zmq.Socket
            the socket itself

        Raises
        ------
        SocketNotFound
            when no socket has that name.
        SocketBindError
            when the address is empty, malformed or already in use.
        """
        socket = self.get_by_name(socket_name)
        _check_mechanism(polling_mechanism, registering=True)
        resolved = _resolve(socket_name, address, SocketBindError)
        grace_until = self._released.pop(resolved, 0.0)
        while True:
            try:
                socket.bind(resolved)
                break
            except _ZMQError as exc:
                # libzmq frees a closed tcp listener in its I/O thread: an address this
                # manager has just released may need a moment before it binds again.
                if exc.errno != _zmq.EADDRINUSE or _monotonic() > grace_until:
                    raise SocketBindError(socket_name, address, exc) from exc
                self._pause(0.005)
        endpoint = _last_endpoint(socket, resolved)
        self._records[socket_name].binds.append(endpoint)
        self.addresses[socket_name] = endpoint
        return self.register_socket(socket, polling_mechanism)

    def ensure_and_bind(
        self, socket_name: Any, socket_type: int, address: str, polling_mechanism: int
    ) -> Any:
        """Ensure that a socket exists, is bound to ``address`` and is registered.

        A handy replacement for calling :meth:`get_or_create` then :meth:`bind`.

        Returns
        -------
        zmq.Socket
            the socket itself

        Raises
        ------
        SocketBindError
            when the address is empty, malformed or already in use.
        """
        self.get_or_create(socket_name, socket_type, polling_mechanism)
        return self.bind(socket_name, address, polling_mechanism)

    def bind_to_random_port(
        self, socket_name: Any, polling_mechanism: int, local_address: str = "tcp://0.0.0.0"
    ) -> tuple[Any, str]:
        """Bind an existing socket to a random free TCP port of ``local_address``.

        Parameters
        ----------
        socket_name : str
            the socket name
        polling_mechanism : int
            ``zmq.POLLIN``, ``zmq.POLLOUT`` or ``zmq.POLLIN | zmq.POLLOUT``
        local_address : str
            ``tcp://<host or interface>``, without a port

        Returns
        -------
        tuple
            ``(socket, 'tcp://<local_address host>:<port>')``

        Raises
        ------
        SocketNotFound
            when no socket has that name.
        SocketBindError
            when ``local_address`` cannot be bound.

        >>> import zmq
        >>> sockets = SocketManager(zmq, zmq.Context())
        >>> _ = sockets.create('api-server', zmq.REP)
        >>> _, address = sockets.bind_to_random_port(
        ...     'api-server', zmq.POLLIN | zmq.POLLOUT, local_address='tcp://127.0.0.1')
        >>> address.startswith('tcp://127.0.0.1:')
        True
        >>> sockets.close_all(); sockets.context.term()
        """
        socket = self.get_by_name(socket_name)
        _check_mechanism(polling_mechanism, registering=True)
        local = _resolve(socket_name, local_address, SocketBindError)
        if not isinstance(local, str) or not local.startswith("tcp://"):
            raise SocketBindError(socket_name, local_address, "a random port needs a tcp:// address")
        try:
            port = socket.bind_to_random_port(local)
        except (_ZMQError, _zmq.ZMQBindError) as exc:
            raise SocketBindError(socket_name, local_address, exc) from exc
        address = f"{local_address}:{port}"
        self._records[socket_name].binds.append(_last_endpoint(socket, address))
        self.addresses[socket_name] = address
        return self.register_socket(socket, polling_mechanism), address

    def connect(self, socket_name: Any, address: str, polling_mechanism: int) -> Any:
        """Connect a socket to an address and register it with ``polling_mechanism``.

        Parameters
        ----------
        socket_name : str
            the socket name
        address : str
            a valid zeromq address (i.e: ``inproc://whatevs``); host names are resolved.
        polling_mechanism : int
            ``zmq.POLLIN``, ``zmq.POLLOUT`` or ``zmq.POLLIN | zmq.POLLOUT``

        Returns
        -------
        zmq.Socket
            the socket itself

        Raises
        ------
        SocketNotFound
            when no socket has that name.
        SocketConnectError
            when the address is empty or malformed.
        """
        socket = self.get_by_name(socket_name)
        _check_mechanism(polling_mechanism, registering=True)
        resolved = _resolve(socket_name, address, SocketConnectError)
        try:
            socket.connect(resolved)
        except _ZMQError as exc:
            raise SocketConnectError(socket_name, address, exc) from exc
        self._records[socket_name].connects.append(resolved)
        self.addresses[socket_name] = resolved
        return self.register_socket(socket, polling_mechanism)

    def ensure_and_connect(
        self, socket_name: Any, socket_type: int, address: str, polling_mechanism: int
    ) -> Any:
        """Ensure that a socket exists, is connected to ``address`` and is registered.

        A handy replacement for calling :meth:`get_or_create` then :meth:`connect`.

        Returns
        -------
        zmq.Socket
            the socket itself

        Raises
        ------
        SocketConnectError
            when the address is empty or malformed.
        """
        self.get_or_create(socket_name, socket_type, polling_mechanism)
        return self.connect(socket_name, address, polling_mechanism)

    def disconnect(self, socket_name: Any, address: str | None = None) -> bool:
        """Disconnect a socket and remove it from the poller; it keeps its name.

        Parameters
        ----------
        socket_name : str
            the socket name
        address : str, optional
            the one address to disconnect from; by default every address the
            socket was connected to.

        Returns
        -------
        bool
            ``True``

        Raises
        ------
        SocketNotFound
            when no socket has that name.
        """
        socket = self.get_by_name(socket_name)
        record = self._records[socket_name]
        targets = [fix_zeromq_tcp_address(address)] if address is not None else list(record.connects)
        for target in targets:
            try:
                socket.disconnect(target)
            except _ZMQError as exc:
                if exc.errno != _zmq.ENOENT:
                    raise
            if target in record.connects:
                record.connects.remove(target)
        self._unregister(socket, record)
        return True

    # -- options ---------------------------------------------------------------------------

    def set_socket_option(self, name: Any, option: int, value: Any) -> None:
        """Call ``setsockopt`` on the named socket.

        ``zmq.HWM`` sets both ``SNDHWM`` and ``RCVHWM``; text values are encoded as UTF-8.

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
        """
        socket = self.get_by_name(name)
        record = self._records[name]
        if option == _zmq.HWM:
            socket.hwm = value
            record.options[option] = value
            return
        if isinstance(value, str):
            value = value.encode("utf-8")
        socket.setsockopt(option, value)
        if option == _zmq.SUBSCRIBE:
            record.subscriptions.add(value)
        elif option == _zmq.UNSUBSCRIBE:
            record.subscriptions.discard(value)
        else:
            record.options[option] = value

    def set_topic(self, name: Any, topic: str | bytes) -> None:
        """Subscribe the named SUB socket to ``topic`` (a prefix; ``''`` means everything).

        A shortcut to ``set_socket_option(name, zmq.SUBSCRIBE, topic)``; subscribing
        twice to the same topic does nothing more.

        Raises
        ------
        SocketNotFound
            when no socket has that name.
        """
        topic_bytes = topic.encode("utf-8") if isinstance(topic, str) else bytes(topic)
        if topic_bytes not in self.get_record(name).subscriptions:
            self.set_socket_option(name, _zmq.SUBSCRIBE, topic_bytes)

    def get_record(self, name: Any) -> _SocketRecord:
        """Return what the manager remembers of the named socket (type, addresses, topics)."""
        try:
            return self._records[name]
        except KeyError:
            raise SocketNotFound(self, name) from None

    def reset(self, name: Any) -> Any:
        """Close the named socket and create it again as it was.

        The new socket has the same type, options, subscriptions, polling
        mechanism, and is bound and connected to the same addresses. This is
        how a REQ socket gets out of its stuck state after a request got no
        reply (the "lazy pirate" pattern): ``recv_safe`` returned ``None``,
        so ``reset`` the socket and send the request again.

        Returns
        -------
        zmq.Socket
            the new socket

        Raises
        ------
        SocketNotFound
            when no socket has that name.
        """
        record = self.get_record(name)
        self.close(name, linger=0)
        self.create(name, record.socket_type)
        for option, value in record.options.items():
            self.set_socket_option(name, option, value)
        for topic in record.subscriptions:
            self.set_topic(name, topic)
        for address in record.binds:
            self.bind(name, address, record.polling_mechanism)
        for address in record.connects:
            self.connect(name, address, record.polling_mechanism)
        socket = self.sockets[name]
        return self.register_socket(socket, record.polling_mechanism)

    def make_curve_server(self, name: Any, secret_key: str | bytes) -> Any:
        """Make the named socket a CURVE server: encrypted, and it authenticates clients.

        Call it before ``bind``. Which clients are admitted is decided by an
        :class:`agentzero.auth.Authenticator` (see :meth:`start_authenticator`);
        without one, libzmq admits every client that knows the server's public key.

        Parameters
        ----------
        name : str
            the socket name
        secret_key : str or bytes
            the server's secret key (40 Z85 characters, or 32 raw bytes)

        Returns
        -------
        zmq.Socket
            the socket itself
        """
        self.set_socket_option(name, _zmq.CURVE_SECRETKEY, _curve_key("secret_key", secret_key))
        self.set_socket_option(name, _zmq.CURVE_SERVER, 1)
        return self.sockets[name]

    def make_curve_client(
        self,
        name: Any,
        server_public_key: str | bytes,
        public_key: str | bytes | None = None,
        secret_key: str | bytes | None = None,
    ) -> Any:
        """Make the named socket a CURVE client of the server whose public key is given.

        Call it before ``connect``. Without a key pair of its own the client
        gets a fresh one (which an authenticator with an allow-list refuses).

        Parameters
        ----------
        name : str
            the socket name
        server_public_key : str or bytes
            the server's public key
        public_key, secret_key : str or bytes, optional
            the client's own key pair; given only ``secret_key``, the public key is derived.

        Returns
        -------
        zmq.Socket
            the socket itself
        """
        if secret_key is None:
            if public_key is not None:
                raise ValueError("make_curve_client needs the secret key that goes with public_key")
            public_key, secret_key = _zmq.curve_keypair()
        secret = _curve_key("secret_key", secret_key)
        public = _curve_key("public_key", public_key) if public_key is not None else _zmq.curve_public(secret)
        self.set_socket_option(name, _zmq.CURVE_SERVERKEY, _curve_key("server_public_key", server_public_key))
        self.set_socket_option(name, _zmq.CURVE_PUBLICKEY, public)
        self.set_socket_option(name, _zmq.CURVE_SECRETKEY, secret)
        return self.sockets[name]

    def start_authenticator(self, allowed_keys: Any = (), keys_directory: str | None = None) -> Any:
        """Start (once) the ZAP authenticator of this manager's context and return it.

        It admits only CURVE clients whose public key is in ``allowed_keys`` or
        in a public key file of ``keys_directory``; it stops with :meth:`close_all`.

        Returns
        -------
        agentzero.auth.Authenticator
        """
        from agentzero.auth import Authenticator

        if self._authenticator is None:
            self._authenticator = Authenticator(self.context).start()
        self._authenticator.allow(*allowed_keys)
        if keys_directory is not None:
            self._authenticator.allow_directory(keys_directory)
        return self._authenticator

    # -- waiting -----------------------------------------------------------------------------

    def engage(self, timeout: float | None = None) -> dict[Any, int]:
        """Poll all registered sockets once.

        Parameters
        ----------
        timeout : float, optional
            how long to poll, in milliseconds; defaults to the manager's ``polling_timeout``
            (:data:`DEFAULT_POLLING_TIMEOUT`).

        Returns
        -------
        dict
            ``{socket: event mask}`` of the sockets that are ready (``zmq.POLLIN``,
            ``zmq.POLLOUT`` or both); empty when none became ready in time.
        """
        if not self.poller.sockets:
            return {}
        timeout_ms = self.polling_timeout if timeout is None else _non_negative("timeout", timeout)
        if self._green:
            return dict(_green_poll(self.poller.sockets, timeout_ms))
        return dict(self.poller.poll(timeout_ms))

    def ready(self, name: Any, polling_mechanism: int, timeout: float | None = None) -> Any:
        """Poll once and tell whether the named socket is ready for ``polling_mechanism``.

        Parameters
        ----------
        name : str
            the socket name
        polling_mechanism : int
            ``zmq.POLLIN`` or ``zmq.POLLOUT`` (or both: ready for either)
        timeout : float, optional
            the polling timeout in milliseconds; defaults to the manager's ``polling_timeout``.

        Returns
        -------
        zmq.Socket or None
            the socket if it is ready, else ``None``.
        """
        polling_ms = self.polling_timeout if timeout is None else _non_negative("timeout", timeout)
        return self.wait_until_ready(name, polling_mechanism, polling_ms / 1000.0, polling_ms)

    def wait_until_ready(
        self,
        name: Any,
        polling_mechanism: int,
        timeout: float | None = None,
        polling_timeout: float | None = None,
    ) -> Any:
        """Wait until the named socket is ready, yielding to other greenlets meanwhile.

        This is the one place where agentzero waits: every ``*_safe`` call that
        cannot complete at once comes here.

        Parameters
        ----------
        name : str
            the socket name
        polling_mechanism : int
            ``zmq.POLLIN`` or ``zmq.POLLOUT`` (or both: ready for either)
        timeout : float, optional
            how long to wait, in seconds; defaults to the manager's ``timeout``
            (:data:`DEFAULT_TIMEOUT_IN_SECONDS`). ``0`` checks without waiting.
        polling_timeout : float, optional
            the longest single poll, in milliseconds; defaults to the manager's
            ``polling_timeout``. The wait never lasts longer than ``timeout``.

        Returns
        -------
        zmq.Socket or None
            the socket as soon as it is ready, or ``None`` once ``timeout`` passed.

        Raises
        ------
        SocketNotFound
            when no socket has that name.
        ValueError
            when ``polling_mechanism`` is invalid or a timeout is negative.
        """
        socket = self.get_by_name(name)
        _check_mechanism(polling_mechanism)
        wait = self.timeout if timeout is None else _non_negative("timeout", timeout)
        slice_ms = (
            self.polling_timeout if polling_timeout is None else _positive("polling_timeout", polling_timeout)
        )
        deadline = _monotonic() + wait
        while True:
            remaining_ms = (deadline - _monotonic()) * 1000.0
            if self._poll([(socket, polling_mechanism)], max(0, min(slice_ms, remaining_ms))):
                return socket
            if remaining_ms <= 0 or _monotonic() >= deadline:
                return None

    def _poll(self, items: list[tuple[Any, int]], timeout_ms: float) -> list[tuple[Any, int]]:
        """Poll ``(socket, mechanism)`` pairs once, for up to ``timeout_ms`` milliseconds."""
        if self._green:
            return _green_poll(items, timeout_ms)
        poller = _zmq.Poller()
        for socket, mechanism in items:
            poller.register(socket, mechanism)
        return poller.poll(timeout_ms)

    def _retry(self, name: Any, mechanism: int, operation: Callable[[], Any], *args: Any, **kw: Any) -> Any:
        """Wait for the socket, then try ``operation`` again, until it succeeds or time runs out.

        Returns ``operation()``'s result, or ``_TIMED_OUT``.
        """
        timeout, rest = _split_timeout(args, kw)
        wait = self.timeout if timeout is None else _non_negative("timeout", timeout)
        deadline = _monotonic() + wait
        while True:
            remaining = max(0.0, deadline - _monotonic())
            if self.wait_until_ready(name, mechanism, remaining, *rest, **kw) is None:
                return _TIMED_OUT
            try:
                return operation()
            except _Again:
                if _monotonic() >= deadline:
                    return _TIMED_OUT

    # -- sending and receiving ----------------------------------------------------------------

    def send_safe(self, name: Any, data: Any, *args: Any, **kw: Any) -> bool:
        """Serialize ``data`` and send it through the named socket once it can take it.

        Parameters
        ----------
        name : str
            the name of the socket where data should be sent through
        data : object
            the data to be serialized then sent
        *args, **kw
            passed to :meth:`wait_until_ready` (``timeout``, ``polling_timeout``)

        Returns
        -------
        bool
            ``True`` if the message was sent, ``False`` if the socket never became available.

        Raises
        ------
        SocketNotFound
            when the socket name is wrong.
        SerializationError
            when ``data`` cannot be serialized; nothing is sent.
        """
        try:
            socket = self.sockets[name]
        except KeyError:
            raise SocketNotFound(self, name) from None
        frame = self._pack(data)
        try:
            socket.send(frame, _NOBLOCK)
            return True
        except _Again:
            pass
        return (
            self._retry(name, _POLLOUT, lambda: socket.send(frame, _NOBLOCK), *args, **kw) is not _TIMED_OUT
        )

    def recv_safe(self, name: Any, *args: Any, **kw: Any) -> Any:
        """Wait for a message on the named socket, receive it and deserialize it.

        Parameters
        ----------
        name : str
            the name of the socket where data will pass through
        *args, **kw
            passed to :meth:`wait_until_ready` (``timeout``, ``polling_timeout``)

        Returns
        -------
        object or None
            the deserialized data, or ``None`` if no message arrived in time.

        Raises
        ------
        SocketNotFound
            when the socket name is wrong.
        DeserializationError
            when the message cannot be deserialized or has more than one frame;
            it is consumed, and the next message is received normally.
        """
        try:
            socket = self.sockets[name]
        except KeyError:
            raise SocketNotFound(self, name) from None
        try:
            frame = socket.recv(_NOBLOCK, copy=False)
        except _Again:
            frame = self._retry(name, _POLLIN, lambda: socket.recv(_NOBLOCK, copy=False), *args, **kw)
            if frame is _TIMED_OUT:
                return None
        if frame.more:
            frames = _rest_of_message(socket, frame)
            raise DeserializationError(frames, f"expected 1 frame, got {len(frames)}", name)
        payload = frame.bytes
        try:
            return self._unpack(payload)
        except DeserializationError as exc:
            raise DeserializationError(payload, exc.reason, name) from exc

    def recv_event_safe(
        self, name: Any, topic: str | bytes | None = None, *args: Any, **kw: Any
    ) -> Event | None:
        """Wait for an event on the named SUB socket and return it as an :class:`Event`.

        Parameters
        ----------
        name : str
            the name of the socket where events arrive
        topic : str or bytes, optional
            subscribe to this topic first; without it the socket keeps the
            subscriptions it has (see :meth:`set_topic`).
        *args, **kw
            passed to :meth:`wait_until_ready` (``timeout``, ``polling_timeout``)

        Returns
        -------
        Event or None
            the event, or ``None`` if none arrived in time.

        Raises
        ------
        SocketNotFound
            when the socket name is wrong.
        DeserializationError
            when the message is not ``[topic, payload]`` or the payload cannot be
            deserialized; it is consumed and the next one is received normally.
        """
        try:
            socket = self.sockets[name]
        except KeyError:
            raise SocketNotFound(self, name) from None
        if topic is not None:
            self.set_topic(name, topic)
        try:
            frame = socket.recv(_NOBLOCK, copy=False)
        except _Again:
            frame = self._retry(name, _POLLIN, lambda: socket.recv(_NOBLOCK, copy=False), *args, **kw)
            if frame is _TIMED_OUT:
                return None
        frames = _rest_of_message(socket, frame)
        if len(frames) != 2:
            raise DeserializationError(frames, f"expected 2 frames [topic, data], got {len(frames)}", name)
        topic_frame, payload = frames
        try:
            return Event(topic_frame, self._unpack(payload))
        except DeserializationError as exc:
            raise DeserializationError(payload, exc.reason, name) from exc

    def publish_safe(self, name: Any, topic: str | bytes, data: Any, *args: Any, **kw: Any) -> bool:
        """Serialize ``data`` and send it as ``[topic, payload]`` with ``send_multipart``.

        A PUB socket never blocks: with no subscriber the event is dropped by ZeroMQ.

        Parameters
        ----------
        name : str
            the name of the socket where data should be sent through
        topic : str or bytes
            the name of the topic
        data : object
            the data to be serialized then sent
        *args, **kw
            passed to :meth:`wait_until_ready` (``timeout``, ``polling_timeout``)

        Returns
        -------
        bool
            ``True`` if the message was sent, ``False`` if the socket never became available.

        Raises
        ------
        SocketNotFound
            when the socket name is wrong.
        SerializationError
            when ``data`` cannot be serialized; nothing is sent.
        """
        try:
            socket = self.sockets[name]
        except KeyError:
            raise SocketNotFound(self, name) from None
        frames = (topic.encode("utf-8") if isinstance(topic, str) else topic, self._pack(data))
        try:
            socket.send_multipart(frames, _NOBLOCK)
            return True
        except _Again:
            pass
        return (
            self._retry(name, _POLLOUT, lambda: socket.send_multipart(frames, _NOBLOCK), *args, **kw)
            is not _TIMED_OUT
        )

    def subscribe(
        self,
        name: Any,
        topic: str | bytes | None = None,
        keep_polling: Callable[[], bool] | None = None,
        *args: Any,
        **kw: Any,
    ) -> Iterator[Event]:
        """Subscribe the named socket to ``topic`` and yield the events it receives.

        Parameters
        ----------
        name : str
            the name of the socket where events arrive
        topic : str or bytes, optional
            the topic to subscribe to; ``None`` subscribes to everything.
        keep_polling : callable, optional
            called between waits; the loop ends once it returns false (within
            :data:`SUBSCRIBE_CHECK_INTERVAL` seconds, even when no event arrives).
        *args, **kw
            passed to :meth:`wait_until_ready`; a ``timeout`` is the longest wait
            between two checks of ``keep_polling``.

        Yields
        ------
        Event
            each event; the generator ends when ``keep_polling`` says so or the
            socket is closed.

        Raises
        ------
        SocketNotFound
            when the socket name is wrong.
        TypeError
            when ``keep_polling`` is not callable.
        """
        if keep_polling is None:
            keep_polling = _always
        elif not callable(keep_polling):
            raise TypeError(f"keep_polling must be callable, got {keep_polling!r}")
        socket = self.get_by_name(name)
        self.set_topic(name, b"" if topic is None else topic)
        timeout, rest = _split_timeout(args, kw)
        wait = min(self.timeout if timeout is None else timeout, SUBSCRIBE_CHECK_INTERVAL)
        return self._subscription(name, socket, keep_polling, wait, rest, kw)

    def _subscription(
        self, name: Any, socket: Any, keep_polling: Callable[[], bool], wait: float, args: Any, kw: Any
    ) -> Iterator[Event]:
        while keep_polling():
            if socket.closed or self.sockets.get(name) is not socket:
                return
            try:
                event = self.recv_event_safe(name, None, wait, *args, **kw)
            except (SocketNotFound, _zmq.ContextTerminated):
                return
            except _ZMQError as exc:
                if socket.closed or exc.errno in (_zmq.ENOTSOCK, _zmq.ENOTSUP):
                    return
                raise
            if event is not None:
                yield event

    # -- logging -------------------------------------------------------------------------------

    def get_log_handler(self, socket_name: Any, topic_name: str = "logs") -> ZMQPubHandler:
        """Return a :class:`ZMQPubHandler` that publishes log records through a named socket.

        Parameters
        ----------
        socket_name : str
            the name of a socket previously created with :meth:`create`
        topic_name : str
            the topic the records are published on

        Raises
        ------
        SocketNotFound
            when the socket name is wrong.
        """
        self.get_by_name(socket_name)
        key = (socket_name, topic_name)
        handler = self._log_handlers.get(key)
        if handler is None:
            handler = self._log_handlers[key] = ZMQPubHandler(self, socket_name, topic_name)
        return handler

    def get_logger(self, socket_name: Any, topic_name: str = "logs", logger_name: str | None = None) -> Any:
        """Return a :class:`logging.Logger` whose records are published through a named socket.

        The handler is attached once: calling again for the same socket and
        topic adds no second one. A logger without a level of its own is set to
        ``DEBUG`` so that every record it gets is published.

        Parameters
        ----------
        socket_name : str
            the name of a socket previously created with :meth:`create`
        topic_name : str
            the topic the records are published on, ``"logs"`` by default
        logger_name : str, optional
            defaults to the socket name

        Raises
        ------
        SocketNotFound
            when the socket name is wrong.
        """
        import logging

        handler = self.get_log_handler(socket_name, topic_name)
        logger = logging.getLogger(logger_name or str(socket_name))
        if handler not in logger.handlers:
            logger.addHandler(handler)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.DEBUG)
        return logger

    # -- closing ---------------------------------------------------------------------------------

    def close(self, socket_name: Any, linger: int | None = None) -> None:
        """Close a socket if it exists, remove it from the poller and free its name and addresses.

        The addresses it was bound to are unbound first, so they can be bound
        again at once.

        Parameters
        ----------
        socket_name : str
            the socket name; an unknown name does nothing.
        linger : int, optional
            milliseconds to keep trying to deliver pending messages; defaults
            to the socket's ``zmq.LINGER`` option.
        """
        socket = self.sockets.pop(socket_name, None)
        record = self._records.pop(socket_name, None)
        self.addresses.pop(socket_name, None)
        for key in [key for key in self._log_handlers if key[0] == socket_name]:
            self._log_handlers.pop(key).close()
        if socket is None:
            return
        self._unregister(socket, record)
        # zmq_close frees endpoints in the background; unbinding first frees them now,
        # so the same address can be bound again straight away.
        for endpoint in record.binds if record is not None else ():
            try:
                socket.unbind(endpoint)
            except _ZMQError:
                pass
            self._released[endpoint] = _monotonic() + _REBIND_GRACE
        if len(self._released) > 64:
            now = _monotonic()
            self._released = {endpoint: until for endpoint, until in self._released.items() if until > now}
        socket.close(linger)

    def close_all(self, linger: int | None = None) -> None:
        """Close every socket (see :meth:`close`); a socket whose close fails does not stop the rest."""
        first_error: BaseException | None = None
        for name in list(self.sockets):
            try:
                self.close(name, linger)
            except Exception as exc:
                first_error = first_error or exc
        if self._authenticator is not None:
            self._authenticator.stop()
            self._authenticator = None
        if first_error is not None:
            raise first_error

    # -- internals ------------------------------------------------------------------------------

    def _pause(self, seconds: float) -> None:
        """Sleep without blocking other greenlets when the manager is green."""
        if self._green:
            import gevent

            gevent.sleep(seconds)
        else:
            time.sleep(seconds)

    def _record_of(self, socket: Any) -> _SocketRecord | None:
        for name, candidate in self.sockets.items():
            if candidate is socket:
                return self._records[name]
        return None

    def _unregister(self, socket: Any, record: _SocketRecord | None) -> None:
        try:
            self.poller.unregister(socket)
        except KeyError:
            pass
        if record is not None:
            record.polling_mechanism = 0


_TIMED_OUT = object()
#: the longest a green wait trusts libzmq's edge-triggered descriptor, in milliseconds
_GREEN_SLICE_MS = 1000.0
#: seconds during which an endpoint released by close() may be waited for by bind()
_REBIND_GRACE = 1.0


def _rest_of_message(socket: Any, first: Any) -> list[bytes]:
    """Return the bytes of every frame of the message that starts with ``first``.

    The frames of a multipart message arrive together, so this never waits.
    """
    frames = [first.bytes]
    frame = first
    while frame.more:
        frame = socket.recv(_NOBLOCK, copy=False)
        frames.append(frame.bytes)
    return frames


def _green_poll(items: list[tuple[Any, int]], timeout_ms: float) -> list[tuple[Any, int]]:
    """Poll green sockets for up to ``timeout_ms``, yielding to other greenlets meanwhile.

    pyzmq's green Poller goes through ``gevent.select.select``, which cannot take
    descriptors above 1023; this checks each socket's ``EVENTS`` (level) and waits
    on their descriptors (edge) with libev watchers, which can. The wait is cut
    into slices of at most a second so an edge libzmq did not signal is caught.
    """
    from gevent.select import poll as gevent_poll

    deadline = _monotonic() + timeout_ms / 1000.0
    while True:
        ready = []
        for socket, mechanism in items:
            events = socket.getsockopt(_zmq.EVENTS) & mechanism
            if events:
                ready.append((socket, events))
        remaining_ms = (deadline - _monotonic()) * 1000.0
        if ready or remaining_ms <= 0:
            return ready
        waiter = gevent_poll()
        for socket, _ in items:
            waiter.register(socket.getsockopt(_zmq.FD), _select.POLLIN)
        waiter.poll(min(remaining_ms, _GREEN_SLICE_MS))


def _split_timeout(args: tuple, kw: dict) -> tuple[Any, tuple]:
    """Take ``timeout`` out of the ``*args, **kw`` meant for :meth:`SocketManager.wait_until_ready`.

    Returns the timeout (``None`` when not given) and the remaining positional arguments;
    ``kw`` keeps the rest (``polling_timeout``).
    """
    return kw.pop("timeout", args[0] if args else None), args[1:]


def _always() -> bool:
    return True


def _default_context(zmq_module: Any) -> Any:
    if getattr(zmq_module, "__name__", "") == "zmq.green":
        from agentzero.zero import context

        return context
    return zmq_module.Context.instance()


def _check_mechanism(polling_mechanism: Any, registering: bool = False) -> None:
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


def _curve_key(name: str, key: Any) -> bytes:
    key = key.encode("ascii") if isinstance(key, str) else key
    if not isinstance(key, bytes) or len(key) not in (32, 40):
        raise ValueError(f"{name} must be a 40-character Z85 CURVE key or 32 raw bytes, got {key!r}")
    return key


def _resolve(socket_name: Any, address: Any, error: type[Exception]) -> str:
    if not isinstance(address, str) or not address.strip():
        raise error(socket_name, address, "the address must be a non-empty string")
    return fix_zeromq_tcp_address(address)


def _last_endpoint(socket: Any, fallback: str) -> str:
    try:
        endpoint = socket.getsockopt(_zmq.LAST_ENDPOINT)
    except _ZMQError:
        return fallback
    return endpoint.decode("utf-8") if endpoint else fallback


def _positive(name: str, value: Any) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive number of milliseconds, got {value!r}")
    return value


def _non_negative(name: str, value: Any) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return value
