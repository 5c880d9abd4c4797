"""``send_safe`` and ``recv_safe``, written once for every flavour; the rest of the calls beneath them.

Each call tries its operation at once, without blocking, on the backend
socket (see :mod:`agentzero.manager.backend`) and returns its result when
it can. Only when ZeroMQ answers "not now" does it build the *steps* that
remain: a generator that yields what to wait for, as ``(wait, *arguments)``
where ``wait`` is an operation of the manager's flavour (``wait`` for one
socket, ``poll`` for several), and returns the call's result. The manager's
``_finish`` hands those steps to its flavour: the plain and green managers
run them at once (:func:`agentzero.flavours.base.drive`), the asyncio
manager returns them to the coroutine that awaits them. So the sync
manager's calls are these very methods, and the asyncio manager's are thin
coroutines around them (:mod:`agentzero.flavours.coroutines`).

The hot paths inline the record lookup and the first attempt: a shared helper
would cost a Python call per message. :class:`Messaging` is the top of the
core's chain: events (:mod:`~agentzero.manager.events`), routing, buffers,
multipart and the waits are beneath it.
"""

from __future__ import annotations

from typing import Any

import zmq

from agentzero.errors import (
    DeserializationError,
    MessageTooLarge,
)
from agentzero.manager.backend import (
    NOBLOCK,
    raw_send,
)
from agentzero.manager.checks import (
    check_seconds,
    refused_by_router,
)
from agentzero.manager.events import Events
from agentzero.manager.frames import deserialization_error
from agentzero.manager.table import SocketRecord

_ZMQError = zmq.ZMQError


class Messaging(Events):
    """The ``*_safe`` calls and :meth:`subscribe`, for every flavour (see the module's text)."""

    _one_frame_takers = {"_one_frame": "recv_safe", "_event": "recv_event_safe"}

    def send_safe(
        self, name: str, data: Any, timeout: float | None = None, polling_timeout: float | None = None
    ) -> bool:
        """Serialize ``data`` and send it through the named socket once it can take it.

        Parameters
        ----------
        name : str
            the name of the socket where data should be sent through
        data : object
            the data to be serialized then sent
        timeout : float, optional
            how long to wait for the socket, in **seconds** (see :meth:`wait_until_ready`)
        polling_timeout : float, optional
            the longest single poll, in **milliseconds**

        Returns
        -------
        bool
            ``True`` if the message was sent, ``False`` if the socket never became
            writable in time (a full queue, no peer, or a REQ/REP socket whose turn
            it is not).

        Raises
        ------
        SocketNotFound
            when the socket name is wrong.
        WrongSocketType
            when the socket is a ROUTER (use :meth:`send_reply_safe`),
            before anything is sent, or cannot send at all.
        SerializationError
            when ``data`` cannot be serialized; nothing is sent.
        SocketClosed
            when the socket is closed while waiting.
        ValueError
            when a timeout is negative, infinite or NaN.
        """
        try:
            record = self._records[name]
        except KeyError:
            record = self.get_record(name)
        if record.routing:
            raise refused_by_router(record, "send_safe")
        if timeout is not None:
            check_seconds("timeout", timeout)
        frame: Any = self._pack(data)
        if frame.__class__ is list:  # the serializer's document and large buffers
            return self._send_several(record, (), frame, timeout, polling_timeout)
        try:
            raw_send(record.socket, frame, NOBLOCK)
        except _ZMQError as exc:
            return self._finish(self._send_steps(record, (frame,), exc, timeout, polling_timeout))
        if record.waiters:
            self._waiting.after_operation(record)
        return True

    def recv_safe(self, name: str, timeout: float | None = None, polling_timeout: float | None = None) -> Any:
        """Wait for a message on the named socket, receive it and deserialize it.

        Parameters
        ----------
        name : str
            the name of the socket where data will pass through
        timeout : float, optional
            how long to wait for a message, in **seconds** (see :meth:`wait_until_ready`)
        polling_timeout : float, optional
            the longest single poll, in **milliseconds**

        Returns
        -------
        object or None
            the deserialized data, or ``None`` if no message arrived in time.

        Raises
        ------
        SocketNotFound
            when the socket name is wrong.
        WrongSocketType
            when the socket is a ROUTER (use :meth:`recv_request_safe`),
            before anything is received, or cannot receive at all.
        DeserializationError
            when the message cannot be deserialized or has more than one frame;
            it is consumed, and the next message is received normally.
        MessageTooLarge
            (a :class:`DeserializationError`) when the message exceeds the
            socket's ``max_message_size``; it is dropped.
        SocketClosed
            when the socket is closed while waiting.
        ValueError
            when a timeout is negative, infinite or NaN.
        """
        return self._receive(name, timeout, polling_timeout, self._one_frame)

    def _one_frame(self, record: SocketRecord, payload: bytes) -> Any:
        """The rest of :meth:`recv_safe` once the first frame, ``payload``, is read (see :meth:`_taking`)."""
        if record.more():
            if self._unpack_frames is not None:  # a serializer that reads several frames (MSGPACK's buffers)
                return self._several_frames(record, [payload], 0)
            frames = self._rest_of_message(record, payload)
            raise DeserializationError(frames, f"expected 1 frame, got {len(frames)} or more", record.name)
        if record.waiters:
            self._waiting.after_operation(record)
        if record.max_size is not None and len(payload) > record.max_size:
            raise MessageTooLarge(payload[: record.max_size], len(payload), record.max_size, record.name)
        try:
            return self._unpack(payload)
        except Exception as exc:
            raise deserialization_error(payload, exc, record.name) from exc
