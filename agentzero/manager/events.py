"""Events: ``publish_safe``, ``recv_event_safe`` and ``subscribe``, written once for every flavour.

An event is one ``[topic, payload]`` message (the payload may carry large
buffers as frames of their own, see :mod:`agentzero.manager.buffers`). As
every call of the core, each one tries its work at once and builds its steps
only when it must wait (see :mod:`agentzero.manager.waits`).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterator, NamedTuple, Optional

import zmq

from agentzero.errors import (
    DeserializationError,
    MessageTooLarge,
    SocketClosed,
    SocketNotFound,
    SocketOptionError,
)
from agentzero.manager.backend import (
    NOBLOCK,
    NOT_READY_ERRNOS,
    SNDMORE,
    raw_recv,
    raw_send,
)
from agentzero.manager.checks import (
    check_milliseconds,
    check_seconds,
    refused_by_router,
    translate,
)
from agentzero.manager.frames import deserialization_error, read_rest_of_message
from agentzero.manager.routing import Routing
from agentzero.manager.table import SocketRecord
from agentzero.manager.waits import SUBSCRIBE_CHECK_INTERVAL, Pending, Steps

_ZMQError = zmq.ZMQError
_monotonic = time.monotonic


#: a subscription's socket record, ``keep_polling``, longest wait and polling timeout
Subscription = tuple[SocketRecord, Callable[[], bool], float, Optional[float]]
#: what the steps of a subscription return once it ended (``keep_polling`` said so, or the socket is gone)
ENDED: Any = object()


class Event(NamedTuple):
    """An event received from a SUB socket: its topic frame and its deserialized data.

    It unpacks like a pair:

    >>> event = Event(b'logs', {'stdout': 'hello world'})
    >>> topic, data = event
    >>> event.topic, event.data
    (b'logs', {'stdout': 'hello world'})
    """

    #: the topic frame exactly as received (bytes)
    topic: bytes
    #: the payload, deserialized with the manager's serializer
    data: Any


class Events(Routing):
    """Publishing and receiving events, and subscriptions, for every flavour."""

    def publish_safe(
        self,
        name: str,
        topic: str | bytes,
        data: Any,
        timeout: float | None = None,
        polling_timeout: float | None = None,
    ) -> bool:
        """Serialize ``data`` and send it as one ``[topic, payload]`` message.

        A PUB socket never blocks: with no subscriber the event is dropped by ZeroMQ.

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
            the longest single poll, in **milliseconds**

        Returns
        -------
        bool
            ``True`` if the message was sent, ``False`` if the socket never became available.

        Raises
        ------
        TypeError
            when ``topic`` is neither text nor bytes.
        SocketOptionError
            when ``topic`` is text UTF-8 cannot encode (a lone surrogate); nothing is sent.
        SocketNotFound, WrongSocketType, SerializationError, SocketClosed
            as :meth:`send_safe` raises them: a wrong name; a ROUTER (use
            :meth:`send_reply_safe`) or a socket that cannot send, before
            anything is sent; ``data`` that cannot be serialized, nothing sent;
            the socket closed while waiting.
        """
        record, frames = self._event_frames(name, topic, data, timeout)
        if frames[1].__class__ is list:  # the serializer's document and large buffers
            return self._send_several(record, frames[:1], frames[1], timeout, polling_timeout)
        return self._send_frames(record, frames, timeout, polling_timeout)

    def recv_event_safe(
        self,
        name: str,
        topic: str | bytes | None | bool = False,
        timeout: float | None = None,
        polling_timeout: float | None = None,
    ) -> Event | None:
        """Wait for an event on the named SUB socket and return it as an :class:`Event`.

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
            the longest single poll, in **milliseconds**

        Returns
        -------
        Event or None
            the event, or ``None`` if none arrived in time.

        Raises
        ------
        SocketNotFound
            when the socket name is wrong.
        WrongSocketType
            when the socket is a ROUTER (use :meth:`recv_request_safe`),
            before anything is received, or cannot receive at all.
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
        """
        if topic is not None and topic is not False:
            if not isinstance(topic, (str, bytes)):
                raise TypeError(
                    "recv_event_safe() takes a string, None or False as argument, "
                    f"received {topic!r}({type(topic)}) instead"
                )
            self.set_topic(name, topic)
        return self._receive(name, timeout, polling_timeout, self._event)

    def _event(self, record: SocketRecord, first: bytes) -> Event:
        """The rest of :meth:`recv_event_safe` once the first frame is read (see :meth:`_taking`)."""
        socket = record.socket
        name = record.name
        if record.more():
            second = raw_recv(socket, NOBLOCK)
            if record.more():
                if (
                    self._unpack_frames is not None
                ):  # a serializer that reads several frames (MSGPACK's buffers)
                    return Event(first, self._several_frames(record, [first, second], 1))
                frames = self._rest_of_message(record, first, second)
                raise DeserializationError(
                    frames, f"expected 2 frames [topic, data], got {len(frames)}", name
                )
        else:
            second = None
        if record.waiters:
            self._waiting.after_operation(record)
        limit = record.max_size
        if second is None:
            if limit is not None and len(first) > limit:  # keep no more than the cap, as for 2 frames
                raise MessageTooLarge([first[:limit]], len(first), limit, name)
            raise DeserializationError([first], "expected 2 frames [topic, data], got 1", name)
        if limit is not None and len(first) + len(second) > limit:
            raise MessageTooLarge([first[:limit], second[:limit]], len(first) + len(second), limit, name)
        try:
            return Event(first, self._unpack(second))
        except Exception as exc:
            raise deserialization_error(second, exc, name) from exc

    def subscribe(
        self,
        name: str,
        topic: str | bytes | None = None,
        keep_polling: Callable[[], bool] | None = None,
        timeout: float | None = None,
        polling_timeout: float | None = None,
    ) -> Iterator[Event]:
        """Subscribe the named socket to ``topic`` and yield the events it receives.

        Parameters
        ----------
        name : str
            the name of the socket where events arrive
        topic : str or bytes, optional
            the topic to subscribe to; ``None`` subscribes to everything.
        keep_polling : callable, optional
            called between waits; the loop ends once it returns false (within
            :data:`SUBSCRIBE_CHECK_INTERVAL` seconds, even when no event arrives).
        timeout : float, optional
            the longest wait between two checks of ``keep_polling``, in **seconds**
        polling_timeout : float, optional
            the longest single poll, in **milliseconds**

        Yields
        ------
        Event
            each event; the generator ends when ``keep_polling`` says so or the
            socket is closed. A :class:`DeserializationError` (an event that is
            not ``[topic, payload]`` or cannot be deserialized) is raised out of
            the generator and ends it: call ``subscribe`` again to go on.

        Raises
        ------
        SocketNotFound
            when the socket name is wrong.
        WrongSocketType
            when the socket is not a SUB socket.
        TypeError
            when ``keep_polling`` is not callable, or ``topic`` is neither text nor bytes.
        ValueError
            when a timeout is negative, infinite or NaN.
        DeserializationError
            while iterating, for an event that cannot be read; the generator
            ends with it (the event is consumed: a new ``subscribe`` goes on
            with the next one).
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
        subscription = (record, keep_polling, min(wait, SUBSCRIBE_CHECK_INTERVAL), polling_timeout)
        return self._subscription(subscription)

    def _subscription(self, subscription: Subscription) -> Iterator[Event]:
        while (event := self._finish(self._event_steps(*subscription))) is not ENDED:
            if event is not None:
                yield event

    def _event_steps(
        self,
        record: SocketRecord,
        keep_polling: Callable[[], bool],
        wait: float,
        polling_timeout: float | None,
    ) -> Steps[Any]:
        """The next event of a subscription (``None`` if none came in time), or :data:`ENDED`."""
        if not self._subscribed(record, keep_polling):
            return ENDED
        try:
            event: Any = self._receive(record.name, wait, polling_timeout, self._event)
            if event.__class__ is Pending:
                event = yield from event.steps
        except (SocketNotFound, SocketClosed):
            return ENDED  # the socket is gone: the subscription ends quietly
        return event

    def _subscribed(self, record: SocketRecord, keep_polling: Callable[[], bool]) -> bool:
        """Whether a subscription goes on: ``keep_polling()`` says so and the socket is still there."""
        return bool(keep_polling()) and self._records.get(record.name) is record

    # -- shared by the calls -----------------------------------------------------------------------

    def _event_frames(
        self, name: Any, topic: str | bytes, data: Any, timeout: float | None
    ) -> tuple[SocketRecord, tuple[bytes, Any]]:
        """Check ``publish_safe``'s arguments; return the socket's record and the frames to send."""
        try:
            record = self._records[name]
        except KeyError:
            record = self.get_record(name)
        if record.routing:
            raise refused_by_router(record, "publish_safe")
        if timeout is not None:
            check_seconds("timeout", timeout)
        if isinstance(topic, str):
            try:
                topic = topic.encode("utf-8")
            except UnicodeEncodeError as exc:  # a lone surrogate, refused as set_topic refuses it
                raise SocketOptionError(name, "topic", topic, exc) from None
        elif not isinstance(topic, bytes):
            raise TypeError(f"a topic is str or bytes, got {topic!r} ({type(topic).__name__})")
        return record, (topic, self._pack(data))

    def _publish_now(self, name: Any, topic: str | bytes, data: Any) -> bool:
        """Publish if the socket takes the event at once; ``False`` if it would have to wait."""
        record, frames = self._event_frames(name, topic, data, None)
        if frames[1].__class__ is list:  # the serializer's document and large buffers
            return self._send_several_now(record, frames[:1], frames[1])
        try:
            raw_send(record.socket, frames[0], NOBLOCK | SNDMORE)
        except _ZMQError as exc:
            if exc.errno in NOT_READY_ERRNOS:
                return False
            raise translate(record, exc, True) from None
        rest = self._send_rest(record, frames, 1)
        if rest is not None:
            return bool(self._finish(rest))
        return True

    def _rest_of_message(self, record: SocketRecord, *received: Any) -> list[bytes]:
        """Consume the rest of a message whose frames so far are ``received``; return what is kept.

        See :func:`~agentzero.manager.frames.read_rest_of_message`; raises
        :class:`MessageTooLarge` past the socket's ``max_message_size``.
        """
        kept, size = read_rest_of_message(record, received)
        if record.waiters:
            self._waiting.after_operation(record)
        if record.max_size is not None and size > record.max_size:
            raise MessageTooLarge(kept, size, record.max_size, record.name)
        return kept


def _always() -> bool:
    return True
