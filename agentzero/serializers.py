"""Serializers turn Python values into message frames and back.

``JSON`` (the default) and ``MSGPACK`` are both safe for untrusted peers:
unpacking only ever builds plain data (dicts, lists, strings, numbers, ...);
nothing received is unpickled, imported or executed, and what one of them
accepts on the way in it can always send back out:

- text is valid Unicode: a lone surrogate (``"\\ud800"`` in JSON, or its bytes
  in msgpack) is refused with :class:`~agentzero.errors.DeserializationError`
  on the way in, and with :class:`~agentzero.errors.SerializationError` on the
  way out, so no received string can break an echo, a log line or a terminal;
- JSON's ``NaN``, ``Infinity`` and numbers too large for a float are refused;
  integers of any size are kept exact;
- nesting is limited to :data:`MAX_DEPTH` levels of lists and dicts, in both
  directions, so no payload raises ``RecursionError`` in the receiver's code;
- msgpack extension types (including its timestamps) are refused: they are
  not plain data.

A serializer of your own subclasses :class:`BaseSerializer` and implements
``pack`` and ``unpack``; overriding ``pack_bytes`` is an optional speed-up.
Set ``binary = True`` on it to receive each frame's ``bytes`` in ``unpack``;
without it ``unpack`` receives ``str``, as agentzero 0.4.6 promised.
"""

from __future__ import annotations

import json
import math
import signal
from typing import Any, Callable, Iterable

import msgpack

from agentzero.errors import DeserializationError, SerializationError


def _hold_signals() -> Any:
    """Block, in this thread, the signals that have a Python handler; return the mask to restore.

    orjson does not check the imports its initialisation makes: an exception a
    signal handler raises there (Ctrl-C's ``KeyboardInterrupt``) crashes the
    interpreter with a segmentation fault. Held back while orjson is imported,
    the signal is delivered right after, where it is an ordinary exception.
    """
    block = getattr(signal, "pthread_sigmask", None)  # not on Windows
    if block is None:
        return None
    handled = {number for number in signal.valid_signals() if callable(signal.getsignal(number))}
    return block(signal.SIG_BLOCK, handled) if handled else None


_held = _hold_signals()
try:
    import orjson
finally:
    if _held is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, _held)
del _held

#: The deepest nesting of lists and dicts (maps and arrays) a serializer packs
#: or unpacks: orjson's own limit when packing, so everything received can be sent back.
MAX_DEPTH = 254

# datetimes and dataclasses go through ``default=str``, as they did with the
# standard library encoder agentzero always used.
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_orjson_dumps = orjson.dumps
_orjson_loads = orjson.loads
_msgpack_unpackb = msgpack.unpackb

