"""What both SocketManagers share: the constructor, ``repr``, and closing as a context manager.

:class:`agentzero.core.SocketManager` and :class:`agentzero.asyncio.SocketManager`
differ only in their flavour (chosen here, once, by :func:`agentzero.flavours.choose`)
and in how a call that must wait is finished.
"""

from __future__ import annotations

from typing import Any, TypeVar

from agentzero.flavours import choose, default_context
from agentzero.loggers import Loggers
from agentzero.manager.addresses import Addresses
from agentzero.manager.closing import DEFAULT_LINGER
from agentzero.manager.events import Event
from agentzero.manager.peers import SocketEvent
from agentzero.manager.routing import Request
from agentzero.manager.security import Security
from agentzero.manager.waits import SUBSCRIBE_CHECK_INTERVAL
from agentzero.serializers import BaseSerializer

#: How long the ``*_safe`` calls and ``wait_until_ready`` wait by default, in seconds.
DEFAULT_TIMEOUT_IN_SECONDS = 10
#: The longest single poll, in milliseconds.
DEFAULT_POLLING_TIMEOUT = 10000

#: what both facades export from here (``agentzero.core`` and ``agentzero.asyncio``)
__all__ = [
    "DEFAULT_LINGER",
    "DEFAULT_POLLING_TIMEOUT",
    "DEFAULT_TIMEOUT_IN_SECONDS",
    "SUBSCRIBE_CHECK_INTERVAL",
    "Event",
    "Request",
    "SocketEvent",
]

_Manager = TypeVar("_Manager", bound="ManagerBase")


class ManagerBase(Loggers, Security, Addresses):
    """The constructor and the lifetime of a SocketManager; see :class:`agentzero.core.SocketManager`."""

    #: the ``zmq`` module used when none is given
    _default_module: Any
    #: whether this is the asyncio manager
    _for_asyncio = False
    #: how the manager names itself in its ``repr`` and error messages
    _repr_name = "SocketManager"

    def __init__(
        self,
        zmq: Any = None,
        context: Any = None,
        serialization_backend: BaseSerializer | None = None,
        polling_timeout: float = DEFAULT_POLLING_TIMEOUT,
        timeout: float = DEFAULT_TIMEOUT_IN_SECONDS,
        max_message_size: int | None = None,
        linger: int | None = DEFAULT_LINGER,
    ) -> None:
        module = zmq if zmq is not None else self._default_module
        flavour = choose(module, context, self._for_asyncio)
        self._set_up(
            module,
            context if context is not None else default_context(flavour, module),
            serialization_backend,
            polling_timeout,
            timeout,
            max_message_size,
            flavour,
            linger,
        )

    def __repr__(self) -> str:
        return f"{self._repr_name}(sockets={list(self.sockets)!r})"

    def __enter__(self: _Manager) -> _Manager:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close_all()

    def __del__(self) -> None:
        try:
            self.close_all()
        except Exception:  # noqa: S110 - a finalizer must never raise
            pass
