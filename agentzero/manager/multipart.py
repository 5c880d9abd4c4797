"""Raw multipart messages: ``send_multipart_safe``, ``recv_multipart_safe`` and ``drain_multipart_safe``.

Frames are bytes-like objects sent and received as they are, with no
serializer. Receiving is bounded: a message larger than the socket's
``max_message_size`` (frames added up) or with more than
:data:`MAX_FRAMES` frames is consumed and refused with
:class:`~agentzero.errors.MessageTooLarge`, keeping at most the limit in
memory, and the next message arrives normally. Written once, like every
call of the core (see :mod:`agentzero.manager.waits`).
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import zmq

from agentzero.errors import MessageTooLarge
from agentzero.manager.backend import NOBLOCK, POLLIN, events, raw_recv
from agentzero.manager.checks import check_seconds, translate
from agentzero.manager.frames import cut_short
from agentzero.manager.table import SocketRecord
from agentzero.manager.waits import Waits

#: the most frames a received multipart message may have
MAX_FRAMES = 1024
#: how many frames of a refused message :class:`MessageTooLarge` keeps in ``raw``
_RAW_FRAMES_KEPT = 16

_ZMQError = zmq.ZMQError


class Multipart(Waits):
    """Raw multipart sending and bounded receiving, for every flavour."""

    def send_multipart_safe(self, name: str, frames: Sequence[Any], timeout: float | None = None) -> bool:
        """Send ``frames`` (bytes-like objects, as they are) as one message once the socket takes it.

        Parameters
        ----------
        name : str
            the socket name
        frames : sequence of bytes-like
            the message's frames, at least one; each is ``bytes``, ``bytearray``
            or ``memoryview`` (no serializer is involved)
        timeout : float, optional
            how long to wait for the socket, in **seconds**; defaults to the manager's ``timeout``

        Returns
        -------
        bool
            ``True`` once the whole message was queued, ``False`` if the socket
            never took its first frame in time (nothing is sent then).

        Raises
        ------
        SocketNotFound
            when the socket name is wrong.
        TypeError
            when ``frames`` is empty or a frame is not bytes-like; nothing is sent.
        SocketClosed
            when the socket is closed while waiting.
        ValueError
            when ``timeout`` is negative, infinite or NaN.
        """
        try:
            record = self._records[name]
        except KeyError:
            record = self.get_record(name)
        if timeout is not None:
            check_seconds("timeout", timeout)
        frames = tuple(frames)
        if not frames or not all(isinstance(frame, (bytes, bytearray, memoryview)) for frame in frames):
            raise TypeError(f"frames must be one or more bytes-like objects, got {frames!r:.200}")
        return self._send_frames(record, frames, timeout, None)

    def recv_multipart_safe(self, name: str, timeout: float | None = None) -> list[bytes] | None:
        """Wait for a message on the named socket and return its frames, as they are.

        Parameters
        ----------
        name : str
            the socket name
        timeout : float, optional
            how long to wait, in **seconds**; defaults to the manager's
            ``timeout``. ``0`` takes a message only if one is there.

        Returns
        -------
        list of bytes or None
            the message's frames, or ``None`` if none arrived in time.

        Raises
        ------
        SocketNotFound
            when the socket name is wrong.
        MessageTooLarge
            when the message exceeds the socket's ``max_message_size`` or has
            more than :data:`MAX_FRAMES` frames; it is consumed and dropped,
            and the next message is received normally.
        SocketClosed
            when the socket is closed while waiting.
        ValueError
            when ``timeout`` is negative, infinite or NaN.
        """
        return self._receive(name, timeout, None, self._all_frames)

    def drain_multipart_safe(self, name: str, limit: int = 256) -> Iterator[list[bytes]]:
        """Yield the messages already waiting on the named socket, at most ``limit``, never waiting.

        Each message is read as :meth:`recv_multipart_safe` reads it; the
        iteration ends when no message is left, or after ``limit`` of them,
        so that one busy socket cannot starve the others of a loop.

        Parameters
        ----------
        name : str
            the socket name
        limit : int
            the most messages to yield, at least 1

        Yields
        ------
        list of bytes
            each waiting message's frames.

        Raises
        ------
        SocketNotFound
            when the socket name is wrong.
        ValueError
            when ``limit`` is not a whole number >= 1.
        MessageTooLarge
            while iterating, for a message over the bounds; it is dropped and
            the iteration ends with it (drain again to go on).
        SocketClosed
            while iterating, when the socket is closed (or its context terminated).
        """
        record = self.get_record(name)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError(f"limit must be a whole number >= 1, got {limit!r}")
        return self._drained(record, limit)

    def _drained(self, record: SocketRecord, limit: int) -> Iterator[list[bytes]]:
        socket = record.socket
        for _ in range(limit):
            try:
                try:
                    if not events(socket) & POLLIN:  # cheaper than a zmq.Again per drain
                        return
                    first = raw_recv(socket, NOBLOCK)
                except _ZMQError as exc:
                    error = translate(record, exc, False)
                    if error is exc:  # EAGAIN: someone took it meanwhile
                        return
                    raise error from None
                message = self._all_frames(record, first)
            except BaseException as exc:  # between two frames: a Ctrl-C, or the socket closed
                raised = cut_short(record, self._waiting, exc)
                if raised is exc:
                    raise
                raise raised from None
            yield message

    def _all_frames(self, record: SocketRecord, first: bytes) -> list[bytes]:
        """The rest of a multipart receive once its first frame is read: bounded, whole or refused."""
        socket = record.socket
        limit = record.max_size
        frames = [first]
        size = len(first)
        refused = limit is not None and size > limit
        count = 1
        more = record.more
        while more():  # the frames of a message arrive together: this never waits
            frame = raw_recv(socket, NOBLOCK)
            count += 1
            size += len(frame)
            if count > MAX_FRAMES or (limit is not None and size > limit):
                refused = True
            if not refused or len(frames) < _RAW_FRAMES_KEPT and (limit is None or size <= limit):
                frames.append(frame)
        if record.waiters:
            self._waiting.after_operation(record)
        if refused:
            kept = [frame[: limit or len(frame)] for frame in frames[:_RAW_FRAMES_KEPT]]
            raise MessageTooLarge(kept, size, limit, record.name, frames=count, max_frames=MAX_FRAMES)
        return frames