# orjson parses integers beyond 64 bits as floats, silently: a run of 19 digits
# (even inside a string) sends the payload to the exact, slower standard library.
# One pass maps every digit to "0" and "{" to "[": then a search finds long numbers
# and a count bounds the nesting.
_SCAN = bytes.maketrans(b"0123456789{", b"0000000000[")
_TEXT_SCAN = str.maketrans("0123456789{", "0000000000[")
#: digits in a row from which an integer may not fit in 64 bits
_LONG = 19
_LONG_NUMBER = b"0" * _LONG
_LONG_TEXT_NUMBER = "0" * _LONG
_DIGITS = b"0123456789"
_TEXT_DIGITS = str.maketrans("", "", "0123456789")


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

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class JSON(BaseSerializer):
    """Compact JSON, encoded with orjson.

    Values JSON cannot represent are turned into text with ``str()``; ``NaN``
    and infinities are packed as ``null`` (orjson's rule). Integers of any size
    travel exactly; ``NaN``, ``Infinity`` and lone surrogates are refused when
    received, and so is nesting deeper than :data:`MAX_DEPTH`.

    Examples
    --------
    >>> JSON().pack({"foo": "bar"})
    '{"foo":"bar"}'
    >>> JSON().unpack(b'{"foo": ["bar", 1]}')
    {'foo': ['bar', 1]}
    >>> JSON().unpack(JSON().pack({"big": 2**100 + 1}))
    {'big': 1267650600228229401496703205377}
    >>> JSON().unpack(b'{"x": NaN}')
    Traceback (most recent call last):
    ...
    agentzero.errors.DeserializationError: cannot unpack the message received: invalid JSON: ...
    """

    binary = True

    def pack(self, data: Any) -> str:
        return self.pack_bytes(data).decode("utf-8")

    def pack_bytes(self, data: Any) -> bytes:
        try:
            return _orjson_dumps(data, default=str, option=_ORJSON_OPTIONS)
        except TypeError:
            pass  # integers wider than 64 bits, nesting past orjson's limit, invalid text: see below
        try:
            _check_tree(data, (tuple,))
            text = json.dumps(data, default=str, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
            return text.encode("utf-8")
        except (TypeError, ValueError, RecursionError) as exc:
            raise SerializationError(self, data, exc) from exc

    def unpack(self, data: bytes | str) -> Any:
        try:
            payload = data if type(data) is bytes else _bytes_or_text(data)
            if len(payload) >= _LONG and _holds_long_number(payload):
                return _exact_loads(payload)  # orjson would turn it into a float
            value = _orjson_loads(payload)
        except (TypeError, ValueError, RecursionError) as exc:
            raise DeserializationError(data, f"invalid JSON: {type(exc).__name__}: {exc}") from exc
        # a value n levels deep takes 2n bytes and n opening brackets
        if len(payload) > 2 * MAX_DEPTH and _openings(payload) > MAX_DEPTH:
            try:
                _orjson_dumps(value)  # exact and fast: orjson packs at most MAX_DEPTH levels
            except TypeError:
                raise DeserializationError(
                    data, f"invalid JSON: nested deeper than {MAX_DEPTH} levels"
                ) from None
        return value


def _holds_long_number(payload: bytes | str) -> bool:
    """Whether ``payload`` has a run of :data:`_LONG` digits (an integer orjson reads inexactly).

    Most messages have fewer digits than that in all: counting them is cheaper
    than looking for a run, so the run is looked for only when it could be there.
    """
    if isinstance(payload, bytes):
        if len(payload) - len(payload.translate(None, _DIGITS)) < _LONG:
            return False
        return _LONG_NUMBER in payload.translate(_SCAN)
    if len(payload) - len(payload.translate(_TEXT_DIGITS)) < _LONG:
        return False
    return _LONG_TEXT_NUMBER in payload.translate(_TEXT_SCAN)


def _openings(payload: bytes | str) -> int:
    if isinstance(payload, bytes):
        return payload.count(b"[") + payload.count(b"{")
    return payload.count("[") + payload.count("{")


class MSGPACK(BaseSerializer):
    """MessagePack, binary and compact.

    ``bytes`` and ``str`` stay distinct on the wire; maps must have ``str`` or
    ``bytes`` keys. Unlike :class:`JSON` there is no ``str()`` fallback: a
    value msgpack cannot represent raises :class:`SerializationError`.
    Extension types, msgpack's timestamps among them, are refused when
    received with :class:`DeserializationError`, and so is nesting deeper than
    :data:`MAX_DEPTH` (in both directions).

    Examples
    --------
    >>> serializer = MSGPACK()
    >>> serializer.unpack(serializer.pack({"blob": b"\\x00\\xff", "text": "hi"}))
    {'blob': b'\\x00\\xff', 'text': 'hi'}
    """

    binary = True

    def pack(self, data: Any) -> bytes:
        try:
            packed: bytes = msgpack.packb(data, use_bin_type=True)
            if len(packed) > MAX_DEPTH and (
                len(packed) > _SCAN_LIMIT or _msgpack_marks(packed)[0] > MAX_DEPTH
            ):
                _check_msgpack_tree(data, (tuple,))
            return packed
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            raise SerializationError(self, data, exc) from exc

    pack_bytes = pack

    def unpack(self, data: bytes | str) -> Any:
        try:
            value = _msgpack_unpackb(data, raw=False, ext_hook=_refuse_extension)
        except Exception as exc:  # msgpack raises many unrelated types for bad input
            raise DeserializationError(data, f"invalid msgpack: {exc}") from exc
        if len(data) > _SCAN_LIMIT:
            suspicious = isinstance(value, _CONTAINER_TYPES)  # scanning costs more than the check itself
        else:
            containers, extensions = _msgpack_marks(data)
            suspicious = extensions or containers > MAX_DEPTH
        if suspicious:
            try:
                _check_msgpack_tree(value, ())
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


# -- checks ------------------------------------------------------------------------------------


def _bytes_or_text(data: Any) -> bytes | str:
    if isinstance(data, (bytes, str)):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"a payload is bytes or str, got {type(data).__name__}")


