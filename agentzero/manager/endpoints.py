"""What a valid address is, checked before ZeroMQ sees one, and how an endpoint is named once bound.

Text, a known transport, and for ``tcp://`` a port between 0 and 65535 (``*``
to bind a random one); an address written without its transport gets a hint.
"""

from __future__ import annotations

import re
from typing import Any

import zmq

_TCP_PORT = re.compile(r"^tcp://(?:[^;]*;)?(?P<host>.*):(?P<port>[^:\]]*)$")
#: ``HOST:PORT`` written without its transport (``127.0.0.1:5000``, ``localhost:5000``, ``*:5000``)
_BARE_HOST_PORT = re.compile(r"^(?P<host>\[[^\]]*\]|[^:/\[\]]+):(?P<port>\d+|\*)$")


def check_text(socket_name: Any, address: Any, error: type[Exception]) -> None:
    """Raise ``error`` naming ``address`` when it is text ZeroMQ cannot take (UTF-8 cannot encode it).

    A lone surrogate (what Python makes of undecodable bytes in ``sys.argv``)
    is refused here, with the address, rather than as pyzmq's bare
    ``UnicodeEncodeError``.

    >>> from agentzero.errors import SocketBindError
    >>> check_text('api', 'inproc://caf\\udce9', SocketBindError)
    Traceback (most recent call last):
    ...
    agentzero.errors.SocketBindError: cannot bind socket 'api' to address 'inproc://caf\\udce9': \
the address must be text UTF-8 can encode, got '\\udce9' at position 12
    """
    try:
        address.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate
        wrong = address[exc.start : exc.end]
        raise error(
            socket_name,
            address,
            f"the address must be text UTF-8 can encode, got {wrong!r} at position {exc.start}",
        ) from None


def _missing_transport(address: str, binding: bool) -> str:
    """Why an address without ``TRANSPORT://`` is refused, with the ``tcp://`` it probably meant."""
    bare = _BARE_HOST_PORT.match(address.strip())
    if bare is None:
        return "an address starts with its transport: tcp://HOST:PORT, ipc://PATH or inproc://NAME"
    host, port = bare.group("host"), bare.group("port")
    if host == "*" and not binding:
        host = "127.0.0.1"  # one connects to a host, not to every interface
    return f"the address has no transport: use 'tcp://{host}:{port}'"


def check_address(socket_name: Any, address: Any, error: type[Exception], binding: bool) -> str:
    """Return ``address`` once checked, or raise ``error`` naming what is wrong.

    Host names are left to :mod:`agentzero.manager.hosts`.

    >>> from agentzero.errors import SocketBindError
    >>> check_address('api', 'tcp://localhost:5000', SocketBindError, binding=True)
    'tcp://localhost:5000'
    >>> check_address('api', 'tcp://127.0.0.1:99999', SocketBindError, binding=True)
    Traceback (most recent call last):
    ...
    agentzero.errors.SocketBindError: cannot bind socket 'api' to address 'tcp://127.0.0.1:99999': \
the port must be a number from 0 to 65535 or '*', got '99999'
    >>> check_address('api', '127.0.0.1:5000', SocketBindError, binding=True)
    Traceback (most recent call last):
    ...
    agentzero.errors.SocketBindError: cannot bind socket 'api' to address '127.0.0.1:5000': \
the address has no transport: use 'tcp://127.0.0.1:5000'
    """
    if not isinstance(address, str) or not address.strip():
        raise error(socket_name, address, "the address must be a non-empty string")
    check_text(socket_name, address, error)
    if "://" not in address:
        raise error(socket_name, address, _missing_transport(address, binding))
    if address.startswith("tcp://"):
        found = _TCP_PORT.match(address)
        if not found or not found.group("host"):
            raise error(socket_name, address, "a tcp address is tcp://HOST:PORT")
        port = found.group("port")
        lowest = 0 if binding else 1
        if not (port == "*" and binding) and not (port.isdigit() and lowest <= int(port) <= 65535):
            wildcard = " or '*'" if binding else ""
            raise error(
                socket_name,
                address,
                f"the port must be a number from {lowest} to 65535{wildcard}, got {port!r}",
            )
    return address


_WILDCARD_TCP = re.compile(r"^tcp://(?:\*|0\.0\.0\.0|\[::\]|\[\*\]):(?P<port>\d+)$")


def released_key(endpoint: str) -> str:
    """The one key under which :meth:`Sockets.close` records a released endpoint and ``bind`` finds it.

    libzmq reports a wildcard bind (``tcp://*:PORT``) as ``tcp://0.0.0.0:PORT``
    (``tcp://[::]:PORT`` with IPv6), the endpoint ``close`` releases.

    >>> released_key('tcp://0.0.0.0:5000') == released_key('tcp://*:5000') == released_key('tcp://[::]:5000')
    True
    >>> released_key('tcp://127.0.0.1:5000')
    'tcp://127.0.0.1:5000'
    """
    found = _WILDCARD_TCP.match(endpoint)
    return f"tcp://*:{found.group('port')}" if found else endpoint


def last_endpoint(socket: Any, fallback: str) -> str:
    try:
        endpoint = socket.getsockopt(zmq.LAST_ENDPOINT)
    except zmq.ZMQError:
        return fallback
    return endpoint.decode("utf-8") if endpoint else fallback
