"""The :class:`JSON` serializer (orjson), public as :class:`agentzero.serializers.JSON`: packing, unpacking.

What it may send and receive is checked by :mod:`agentzero.serializers._checks`.
"""

from __future__ import annotations

from typing import Any, Callable

from agentzero.errors import DeserializationError, SerializationError
from agentzero.serializers._base import BaseSerializer
from agentzero.serializers._checks import (
    DIGITS,
    JSON_OPTIONS,
    LONG,
    LONG_NUMBER,
    MAX_DEPTH,
    SCAN,
    bytes_or_text,
    check_json_data,
    check_tree,
    exact_loads,
    holds_long_number,
    openings,
    orjson_dumps,
    orjson_loads,
    reraise_interruption,
    with_exact_integers,
)

# the fewest bytes a value nested deeper than MAX_DEPTH takes
_NESTING_BYTES = 2 * MAX_DEPTH


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
