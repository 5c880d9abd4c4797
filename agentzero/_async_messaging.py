"""The asyncio manager's messaging coroutines: ``send_safe``, ``recv_safe``, ``publish_safe``, ...

The same hot paths as :mod:`agentzero.messaging`: each call tries its
operation at once on the backend socket, without blocking, and returns
without yielding to the loop when it can; only on ``zmq.Again`` does it await
the socket through :class:`~agentzero._async_waiting.AsyncioWaiting`. The
record lookup and the first attempt are inlined: a shared helper would cost a
Python call per message (``publish_safe`` alone shares its argument checks with
the log handler's publishing, which must never wait).
"""

from __future__ import annotations

import time
from typing import Any, AsyncIterator, Callable

import zmq

from agentzero._async_waiting import AsyncioWaiting
from agentzero._backend import (
    NOBLOCK,
    NOT_READY_ERRNOS,
    POLLIN,
    POLLOUT,
    RCVMORE,
    SNDMORE,
    raw_get,
    raw_recv,
    raw_send,
)
from agentzero.errors import DeserializationError, MessageTooLarge, SocketClosed, SocketNotFound
from agentzero.frames import _deserialization_error, _translate, discard_rest_of_message, read_rest_of_message
from agentzero.messaging import SUBSCRIBE_CHECK_INTERVAL, Event, _always
from agentzero.records import SocketRecord
from agentzero.sockets import Sockets
from agentzero.waiting import check_milliseconds, check_seconds, wait_arguments

_ZMQError = zmq.ZMQError
_monotonic = time.monotonic


