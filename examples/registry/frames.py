"""Frames on the wire: one strict JSON object per message, bounded in size, read without trusting the peer.

Both ends use :class:`StrictJSON`: orjson only, so ``NaN``, ``Infinity``,
numbers that overflow to infinity, invalid UTF-8 and lone surrogates are refused
at the door (agentzero's default ``JSON`` falls back to the standard library,
which accepts all of them). The registry's ROUTER reads its messages with the
manager's ``drain_multipart_safe``, which refuses a message of too many frames
or bytes, so a peer cannot make it hold an endless multipart message.
"""

from __future__ import annotations

from typing import Any

import orjson

from agentzero.errors import DeserializationError, SerializationError
from agentzero.serializers import BaseSerializer
from examples.registry.checks import ProtocolError

#: the largest message (JSON payload) either end accepts, in bytes
MAX_MESSAGE_BYTES = 64 * 1024
#: libzmq's own limit on one frame (``zmq.MAXMSGSIZE``): a peer sending more is disconnected
#: before a byte reaches Python; between the two limits a message is read, counted and refused
TRANSPORT_LIMIT = 16 * MAX_MESSAGE_BYTES

_loads = orjson.loads
_dumps = orjson.dumps


def decode(payload: bytes, limit: int = MAX_MESSAGE_BYTES) -> dict:
    """Decode one message: a JSON object of at most ``limit`` bytes whose ``type`` is a string.

    Parameters
    ----------
    payload : bytes
        the frame as received
    limit : int
        the largest payload accepted, in bytes

    Returns
    -------
    dict
        the message

    Raises
    ------
    ProtocolError
        when the payload is too large, not strict JSON, not an object, or has no string ``type``.
    """
    if len(payload) > limit:
        raise ProtocolError(f"message of {len(payload)} bytes exceeds the limit of {limit}")
    try:
        data = _loads(payload)
    except orjson.JSONDecodeError as error:
        raise ProtocolError(f"not strict JSON: {error}") from None
    if type(data) is not dict:
        raise ProtocolError(f"a message must be a JSON object, got {type(data).__name__}")
    if type(data.get("type")) is not str:
        raise ProtocolError("a message must have a string 'type'")
    return data


def encode(data: Any) -> bytes:
    """Encode one message as strict JSON.

    Raises
    ------
    SerializationError
        when ``data`` holds something strict JSON cannot carry (a lone surrogate, NaN, ...).
    """
    try:
        return _dumps(data)
    except TypeError as error:
        raise SerializationError(StrictJSON(), data, error) from None


class StrictJSON(BaseSerializer):
    """The registry protocol's serializer for a :class:`~agentzero.core.SocketManager`: see :func:`decode`.

    >>> StrictJSON().unpack(b'{"type": "pong"}')
    {'type': 'pong'}
    """

    def initialize(self, limit: int = MAX_MESSAGE_BYTES) -> None:
        self.limit = limit

    def pack(self, data: Any) -> bytes:
        return encode(data)

    pack_bytes = pack

    def unpack(self, data: bytes | str) -> Any:
        payload = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
        try:
            return decode(payload, self.limit)
        except ProtocolError as error:
            raise DeserializationError(payload[:200], str(error)) from None


__all__ = [
    "MAX_MESSAGE_BYTES",
    "TRANSPORT_LIMIT",
    "DeserializationError",
    "StrictJSON",
    "decode",
    "encode",
]
