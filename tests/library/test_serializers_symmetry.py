"""Serializers are symmetric, or refused when packing.

- JSON() writes NaN and infinities as ``null`` whatever else the value holds;
- MSGPACK refuses when packing what every receiver refuses (keys that are not
  text or bytes, extension types, timestamps);
- an exception a value raises while being packed is a ``SerializationError``
  (and a Ctrl-C stays a Ctrl-C);
- JSON(strict=True) refuses what JSON cannot carry as itself.

The socket-level half (nothing is sent, the next message arrives first) is in
tests/library/test_serializers_over_sockets.py.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import enum
import math
import uuid

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentzero.errors import SerializationError
from agentzero.serializers import JSON, MAX_DEPTH, MSGPACK

NAN, INF = float("nan"), float("inf")
WIDE = 2**64  # orjson cannot write it: the exact path


class RaisingStr:
    def __str__(self):
        raise LookupError("no text for you")


class InterruptingStr:
    def __str__(self):
        raise KeyboardInterrupt


class RaisingItems(dict):
    def items(self):
        raise LookupError("no items for you")


@dataclasses.dataclass
class Point:
    x: int


Pair = collections.namedtuple("Pair", "left right")


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Name(str):
    pass


class Ratio(float):
    pass


def plain(value):
    """What a receiver gets for ``value``: tuples as lists, blobs as bytes, and NaN made comparable."""
    if isinstance(value, dict):
        return {plain(key): plain(child) for key, child in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(child) for child in value]
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, float) and math.isnan(value):
        return "<nan>"
    return value


# -- JSON(): one rule for NaN and infinities, whatever else the value holds ---------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ([NAN], [None]),
        ([WIDE, NAN], [WIDE, None]),
        ({"n": -(10**30), "x": [INF, -INF]}, {"n": -(10**30), "x": [None, None]}),
        ((WIDE, {"deep": [[NAN]]}), [WIDE, {"deep": [[None]]}]),
    ],
    ids=["nan", "wide-and-nan", "wide-and-infinities", "tuple-wide-and-nested-nan"],
)
def test_json_writes_nan_and_infinity_as_null_even_beside_a_wide_integer(value, expected):
    packed = JSON().pack_bytes(value)
    assert JSON().unpack(packed) == expected


def test_json_follows_orjsons_rules_beside_a_wide_integer():
    # keys, enums and default=str were the standard library's beside a wide integer
    value = {1: Colour.RED, 2.5: {3}, "p": Point(1), "n": WIDE}
    packed = JSON().pack_bytes(value)
    assert packed == b'{"1":"red","2.5":"{3}","p":"Point(x=1)","n":18446744073709551616}'
    assert JSON().pack_bytes({**value, "n": 1}) == packed.replace(b"18446744073709551616", b"1")


LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63, max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=4)
    | st.binary(max_size=4)
    | st.frozensets(st.integers(0, 3), max_size=2)
    | st.sampled_from([Colour.RED, Level.HIGH, Point(1), Pair(1, 2), RaisingStr(), Ratio(0.5)])
)
KEYS = st.text(max_size=3) | st.integers() | st.booleans() | st.none() | st.floats(allow_nan=False)
ANYTHING = st.recursive(
    LEAVES,
    lambda children: (
        st.lists(children, max_size=3)
        | st.tuples(children, children)
        | st.dictionaries(KEYS, children, max_size=3)
        | st.builds(Pair, children, children)
    ),
    max_leaves=10,
)


def packed_or_refused(serializer, value):
    try:
        return serializer.pack_bytes(value)
    except SerializationError:
        return SerializationError


@settings(max_examples=400, deadline=None)
@given(number=st.integers() | st.integers(min_value=2**64), value=ANYTHING)
def test_json_packs_each_part_of_a_list_by_one_rule(number, value):
    """A list packs as its items packed alone, or is refused exactly when one of them is."""
    together = packed_or_refused(JSON(), [number, value])
    alone = packed_or_refused(JSON(), value)
    if alone is SerializationError:
        assert together is SerializationError
    else:
        assert together == b"[" + JSON().pack_bytes(number) + b"," + alone + b"]"


# -- a value's own exception is a SerializationError ---------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        RaisingStr(),
        [RaisingStr()],
        {"k": (1, RaisingStr())},
        [WIDE, RaisingStr()],
        {"n": -WIDE, "x": RaisingStr()},
    ],
    ids=["alone", "in-a-list", "in-a-tuple", "beside-a-wide-integer", "beside-a-wide-key"],
)
def test_json_refuses_a_value_whose_str_raises(value):
    with pytest.raises(SerializationError, match="str\\(\\) raised LookupError: no text for you") as refused:
        JSON().pack_bytes(value)
    assert isinstance(refused.value.__cause__, LookupError)


@pytest.mark.parametrize("value", [[InterruptingStr()], [WIDE, InterruptingStr()]], ids=["orjson", "exact"])
def test_json_lets_a_ctrl_c_raised_while_packing_through(value):
    with pytest.raises(KeyboardInterrupt):
        JSON().pack_bytes(value)


def test_msgpack_refuses_a_value_whose_own_methods_raise():
    with pytest.raises(SerializationError, match="no items for you") as refused:
        MSGPACK().pack({"map": RaisingItems(a=1)})
    assert isinstance(refused.value.__cause__, LookupError)


# -- MSGPACK refuses when packing what every receiver refuses -------------------------------------


@pytest.mark.parametrize(
    "value, reason",
    [
        ({1: "a"}, "a map key of type int in the value is not text or bytes"),
        ({"scores": {(1, 2): "a"}}, r"a map key of type tuple in value\['scores'\] is not text or bytes"),
        ([{None: 1}], r"a map key of type NoneType in value\[0\]"),
        ({True: 1}, "a map key of type bool"),
        ({1.5: 1}, "a map key of type float"),
        ({Level.HIGH: 1}, "a map key of type Level"),
        ({"a": [Pair({2: 0}, 1)]}, r"a map key of type int in value\['a'\]\[0\]\[0\]"),
        (msgpack.Timestamp(1466424000), "Timestamp in the value is not plain data"),
        ({"when": [msgpack.Timestamp(1, 5)]}, r"Timestamp in value\['when'\]\[0\] is not plain data"),
        (msgpack.ExtType(5, b"x"), "ExtType in the value is not plain data"),
        ((1, {b"raw": msgpack.ExtType(42, b"12345678")}), r"ExtType in value\[1\]\[\.\.\.\]"),
        ({b"pad": b"x" * 10_000, "k": {7: 1}}, "a map key of type int"),
    ],
    ids=[
        "int-key",
        "tuple-key",
        "none-key",
        "bool-key",
        "float-key",
        "intenum-key",
        "key-in-a-named-tuple",
        "timestamp",
        "nested-timestamp",
        "ext",
        "ext-under-a-bytes-key",
        "large-payload",
    ],
)
def test_msgpack_refuses_when_packing_what_receivers_refuse(value, reason):
    with pytest.raises(SerializationError, match=reason):
        MSGPACK().pack(value)
    # what the receiver does with the same bytes: the refusal is symmetric
    with pytest.raises(Exception, match="not allowed for map key|not plain data"):
        MSGPACK().unpack(msgpack.packb(value))


@pytest.mark.parametrize(
    "value",
    [
        {b"raw": 1, "text": 2},
        {Name("sub"): [1, 2]},
        {"blob": bytearray(b"\x00"), "view": memoryview(b"\xff")},
        Pair(1, {"a": Ratio(0.5)}),
        {"deep": [[[[{"k": b"v"}]]]]},
    ],
    ids=["bytes-and-text-keys", "str-subclass-key", "blobs", "named-tuple", "nested"],
)
def test_msgpack_still_packs_what_receivers_accept(value):
    assert MSGPACK().unpack(MSGPACK().pack(value)) == plain(value)


MSGPACK_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=4)
    | st.binary(max_size=4)
    | st.sampled_from([msgpack.Timestamp(1), msgpack.ExtType(3, b"e"), Level.HIGH])
)
MSGPACK_KEYS = st.text(max_size=3) | st.binary(max_size=3) | st.integers(0, 9) | st.none() | st.booleans()
MSGPACK_VALUES = st.recursive(
    MSGPACK_LEAVES,
    lambda children: (
        st.lists(children, max_size=3)
        | st.tuples(children, children)
        | st.dictionaries(MSGPACK_KEYS | st.tuples(st.integers(0, 3)), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=400, deadline=None)
@given(value=MSGPACK_VALUES)
def test_msgpack_unpacks_whatever_it_packs(value):
    try:
        packed = MSGPACK().pack(value)
    except SerializationError:
        return
    received = MSGPACK().unpack(packed)
    assert plain(received) == plain(value)
    assert MSGPACK().pack(received) == packed


# -- JSON(strict=True) refuses what JSON cannot carry as itself ----------------------------------


@pytest.mark.parametrize(
    "value, reason",
    [
        (b"ab", "a value of type bytes in the value is not JSON data"),
        ({"blob": bytearray(b"ab")}, r"a value of type bytearray in value\['blob'\]"),
        ({1, 2}, "a value of type set"),
        ([frozenset()], r"a value of type frozenset in value\[0\]"),
        (Point(1), "a value of type Point"),
        ({"when": datetime.datetime(2016, 6, 20)}, "a value of type datetime"),
        ([uuid.UUID(int=1)], "a value of type UUID"),
        ([Colour.RED], "a value of type Colour"),
        ([decimal.Decimal("1.5")], "a value of type Decimal"),
        ([Ratio(0.5)], "a value of type Ratio"),
        ([Pair(1, 2)], "a value of type Pair"),
        ([RaisingStr()], "a value of type RaisingStr"),
        (NAN, "nan in the value is not a JSON number"),
        ({"x": [1, {"y": -INF}]}, r"-inf in value\['x'\]\[1\]\['y'\] is not a JSON number"),
        ([WIDE, NAN], r"nan in value\[1\]"),
        ({1: "a"}, "a key of type int in the value is not text"),
        ({"k": {None: 1}}, r"a key of type NoneType in value\['k'\] is not text"),
        ({True: 1}, "a key of type bool"),
        ({1.5: 1}, "a key of type float"),
        ({(1, 2): 1}, "a key of type tuple"),
        ({b"k": 1}, "a key of type bytes"),
        ("\ud800", "surrogates not allowed"),
        ([WIDE, "\ud800"], "surrogates not allowed"),
    ],
)
def test_strict_json_refuses_what_json_cannot_carry(value, reason):
    with pytest.raises(SerializationError, match=reason):
        JSON(strict=True).pack_bytes(value)


def test_strict_json_refuses_deep_and_circular_values():
    deep = []
    for _ in range(MAX_DEPTH):
        deep = [deep]
    with pytest.raises(SerializationError, match="nested deeper than 254 levels"):
        JSON(strict=True).pack_bytes(deep)
    loop = {}
    loop["self"] = [loop]
    with pytest.raises(SerializationError, match="nested deeper than 254 levels"):
        JSON(strict=True).pack_bytes(loop)


@pytest.mark.parametrize(
    "value",
    [
        {"a": [1, 2.5, None, True, "é"], "t": (1, "x")},
        {"n": WIDE, "m": -(10**40), "list": [2**100, 1.5]},
        {Name("key"): Name("value"), "level": Level.HIGH},
        collections.OrderedDict(a=[1], b={"c": 2}),
        {"smile": "\U0001f600", "nested": [[[{"k": []}]]]},
    ],
    ids=["plain", "wide-integers", "str-and-int-subclasses", "dict-subclass", "nested"],
)
def test_strict_json_sends_plain_data_as_json_does(value):
    packed = JSON(strict=True).pack_bytes(value)
    assert packed == JSON().pack_bytes(value)
    assert JSON().unpack(packed) == plain(value)
    assert JSON(strict=True).pack(value) == packed.decode("utf-8")


@settings(max_examples=400, deadline=None)
@given(value=ANYTHING)
def test_strict_json_packs_only_what_arrives_equal(value):
    try:
        packed = JSON(strict=True).pack_bytes(value)
    except SerializationError:
        return
    assert JSON().unpack(packed) == plain(value)
    assert packed == JSON().pack_bytes(value)  # strictness refuses; it never writes differently


def test_strict_is_a_keyword_that_takes_a_bool():
    assert JSON().strict is False and JSON(strict=True).strict is True
    assert repr(JSON()) == "JSON()" and repr(JSON(strict=True)) == "JSON(strict=True)"
    with pytest.raises(TypeError, match="strict is True or False, got 'yes'"):
        JSON(strict="yes")
    with pytest.raises(TypeError, match="JSON takes only strict=, got True"):
        JSON(True)
    with pytest.raises(TypeError, match="got strcit"):
        JSON(strcit=True)
