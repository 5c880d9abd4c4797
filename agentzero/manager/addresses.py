"""Addresses: binding, connecting, disconnecting and resetting named sockets.

Addresses are checked before ZeroMQ sees them (:mod:`agentzero.manager.endpoints`);
host names are resolved to bind, and left to libzmq to connect
(:mod:`agentzero.manager.hosts`).
"""

from __future__ import annotations

import errno as _errno
import time
from typing import Any

import zmq

from agentzero.errors import SocketBindError, SocketConnectError
from agentzero.manager.checks import check_mechanism
from agentzero.manager.endpoints import check_address, check_text, last_endpoint, released_key
from agentzero.manager.hosts import Hosts
from agentzero.manager.monitors import drain, start_monitor

_monotonic = time.monotonic


class Addresses(Hosts):
    """Bind, connect, disconnect and reset the manager's named sockets."""

    def bind(self, socket_name: str, address: str, polling_mechanism: int) -> zmq.Socket[Any]:
        """Bind a socket to an address and register it with ``polling_mechanism``.

        Host names in ``tcp://`` addresses are resolved first (ZeroMQ binds only
        to IP addresses and interfaces), an IPv4 address preferred; a name with
        IPv6 addresses only, or ``tcp://[an IPv6 address]:port``, also turns
        on the socket's ``zmq.IPV6``. Under asyncio that resolution happens in
        the loop: a name of this machine resolves from local sources, at once.
        ``tcp://*:port``, ``ipc://`` and ``inproc://`` work as usual. :attr:`addresses` records the endpoint
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
            when the address is empty, malformed (no ``TRANSPORT://``, a tcp
            port outside 0-65535, text UTF-8 cannot encode), in use, or its
            host name does not resolve (the error names the host).
        """
        record = self.get_record(socket_name)
        check_mechanism(polling_mechanism, registering=True)
        resolved = self._bind_host(record, check_address(socket_name, address, SocketBindError, binding=True))
        # the flavour says how long bind may wait for it (asyncio: briefly, never stalling the loop)
        released_until = self._released.pop(released_key(resolved), 0.0)
        grace_until = min(released_until, _monotonic() + self._waiting.rebind_grace)
        self._follow_peers(record, resolved)
        while True:
            try:
                record.socket.bind(resolved)
                break
            except zmq.ZMQError as exc:
                # libzmq frees a closed tcp listener in its I/O thread: an address this
                # manager has just released may need a moment before it binds again.
                if exc.errno != zmq.EADDRINUSE or _monotonic() > grace_until:
                    raise SocketBindError(socket_name, address, exc) from exc
                self._waiting.nap(0.001)
        endpoint = last_endpoint(record.socket, resolved)
        record.binds.append(endpoint)
        self._table.set_address(record, endpoint)
        return self.register_socket(record.socket, polling_mechanism)

    def ensure_and_bind(
        self, socket_name: str, socket_type: int, address: str, polling_mechanism: int
    ) -> zmq.Socket[Any]:
        """Ensure that a socket exists, is bound to ``address`` and is registered.

        A handy replacement for calling :meth:`get_or_create` then :meth:`bind`.
        A socket of that name that already exists is used as it is (its type
        is not changed), and bound to one more address.

        Parameters
        ----------
        socket_name : str
            the socket name
        socket_type : int
            a valid socket type (i.e: ``zmq.REQ``, ``zmq.PUB``, ``zmq.PAIR``, ...),
            used when the socket has to be created
        address : str
            a valid zeromq address (i.e: ``inproc://whatevs``, ``tcp://127.0.0.1:*``);
            host names are resolved.
        polling_mechanism : int
            ``zmq.POLLIN``, ``zmq.POLLOUT`` or ``zmq.POLLIN | zmq.POLLOUT``

        Returns
        -------
        zmq.Socket
            the socket itself; :attr:`addresses` holds the endpoint it is bound to.

        Raises
        ------
        SocketBindError
            when the address is empty, malformed (a tcp port outside 0-65535) or
            already in use; the socket stays, unbound.
        ValueError
            when ``socket_type`` or ``polling_mechanism`` is invalid.
        """
        self.get_or_create(socket_name, socket_type, polling_mechanism)
        return self.bind(socket_name, address, polling_mechanism)

    def bind_to_random_port(
        self, socket_name: str, polling_mechanism: int, local_address: str = "tcp://0.0.0.0"
    ) -> tuple[zmq.Socket[Any], str]:
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
            when ``local_address`` is not a ``tcp://`` address, is text UTF-8
            cannot encode, or cannot be bound.

        Examples
        --------
        >>> import zmq
        >>> from agentzero.core import SocketManager
        >>> sockets = SocketManager(zmq, zmq.Context())
        >>> _ = sockets.create('api-server', zmq.REP)
        >>> _, address = sockets.bind_to_random_port(
        ...     'api-server', zmq.POLLIN, local_address='tcp://127.0.0.1')
        >>> address.startswith('tcp://127.0.0.1:')
        True
        >>> sockets.close_all(); sockets.context.term()
        """
        record = self.get_record(socket_name)
        check_mechanism(polling_mechanism, registering=True)
        if not isinstance(local_address, str) or not local_address.startswith("tcp://"):
            hint = ""
            if isinstance(local_address, str) and local_address and "://" not in local_address:
                hint = f": use 'tcp://{local_address}'"
            raise SocketBindError(socket_name, local_address, f"a random port needs a tcp:// address{hint}")
        check_text(socket_name, local_address, SocketBindError)
        local = self._bind_host(record, f"{local_address}:0")[: -len(":0")]
        self._follow_peers(record, local)
        try:
            port = record.socket.bind_to_random_port(local)
        except (zmq.ZMQError, zmq.ZMQBindError) as exc:
            raise SocketBindError(socket_name, local_address, exc) from exc
        address = f"{local_address}:{port}"
        record.binds.append(last_endpoint(record.socket, address))
        self._table.set_address(record, address)
        return self.register_socket(record.socket, polling_mechanism), address

    def connect(self, socket_name: str, address: str, polling_mechanism: int) -> zmq.Socket[Any]:
        """Connect a socket to an address and register it with ``polling_mechanism``.

        Parameters
        ----------
        socket_name : str
            the socket name
        address : str
            a valid zeromq address (i.e: ``inproc://whatevs``). A host name is
            checked, then left to libzmq, which resolves it again whenever it
            reconnects; a name with IPv6 addresses only (or an IPv6 address)
            turns on the socket's ``zmq.IPV6``.
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
            when the address is empty or malformed (no ``TRANSPORT://``, a tcp
            port outside 1-65535, text UTF-8 cannot encode), or its host name
            does not resolve (under a running asyncio loop, the name is
            resolved in a worker thread, and :meth:`peers` and the waits for
            peers raise it instead).
        """
        record = self.get_record(socket_name)
        check_mechanism(polling_mechanism, registering=True)
        resolved = check_address(socket_name, address, SocketConnectError, binding=False)
        self._check_host(record, resolved)
        self._follow_peers(record, resolved)
        try:
            record.socket.connect(resolved)
        except zmq.ZMQError as exc:
            raise SocketConnectError(socket_name, address, exc) from exc
        record.connects.append(resolved)
        self._table.set_address(record, resolved)
        return self.register_socket(record.socket, polling_mechanism)

    def ensure_and_connect(
        self, socket_name: str, socket_type: int, address: str, polling_mechanism: int
    ) -> zmq.Socket[Any]:
        """Ensure that a socket exists, is connected to ``address`` and is registered.

        A handy replacement for calling :meth:`get_or_create` then :meth:`connect`.
        A socket of that name that already exists is used as it is (its type
        is not changed), and connected to one more address. Connecting does not
        wait for the peer: ZeroMQ connects (and reconnects) in the background.

        Parameters
        ----------
        socket_name : str
            the socket name
        socket_type : int
            a valid socket type (i.e: ``zmq.REQ``, ``zmq.PUB``, ``zmq.PAIR``, ...),
            used when the socket has to be created
        address : str
            a valid zeromq address (i.e: ``inproc://whatevs``, ``tcp://127.0.0.1:5000``);
            host names are resolved.
        polling_mechanism : int
            ``zmq.POLLIN``, ``zmq.POLLOUT`` or ``zmq.POLLIN | zmq.POLLOUT``

        Returns
        -------
        zmq.Socket
            the socket itself; :attr:`addresses` holds the address it connected to.

        Raises
        ------
        SocketConnectError
            when the address is empty, malformed (a tcp port outside 1-65535) or
            refused by ZeroMQ (an unknown transport, say); the socket stays.
        ValueError
            when ``socket_type`` or ``polling_mechanism`` is invalid.
        """
        self.get_or_create(socket_name, socket_type, polling_mechanism)
        return self.connect(socket_name, address, polling_mechanism)

    def disconnect(self, socket_name: str, address: str | None = None) -> bool:
        """Disconnect a socket and remove it from the poller; it keeps its name.

        Disconnecting from an address the socket is not connected to (or was
        already disconnected from, or could never connect to, such as text
        UTF-8 cannot encode) is harmless.

        Parameters
        ----------
        socket_name : str
            the socket name
        address : str, optional
            the one address to disconnect from; by default every address the
            socket was connected to, and the name leaves :attr:`addresses`.

        Returns
        -------
        bool
            ``True`` if the socket was disconnected from at least one address,
            ``False`` if it was connected to none of them.

        Raises
        ------
        SocketNotFound
            when no socket has that name.
        """
        record = self.get_record(socket_name)
        if address is None:
            targets = list(record.connects)
        elif isinstance(address, str):
            targets = [address]
        else:
            raise TypeError(f"address must be a str, got {address!r}")
        disconnected = False
        for target in targets:
            try:
                record.socket.disconnect(target)
                disconnected = True
            except UnicodeEncodeError:  # a lone surrogate: connect() refuses it, so never connected
                pass
            except zmq.ZMQError as exc:
                if exc.errno != _errno.ENOENT:
                    raise SocketConnectError(socket_name, target, exc) from exc
            if target in record.connects:
                record.connects.remove(target)
            if record.monitor is not None:  # libzmq reports no "disconnected" for a disconnect of our own
                drain(record.monitor)
                record.monitor.forget(target)
        if address is None or record.last_address in targets:
            self._table.set_address(record, None)
        self._table.set_mechanism(record, 0)
        return disconnected

    def _follow_peers(self, record: Any, address: str) -> None:
        """Before the socket's first network endpoint, start its monitor; else take its events.

        libzmq reports no connection over ``inproc://``: a socket that never
        leaves it costs no monitor (see :mod:`agentzero.manager.monitors`).
        """
        if record.monitor is not None:
            drain(record.monitor)
        elif not address.startswith("inproc://"):
            start_monitor(self.context, record)

    def reset(self, name: str) -> zmq.Socket[Any]:
        """Close the named socket and create it again as it was.

        The new socket has the same type, options, subscriptions, polling
        mechanism, and is bound and connected to the same addresses. This is
        how a REQ socket gets out of its stuck state after a request got no
        reply (the "lazy pirate" pattern): ``recv_safe`` returned ``None``,
        so ``reset`` the socket and send the request again.

        Parameters
        ----------
        name : str
            the socket name

        Returns
        -------
        zmq.Socket
            the new socket

        Raises
        ------
        SocketNotFound
            when no socket has that name.
        SocketBindError
            when an address it was bound to cannot be bound again.
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
        return self.register_socket(self._records[name].socket, record.polling_mechanism)
