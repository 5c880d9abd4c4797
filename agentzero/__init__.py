"""agentzero: named ZeroMQ sockets in one poller, with safe send, receive and publish.

Every socket has a name and all of them sit in one poller; a handful of calls
(``ensure_and_bind``, ``send_safe``, ``recv_safe``, ``publish_safe``,
``recv_event_safe``, ``subscribe``...) serialize, wait with a timeout that is
never overshot, and raise a library error that names the socket when something
is wrong. :class:`SocketManager` works with plain ``zmq`` and with
``zmq.green`` under gevent; :mod:`agentzero.asyncio` has the same manager for
asyncio, whose waiting calls are coroutines. Every error derives from
:class:`AgentZeroSocketError`.

A PUSH and a PULL socket in one process::

    >>> import zmq, agentzero
    >>> with agentzero.SocketManager(zmq, zmq.Context()) as sockets:
    ...     _ = sockets.ensure_and_bind('in', zmq.PULL, 'inproc://package-doc', zmq.POLLIN)
    ...     _ = sockets.ensure_and_connect('out', zmq.PUSH, 'inproc://package-doc', zmq.POLLOUT)
    ...     sockets.send_safe('out', {'job': 42})
    ...     sockets.recv_safe('in', timeout=5)
    True
    {'job': 42}
"""

from __future__ import annotations

from agentzero import serializers
from agentzero.core import Event, Request, SocketEvent, SocketManager, ZMQPubHandler
from agentzero.errors import (
    AgentZeroSocketError,
    DeserializationError,
    MessageTooLarge,
    PeersNotVisible,
    PeerUnreachable,
    SerializationError,
    SocketAlreadyExists,
    SocketBindError,
    SocketClosed,
    SocketConnectError,
    SocketNotFound,
    SocketOptionError,
    WrongSocketType,
)
from agentzero.version import __version__, version

__all__ = [
    "AgentZeroSocketError",
    "DeserializationError",
    "Event",
    "MessageTooLarge",
    "PeerUnreachable",
    "Request",
    "PeersNotVisible",
    "SerializationError",
    "SocketAlreadyExists",
    "SocketBindError",
    "SocketClosed",
    "SocketConnectError",
    "SocketEvent",
    "SocketManager",
    "SocketNotFound",
    "SocketOptionError",
    "WrongSocketType",
    "ZMQPubHandler",
    "__version__",
    "serializers",
    "version",
]
