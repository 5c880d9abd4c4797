"""agentzero for asyncio: the :class:`SocketManager` of :mod:`agentzero.core`, with coroutines where it waits.

Everything that does not wait (``create``, ``bind``, ``connect``,
``ensure_and_bind``, ``bind_to_random_port``, ``set_topic``, ``close``, the
CURVE and logging calls...) is the same plain call as in
:class:`agentzero.core.SocketManager`. What waits is a coroutine:
:meth:`~SocketManager.send_safe`, :meth:`~SocketManager.recv_safe`,
:meth:`~SocketManager.publish_safe`, :meth:`~SocketManager.recv_event_safe`,
:meth:`~SocketManager.recv_request_safe`, :meth:`~SocketManager.send_reply_safe`,
:meth:`~SocketManager.wait_until_ready`, :meth:`~SocketManager.ready`,
:meth:`~SocketManager.engage`, :meth:`~SocketManager.wait_for_peers`,
:meth:`~SocketManager.wait_for_subscribers` and :meth:`~SocketManager.socket_events`;
:meth:`~SocketManager.subscribe` is an asynchronous generator. Timeouts, return
values and errors are those of the sync manager.

Each call tries its operation at once without blocking and returns without
yielding to the loop when it can (as ``zmq.asyncio`` does); only when ZeroMQ
says "not now" does it await the socket (see :mod:`agentzero.flavours.aio`).

>>> import asyncio, zmq
>>> from agentzero.asyncio import SocketManager
>>> async def main():
...     with SocketManager() as sockets:
...         sockets.ensure_and_bind('in', zmq.PULL, 'inproc://asyncio-module-doc', zmq.POLLIN)
...         sockets.ensure_and_connect('out', zmq.PUSH, 'inproc://asyncio-module-doc', zmq.POLLOUT)
...         await sockets.send_safe('out', {'job': 42})
...         return await sockets.recv_safe('in')
>>> asyncio.run(main())
{'job': 42}
"""

from __future__ import annotations

from typing import Any

import zmq
import zmq.asyncio

from agentzero.flavours import managers
from agentzero.flavours.aio import AsyncioFlavour
from agentzero.flavours.aio_logs import AsyncZMQPubHandler
from agentzero.flavours.coroutines import CoroutineCalls
from agentzero.flavours.managers import *  # noqa: F403 - the defaults and Event, which both managers export
from agentzero.flavours.managers import ManagerBase

__all__ = [*managers.__all__, "SocketManager"]


class SocketManager(ManagerBase, CoroutineCalls):
    """Named ZeroMQ sockets for asyncio: :class:`agentzero.core.SocketManager` whose waits are coroutines.

    Parameters
    ----------
    zmq : module, optional
        ``zmq.asyncio`` (the default); any other module raises ``TypeError``.
    context : zmq.Context, optional
        where the sockets are created; defaults to ``zmq.asyncio.Context.instance()``.
        With a ``zmq.asyncio.Context`` the sockets are ``zmq.asyncio.Socket``
        objects, which can still be awaited with their own calls; a plain
        ``zmq.Context`` gives plain sockets. A ``zmq.green`` context is refused.
    serialization_backend : BaseSerializer, optional
        used by the ``*_safe`` calls; defaults to :class:`agentzero.serializers.JSON`.
    polling_timeout : float
        the longest single wait before the socket is checked again, in **milliseconds**.
    timeout : float
        how long the ``*_safe`` coroutines wait by default, in **seconds**.
    max_message_size : int, optional
        the largest message, in bytes, that sockets created by this manager
        accept (see :class:`agentzero.core.SocketManager`).
    linger : int or None
        how long, in **milliseconds**, a socket closed without a ``linger`` of
        its own (by :meth:`close`, :meth:`close_all`, the ``with`` and
        ``async with`` blocks) keeps delivering its queued messages; the
        default, :data:`DEFAULT_LINGER` (1000 ms), bounds how long
        ``context.term()`` can wait (see :class:`agentzero.core.SocketManager`).

    Raises
    ------
    TypeError
        when ``zmq`` is not ``zmq.asyncio``, the context is a ``zmq.green`` one,
        the serializer has no ``pack``/``unpack``, or ``linger`` is not a whole
        number of milliseconds (or ``None``).
    ValueError
        when a timeout or ``max_message_size`` is not a finite, non-negative
        number, or ``linger`` does not fit in 32 bits.

    Notes
    -----
    A manager belongs to one thread and its event loop; it may move to
    another loop of that thread (a second ``asyncio.run``) between calls.
    Closing a socket wakes the tasks waiting on it with
    :class:`~agentzero.errors.SocketClosed`; cancelling a waiting task leaves
    the socket as it was.
    """

    _waiting: AsyncioFlavour
    _log_handler_class = AsyncZMQPubHandler
    _default_module = zmq.asyncio
    _for_asyncio = True
    _repr_name = "asyncio.SocketManager"

    async def __aenter__(self) -> SocketManager:  # noqa: D105
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self.close_all()
