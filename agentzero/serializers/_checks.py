"""The checks behind :mod:`agentzero.serializers`: what JSON and msgpack may send and receive.

Each check runs at C speed first (orjson's walk, a ``bytes.translate`` over the
payload) and walks a value in Python only when that first pass objects, so an
ordinary payload pays next to nothing. Every walk is iterative and bounded by
:data:`MAX_DEPTH`, so no check raises ``RecursionError`` and a circular
structure is simply "too deep".
"""

from __future__ import annotations

import json
import math
import signal
from typing import Any, Iterable

import msgpack

from agentzero.serializers._out_of_band import OUT_OF_BAND_SIZE, blob_size


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

MAX_DEPTH = 254  # documented in agentzero.serializers, which exports it

# datetimes and dataclasses go through ``default=str``, as they did with the
# standard library encoder agentzero always used.
JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
orjson_dumps = orjson.dumps
orjson_loads = orjson.loads
msgpack_unpackb = msgpack.unpackb
_Fragment = orjson.Fragment
_ExtType = msgpack.ExtType
_Timestamp = msgpack.Timestamp

# the integers orjson writes itself: signed and unsigned 64 bits
_SMALLEST_INTEGER = -(2**63)
_LARGEST_INTEGER = 2**64 - 1


# -- JSON --------------------------------------------------------------------------------------

# orjson parses integers beyond 64 bits as floats, silently: a run of 19 digits
# (even inside a string) sends the payload to the exact, slower standard library.
# One pass maps every digit to "0" and "{" to "[": then a search finds long numbers
# and a count bounds the nesting.
SCAN = _SCAN = bytes.maketrans(b"0123456789{", b"0000000000[")
_TEXT_SCAN = str.maketrans("0123456789{", "0000000000[")
#: digits in a row from which an integer may not fit in 64 bits
LONG = 19
LONG_NUMBER = _LONG_NUMBER = b"0" * LONG
_LONG_TEXT_NUMBER = "0" * LONG
DIGITS = _DIGITS = b"0123456789"
_TEXT_DIGITS = str.maketrans("", "", "0123456789")


def holds_long_number(payload: bytes | str) -> bool:
    """Whether ``payload`` has a run of :data:`LONG` digits (an integer orjson reads inexactly).

    Most messages have fewer digits than that in all: counting them is cheaper
    than looking for a run, so the run is looked for only when it could be there.
    """
    if isinstance(payload, bytes):
        if len(payload) - len(payload.translate(None, _DIGITS)) < LONG:
            return False
        return _LONG_NUMBER in payload.translate(_SCAN)
    if len(payload) - len(payload.translate(_TEXT_DIGITS)) < LONG:
        return False
    return _LONG_TEXT_NUMBER in payload.translate(_TEXT_SCAN)


def openings(payload: bytes | str) -> int:
    if isinstance(payload, bytes):
        return payload.count(b"[") + payload.count(b"{")
    return payload.count("[") + payload.count("{")


def bytes_or_text(data: Any) -> bytes | str:
    if isinstance(data, (bytes, str)):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"a payload is bytes or str, got {type(data).__name__}")


def exact_loads(payload: bytes | str) -> Any:
    """The standard library's parser: exact integers; NaN, infinities and lone surrogates refused."""
    text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
    value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    check_tree(value, (), text=True)
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):
        raise ValueError(f"number out of range: {literal[:40]}")
    return number


def with_exact_integers(value: Any) -> Any:
    """``value`` with every integer wider than 64 bits written as its digits, for orjson.

    orjson refuses such integers; as :class:`orjson.Fragment` they go out
    exactly while every other value still follows orjson's own rules (``NaN``
    as ``null``, keys, ``default``), whatever else ``value`` holds. Containers
    that hold none are returned as they are. Call it only on a value that
    :func:`check_tree` accepted: it recurses.
    """
    if isinstance(value, dict):
        items = [(_wide_key(key), with_exact_integers(child)) for key, child in value.items()]
        if all(new[0] is key and new[1] is child for new, (key, child) in zip(items, value.items())):
            return value
        return dict(items)
    if isinstance(value, list) or type(value) is tuple:
        children = [with_exact_integers(child) for child in value]
        if all(new is old for new, old in zip(children, value)):
            return value
        return children
    if _is_wide_integer(value):
        return _Fragment(int.__repr__(value))
    return value


