"""Serializers turn Python values into message frames and back.

``JSON`` (the default) and ``MSGPACK`` are both safe for untrusted peers:
unpacking only ever builds plain data (dicts, lists, strings, numbers, ...);
nothing received is unpickled, imported or executed, and what one of them
accepts on the way in it can always send back out:

- text is valid Unicode: a lone surrogate (``"\\ud800"`` in JSON, or its bytes
  in msgpack) is refused with :class:`~agentzero.errors.DeserializationError`
  on the way in, and with :class:`~agentzero.errors.SerializationError` on the
  way out, so no received string can break an echo, a log line or a terminal;
- JSON's ``NaN``, ``Infinity`` and numbers too large for a float are refused
  when received; integers of any size are kept exact;
- nesting is limited to :data:`MAX_DEPTH` levels of lists and dicts, in both
  directions, so no payload raises ``RecursionError`` in the receiver's code;
- msgpack extension types (including its timestamps) are refused: they are
  not plain data.

What a receiver would refuse is refused when sending, with
:class:`~agentzero.errors.SerializationError`, and nothing is sent: ``MSGPACK``
refuses map keys other than text and bytes, extension types and timestamps;
``JSON`` refuses what it cannot write at all. ``JSON()`` sends what JSON
cannot carry as its ``str()`` (and ``NaN`` as ``null``), as agentzero 0.4.6
did; ``JSON(strict=True)`` refuses it too. Any exception raised while one of
them packs a value (by the value's own ``__str__``, say) is a ``SerializationError``.

``MSGPACK`` sends every ``bytes``, ``bytearray`` or ``memoryview`` of at
least :data:`OUT_OF_BAND_SIZE` bytes (64 KiB) as a frame of its own, without
copying it (see :meth:`MSGPACK.pack_frames` and ``docs/payloads.rst``).

A serializer of your own subclasses :class:`BaseSerializer` and implements
``pack`` and ``unpack``; overriding ``pack_bytes`` is an optional speed-up,
and ``pack_frames``/``unpack_frames`` let it send a message of several frames.
Set ``binary = True`` on it to receive each frame's ``bytes`` in ``unpack``;
without it ``unpack`` receives ``str``, as agentzero 0.4.6 promised.
"""

from __future__ import annotations

from types import FunctionType as _FunctionType
from typing import Any

# the errors the serializers raise, importable from here as they always were
from agentzero.errors import DeserializationError, SerializationError  # noqa: F401
from agentzero.serializers import _checks, _out_of_band
from agentzero.serializers._base import BaseSerializer as BaseSerializer
from agentzero.serializers._base import frame_packer as frame_packer
from agentzero.serializers._base import frame_unpacker as frame_unpacker
from agentzero.serializers._base import frames_unpacker as frames_unpacker
from agentzero.serializers._base import message_packer as message_packer
from agentzero.serializers._json_serializer import JSON as JSON
from agentzero.serializers._msgpack_serializer import MSGPACK as MSGPACK

#: The deepest nesting of lists and dicts (maps and arrays) a serializer packs
#: or unpacks: orjson's own limit when packing, so everything received can be sent back.
MAX_DEPTH = _checks.MAX_DEPTH
#: The smallest ``bytes``, ``bytearray`` or ``memoryview`` that :class:`MSGPACK` sends as a frame of its own.
OUT_OF_BAND_SIZE = _out_of_band.OUT_OF_BAND_SIZE


def _defined_here(*public: Any) -> None:
    """Give each public class and function, and each class's own methods, this package as ``__module__``.

    They were defined in this module before it became a package, and their
    module is what pickles, ``repr``, ``help()`` and the doctests name:
    ``agentzero.serializers.JSON``, not the private module that now holds it.
    """
    for item in public:
        item.__module__ = __name__
        for member in vars(item).values() if isinstance(item, type) else ():
            if isinstance(member, _FunctionType):
                member.__module__ = __name__


_defined_here(BaseSerializer, JSON, MSGPACK, frame_packer, message_packer, frames_unpacker, frame_unpacker)
