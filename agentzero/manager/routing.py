"""Routing: ``recv_request_safe`` and ``send_reply_safe``, the server side of a ROUTER socket.

A ROUTER receives each message prefixed with the identity of the peer it came
from, and sends each message to the peer its first frame names. Between the
identity and the data sit whatever frames the path added: a REQ peer adds an
empty *delimiter*; a queue device in between (ROUTER -> DEALER) adds its own
peer's identity. So a request is an *envelope*, every frame before the last,
and its *data*, the last frame (the routing calls carry their data in one
frame, large buffers inline); a reply sends the same envelope back before its
data, and ZeroMQ routes it back along the same path.

The envelope rule (what a hostile peer cannot get past): one or more non-empty
routing frames, optionally followed by exactly one empty delimiter. A message
that breaks it is consumed and refused with
:class:`~agentzero.errors.DeserializationError` (``malformed envelope: ...``);
one over the socket's ``max_message_size`` or :data:`~agentzero.manager.multipart.MAX_FRAMES`
with :class:`~agentzero.errors.MessageTooLarge`; the next request is served
normally. Written once, like every call of the core (see
:mod:`agentzero.manager.waits`).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

from agentzero.errors import DeserializationError
from agentzero.manager.buffers import Buffers
from agentzero.manager.frames import deserialization_error
from agentzero.manager.multipart import Multipart
from agentzero.manager.table import SocketRecord

#: how many frames of a refused request :class:`DeserializationError` keeps in ``raw``
_RAW_FRAMES_KEPT = 16
_FRAME_TYPES = (bytes, bytearray, memoryview)


class Request(NamedTuple):
    """A request received on a ROUTER: the envelope that routes the reply back, and the data.

    It unpacks like a pair, and its envelope is what
    :meth:`~agentzero.core.SocketManager.send_reply_safe` takes:

    >>> request = Request((b'\\x00k\\x8bEg', b''), {'job': 42})
    >>> envelope, data = request
    >>> request.envelope, request.data
    ((b'\\x00k\\x8bEg', b''), {'job': 42})
    """

    #: every frame before the last: the routing frames (identities), then the empty delimiter of a REQ peer
    envelope: tuple[bytes, ...]
    #: the last frame, deserialized with the manager's serializer
    data: Any


def envelope_problem(envelope: Sequence[Any]) -> str | None:
    """Say what is wrong with ``envelope``, or return ``None`` when it follows the envelope rule.

    One or more non-empty routing frames, optionally followed by exactly one
    empty delimiter.

    >>> envelope_problem((b'client-1', b'')) is None
    True
    >>> envelope_problem((b'queue', b'client-1', b'')) is None
    True
    >>> envelope_problem((b'', b'data'))
    'an empty routing frame (frame 1 of 2)'
    >>> envelope_problem((b'client-1', b'', b''))
    '2 empty frames (one delimiter at most)'
    >>> envelope_problem((b'',))
    'no routing frame before the empty delimiter'
    """
    if not envelope:
        return "no routing frame"
    empty = [index for index, frame in enumerate(envelope) if not len(frame)]
    if not empty:
        return None
    if len(empty) > 1:
        return f"{len(empty)} empty frames (one delimiter at most)"
    last = len(envelope) - 1
    if empty[0] != last:
        return f"an empty routing frame (frame {empty[0] + 1} of {len(envelope)})"
    if last == 0:
        return "no routing frame before the empty delimiter"
    return None


class Routing(Buffers):
    """Requests received with their envelope and replies sent back along it, for every flavour."""

    def recv_request_safe(self, name: str, timeout: float | None = None) -> Request | None:
        """Wait for a request on the named ROUTER socket and return it as a :class:`Request`.

        The message's last frame is the data, deserialized with the manager's
        serializer; every frame before it is the envelope: the identity of the
        peer (and of each ROUTER -> DEALER queue the request came through), then
        the empty delimiter a REQ peer adds. Give the envelope to
        :meth:`send_reply_safe` to answer.

        Parameters
        ----------
        name : str
            the socket name (a ROUTER, or any socket whose messages carry an envelope)
        timeout : float, optional
            how long to wait, in **seconds**; defaults to the manager's
            ``timeout``. ``0`` takes a request only if one is there.

        Returns
        -------
        Request or None
            ``(envelope, data)``, or ``None`` if no request arrived in time.

        Raises
        ------
        SocketNotFound
            when the socket name is wrong.
        DeserializationError
            when the message has no envelope, an empty routing frame or more
            than one empty frame (``malformed envelope: ...``), or its data
            cannot be deserialized; it is consumed, and the next request is
            received normally.
        MessageTooLarge
            (a :class:`DeserializationError`) when the message exceeds the
            socket's ``max_message_size`` or has more than
            :data:`~agentzero.manager.multipart.MAX_FRAMES` frames; it is dropped.
        WrongSocketType
            when the socket cannot receive at all (a PUSH, a PUB).
        SocketClosed
            when the socket is closed while waiting.
        ValueError
            when ``timeout`` is negative, infinite or NaN.
        """
        return self._receive(name, timeout, None, self._request)

    def _request(self, record: SocketRecord, first: bytes) -> Request:
        """The rest of :meth:`recv_request_safe` once the first frame is read: bounded, then checked."""
        frames = self._all_frames(record, first)
        name = record.name
        if len(frames) < 2:
            problem: str | None = "a message of 1 frame, with no envelope before its data"
        else:
            problem = envelope_problem(frames[:-1])
        if problem is not None:
            raise DeserializationError(frames[:_RAW_FRAMES_KEPT], f"malformed envelope: {problem}", name)
        payload = frames[-1]
        try:
            return Request(tuple(frames[:-1]), self._unpack(payload))
        except Exception as exc:
            raise deserialization_error(payload, exc, name) from exc

    def send_reply_safe(
        self, name: str, envelope: Sequence[Any], data: Any, timeout: float | None = None
    ) -> bool:
        """Serialize ``data`` and send it after ``envelope``, as one message, to the peer the envelope names.

        Parameters
        ----------
        name : str
            the socket name (a ROUTER)
        envelope : tuple or list of bytes-like
            the envelope of the request being answered (:attr:`Request.envelope`):
            one or more non-empty routing frames, optionally followed by one empty
            delimiter
        data : object
            the data to be serialized then sent
        timeout : float, optional
            how long to wait for the socket, in **seconds**; defaults to the
            manager's ``timeout``

        Returns
        -------
        bool
            ``True`` once the reply was queued, ``False`` if the peer's queue
            stayed full until ``timeout`` passed (nothing is sent then).

        Raises
        ------
        SocketNotFound
            when the socket name is wrong.
        TypeError
            when ``envelope`` is not a tuple or list of bytes-like frames; nothing is sent.
        ValueError
            when ``envelope`` breaks the envelope rule (empty, an empty routing
            frame, more than one empty frame), or ``timeout`` is negative,
            infinite or NaN; nothing is sent.
        SerializationError
            when ``data`` cannot be serialized; nothing is sent.
        PeerUnreachable
            at once, when no peer of the envelope's first identity is connected
            (it left, or never came); nothing is sent, and the socket keeps
            working for the other peers.
        SocketClosed
            when the socket is closed while waiting.
        """
        self.get_record(name)
        if isinstance(envelope, (str, *_FRAME_TYPES)) or not isinstance(envelope, (tuple, list)):
            raise TypeError(
                f"envelope must be a tuple of bytes frames (Request.envelope), got {envelope!r:.200}"
            )
        if not all(isinstance(frame, _FRAME_TYPES) for frame in envelope):
            raise TypeError(f"envelope frames must be bytes-like, got {envelope!r:.200}")
        problem = envelope_problem(envelope)
        if problem is not None:
            raise ValueError(f"malformed envelope: {problem}: {envelope!r:.200}")
        return Multipart.send_multipart_safe(self, name, (*envelope, self._pack_one(data)), timeout)
