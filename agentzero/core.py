"""The :class:`SocketManager`: named ZeroMQ sockets sharing one poller.

This module is the facade users import from. Every call is the core's
(:mod:`agentzero.manager`), written once for all flavours; what this manager
adds is its flavour (:mod:`agentzero.flavours`): plain ``zmq`` blocks the
thread, ``zmq.green`` parks the greenlet, and a call that must wait runs its
remaining steps at once (:func:`~agentzero.flavours.base.drive`). See
:doc:`architecture` for how a ``send_safe`` flows in each flavour.
"""

from __future__ import annotations

from typing import TypeVar

import zmq as _zmq

from agentzero.flavours import managers
from agentzero.flavours.base import drive
from agentzero.flavours.managers import *  # noqa: F403 - the defaults and Event, which both managers export
from agentzero.flavours.managers import ManagerBase
from agentzero.logs import ZMQPubHandler
from agentzero.manager.messaging import Messaging
from agentzero.manager.peers import Peers
from agentzero.manager.waits import Steps

__all__ = [*managers.__all__, "SocketManager", "ZMQPubHandler", "zmq"]

# The documentation's examples do ``from agentzero.core import zmq``.
zmq = _zmq

_T = TypeVar("_T")


class SocketManager(ManagerBase, Messaging, Peers):
    """High-level abstraction for zeromq's non-blocking api.

    Creates, retrieves, connects and binds sockets by name, keeps them all in
    one poller, and waits for a socket to become ready to receive, send or both.

    Parameters
    ----------
    zmq : module, optional
        ``zmq`` or ``zmq.green``; defaults to ``zmq``. With ``zmq.green`` every
        wait is cooperative: other greenlets run while one waits. For asyncio,
        use :class:`agentzero.asyncio.SocketManager`.
    context : zmq.Context, optional
        where the sockets are created; defaults to the shared context of the
        ``zmq`` module (``zmq.Context.instance()``, or
        :data:`agentzero.zero.context` for ``zmq.green``).
    serialization_backend : BaseSerializer, optional
        used by the ``*_safe`` calls; defaults to :class:`agentzero.serializers.JSON`.
    polling_timeout : float
        the longest single poll, in **milliseconds**.
    timeout : float
        how long the ``*_safe`` calls wait by default, in **seconds**.
    max_message_size : int, optional
        the largest message, in bytes, that sockets created by this manager
        accept: libzmq disconnects a tcp or ipc peer sending a larger frame,
        and the ``*_safe`` receive calls drop a larger whole message (frames
        added up, any transport) with :class:`~agentzero.errors.MessageTooLarge`.
    linger : int or None
        how long, in **milliseconds**, a socket closed by :meth:`close`,
        :meth:`close_all`, the ``with`` block or the garbage collector keeps
        delivering its queued messages when no ``linger`` is given to the call
        and the socket has no bounded ``zmq.LINGER`` of its own. The default,
        :data:`DEFAULT_LINGER` (1000 ms), leaves a moment to deliver to a
        connected peer and bounds how long ``context.term()`` can wait for a
        peer that never reads; ``None`` keeps libzmq's own default (wait for
        ever), ``0`` drops queued messages at once.

    Attributes
    ----------
    zmq : module
        the ``zmq`` module given
    poller : zmq.Poller
        a poller of that module, holding every registered socket
    sockets : OrderedDict
        name -> socket, in creation order
    registry : OrderedDict
        socket -> the polling mechanism it is registered with
    addresses : OrderedDict
        name -> the address the socket was last bound or connected to
    linger : int or None
        the milliseconds sockets linger when closed without a ``linger`` of their own

    Raises
    ------
    TypeError
        when ``zmq`` is ``zmq.asyncio``, the serializer has no ``pack``/``unpack``,
        or ``linger`` is not a whole number of milliseconds (or ``None``).
    ValueError
        when a timeout or ``max_message_size`` is not a finite, non-negative
        number, or ``linger`` does not fit in 32 bits.

    Notes
    -----
    A SocketManager, like its sockets, belongs to one thread. Under gevent use
    one context for the whole process, across all greenlets. Leaving a
    ``with SocketManager(...)`` block closes every socket with the manager's
    ``linger``, so terminating the context afterwards cannot hang on a message
    nobody reads.

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

    _default_module = _zmq

    def _finish(self, steps: Steps[_T]) -> _T:
        outcome: _T = drive(steps)
        return outcome
