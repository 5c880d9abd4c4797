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

from typing import Any, Callable, Sequence

import msgpack

from agentzero import _serializer_checks as _checks
from agentzero._out_of_band import OUT_OF_BAND_SIZE, References, pack_out_of_band
from agentzero._serializer_checks import (
    CONTAINER_TYPES,
    DIGITS,
    JSON_OPTIONS,
    LONG,
    LONG_NUMBER,
    LOOSE_JSON_OPTIONS,
    SCAN,
    SCAN_LIMIT,
    bytes_or_text,
    check_json_data,
    check_msgpack_data,
    check_received_msgpack,
    check_tree,
    exact_loads,
    holds_long_number,
    msgpack_marks,
    msgpack_unpackb,
    openings,
    orjson_dumps,
    orjson_loads,
    refuse_extension,
    reraise_interruption,
    with_exact_integers,
)
from agentzero.errors import DeserializationError, SerializationError

#: The deepest nesting of lists and dicts (maps and arrays) a serializer packs
#: or unpacks: orjson's own limit when packing, so everything received can be sent back.
MAX_DEPTH = _checks.MAX_DEPTH
# the fewest bytes a value nested deeper than MAX_DEPTH takes
_NESTING_BYTES = 2 * MAX_DEPTH
#: The smallest ``bytes``, ``bytearray`` or ``memoryview`` that :class:`MSGPACK` sends as a frame of its own.
OUT_OF_BAND_SIZE = OUT_OF_BAND_SIZE

_Packer = msgpack.Packer
# a Packer per call, as msgpack.packb makes, but with a small first buffer instead of 256 KiB
_PACKER_BUFFER = 1024


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