def _exact_loads(payload: bytes | str) -> Any:
    """The standard library's parser: exact integers; NaN, infinities and lone surrogates refused."""
    text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
    value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    _check_tree(value, (), text=True)
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):
        raise ValueError(f"number out of range: {literal[:40]}")
    return number


def _refuse_extension(code: int, data: bytes) -> Any:
    raise ValueError(f"msgpack extension type {code} is not plain data")


_CONTAINER_TYPES = (list, dict)


def _check_tree(
    value: Any, sequences: tuple[type, ...], refused: type | tuple[type, ...] = (), text: bool = False
) -> None:
    """Raise ``ValueError`` when ``value`` nests deeper than :data:`MAX_DEPTH` or holds a ``refused`` value.

    ``sequences`` are more types that count as a level (``tuple`` when packing);
    with ``text``, every string (dict keys too) must be valid Unicode. Iterative,
    so that the check itself never recurses; a circular structure is "too deep".
    """
    containers = _CONTAINER_TYPES + sequences
    if isinstance(value, refused):
        raise ValueError(f"{type(value).__name__} is not plain data")
    if text and isinstance(value, str):
        _check_text(value)
    if not isinstance(value, containers):
        return
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        container, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(container, dict):
            if text:
                for key in container:
                    if isinstance(key, str):
                        _check_text(key)
            children: Iterable[Any] = container.values()
        else:
            children = container
        for child in children:
            if isinstance(child, containers):
                pending.append((child, depth + 1))
            elif text and isinstance(child, str):
                _check_text(child)
            elif refused and isinstance(child, refused):
                raise ValueError(f"{type(child).__name__} is not plain data")


def _check_text(text: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"invalid text (lone surrogate at {exc.start})") from None


# payloads up to this size are scanned for the bytes below; larger ones are checked at once
_SCAN_LIMIT = 4096
# the first byte of a msgpack map or array, and of an extension (timestamps included)
_MSGPACK_CONTAINERS = bytes(range(0x80, 0xA0)) + bytes(range(0xDC, 0xE0))
_MSGPACK_EXTENSIONS = bytes(range(0xC7, 0xCA)) + bytes(range(0xD4, 0xD9))
_NOT_MSGPACK_MARKS = bytes(sorted(set(range(256)) - set(_MSGPACK_CONTAINERS) - set(_MSGPACK_EXTENSIONS)))
# what is left of a payload: "c" for each container mark, "e" for each extension mark
_MSGPACK_MARK_NAMES = bytes.maketrans(
    _MSGPACK_CONTAINERS + _MSGPACK_EXTENSIONS,
    b"c" * len(_MSGPACK_CONTAINERS) + b"e" * len(_MSGPACK_EXTENSIONS),
)


def _check_msgpack_tree(value: Any, sequences: tuple[type, ...]) -> None:
    """:func:`_check_tree` for msgpack values, in C through orjson first (it packs at most MAX_DEPTH levels).

    Received values (no ``sequences``) must not hold timestamps; values to
    send (``sequences=(tuple,)``) are only checked for depth.
    """
    try:
        _orjson_dumps(value, default=_received_leaf if not sequences else _sent_leaf)
    except TypeError as exc:
        if isinstance(exc.__cause__, ValueError):
            raise exc.__cause__ from None
        # too deep, or keys orjson cannot write (bytes): the walk tells which
        _check_tree(value, sequences, refused=() if sequences else msgpack.Timestamp)


def _received_leaf(value: Any) -> None:
    if isinstance(value, msgpack.Timestamp):
        raise ValueError("Timestamp is not plain data")
    if isinstance(value, bytes):
        return None
    raise TypeError(type(value).__name__)


def _sent_leaf(value: Any) -> None:
    return None  # only the nesting matters here: msgpack already took every value


def _msgpack_marks(payload: Any) -> tuple[int, bool]:
    """How many containers a msgpack payload may hold, and whether it may hold an extension (at C speed).

    Every map, array and extension starts with a byte from a few known
    ranges; a payload with at most :data:`MAX_DEPTH` of the first and none of
    the second needs no walk through its value.
    """
    if type(payload) is not bytes:
        payload = bytes(payload)
    marks = payload.translate(_MSGPACK_MARK_NAMES, _NOT_MSGPACK_MARKS)
    return len(marks), b"e" in marks
