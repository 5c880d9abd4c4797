"""The :class:`MSGPACK` serializer, public as :class:`agentzero.serializers.MSGPACK`: packing and unpacking.

What it may send and receive is checked by :mod:`agentzero.serializers._checks`;
its large buffers travel as frames of their own (:mod:`agentzero.serializers._out_of_band`).
"""

from __future__ import annotations

from typing import Any, Sequence

import msgpack

from agentzero.errors import DeserializationError, SerializationError
from agentzero.serializers._base import BaseSerializer
from agentzero.serializers._checks import (
    CONTAINER_TYPES,
    MAX_DEPTH,
    SCAN_LIMIT,
    check_msgpack_data,
    check_received_msgpack,
    msgpack_marks,
    msgpack_unpackb,
    refuse_extension,
)
from agentzero.serializers._out_of_band import References, pack_out_of_band

_Packer = msgpack.Packer
# a Packer per call, as msgpack.packb makes, but with a small first buffer instead of 256 KiB
_PACKER_BUFFER = 1024


class MSGPACK(BaseSerializer):
    """MessagePack, binary and compact.

    ``bytes`` and ``str`` stay distinct on the wire. Unlike :class:`JSON`
    there is no ``str()`` fallback, and what a receiver would refuse is
    refused when sending: a value msgpack cannot represent, a map key that is
    neither ``str`` nor ``bytes`` (``{1: 'a'}``, a tuple key), an extension
    type (:class:`msgpack.ExtType`, :class:`msgpack.Timestamp`) and nesting
    deeper than :data:`MAX_DEPTH` raise :class:`SerializationError`, and
    nothing is sent. Received, they raise :class:`DeserializationError`.

    Through a :class:`~agentzero.core.SocketManager`, every ``bytes``,
    ``bytearray`` or ``memoryview`` of at least :data:`OUT_OF_BAND_SIZE`
    bytes anywhere in the value is sent as a frame of its own, without a
    copy, and received as a read-only ``memoryview``, without a second copy
    (the wire format: :meth:`pack_frames`). agentzero 0.5.0 and 0.6.0 refuse
    such a message of several frames ("expected 1 frame"). :meth:`pack` and
    :meth:`unpack` always make and read one frame.

    Examples
    --------
    >>> serializer = MSGPACK()
    >>> serializer.unpack(serializer.pack({"blob": b"\\x00\\xff", "text": "hi"}))
    {'blob': b'\\x00\\xff', 'text': 'hi'}
    >>> from agentzero.errors import SerializationError
    >>> try:
    ...     serializer.pack({"scores": {1: 0.5}})
    ... except SerializationError as refused:
    ...     print(refused)
    MSGPACK cannot pack a value of type dict: a map key of type int in value['scores'] is not text or bytes
    """

    binary = True

    def pack(self, data: Any) -> bytes:
        try:
            packed: bytes = _Packer(use_bin_type=True, buf_size=_PACKER_BUFFER).pack(data)
            check_msgpack_data(data)
            return packed
        except Exception as exc:  # a dict subclass's own items() may raise anything
            raise SerializationError(self, data, exc) from exc

    pack_bytes = pack

    def pack_message(self, data: Any) -> bytes | list[Any]:
        """:meth:`pack_bytes`, or the frames of :meth:`pack_frames` when ``data`` holds a large buffer.

        The manager's packer. The checks :meth:`pack` makes anyway find the
        large buffers, first, so that they are never copied into a document.
        """
        try:
            if not check_msgpack_data(data):  # no large buffer: the one frame pack() makes
                packed: bytes = _Packer(use_bin_type=True, buf_size=_PACKER_BUFFER).pack(data)
                return packed
            return pack_out_of_band(data)
        except Exception as exc:  # a dict subclass's own items() may raise anything
            raise SerializationError(self, data, exc) from exc

    def pack_frames(self, data: Any) -> list[Any]:
        """Serialize ``data`` into ``[document, *buffers]``: large buffers as frames of their own.

        Every ``bytes``, ``bytearray`` or contiguous ``memoryview`` of at least
        :data:`OUT_OF_BAND_SIZE` bytes in ``data`` is taken out, as it is (not
        copied): the document holds in its place a reference, the msgpack
        extension type ``1`` whose data is the buffer's frame number (4 bytes,
        big-endian, from 1). Without such a buffer, the one frame is :meth:`pack`'s.

        Returns
        -------
        list of bytes-like
            the document, then the buffers in the order of their references.

        Raises
        ------
        SerializationError
            when ``data`` cannot be represented (see the class).

        Examples
        --------
        >>> frames = MSGPACK().pack_frames({"name": "blob", "data": bytes(OUT_OF_BAND_SIZE)})
        >>> len(frames), len(frames[1])
        (2, 65536)
        >>> MSGPACK().unpack_frames(frames)["data"] == bytes(OUT_OF_BAND_SIZE)
        True
        """
        packed = self.pack_message(data)
        return packed if isinstance(packed, list) else [packed]

    def unpack_frames(self, frames: Sequence[Any]) -> Any:
        """Deserialize ``[document, *buffers]``: each reference in the document becomes its buffer.

        The buffers come back as they were given (a ``memoryview`` from a
        :class:`~agentzero.core.SocketManager`), not copied. Every reference
        must name a frame from 1 to N, and every buffer frame must be
        referenced exactly once.

        Returns
        -------
        object
            the value.

        Raises
        ------
        DeserializationError
            when the document is not valid msgpack (see :meth:`unpack`), holds
            another extension type or a malformed reference, names a frame
            that is not there or twice, or leaves a buffer frame unreferenced.
        """
        if len(frames) == 1:
            return self.unpack(bytes(frames[0]))
        if not frames:
            raise DeserializationError([], "expected 1 frame or more, got 0")
        document = bytes(frames[0])
        references = References(frames[1:])
        try:
            value = msgpack_unpackb(document, raw=False, ext_hook=references)
            references.check_all_used()
            check_received_msgpack(value)
        except Exception as exc:  # msgpack raises many unrelated types for bad input
            raise DeserializationError(list(frames[:1]), f"invalid msgpack: {exc}") from exc
        return value

    def unpack(self, data: bytes | str) -> Any:
        try:
            value = msgpack_unpackb(data, raw=False, ext_hook=refuse_extension)
        except Exception as exc:  # msgpack raises many unrelated types for bad input
            raise DeserializationError(data, f"invalid msgpack: {exc}") from exc
        if len(data) > SCAN_LIMIT:
            suspicious = isinstance(value, CONTAINER_TYPES)  # scanning costs more than the check itself
        else:
            containers, extensions = msgpack_marks(data)
            suspicious = extensions or containers > MAX_DEPTH
        if suspicious:
            try:
                check_received_msgpack(value)
            except ValueError as exc:
                raise DeserializationError(data, f"invalid msgpack: {exc}") from exc
        return value
