"""Serializers turn Python values into message frames and back.

``JSON`` (the default) and ``MSGPACK`` are both safe for untrusted peers:
unpacking only ever builds plain data (dicts, lists, strings, numbers, ...);
nothing received is unpickled, imported or executed.

A serializer of your own subclasses :class:`BaseSerializer` and implements
``pack`` and ``unpack``; overriding ``pack_bytes`` is an optional speed-up.
"""

from __future__ import annotations

import json
from typing import Any

import msgpack
import orjson

from agentzero.errors import DeserializationError, SerializationError

# datetimes and dataclasses go through ``default=str``, as they did with the
# standard library encoder agentzero always used.
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_orjson_dumps = orjson.dumps
_orjson_loads = orjson.loads


class BaseSerializer:
    """Base class of every serializer.

    The constructor passes all of its arguments to :meth:`initialize`, so a
    subclass configures itself there without overriding ``__init__``.
    """

    def __init__(self, *args: Any, **kw: Any) -> None:
        self.initialize(*args, **kw)

    def initialize(self, *args: Any, **kw: Any) -> None:
        """Configure the serializer; receives the constructor's arguments."""

    def pack(self, data: Any) -> str | bytes:
        """Serialize ``data``.

        Raises
        ------
        SerializationError
            when ``data`` cannot be represented.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement pack()")

    def unpack(self, data: bytes | str) -> Any:
        """Deserialize ``data``.

        Raises
        ------
        DeserializationError
            when ``data`` is not a valid payload.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement unpack()")

    def pack_bytes(self, data: Any) -> bytes:
        """Serialize ``data`` into the bytes of one message frame.

        The default encodes the result of :meth:`pack` as UTF-8 when it is text.
        """
        packed = self.pack(data)
        return packed.encode("utf-8") if isinstance(packed, str) else packed

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class JSON(BaseSerializer):
    """Compact JSON, encoded with orjson.

    Values JSON cannot represent are turned into text with ``str()``.

    >>> JSON().pack({"foo": "bar"})
    '{"foo":"bar"}'
    >>> JSON().unpack(b'{"foo": ["bar", 1]}')
    {'foo': ['bar', 1]}
    """

    def pack(self, data: Any) -> str:
        return self.pack_bytes(data).decode("utf-8")

    def pack_bytes(self, data: Any) -> bytes:
        try:
            return _orjson_dumps(data, default=str, option=_ORJSON_OPTIONS)
        except TypeError:
            pass  # e.g. integers wider than 64 bits: the standard library copes
        try:
            return json.dumps(data, default=str, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError, RecursionError) as exc:
            raise SerializationError(self, data, exc) from exc

    def unpack(self, data: bytes | str) -> Any:
        try:
            return _orjson_loads(data)
        except (TypeError, ValueError):
            pass
        try:
            text = bytes(data).decode("utf-8") if isinstance(data, (bytes, bytearray, memoryview)) else data
            return json.loads(text)
        except (TypeError, ValueError, RecursionError) as exc:
            raise DeserializationError(data, f"invalid JSON: {exc}") from exc


class MSGPACK(BaseSerializer):
    """MessagePack, binary and compact.

    ``bytes`` and ``str`` stay distinct on the wire; maps must have ``str`` or
    ``bytes`` keys. Unlike :class:`JSON` there is no ``str()`` fallback: a
    value msgpack cannot represent raises :class:`SerializationError`.

    >>> serializer = MSGPACK()
    >>> serializer.unpack(serializer.pack({"blob": b"\\x00\\xff", "text": "hi"}))
    {'blob': b'\\x00\\xff', 'text': 'hi'}
    """

    def pack(self, data: Any) -> bytes:
        try:
            return msgpack.packb(data, use_bin_type=True)
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            raise SerializationError(self, data, exc) from exc

    pack_bytes = pack

    def unpack(self, data: bytes | str) -> Any:
        try:
            return msgpack.unpackb(data, raw=False)
        except Exception as exc:  # msgpack raises many unrelated types for bad input
            raise DeserializationError(data, f"invalid msgpack: {exc}") from exc


def frame_packer(backend: Any) -> Any:
    """Return the function that turns a value into one frame's bytes with ``backend`` (temporary)."""
    return getattr(backend, "pack_bytes", None) or BaseSerializer.pack_bytes.__get__(backend)


def frame_unpacker(backend: Any) -> Any:
    """Return the function that turns one frame's bytes into a value with ``backend`` (temporary)."""
    return backend.unpack
