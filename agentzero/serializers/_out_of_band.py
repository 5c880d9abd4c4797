"""Out-of-band buffers of :class:`~agentzero.serializers.MSGPACK`: large buffers as frames of their own.

The wire format (documented in ``docs/payloads.rst``): frame 0 is the msgpack
document; every ``bytes``, ``bytearray`` or ``memoryview`` of at least
:data:`OUT_OF_BAND_SIZE` bytes in the value is replaced there by a reference,
the msgpack extension type :data:`BUFFER_CODE` whose data is the number of the
frame that carries it (a 4-byte big-endian unsigned integer, 1 for the first
buffer); frames 1..N are the buffers, in the order of their references. A
message of one frame is an ordinary msgpack payload.

The sending checks of :mod:`agentzero.serializers._checks` find such buffers
while they check the value (an ordinary payload pays nothing more), so a
large buffer is never copied into a document.
"""

from __future__ import annotations

from typing import Any, Sequence

import msgpack

#: the smallest ``bytes``, ``bytearray`` or ``memoryview`` sent as a frame of its own (64 KiB)
OUT_OF_BAND_SIZE = 64 * 1024
#: the msgpack extension type of a reference to a buffer frame
BUFFER_CODE = 1
_INDEX_SIZE = 4

_ExtType = msgpack.ExtType
_Packer = msgpack.Packer
_BLOBS = (bytes, bytearray, memoryview)


def blob_size(value: Any) -> int:
    """The bytes of a ``bytes``, ``bytearray`` or contiguous ``memoryview``; 0 for anything else."""
    if isinstance(value, memoryview):
        return value.nbytes if value.contiguous else 0
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    return 0


def pack_out_of_band(data: Any) -> list[Any]:
    """``[document, *buffers]`` for ``data``: its large buffers taken out, as they are (not copied).

    Call it only on a value the sending checks accepted (so it is at most
    ``MAX_DEPTH`` levels deep and holds no extension type of its own). Containers are copied only where a
    buffer was
    taken out; the buffers themselves are never copied.
    """
    buffers: list[Any] = []
    document = _take_buffers(data, buffers)
    return [_Packer(use_bin_type=True).pack(document), *buffers]


def _take_buffers(value: Any, buffers: list[Any]) -> Any:
    """``value`` with each large buffer replaced by its reference (appended to ``buffers``)."""
    if isinstance(value, _BLOBS):
        if blob_size(value) < OUT_OF_BAND_SIZE:
            return value
        buffers.append(value)
        return _ExtType(BUFFER_CODE, len(buffers).to_bytes(_INDEX_SIZE, "big"))
    if isinstance(value, dict):
        pairs = list(value.items())  # as msgpack reads a dict subclass
        taken = len(buffers)
        children = [_take_buffers(child, buffers) for _, child in pairs]
        if len(buffers) == taken:
            return value
        return {key: child for (key, _), child in zip(pairs, children)}
    if isinstance(value, (list, tuple)):
        taken = len(buffers)
        items = [_take_buffers(child, buffers) for child in value]
        return value if len(buffers) == taken else items
    return value


class References:
    """The ``ext_hook`` that resolves the references of a document to its buffer frames, each exactly once."""

    __slots__ = ("buffers", "used")

    def __init__(self, buffers: Sequence[Any]) -> None:
        self.buffers = buffers
        self.used = [False] * len(buffers)

    def __call__(self, code: int, data: bytes) -> Any:
        if code != BUFFER_CODE:
            raise ValueError(f"msgpack extension type {code} is not plain data")
        if len(data) != _INDEX_SIZE:
            raise ValueError(f"a buffer reference holds {len(data)} bytes, not {_INDEX_SIZE}")
        index = int.from_bytes(data, "big")
        if not 1 <= index <= len(self.buffers):
            raise ValueError(
                f"a buffer reference names frame {index}, and the buffers are frames 1 to {len(self.buffers)}"
            )
        if self.used[index - 1]:
            raise ValueError(f"frame {index} is referenced twice")
        self.used[index - 1] = True
        return self.buffers[index - 1]

    def check_all_used(self) -> None:
        """Raise ``ValueError`` when a buffer frame was not referenced by the document."""
        if not all(self.used):
            unused = self.used.index(False) + 1
            raise ValueError(f"frame {unused} of {len(self.buffers)} buffers is referenced nowhere")
