"""Type checks for the fields of received messages: every value from a peer is hostile until checked.

The protocol's dataclasses declare each field's type (``str``, ``Optional[int]``,
``Optional[Dict[str, Any]]``, ...). :func:`checker_for` turns such a declaration
into a function that accepts exactly that type and raises :class:`ProtocolError`
naming the field otherwise. Numbers must be finite, booleans are not numbers, and
JSON objects are bounded in depth.

>>> checker_for("Optional[int]")("job_count", 3)
3
>>> checker_for("Optional[float]")("load", float("inf"))
Traceback (most recent call last):
...
examples.registry.checks.ProtocolError: load must be a finite number, got inf
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict

#: how deeply a JSON object field (``metadata``, ``room_options``) may nest
MAX_DEPTH = 32

Checker = Callable[[str, Any], Any]


class ProtocolError(ValueError):
    """A value that is not a message of this protocol; the text says which field and why."""


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def check_text(name: str, value: Any) -> str:
    """Return ``value`` if it is a string that encodes as UTF-8 (no lone surrogates).

    Raises
    ------
    ProtocolError
        when it is not a string, or holds a lone surrogate.
    """
    if type(value) is not str:
        raise ProtocolError(f"{name} must be a string, got {type(value).__name__}")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ProtocolError(f"{name} holds a lone surrogate") from None
    return value


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is ``True`` or ``False``.

    Raises
    ------
    ProtocolError
        otherwise.
    """
    if type(value) is not bool:
        raise ProtocolError(f"{name} must be true or false, got {_describe(value)}")
    return value


def check_int(name: str, value: Any) -> int:
    """Return ``value`` if it is an integer (not a boolean, not a float).

    Raises
    ------
    ProtocolError
        otherwise.
    """
    if type(value) is not int:
        raise ProtocolError(f"{name} must be an integer, got {_describe(value)}")
    return value


def check_number(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a finite int or float (not a boolean).

    Raises
    ------
    ProtocolError
        when it is not a number, or is NaN or infinite.
    """
    if type(value) is int:
        return float(value)
    if type(value) is not float:
        raise ProtocolError(f"{name} must be a number, got {_describe(value)}")
    if not math.isfinite(value):
        raise ProtocolError(f"{name} must be a finite number, got {value!r}")
    return value


def check_text_list(name: str, value: Any) -> list:
    """Return ``value`` if it is a list of strings.

    Raises
    ------
    ProtocolError
        otherwise.
    """
    if type(value) is not list:
        raise ProtocolError(f"{name} must be a list of strings, got {type(value).__name__}")
    for index, item in enumerate(value):
        check_text(f"{name}[{index}]", item)
    return value


def check_json_object(name: str, value: Any) -> dict:
    """Return ``value`` if it is a JSON object: text keys, finite numbers, at most :data:`MAX_DEPTH` deep.

    Raises
    ------
    ProtocolError
        otherwise.
    """
    if type(value) is not dict:
        raise ProtocolError(f"{name} must be an object, got {type(value).__name__}")
    _check_json(name, value, 1)
    return value


def _check_json(name: str, value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ProtocolError(f"{name} nests deeper than {MAX_DEPTH} levels")
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            check_text(f"{name} key", key)
            _check_json(name, item, depth + 1)
    elif kind is list:
        for item in value:
            _check_json(name, item, depth + 1)
    elif kind is str:
        check_text(name, value)
    elif kind is float:
        check_number(name, value)
    elif value is not None and kind not in (int, bool):
        raise ProtocolError(f"{name} holds a {kind.__name__}")


_CHECKERS: Dict[str, Checker] = {
    "str": check_text,
    "bool": check_bool,
    "int": check_int,
    "float": check_number,
    "List[str]": check_text_list,
    "Dict[str, Any]": check_json_object,
}


def checker_for(annotation: str) -> Checker:
    """Return the check of a dataclass field declared as ``annotation`` (``Optional[X]`` accepts ``None``).

    Parameters
    ----------
    annotation : str
        the field's declaration, as written in :mod:`examples.registry.protocol`

    Returns
    -------
    callable
        ``check(name, value)`` returning the value (floats for ``float`` fields)

    Raises
    ------
    KeyError
        when the declaration is not one the protocol uses.
    """
    if annotation.startswith("Optional[") and annotation.endswith("]"):
        inner = _CHECKERS[annotation[len("Optional[") : -1]]

        def optional(name: str, value: Any) -> Any:
            return None if value is None else inner(name, value)

        return optional
    if annotation in ("JobStatus", "WorkerStatus"):
        return check_text
    return _CHECKERS[annotation]
