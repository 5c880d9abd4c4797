"""Host names in ``tcp://`` addresses: resolved to bind, checked to connect, IPv4 and IPv6.

ZeroMQ binds only to IP addresses, interfaces and ``localhost``: a host name
to bind is resolved first (an IPv4 address preferred; an IPv6 one, in
brackets, for a name that has no other). A name to connect to is handed to
libzmq as it is: libzmq resolves it in its I/O thread, and again whenever it
reconnects, so a peer that moved is found. The manager only checks that the
name resolves, to say so at once (``SocketConnectError``) rather than let
messages pile up for a host that does not exist: at once in the plain and
green managers, in a worker thread under asyncio (see
:meth:`agentzero.flavours.base.Flavour.resolve_soon`), never in the loop.
"""

from __future__ import annotations

import ipaddress
import re
import socket as _socket
from functools import partial
from typing import Any

import zmq

from agentzero.errors import SocketBindError, SocketConnectError
from agentzero.manager.monitors import start_monitor
from agentzero.manager.sockets import Sockets
from agentzero.manager.table import SocketRecord

#: ``tcp://[SOURCE;]HOST:PORT``; HOST may be ``[an IPv6 address]``
_TCP = re.compile(r"^tcp://(?P<source>[^;]*;)?(?P<host>\[[^\]]*\]|[^\[\]:;]+):(?P<port>[^:\]]*)$")


def named_host(address: str) -> tuple[str, str, str] | None:
    """``(host, port, source)`` of a ``tcp://`` address whose host is a name; ``None`` for the rest.

    An IP address, ``*`` and every other transport need no resolving.

    >>> named_host('tcp://db.example:5000')
    ('db.example', '5000', '')
    >>> named_host('tcp://127.0.0.1:5000') is None, named_host('tcp://[::1]:5000') is None
    (True, True)
    >>> named_host('ipc:///tmp/x') is None
    True
    """
    found = _TCP.match(address)
    if found is None:
        return None
    host = found.group("host")
    if host == "*" or host.startswith("["):
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host, found.group("port"), found.group("source") or ""
    return None


def resolve(host: str) -> list[tuple[int, str]]:
    """The ``(family, address)`` pairs ``host`` resolves to, IPv4 first.

    Raises
    ------
    OSError
        (``socket.gaierror``) when it does not resolve.
    """
    found = []
    for family, _, _, _, where in _socket.getaddrinfo(host, None, type=_socket.SOCK_STREAM):
        if family in (_socket.AF_INET, _socket.AF_INET6) and (family, where[0]) not in found:
            found.append((int(family), str(where[0])))
    if not found:
        raise _socket.gaierror(_socket.EAI_NONAME, "no IPv4 or IPv6 address")
    return sorted(found, key=lambda pair: pair[0] != _socket.AF_INET)


def ipv6_only(addresses: list[tuple[int, str]]) -> bool:
    """Whether every address is an IPv6 one: a socket then needs ``zmq.IPV6`` to reach it."""
    return all(family == _socket.AF_INET6 for family, _ in addresses)


def unresolved(host: str, error: Any) -> str:
    """Why an address is refused: ``host`` does not resolve.

    >>> unresolved('no-such-host.invalid', OSError(-2, 'Name or service not known'))
    "host 'no-such-host.invalid' does not resolve: Name or service not known"
    """
    return f"host {host!r} does not resolve: {getattr(error, 'strerror', None) or error}"


def is_interface(name: str) -> bool:
    """Whether ``name`` is a network interface of this machine (ZeroMQ binds to those by name)."""
    try:
        return name in {interface for _, interface in _socket.if_nameindex()}
    except OSError:
        return False


def bind_address(address: str) -> tuple[str, bool] | None:
    """The address to bind for one whose host is a name, and whether it needs ``zmq.IPV6``.

    ``None`` when nothing needs resolving (an IP address, ``*``, an interface,
    another transport).

    Raises
    ------
    OSError
        when the host is not an interface and does not resolve.
    """
    named = named_host(address)
    if named is None:
        return None
    host, port, source = named
    if is_interface(host):
        return None
    addresses = resolve(host)
    family, ip = addresses[0]
    shown = f"[{ip}]" if family == _socket.AF_INET6 else ip
    return f"tcp://{source}{shown}:{port}", family == _socket.AF_INET6


def ipv6_literal(address: str) -> bool:
    """Whether ``address`` is ``tcp://[an IPv6 address]:PORT``, which needs ``zmq.IPV6``.

    >>> ipv6_literal('tcp://[::1]:5000'), ipv6_literal('tcp://127.0.0.1:5000')
    (True, False)
    """
    found = _TCP.match(address)
    return found is not None and found.group("host").startswith("[")


class Hosts(Sockets):
    """Host names in the addresses given to ``bind`` and ``connect`` (see the module's text)."""

    def _bind_host(self, record: SocketRecord, address: str) -> str:
        """The address to bind for ``address``, its host name resolved; the socket made IPv6 if needed."""
        try:
            found = bind_address(address)
        except OSError as exc:
            host = named_host(address)[0]  # type: ignore[index]
            raise SocketBindError(record.name, address, unresolved(host, exc)) from None
        if found is None:
            if ipv6_literal(address):
                self._need_ipv6(record)
            return address
        resolved, ipv6 = found
        if ipv6:
            self._need_ipv6(record)
        return resolved

    def _check_host(self, record: SocketRecord, address: str) -> None:
        """Check that the host name of ``address`` resolves; libzmq resolves it again itself.

        Raises
        ------
        SocketConnectError
            when it does not, at once (plain and green managers); under a
            running asyncio loop the worker thread's answer comes later, and
            :meth:`peers` and the waits for peers raise it.
        """
        named = named_host(address)
        if named is None:
            if ipv6_literal(address):
                self._need_ipv6(record)
            return
        host = named[0]
        if self._waiting.resolve_soon(partial(resolve, host), partial(self._resolved, record, address, host)):
            start_monitor(self.context, record).resolving += 1
            return
        try:
            addresses = resolve(host)
        except OSError as exc:
            raise SocketConnectError(record.name, address, unresolved(host, exc)) from None
        if ipv6_only(addresses):
            self._need_ipv6(record)

    def _resolved(self, record: SocketRecord, address: str, host: str, future: Any) -> None:
        """In the loop, once the worker thread resolved ``host`` (see :meth:`_check_host`)."""
        if self._records.get(record.name) is not record or address not in record.connects:
            return  # closed or disconnected meanwhile
        monitor = start_monitor(self.context, record)
        monitor.resolving -= 1
        try:
            addresses = future.result()
        except OSError as exc:
            monitor.unresolved = SocketConnectError(record.name, address, unresolved(host, exc))
            return
        if ipv6_only(addresses) and not record.options.get(zmq.IPV6):
            self._need_ipv6(record)
            try:  # libzmq resolved the name for IPv4 only: connect again, now for IPv6
                record.socket.disconnect(address)
                record.socket.connect(address)
            except zmq.ZMQError:
                pass

    def _need_ipv6(self, record: SocketRecord) -> None:
        if not record.options.get(zmq.IPV6):
            self.set_socket_option(record.name, zmq.IPV6, 1)
