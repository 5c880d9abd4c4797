"""What ``agentzero tail`` prints is safe for a terminal and faithful, whatever an event holds."""

from __future__ import annotations

import json
import math
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from agentzero.cli.tail import MAX_DEPTH, TOO_DEEP, escape_text, format_event, render

# what a terminal obeys or what reorders or breaks a line: never printed raw
UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
any_text = st.text(st.characters(codec=None, categories=None, min_codepoint=0, max_codepoint=0x10FFFF))
plain = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | any_text
json_like = st.recursive(
    plain,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=30,
)


@given(any_text)
def test_escaped_text_holds_no_control_character(text):
    escaped = escape_text(text)
    assert UNSAFE.search(escaped) is None
    if UNSAFE.search(text) is None:
        assert escaped == text


@settings(max_examples=150)
@given(json_like)
def test_rendered_data_is_one_safe_line_that_decodes_back(data):
    line = render(data)
    assert UNSAFE.search(line) is None
    assert _same(json.loads(line), data)  # NaN and Infinity as Python's json writes them


@given(st.binary(max_size=40), any_text, json_like)
def test_any_event_formats_to_one_safe_line(topic, message, data):
    for event in ({"msg": message, "level": 20}, data, {"msg": message, "level": 10**30}):
        for as_json in (False, True):
            line = format_event(topic, event, as_json=as_json, colour=False)
            assert UNSAFE.search(line) is None, line
        if not as_json:
            assert "\n" not in format_event(topic, event, colour=True)


def test_nesting_deeper_than_the_limit_is_cut_not_fatal():
    data: list = []
    for _ in range(5000):  # far deeper than any encoder or Python's own recursion allows
        data = [data]
    line = render(data)
    assert line.count("[") == MAX_DEPTH and f'"{TOO_DEEP}"' in line
    assert json.loads(line)


def test_values_json_lacks_become_text():
    huge = 10**5000  # more digits than Python turns into text by default
    assert render([b"\x1b", huge, {1: 2, b"k": 3}, _BadStr()]) == (
        '["b\'\\\\x1b\'","<integer of 16610 bits>",{"1":2,"b\'k\'":3},'
        '"<_BadStr: str() failed: RuntimeError>"]'
    )


class _BadStr:
    def __str__(self) -> str:
        raise RuntimeError("no")


def _same(decoded, original) -> bool:
    if isinstance(original, float) and math.isnan(original):
        return isinstance(decoded, float) and math.isnan(decoded)
    if isinstance(original, list):
        return len(decoded) == len(original) and all(map(_same, decoded, original))
    if isinstance(original, dict):
        return decoded.keys() == original.keys() and all(_same(decoded[k], original[k]) for k in original)
    return decoded == original and type(decoded) is type(original)
