"""The base class of every serializer, and how a manager packs and unpacks with any serializer.

:class:`BaseSerializer` and the choosers (:func:`frame_packer`,
:func:`message_packer`, :func:`frames_unpacker`, :func:`frame_unpacker`) are
public as :mod:`agentzero.serializers`'s, which documents them.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from agentzero.errors import DeserializationError, SerializationError


class BaseSerializer:
    """Base class of every serializer.

    The constructor passes all of its arguments to :meth:`initialize`, so a
    subclass configures itself there without overriding ``__init__``.

    Attributes
    ----------
    binary : bool
        ``False`` here: a :class:`~agentzero.core.SocketManager` decodes each
        frame as UTF-8 and passes ``str`` to :meth:`unpack` (a frame that is not
        UTF-8 raises :class:`DeserializationError` without reaching it). A
        serializer that reads bytes sets ``binary = True`` and receives the
        frame's ``bytes`` unchanged, as :class:`JSON` and :class:`MSGPACK` do.
    """

    binary: bool = False

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
        """Deserialize ``data``: ``str`` unless the class sets ``binary = True``.

        Raises
        ------
        DeserializationError
            when ``data`` is not a valid payload.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement unpack()")

    def pack_bytes(self, data: Any) -> bytes:
        """Serialize ``data`` into the bytes of one message frame.

        The default encodes the result of :meth:`pack` as UTF-8 when it is text.

        Raises
        ------
        SerializationError
            when :meth:`pack` refuses ``data`` (or raises ``TypeError`` or
            ``ValueError``), or returns neither text nor bytes, or text that is
            not valid Unicode.
        """
        try:
            packed = self.pack(data)
            if isinstance(packed, str):
                return packed.encode("utf-8")
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            raise SerializationError(self, data, exc) from exc
        if isinstance(packed, bytes):
            return packed
        if isinstance(packed, (bytearray, memoryview)):
            return bytes(packed)
        raise SerializationError(self, data, f"pack() returned {type(packed).__name__}, not str or bytes")

    def pack_frames(self, data: Any) -> list[Any]:
        """Serialize ``data`` into the frames of one message: ``[self.pack_bytes(data)]`` here.

        A serializer that sends several frames overrides this and
        :meth:`unpack_frames` (as :class:`MSGPACK` does for large buffers).

        Returns
        -------
        list of bytes-like
            the frames, at least one.

        Raises
        ------
        SerializationError
            when ``data`` cannot be represented.
        """
        return [self.pack_bytes(data)]

    def unpack_frames(self, frames: Sequence[Any]) -> Any:
        """Deserialize the frames of one message: here exactly one, given to :meth:`unpack`.

        Returns
        -------
        object
            the value.

        Raises
        ------
        DeserializationError
            when there is not exactly one frame, or :meth:`unpack` refuses it.
        """
        if len(frames) != 1:
            raise DeserializationError(list(frames), f"expected 1 frame, got {len(frames)}")
        return frame_unpacker(self)(bytes(frames[0]))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def frame_packer(backend: Any) -> Callable[[Any], bytes]:
    """Return the function that turns a value into one frame's bytes with ``backend``.

    A :class:`~agentzero.core.SocketManager` calls it once, when it is built,
    and then the returned function for every message: ``backend.pack_bytes``
    when it has one, otherwise :meth:`BaseSerializer.pack_bytes` applied to a
    serializer that only has ``pack`` (as agentzero 0.4.6's did).

    Parameters
    ----------
    backend : BaseSerializer or object
        any object with ``pack`` (and ``unpack``)

    Returns
    -------
    callable
        ``data -> bytes``; it raises :class:`SerializationError`.
    """
    packer: Callable[[Any], bytes] = getattr(
        backend, "pack_bytes", None
    ) or BaseSerializer.pack_bytes.__get__(backend)
    return packer


def message_packer(backend: Any) -> Callable[[Any], bytes | list[Any]]:
    """Return the function that turns a value into one frame's bytes, or a list of frames, with ``backend``.

    Chosen once, when a :class:`~agentzero.core.SocketManager` is built:
    ``backend.pack_message`` when it has one (:meth:`MSGPACK.pack_message`),
    ``backend.pack_frames`` when it overrides it (its one frame, or its list
    of several), else :func:`frame_packer`'s. It raises :class:`SerializationError`.
    """
    pack_message: Callable[[Any], bytes | list[Any]] | None = getattr(backend, "pack_message", None)
    if pack_message is not None:
        return pack_message
    if getattr(type(backend), "pack_frames", BaseSerializer.pack_frames) is BaseSerializer.pack_frames:
        return frame_packer(backend)
    frames_of = backend.pack_frames

    def pack_frames(data: Any) -> bytes | list[Any]:
        frames = list(frames_of(data))
        return frames if len(frames) > 1 else frames[0]

    return pack_frames


def frames_unpacker(backend: Any) -> Callable[[list[Any]], Any] | None:
    """Return ``backend.unpack_frames`` when ``backend`` reads messages of several frames, else ``None``."""
    if getattr(type(backend), "unpack_frames", BaseSerializer.unpack_frames) is BaseSerializer.unpack_frames:
        return None
    return backend.unpack_frames  # type: ignore[no-any-return]


def frame_unpacker(backend: Any) -> Callable[[bytes], Any]:
    """Return the function that turns one frame's bytes into a value with ``backend``.

    Chosen once, when a :class:`~agentzero.core.SocketManager` is built: a
    serializer whose ``binary`` attribute is true gets the frame's ``bytes``
    (the fast path of :class:`JSON` and :class:`MSGPACK`); any other, such as
    one written for agentzero 0.4.6 whose ``unpack`` "must receive a string",
    gets the frame decoded as UTF-8 text.

    Parameters
    ----------
    backend : BaseSerializer or object
        any object with ``unpack``

    Returns
    -------
    callable
        ``frame -> value``; a frame that is not UTF-8 text, for a serializer
        that is not binary, raises :class:`DeserializationError`.

    Examples
    --------
    >>> class Legacy:  # written for 0.4.6: no ``binary`` attribute
    ...     def pack(self, data):
    ...         return data
    ...     def unpack(self, data):
    ...         return type(data).__name__, data
    >>> frame_unpacker(Legacy())('h\\u00e9'.encode('utf-8'))
    ('str', 'hé')
    >>> fast = MSGPACK()
    >>> frame_unpacker(fast) == fast.unpack  # binary: the bytes go straight in
    True
    """
    unpack: Callable[[Any], Any] = backend.unpack
    if getattr(backend, "binary", False):
        return unpack
    name = type(backend).__name__

    def unpack_text(frame: bytes) -> Any:
        try:
            text = frame.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DeserializationError(
                frame, f"{name} takes text and the frame is not UTF-8: {exc}"
            ) from None
        return unpack(text)

    return unpack_text
