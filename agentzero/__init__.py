"""agentzero: named ZeroMQ sockets in one poller, with safe send, receive and publish.

>>> import agentzero
>>> agentzero.SocketManager.__name__
'SocketManager'
"""

from __future__ import annotations

from agentzero import serializers
from agentzero.core import Event, SocketManager, ZMQPubHandler
from agentzero.errors import (
    AgentZeroSocketError,
    DeserializationError,
    SerializationError,
    SocketAlreadyExists,
    SocketBindError,
    SocketConnectError,
    SocketNotFound,
)
from agentzero.version import __version__, version

__all__ = [
    "AgentZeroSocketError",
    "DeserializationError",
    "Event",
    "SerializationError",
    "SocketAlreadyExists",
    "SocketBindError",
    "SocketConnectError",
    "SocketManager",
    "SocketNotFound",
    "ZMQPubHandler",
    "__version__",
    "serializers",
    "version",
]