class AsyncMessaging(Sockets):
    """The ``*_safe`` coroutines and :meth:`subscribe`, for :class:`agentzero.asyncio.SocketManager`."""

    _waiting: AsyncioWaiting

    async def send_safe(
        self, name: Any, data: Any, timeout: float | None = None, polling_timeout: float | None = None
    ) -> bool:
        """Serialize ``data`` and send it through the named socket once it can take it.

        Parameters
        ----------
        name : str
            the name of the socket where data should be sent through
        data : object
            the data to be serialized then sent
        timeout : float, optional
            how long to wait for the socket, in **seconds**; defaults to the manager's ``timeout``
        polling_timeout : float, optional
            the longest single wait before checking again, in **milliseconds**

        Returns
        -------
        bool
            ``True`` if the message was sent, ``False`` if the socket never became
            writable in time (a full queue, no peer, or a REQ/REP socket whose turn it is not).

        Raises
        ------
        SocketNotFound
            when the socket name is wrong.
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
        if timeout is not None:
            check_seconds("timeout", timeout)
        frame = self._pack(data)
        try:
            raw_send(record.socket, frame, NOBLOCK)
        except _ZMQError as exc:
            return await self._send_when_ready(record, (frame,), exc, timeout, polling_timeout)
        if record.waiters:
            self._waiting.after_operation(record)
        return True

    async def recv_safe(
        self, name: Any, timeout: float | None = None, polling_timeout: float | None = None
    ) -> Any:
        """Wait for a message on the named socket, receive it and deserialize it.

        Parameters
        ----------
        name : str
            the name of the socket where data will pass through
        timeout : float, optional
            how long to wait for a message, in **seconds**; defaults to the manager's ``timeout``
        polling_timeout : float, optional
            the longest single wait before checking again, in **milliseconds**

        Returns
        -------
        object or None
            the deserialized data, or ``None`` if no message arrived in time.

        Raises
        ------
        SocketNotFound
            when the socket name is wrong.
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
        try:
            record = self._records[name]
        except KeyError:
            record = self.get_record(name)
        if timeout is not None:
            check_seconds("timeout", timeout)
        socket = record.socket
        try:
            try:
                payload = raw_recv(socket, NOBLOCK)
            except _ZMQError as exc:
                payload = await self._recv_when_ready(record, exc, timeout, polling_timeout)
                if payload is None:
                    return None
            if raw_get(socket, RCVMORE):
                frames = self._rest_of_message(record, payload)
                raise DeserializationError(frames, f"expected 1 frame, got {len(frames)} or more", name)
        except BaseException:
            discard_rest_of_message(record, self._waiting)  # a Ctrl-C between frames splits no message
            raise
        if record.waiters:
            self._waiting.after_operation(record)
        if record.max_size is not None and len(payload) > record.max_size:
            raise MessageTooLarge(payload[: record.max_size], len(payload), record.max_size, name)
        try:
            return self._unpack(payload)
        except Exception as exc:
            raise _deserialization_error(payload, exc, name) from exc

    async def publish_safe(
        self,
        name: Any,
        topic: str | bytes,
        data: Any,
        timeout: float | None = None,
        polling_timeout: float | None = None,
    ) -> bool:
        """Serialize ``data`` and send it as one ``[topic, payload]`` message.

        A PUB socket never waits: with no subscriber the event is dropped by ZeroMQ.

        Parameters
        ----------
        name : str
            the name of the socket where data should be sent through
        topic : str or bytes
            the name of the topic
        data : object
            the data to be serialized then sent
        timeout : float, optional
            how long to wait for the socket, in **seconds**
        polling_timeout : float, optional
            the longest single wait before checking again, in **milliseconds**

        Returns
        -------
        bool
            ``True`` if the message was sent, ``False`` if the socket never became available.

        Raises
        ------
        SocketNotFound
            when the socket name is wrong.
        SerializationError
            when ``data`` cannot be serialized; nothing is sent.
        TypeError
            when ``topic`` is neither text nor bytes.
        SocketClosed
            when the socket is closed while waiting.
        ValueError
            when a timeout is negative, infinite or NaN.
        """
        record, frames = self._event_frames(name, topic, data, timeout)
        try:
            raw_send(record.socket, frames[0], NOBLOCK | SNDMORE)
        except _ZMQError as exc:
            return await self._send_when_ready(record, frames, exc, timeout, polling_timeout)
        self._send_rest(record, frames)
        return True

    async def recv_event_safe(
        self,
        name: Any,
        topic: str | bytes | None | bool = False,
        timeout: float | None = None,
        polling_timeout: float | None = None,
    ) -> Event | None:
        """Wait for an event on the named SUB socket and return it as an :class:`~agentzero.core.Event`.

        Parameters
        ----------
        name : str
            the name of the socket where events arrive
        topic : str or bytes, optional
            subscribe to this topic first; ``None`` or ``False`` (the default)
            keeps the subscriptions the socket has (see :meth:`set_topic`).
        timeout : float, optional
            how long to wait for an event, in **seconds**
        polling_timeout : float, optional
            the longest single wait before checking again, in **milliseconds**

        Returns
        -------
        Event or None
            the event, or ``None`` if none arrived in time.

        Raises
        ------
        SocketNotFound
            when the socket name is wrong.
        TypeError
            when ``topic`` is not text, bytes, ``None`` or ``False``.
        DeserializationError
            when the message is not ``[topic, payload]`` or the payload cannot be
            deserialized; it is consumed and the next one is received normally.
        MessageTooLarge
            (a :class:`DeserializationError`) when the message, whatever its
            frames, exceeds the socket's ``max_message_size``; it is dropped.
        SocketClosed
            when the socket is closed while waiting.
        ValueError
            when a timeout is negative, infinite or NaN.
        """
        try:
            record = self._records[name]
        except KeyError:
            record = self.get_record(name)
        if topic is not None and topic is not False:
            if not isinstance(topic, (str, bytes)):
                raise TypeError(
                    "recv_event_safe() takes a string, None or False as argument, "
                    f"received {topic!r}({type(topic)}) instead"
                )
            self.set_topic(name, topic)
        if timeout is not None:
            check_seconds("timeout", timeout)
        socket = record.socket
        try:
            try:
                first = raw_recv(socket, NOBLOCK)
            except _ZMQError as exc:
                first = await self._recv_when_ready(record, exc, timeout, polling_timeout)
                if first is None:
                    return None
            if raw_get(socket, RCVMORE):
                second = raw_recv(socket, NOBLOCK)
                if raw_get(socket, RCVMORE):
                    frames = self._rest_of_message(record, first, second)
                    raise DeserializationError(
                        frames, f"expected 2 frames [topic, data], got {len(frames)}", name
                    )
            else:
                second = None
        except BaseException:
            discard_rest_of_message(record, self._waiting)  # a Ctrl-C between frames splits no message
            raise
        if record.waiters:
            self._waiting.after_operation(record)
        limit = record.max_size
        if second is None:
            if limit is not None and len(first) > limit:  # keep no more than the cap, as for 2 frames
                raise MessageTooLarge([first[:limit]], len(first), limit, name)
            raise DeserializationError([first], "expected 2 frames [topic, data], got 1", name)
        topic_frame = first
        payload = second
        if limit is not None and len(topic_frame) + len(payload) > limit:
            raise MessageTooLarge(
                [topic_frame[:limit], payload[:limit]], len(topic_frame) + len(payload), limit, name
            )
        try:
            return Event(topic_frame, self._unpack(payload))
        except Exception as exc:
            raise _deserialization_error(payload, exc, name) from exc

    def subscribe(
        self,
        name: Any,
        topic: str | bytes | None = None,
        keep_polling: Callable[[], bool] | None = None,
        timeout: float | None = None,
        polling_timeout: float | None = None,
    ) -> AsyncIterator[Event]:
        """Subscribe the named socket to ``topic`` and return an asynchronous iterator of its events.

        Use it as ``async for event in sockets.subscribe('events'): ...``; the
        arguments are checked at once, when it is called.

        Parameters
        ----------
        name : str
            the name of the socket where events arrive
        topic : str or bytes, optional
            the topic to subscribe to; ``None`` subscribes to everything.
        keep_polling : callable, optional
            called between waits; the loop ends once it returns false (within
            :data:`~agentzero.core.SUBSCRIBE_CHECK_INTERVAL` seconds, even when no event arrives).
        timeout : float, optional
            the longest wait between two checks of ``keep_polling``, in **seconds**
        polling_timeout : float, optional
            the longest single wait before checking again, in **milliseconds**

        Returns
        -------
        AsyncIterator[Event]
            each event; it ends when ``keep_polling`` says so or the socket is
            closed. A :class:`~agentzero.errors.DeserializationError` is raised
            out of the iterator and ends it: call ``subscribe`` again to go on.

        Raises
        ------
        SocketNotFound
            when the socket name is wrong.
        WrongSocketType
            when the socket is not a SUB socket.
        TypeError
            when ``keep_polling`` is not callable.
        ValueError
            when a timeout is negative, infinite or NaN.
        """
        if keep_polling is None:
            keep_polling = _always
        elif not callable(keep_polling):
            raise TypeError(f"keep_polling must be callable, got {keep_polling!r}")
        record = self.get_record(name)
        self.set_topic(name, b"" if topic is None else topic)
        wait = self.timeout if timeout is None else check_seconds("timeout", timeout)
        if polling_timeout is not None:
            check_milliseconds("polling_timeout", polling_timeout, positive=True)
        return self._subscription(record, keep_polling, min(wait, SUBSCRIBE_CHECK_INTERVAL), polling_timeout)

    async def _subscription(
        self,
        record: SocketRecord,
        keep_polling: Callable[[], bool],
        wait: float,
        polling_timeout: float | None,
    ) -> AsyncIterator[Event]:
        name = record.name
        while keep_polling():
            if self._records.get(name) is not record:
                return
            try:
                event = await self.recv_event_safe(name, None, wait, polling_timeout)
            except (SocketNotFound, SocketClosed):
                return
            if event is not None:
                yield event

    # -- the slow paths -------------------------------------------------------------------------

    def _event_frames(
        self, name: Any, topic: str | bytes, data: Any, timeout: float | None
    ) -> tuple[SocketRecord, tuple[bytes, bytes]]:
        """Check ``publish_safe``'s arguments; return the socket's record and the frames to send."""
        try:
            record = self._records[name]
        except KeyError:
            record = self.get_record(name)
        if timeout is not None:
            check_seconds("timeout", timeout)
        if isinstance(topic, str):
            topic = topic.encode("utf-8")
        elif not isinstance(topic, bytes):
            raise TypeError(f"a topic is str or bytes, got {topic!r} ({type(topic).__name__})")
        return record, (topic, self._pack(data))

    def _publish_now(self, name: Any, topic: str | bytes, data: Any) -> bool:
        """Publish if the socket takes the event at once; ``False`` if it would have to wait."""
        record, frames = self._event_frames(name, topic, data, None)
        try:
            raw_send(record.socket, frames[0], NOBLOCK | SNDMORE)
        except _ZMQError as exc:
            if exc.errno in NOT_READY_ERRNOS:
                return False
            raise _translate(record, exc) from None
        self._send_rest(record, frames)
        return True

    async def _send_when_ready(
        self,
        record: SocketRecord,
        frames: tuple[bytes, ...],
        error: zmq.ZMQError,
        timeout: float | None,
        polling_timeout: float | None,
    ) -> bool:
        """Wait until the socket takes the first frame, then send the rest; ``False`` on time-out."""
        seconds, slice_ms = wait_arguments(self, timeout, polling_timeout)
        deadline = _monotonic() + seconds
        more = NOBLOCK | SNDMORE if len(frames) > 1 else NOBLOCK
        while True:
            if error.errno not in NOT_READY_ERRNOS:
                raise _translate(record, error)
            remaining = deadline - _monotonic()
            if remaining < 0 or not await self._waiting.until_ready(record, POLLOUT, remaining, slice_ms):
                return False
            try:
                raw_send(record.socket, frames[0], more)
                break
            except _ZMQError as exc:
                error = exc
        self._send_rest(record, frames)
        return True

    def _send_rest(self, record: SocketRecord, frames: tuple[bytes, ...]) -> None:
        """Send ``frames[1:]``, the rest of a message whose first frame was taken, and wake the next waiter.

        libzmq takes every frame of a message once it took the first, so the
        blocking send kept as a guard for a frame refused "for now" does not block in practice.
        """
        socket = record.socket
        last = len(frames) - 1
        for index in range(1, last + 1):
            flags = 0 if index == last else SNDMORE
            try:
                raw_send(socket, frames[index], flags | NOBLOCK)
            except _ZMQError as exc:
                if exc.errno not in NOT_READY_ERRNOS:
                    raise _translate(record, exc) from None
                raw_send(socket, frames[index], flags)
        if record.waiters:
            self._waiting.after_operation(record)

    async def _recv_when_ready(
        self, record: SocketRecord, error: zmq.ZMQError, timeout: float | None, polling_timeout: float | None
    ) -> Any:
        """Wait for a message and return its first frame (``bytes``), or ``None`` on time-out."""
        seconds, slice_ms = wait_arguments(self, timeout, polling_timeout)
        deadline = _monotonic() + seconds
        while True:
            if error.errno not in NOT_READY_ERRNOS:
                raise _translate(record, error)
            remaining = deadline - _monotonic()
            if remaining < 0 or not await self._waiting.until_ready(record, POLLIN, remaining, slice_ms):
                return None
            try:
                return raw_recv(record.socket, NOBLOCK)
            except _ZMQError as exc:
                error = exc

    def _rest_of_message(self, record: SocketRecord, *received: Any) -> list[bytes]:
        """Consume the rest of a refused multipart message; return what is kept (see the sync manager)."""
        kept, size = read_rest_of_message(record, received)
        if record.waiters:
            self._waiting.after_operation(record)
        if record.max_size is not None and size > record.max_size:
            raise MessageTooLarge(kept, size, record.max_size, record.name)
        return kept
