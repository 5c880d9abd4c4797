"""The frames of a received message: reading the rest, dropping what an interruption left, naming errors.

Both managers, sync and asyncio, receive a message frame by frame with the
backend's ``recv`` and ``zmq.RCVMORE`` (see :mod:`agentzero.manager.backend`). What
happens when a message is not what was expected, or its reading is cut short,
is the same for both and lives here.
"""

from __future__ import annotations

from typing import Any

import zmq

from agentzero.errors import DeserializationError
from agentzero.manager.backend import NOBLOCK, raw_recv
from agentzero.manager.checks import translate
from agentzero.manager.table import SocketRecord

#: How many frames of a refused message :class:`DeserializationError` keeps in ``raw``.
_RAW_FRAMES_KEPT = 16

_ZMQError = zmq.ZMQError


def read_rest_of_message(record: SocketRecord, received: tuple[bytes, ...]) -> tuple[list[bytes], int]:
    """Consume the rest of a message whose frames so far are ``received``; return what is kept and its size.

    The frames of a message arrive together, so this never waits. At most the
    socket's ``max_message_size`` bytes (and :data:`_RAW_FRAMES_KEPT` frames)
    are kept, so an endless multipart message cannot fill memory; the size
    returned counts every frame.
    """
    limit = record.max_size
    kept: list[bytes] = []
    size = 0
    for frame in received:
        size += len(frame)
        if len(kept) < _RAW_FRAMES_KEPT and (limit is None or size <= limit):
            kept.append(frame)
    socket = record.socket
    more = record.more
    while more():  # about the last frame received: the last of ``received`` first
        frame = raw_recv(socket, NOBLOCK)
        size += len(frame)
        if len(kept) < _RAW_FRAMES_KEPT and (limit is None or size <= limit):
            kept.append(frame)
    return kept, size


def discard_rest_of_message(record: SocketRecord, waiting: Any) -> None:
    """Drop what is left of a message whose reading an exception interrupted.

    A ``KeyboardInterrupt`` (or any exception) that lands between two frames
    would leave the rest of the message queued, and the next receive would take
    its tail for a message of its own. The frames of a message arrive together,
    so this never waits; it does nothing when the last frame read was a
    message's last, or when the socket is gone. Waiters are told, as after any
    operation on the socket.
    """
    socket = record.socket
    try:
        more = record.more
        while more():
            raw_recv(socket, NOBLOCK)
    except _ZMQError:
        return
    if record.waiters:
        waiting.after_operation(record)


def cut_short(record: SocketRecord, waiting: Any, error: BaseException) -> BaseException:
    """Drop the rest of a message whose reading ``error`` cut short; return what to raise.

    A Ctrl-C (or any exception) between two frames is raised as it is; a
    ``ZMQError`` (the socket closed, or its context terminated, meanwhile) as
    the library's error that names it (:func:`~agentzero.manager.checks.translate`).
    Either way the next receive never takes the tail for a message of its own.
    """
    discard_rest_of_message(record, waiting)
    return translate(record, error, False) if isinstance(error, _ZMQError) else error


def deserialization_error(payload: Any, error: Exception, name: Any) -> DeserializationError:
    """The :class:`DeserializationError` for a ``payload`` the serializer refused with ``error``."""
    reason = error.reason if isinstance(error, DeserializationError) else f"{type(error).__name__}: {error}"
    return DeserializationError(payload, reason, name)