class JSON(BaseSerializer):
    """Compact JSON, encoded with orjson.

    ``JSON()`` keeps agentzero 0.4.6's rules: a value JSON cannot represent is
    sent as its ``str()`` (``bytes``, sets, dataclasses, datetimes...), a key
    that is not text as text (``{1: 'a'}`` as ``{"1": "a"}``), and ``NaN`` and
    infinities as ``null``, wherever they sit in the value and whatever else
    it holds. Those values arrive as something else than what was sent.
    ``JSON(strict=True)`` refuses them instead, with :class:`SerializationError`,
    so what it sends arrives equal (tuples as lists); what both accept, they
    write the same.

    Either way integers of any size travel exactly, and a value whose
    ``str()`` raises, text holding a lone surrogate and nesting deeper than
    :data:`MAX_DEPTH` raise :class:`SerializationError`. ``NaN``,
    ``Infinity`` and lone surrogates are refused when received, with
    :class:`DeserializationError`, and so is nesting deeper than :data:`MAX_DEPTH`.

    JSON has no binary type: send binary payloads with :class:`MSGPACK`,
    which also sends large buffers without a copy (``docs/payloads.rst``).

    Parameters
    ----------
    strict : bool, optional
        refuse what JSON cannot carry as itself instead of sending its
        ``str()``, ``null`` or a text key; ``False`` by default (0.4.6's rules).

    Attributes
    ----------
    strict : bool
        the ``strict`` the serializer was made with.

    Examples
    --------
    >>> JSON().pack({"foo": "bar"})
    '{"foo":"bar"}'
    >>> JSON().unpack(b'{"foo": ["bar", 1]}')
    {'foo': ['bar', 1]}
    >>> JSON().unpack(JSON().pack({"big": 2**100 + 1}))
    {'big': 1267650600228229401496703205377}
    >>> JSON().pack([b"ab", {1}, float("nan"), {2: "two"}])
    '["b\\'ab\\'","{1}",null,{"2":"two"}]'
    >>> from agentzero.errors import SerializationError
    >>> for value in ({"blob": b"ab"}, {"n": [1, float("inf")]}, {"k": {1: "a"}}):
    ...     try:
    ...         JSON(strict=True).pack(value)
    ...     except SerializationError as refused:
    ...         print(refused.reason)
    a value of type bytes in value['blob'] is not JSON data
    inf in value['n'][1] is not a JSON number
    a key of type int in value['k'] is not text
    >>> JSON(strict=True).pack({"big": 2**70, "ok": [1.5, None, "é"]})
    '{"big":1180591620717411303424,"ok":[1.5,null,"é"]}'
    >>> JSON().unpack(b'{"x": NaN}')
    Traceback (most recent call last):
    ...
    agentzero.errors.DeserializationError: cannot unpack the message received: invalid JSON: ...
    """

    binary = True
    strict: bool = False

    def initialize(self, *args: Any, strict: bool = False, **kw: Any) -> None:
        """Configure the serializer: ``JSON(strict=True)`` (see the class).

        Raises
        ------
        TypeError
            when given any other argument, or a ``strict`` that is not a bool.
        """
        if args or kw:
            unexpected = [repr(arg) for arg in args] + list(kw)
            raise TypeError(f"JSON takes only strict=, got {', '.join(unexpected)}")
        if not isinstance(strict, bool):
            raise TypeError(f"JSON's strict is True or False, got {strict!r}")
        self.strict = strict

    def pack(self, data: Any) -> str:
        return self.pack_bytes(data).decode("utf-8")

    def pack_bytes(self, data: Any) -> bytes:
        if self.strict:
            return self._pack_strictly(data)
        try:  # text keys only (the common case) cost less; any other key is a TypeError, retried below
            return orjson_dumps(data, default=str, option=LOOSE_JSON_OPTIONS)
        except TypeError as exc:
            # a value's str() interrupted (Ctrl-C, gevent.Timeout, a kill) lands once: the second
            # pass would call it again and lose it. A str() that raised an Exception is told by the
            # second pass, which may find another refusal first (orjson reads keys before values)
            reraise_interruption(exc)
        try:
            return orjson_dumps(data, default=str, option=JSON_OPTIONS)
        except TypeError as exc:
            # integers wider than 64 bits, nesting past MAX_DEPTH, invalid text, a str() that raised
            return self._pack_exactly(data, exc, str)

    def _pack_strictly(self, data: Any) -> bytes:
        try:
            check_json_data(data)
            return orjson_dumps(data, option=JSON_OPTIONS)
        except ValueError as exc:
            raise SerializationError(self, data, exc) from None
        except TypeError as exc:
            return self._pack_exactly(data, exc, None)

    def _pack_exactly(self, data: Any, refusal: TypeError, default: Callable[[Any], Any] | None) -> bytes:
        """Pack what orjson refused: its wide integers as digits, everything else by orjson's rules again."""
        if refusal.__cause__ is None:  # not a str() that raised: wide integers, depth, invalid text
            try:
                check_tree(data, (tuple,))
                exact = with_exact_integers(data)
                if exact is not data:
                    return orjson_dumps(exact, default=default, option=JSON_OPTIONS)
            except ValueError as exc:
                raise SerializationError(self, data, exc) from exc
            except TypeError as exc:
                refusal = exc
        cause = refusal.__cause__  # what ``default`` (a value's own str()) raised, wrapped by orjson
        if cause is None:
            raise SerializationError(self, data, refusal) from refusal
        reraise_interruption(refusal)  # Ctrl-C, a gevent.Timeout: not the value's fault
        reason = f"str() raised {type(cause).__name__}: {cause} ({refusal})"
        raise SerializationError(self, data, reason) from cause

    def unpack(self, data: bytes | str) -> Any:
        try:
            if data.__class__ is bytes:  # what every frame is: holds_long_number, inlined
                payload: bytes | str = data
                inexact = (
                    len(data) >= LONG  # shorter: no long number, and no copy made to count its digits
                    and len(data) - len(data.translate(None, DIGITS)) >= LONG
                    and LONG_NUMBER in data.translate(SCAN)  # counted once, not again by holds_long_number
                )
            else:
                payload = bytes_or_text(data)
                inexact = len(payload) >= LONG and holds_long_number(payload)
            if inexact:
                return exact_loads(payload)  # orjson would turn it into a float
            value = orjson_loads(payload)
        except (TypeError, ValueError, RecursionError) as exc:
            raise DeserializationError(data, f"invalid JSON: {type(exc).__name__}: {exc}") from exc
        # a value n levels deep takes 2n bytes and n opening brackets
        if len(payload) > _NESTING_BYTES and openings(payload) > MAX_DEPTH:
            try:
                orjson_dumps(value)  # exact and fast: orjson packs at most MAX_DEPTH levels
            except TypeError:
                raise DeserializationError(
                    data, f"invalid JSON: nested deeper than {MAX_DEPTH} levels"
                ) from None
        return value

    def __repr__(self) -> str:
        return f"{type(self).__name__}(strict=True)" if self.strict else f"{type(self).__name__}()"


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