def _is_wide_integer(value: Any) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and not _SMALLEST_INTEGER <= value <= _LARGEST_INTEGER
    )


def _wide_key(key: Any) -> Any:
    return int.__repr__(key) if _is_wide_integer(key) else key


def check_json_data(value: Any) -> None:
    """Raise ``ValueError`` naming the first part of ``value`` that JSON cannot carry as itself.

    JSON carries dicts with text keys, lists and tuples (received as lists),
    text, integers, booleans, ``None`` and finite floats; subclasses of
    ``dict``, ``list``, ``str`` and ``int`` travel as those (an ``IntEnum``
    as its number). Anything else is what ``JSON()`` would send as its
    ``str()``, as ``null`` (``NaN``, infinities) or with a key turned into text.
    """
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
            for key in item:
                if not isinstance(key, str):
                    where = _locate(value, item)
                    raise ValueError(f"a key of type {type(key).__name__} in {where} is not text")
        elif isinstance(item, list) or type(item) is tuple:
            children = item
        else:
            _check_json_leaf(value, item)
            continue
        if depth > MAX_DEPTH:
            raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
        for child in children:
            kind = type(child)
            if kind is str or kind is int or kind is bool or child is None:
                continue
            if kind is float:
                if child - child != 0.0:  # NaN or an infinity; faster than math.isfinite here
                    _check_json_leaf(value, child)
                continue
            pending.append((child, depth + 1))


def _check_json_leaf(root: Any, leaf: Any) -> None:
    if type(leaf) is float:
        if not math.isfinite(leaf):
            raise ValueError(f"{leaf!r} in {_locate(root, leaf)} is not a JSON number")
    elif not (leaf is None or isinstance(leaf, (str, int))):
        raise ValueError(f"a value of type {type(leaf).__name__} in {_locate(root, leaf)} is not JSON data")


# -- msgpack -----------------------------------------------------------------------------------

# payloads up to this size are scanned for the bytes below; larger ones are checked at once
SCAN_LIMIT = 4096
# the first byte of a msgpack map or array, and of an extension (timestamps included)
_MSGPACK_CONTAINERS = bytes(range(0x80, 0xA0)) + bytes(range(0xDC, 0xE0))
_MSGPACK_EXTENSIONS = bytes(range(0xC7, 0xCA)) + bytes(range(0xD4, 0xD9))
_NOT_MSGPACK_MARKS = bytes(sorted(set(range(256)) - set(_MSGPACK_CONTAINERS) - set(_MSGPACK_EXTENSIONS)))
# what is left of a payload: "c" for each container mark, "e" for each extension mark
_MSGPACK_MARK_NAMES = bytes.maketrans(
    _MSGPACK_CONTAINERS + _MSGPACK_EXTENSIONS,
    b"c" * len(_MSGPACK_CONTAINERS) + b"e" * len(_MSGPACK_EXTENSIONS),
)
CONTAINER_TYPES = (list, dict)
_BLOBS = (bytes, bytearray, memoryview)
#: the map keys a receiver accepts (msgpack's ``strict_map_key``): text and bytes
_MSGPACK_KEYS = (str, bytes, memoryview)


def refuse_extension(code: int, data: bytes) -> Any:
    raise ValueError(f"msgpack extension type {code} is not plain data")


def msgpack_marks(payload: Any) -> tuple[int, bool]:
    """How many containers a msgpack payload may hold, and whether it may hold an extension (at C speed).

    Every map, array and extension starts with a byte from a few known
    ranges; a payload with at most :data:`MAX_DEPTH` of the first and none of
    the second needs no walk through its value.
    """
    if type(payload) is not bytes:
        payload = bytes(payload)
    marks = payload.translate(_MSGPACK_MARK_NAMES, _NOT_MSGPACK_MARKS)
    return len(marks), b"e" in marks


def check_received_msgpack(value: Any) -> None:
    """Raise ``ValueError`` when an unpacked value holds a timestamp or nests deeper than :data:`MAX_DEPTH`.

    In C through orjson first (it writes at most MAX_DEPTH levels).
    """
    try:
        orjson_dumps(value, default=_received_leaf)
    except TypeError as exc:
        reraise_interruption(exc)
        if isinstance(exc.__cause__, ValueError):
            raise exc.__cause__ from None
        # too deep, or keys orjson cannot write (bytes): the walk tells which
        check_tree(value, (), refused=_Timestamp)


def _received_leaf(value: Any) -> None:
    if isinstance(value, _Timestamp):
        raise ValueError("Timestamp is not plain data")
    if isinstance(value, (bytes, memoryview)):  # memoryview: a buffer received out of band
        return None
    raise TypeError(type(value).__name__)


def check_msgpack_data(value: Any) -> bool:
    """Raise ``ValueError`` when receivers would refuse what msgpack packed from ``value``.

    They refuse map keys other than text and bytes, extension types
    (:class:`msgpack.ExtType`, :class:`msgpack.Timestamp`) and nesting deeper
    than :data:`MAX_DEPTH`. orjson checks all three at C speed; only a value
    it objects to (bytes keys, a named tuple, a float subclass, a buffer of
    ``OUT_OF_BAND_SIZE`` bytes or more...) is walked here. Return whether
    ``value`` holds such a large buffer.
    """
    try:
        orjson_dumps(value, default=_sent_leaf)
    except TypeError as exc:
        reraise_interruption(exc)
        return _walk_msgpack_data(value)
    return False


def _sent_leaf(value: Any) -> None:
    if isinstance(value, _BLOBS) and blob_size(value) < OUT_OF_BAND_SIZE:
        return None
    raise TypeError(type(value).__name__)  # not for orjson: the walk decides (and finds large buffers)


def _walk_msgpack_data(value: Any) -> bool:
    large = False
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, (_ExtType, _Timestamp)):
            raise ValueError(f"{type(item).__name__} in {_locate(value, item)} is not plain data")
        if isinstance(item, dict):
            pairs = list(item.items())  # as msgpack reads a dict subclass
            for key, _ in pairs:
                if not isinstance(key, _MSGPACK_KEYS):
                    where = _locate(value, item)
                    raise ValueError(
                        f"a map key of type {type(key).__name__} in {where} is not text or bytes"
                    )
            children: Iterable[Any] = [child for _, child in pairs]
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            large = large or blob_size(item) >= OUT_OF_BAND_SIZE
            continue
        if depth > MAX_DEPTH:
            raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
        pending.extend((child, depth + 1) for child in children)
    return large


# -- shared ------------------------------------------------------------------------------------


def check_tree(
    value: Any, sequences: tuple[type, ...], refused: type | tuple[type, ...] = (), text: bool = False
) -> None:
    """Raise ``ValueError`` when ``value`` nests deeper than :data:`MAX_DEPTH` or holds a ``refused`` value.

    ``sequences`` are more types that count as a level (``tuple`` when packing);
    with ``text``, every string (dict keys too) must be valid Unicode.
    """
    containers = CONTAINER_TYPES + sequences
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


def reraise_interruption(refusal: TypeError) -> None:
    """Raise again what orjson wrapped into ``refusal`` when it is no ``Exception`` (Ctrl-C, gevent.Timeout).

    orjson turns whatever its ``default`` raises into a ``TypeError``; a
    ``KeyboardInterrupt`` delivered while ``default`` runs must not become a refusal.
    """
    cause = refusal.__cause__
    if cause is not None and not isinstance(cause, Exception):
        raise cause


def _check_text(text: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"invalid text (lone surrogate at {exc.start})") from None


def _locate(root: Any, target: Any) -> str:
    """Where ``target`` sits in ``root``, as the subscripts that reach it: ``"the value"`` or ``"['a'][0]"``.

    For error messages only: it walks ``root`` again (at most :data:`MAX_DEPTH`
    levels) and never calls ``repr`` on what the caller sent, except on
    ``str`` keys and list indexes.
    """
    pending: list[tuple[Any, str, int]] = [(root, "", 1)]
    while pending:
        item, path, depth = pending.pop()
        if item is target:
            return f"value{path}" if path else "the value"
        if depth > MAX_DEPTH:
            continue
        if isinstance(item, dict):
            for key, child in item.items():
                subscript = f"[{str.__repr__(key)}]" if isinstance(key, str) else "[...]"
                pending.append((child, path + subscript, depth + 1))
        elif isinstance(item, (list, tuple)):
            pending.extend((child, f"{path}[{index}]", depth + 1) for index, child in enumerate(item))
    return "the value"
