"""Hand-written hostile pickles (issue 20): each attack is refused or neutralised, in bounded time and memory.

Every pickle here is spelled opcode by opcode, as an attacker would write it,
not made by ``pickle.dumps``. After each refusal a benign value still decodes.
"""

from __future__ import annotations

import base64
import copyreg
import json
import pickle
import struct
import subprocess
import sys
import time
import tracemalloc

import pytest

from examples.nodegraph import pickles
from examples.nodegraph.inert import MAX_DEPTH, MAX_SHARED_HASH, WORK_FLOOR, WORK_PER_BYTE
from examples.nodegraph.messages import MalformedMessage, Message
from examples.nodegraph.pickles import HashFlooding, RemoteGlobal, TooDeep, TooMuchWork, UnsafePickle

PROTO = b"\x80\x04"
STOP = b"."
EMPTY_LIST, EMPTY_DICT, EMPTY_SET, EMPTY_TUPLE = b"]", b"}", b"\x8f", b")"
MARK, APPEND, APPENDS, SETITEMS, ADDITEMS, FROZENSET = b"(", b"a", b"e", b"u", b"\x90", b"\x91"
TUPLE1, REDUCE, BUILD, STACK_GLOBAL, MEMOIZE, POP, NONE = b"\x85", b"R", b"b", b"\x93", b"\x94", b"0", b"N"
PRIME = 2**61 - 1  # an int's hash is its value modulo this


def text(value: str) -> bytes:
    encoded = value.encode()
    return b"\x8c" + bytes([len(encoded)]) + encoded  # SHORT_BINUNICODE


def long1(value: int) -> bytes:
    size = (value.bit_length() + 8) // 8
    return b"\x8a" + bytes([size]) + value.to_bytes(size, "little", signed=True)


def binget(index: int) -> bytes:
    return b"h" + bytes([index])


def binbytes(data: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(data)) + data


def global_(module: str, name: str) -> bytes:
    return text(module) + text(name) + STACK_GLOBAL


def pck(raw: bytes) -> str:
    return "pck__" + base64.b64encode(raw).decode()


def measured(call):
    """Run ``call``; return (what it returned or raised, peak bytes allocated, seconds)."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        outcome = call()
    except Exception as error:  # the tests assert which
        outcome = error
    finally:
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return outcome, peak, seconds


def bound(raw: bytes) -> int:
    """The memory a decode may use: its work budget, plus a few copies of the frame (base64, bytes)."""
    return WORK_FLOOR + (WORK_PER_BYTE + 8) * len(raw)


def still_decodes_benign_values():
    assert pickles.decode(pickles.encode({"a": [1, 2.5, {3}], "b": ValueError("x")}))["a"] == [1, 2.5, {3}]


# -- memory bomb through the bytearray constructor ----------------------------------------------


def test_a_bytearray_bomb_is_refused_within_memory_bounded_by_the_frame():
    # memoize 1 MiB once, then copy it 300 times with 7 bytes each: a 1 MiB frame asking for 300 MiB
    body = global_("builtins", "bytearray") + MEMOIZE + POP + binbytes(b"x" * (1 << 20)) + MEMOIZE + POP
    raw = PROTO + EMPTY_LIST + body + (binget(0) + binget(1) + TUPLE1 + REDUCE + APPEND) * 300 + STOP
    text_ = pck(raw)
    outcome, peak, seconds = measured(lambda: pickles.decode(text_))
    assert isinstance(outcome, TooMuchWork), outcome
    assert "calls" in str(outcome) and str(len(raw)) in str(outcome)
    assert peak < bound(raw), f"{peak / len(raw):.0f} times the frame"
    assert seconds < 5
    still_decodes_benign_values()


def test_benign_bytearrays_that_fill_the_frame_still_decode():
    values = [bytearray(b"%d" % index) * 50_000 for index in range(20)]
    for protocol in (3, 4, 5):  # 3 and 4 call bytearray(bytes); 5 spells it as a literal
        assert pickles.decode("pck__" + base64.b64encode(pickle.dumps(values, protocol)).decode()) == values


def test_objects_made_from_one_byte_opcodes_are_counted():
    # EMPTY_SET, APPEND: 2 bytes for a 216-byte set, so a 1 MB frame asked for 108 MB
    raw = PROTO + EMPTY_LIST + (EMPTY_SET + APPEND) * 500_000 + STOP
    text_ = pck(raw)
    outcome, peak, _ = measured(lambda: pickles.decode(text_))
    assert isinstance(outcome, TooMuchWork) and "making objects" in str(outcome), outcome
    assert peak < bound(raw), f"{peak / len(raw):.0f} times the frame"
    still_decodes_benign_values()


# -- memory bomb through stand-in classes ---------------------------------------------------------


def test_stand_ins_of_one_name_share_one_class():
    # 100,000 STACK_GLOBALs of memoized names (0.57 MiB) made a class each: about 210 MiB
    names = text("evil") + MEMOIZE + text("Thing") + MEMOIZE + POP + POP
    raw = PROTO + EMPTY_LIST + names + (binget(0) + binget(1) + STACK_GLOBAL + APPEND) * 100_000 + STOP
    text_ = pck(raw)
    outcome, peak, seconds = measured(lambda: pickles.decode(text_))
    assert isinstance(outcome, list) and len(outcome) == 100_000
    assert issubclass(outcome[0], RemoteGlobal) and outcome[0].qualified_name == "evil.Thing"
    assert all(kind is outcome[0] for kind in outcome)
    assert peak < 8 * len(raw), f"{peak / len(raw):.0f} times the frame"
    assert seconds < 5


def test_many_distinct_names_are_refused_within_memory_bounded_by_the_frame():
    module = text("m") + MEMOIZE + POP
    raw = PROTO + EMPTY_LIST + module
    raw += b"".join(binget(0) + text(f"n{index}") + STACK_GLOBAL + APPEND for index in range(50_000)) + STOP
    text_ = pck(raw)
    outcome, peak, seconds = measured(lambda: pickles.decode(text_))
    assert isinstance(outcome, TooMuchWork) and "stand-in classes" in str(outcome), outcome
    assert peak < bound(raw), f"{peak / len(raw):.0f} times the frame"
    assert seconds < 5
    still_decodes_benign_values()


# -- quadratic time from hash collisions --------------------------------------------------------

COLLIDING = [PRIME * index for index in range(1, 12_001)]  # all hash to 0


def _items(values):
    return MARK + b"".join(long1(value) for value in values)


CONTAINERS = {
    "set-additems": lambda values: EMPTY_SET + _items(values) + ADDITEMS,
    "set-additems-one-by-one": lambda values: (
        EMPTY_SET + b"".join(MARK + long1(v) + ADDITEMS for v in values)
    ),
    "frozenset": lambda values: _items(values) + FROZENSET,
    "dict-setitems": lambda values: EMPTY_DICT + MARK + b"".join(long1(v) + NONE for v in values) + SETITEMS,
    "set-constructor": lambda values: (
        global_("builtins", "set") + EMPTY_LIST + _items(values) + APPENDS + TUPLE1 + REDUCE
    ),
}


@pytest.mark.parametrize("build", CONTAINERS.values(), ids=CONTAINERS.keys())
def test_a_hash_flooding_container_is_refused_quickly(build):
    raw = PROTO + build(COLLIDING) + STOP
    outcome, _, seconds = measured(lambda: pickles.decode(pck(raw)))
    assert isinstance(outcome, HashFlooding), outcome
    assert f"more than {MAX_SHARED_HASH} keys of one hash" in str(outcome)
    assert seconds < 1.0
    ordinary = pickles.decode(pck(PROTO + build(range(1, 12_001)) + STOP))  # the same size, no collisions
    assert len(ordinary) == 12_000
    still_decodes_benign_values()


def test_a_few_keys_of_one_hash_are_fine():
    colliding = COLLIDING[:MAX_SHARED_HASH] + [-1, -2]  # hash(-1) == hash(-2) in CPython
    assert pickles.decode(pck(PROTO + CONTAINERS["set-additems"](colliding) + STOP)) == set(colliding)


def test_hashing_one_shared_tuple_over_and_over_is_counted():
    # t0 = (1, 1); t(k+1) = (tk, tk): tiny to spell, 2**k to hash, hashed again on every insertion
    raw = PROTO + long1(1) + MEMOIZE + POP
    for level in range(40):
        raw += binget(level) + binget(level) + b"\x86" + MEMOIZE + POP  # TUPLE2
    raw += EMPTY_SET + MARK + binget(40) + ADDITEMS + STOP
    outcome, _, seconds = measured(lambda: pickles.decode(pck(raw)))
    assert isinstance(outcome, TooMuchWork) and "hashing" in str(outcome), outcome
    assert seconds < 5


# -- a pickle rewriting the decoder for the next peer -------------------------------------------


@pytest.mark.parametrize(
    "state",
    [
        EMPTY_DICT + text("__defaults__") + long1(5) + TUPLE1 + b"s",  # dict state: attributes
        NONE + EMPTY_DICT + text("__defaults__") + long1(5) + TUPLE1 + b"s" + b"\x86",  # (None, slots)
    ],
    ids=["attributes", "slot-state"],
)
def test_build_cannot_change_the_decoders_own_constructors(state):
    hostile = PROTO + global_("builtins", "set") + state + BUILD + STOP
    with pytest.raises(UnsafePickle, match="BUILD on a Constructor"):
        pickles.decode(pck(hostile))
    benign = PROTO + global_("builtins", "set") + EMPTY_TUPLE + REDUCE + STOP  # set()
    assert pickles.decode(pck(benign)) == set()


@pytest.mark.parametrize(
    "target",
    [global_("builtins", "ValueError"), global_("evil", "Thing"), EMPTY_LIST, long1(5)],
    ids=["exception-class", "stand-in-class", "list", "int"],
)
def test_build_applies_only_to_instances_the_pickle_made(target):
    hostile = PROTO + target + EMPTY_DICT + text("x") + long1(1) + b"s" + BUILD + STOP
    with pytest.raises(UnsafePickle, match="BUILD on"):
        pickles.decode(pck(hostile))


def test_a_decoded_constructor_is_read_only():
    token = pickles.decode(pck(PROTO + global_("builtins", "set") + STOP))
    with pytest.raises(AttributeError):
        token.__defaults__ = (5,)
    with pytest.raises(AttributeError):
        token.name = "bytearray"
    assert token([1, 2]) == {1, 2}
    assert pickles.decode(pck(PROTO + global_("builtins", "set") + STOP)) is token  # shared, so immutable


# -- EXT opcodes ------------------------------------------------------------------------------

CODE = 0x7FFF_FF01  # an extension code nothing else registers


def touch(path):
    with open(path, "w") as file:
        file.write("ran")


@pytest.fixture
def extension_code():
    copyreg.add_extension(__name__, "touch", CODE)
    try:
        yield b"\x84" + struct.pack("<i", CODE)  # EXT4
    finally:
        copyreg.remove_extension(__name__, "touch", CODE)  # clears the cached entry too


def test_an_extension_code_resolved_by_pickle_loads_is_not_reused(extension_code, tmp_path):
    assert (
        pickle.loads(PROTO + extension_code + STOP) is touch
    )  # fills copyreg's cache with the real function
    marker = tmp_path / "ran"
    hostile = PROTO + extension_code + text(str(marker)) + TUPLE1 + REDUCE + STOP
    decoded = pickles.decode(pck(hostile))
    assert isinstance(decoded, RemoteGlobal) and decoded.qualified_name == f"{__name__}.touch"
    assert decoded.args == (str(marker),) and not marker.exists()


def test_decoding_an_extension_code_does_not_poison_pickle_loads(extension_code):
    stand_in = pickles.decode(pck(PROTO + extension_code + STOP))
    assert issubclass(stand_in, RemoteGlobal) and stand_in.qualified_name == f"{__name__}.touch"
    assert pickle.loads(PROTO + extension_code + STOP) is touch


def test_an_unregistered_extension_code_is_refused():
    with pytest.raises(UnsafePickle, match=f"extension code {CODE - 1} is not registered"):
        pickles.decode(pck(PROTO + b"\x84" + struct.pack("<i", CODE - 1) + STOP))
    still_decodes_benign_values()


# -- deep nesting -----------------------------------------------------------------------------


def nested_lists(depth: int) -> bytes:
    return EMPTY_LIST * depth + APPEND * (depth - 1)


def test_an_error_value_nested_200000_deep_is_refused_as_json_would_be():
    error = (
        EMPTY_DICT
        + MARK
        + text("err_type")
        + global_("builtins", "ValueError")
        + text("err_args")
        + nested_lists(200_000)
        + TUPLE1
        + text("traceback")
        + text("")
        + SETITEMS
    )
    value = pck(PROTO + error + STOP)
    outcome, _, seconds = measured(lambda: pickles.decode(value))
    assert isinstance(outcome, TooDeep) and f"nested deeper than {MAX_DEPTH}" in str(outcome), outcome
    assert seconds < 5
    frame = json.dumps({"type": "error", "node_id": "a", "value": value}).encode()
    with pytest.raises(MalformedMessage, match="nested deeper"):
        Message.from_bytes([frame])
    still_decodes_benign_values()


def test_a_deeply_nested_tuple_key_is_refused_before_hashing_it_crashes_the_process(tmp_path):
    # hashing a tuple recurses in C without a limit: 500,000 TUPLE1s (padded with a 4 MiB literal
    # to afford them) made pickle.loads, and this decoder before the fix, die of a segfault
    pad = binbytes(b"x" * (4 << 20)) + POP
    raw = PROTO + pad + EMPTY_SET + MARK + NONE + TUPLE1 * 500_000 + ADDITEMS + STOP
    path = tmp_path / "hostile.txt"
    path.write_text(pck(raw))
    program = (
        "import sys; from examples.nodegraph import pickles\n"
        "try:\n    pickles.decode(open(sys.argv[1]).read())\n"
        "except pickles.TooDeep as error:\n    print(error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program, str(path)], capture_output=True, text=True, timeout=50
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert f"nested deeper than {MAX_DEPTH}" in done.stdout


def test_the_depth_limit_is_the_json_parsers():
    from pydantic_core import from_json

    from_json("[" * MAX_DEPTH + "]" * MAX_DEPTH)  # JSON accepts this depth...
    assert pickles.decode(pck(PROTO + nested_lists(MAX_DEPTH) + STOP)) is not None  # ...and so do pickles
    with pytest.raises(ValueError):
        from_json("[" * (MAX_DEPTH + 2) + "]" * (MAX_DEPTH + 2))
    with pytest.raises(TooDeep):
        pickles.decode(pck(PROTO + nested_lists(MAX_DEPTH + 1) + STOP))


def test_depth_counts_shared_containers_along_their_longest_path():
    # [chain, [[...[chain]...]]]: a chain 150 deep, reached again under another 100 lists: 252 deep
    chain = nested_lists(150) + MEMOIZE + APPEND
    raw = PROTO + EMPTY_LIST + chain + EMPTY_LIST * 100 + binget(0) + APPEND * 100 + APPEND + STOP
    with pytest.raises(TooDeep):
        pickles.decode(pck(raw))


def test_a_container_that_contains_itself_is_refused():
    raw = PROTO + EMPTY_LIST + MEMOIZE + binget(0) + APPEND + STOP
    with pytest.raises(TooDeep, match="contains itself"):
        pickles.decode(pck(raw))


# -- benign pickles decode as before --------------------------------------------------------

BENIGN = [
    None,
    [True, 1, -1, 2**70, -(2**200), 1.5, float("inf"), 3 + 4j, "é\ud800x", b"\x00\xff", bytearray(b"ab")],
    [range(1, 10, 2), slice(1, None, 3), {"a": 1, 2: [3]}, {1, 2, 3}, frozenset({4, (5, 6)}), [[1]] * 3],
    {"err_type": ZeroDivisionError, "err_args": ("a", 2), "traceback": "Traceback..."},
    {i: str(i) for i in range(5_000)},
    [ValueError("x", 2), OSError(2, "nope", "f"), KeyError],
]


@pytest.mark.parametrize("protocol", [3, 4, 5])  # what a Python 3 peer sends (noob uses the default)
@pytest.mark.parametrize("value", BENIGN, ids=range(len(BENIGN)))
def test_benign_pickles_decode_as_pickle_loads_does(value, protocol):
    raw = pickle.dumps(value, protocol)
    decoded, expected = pickles.decode(pck(raw)), pickle.loads(raw)
    assert repr(decoded) == repr(expected)
    assert decoded == expected or isinstance(value, list) and any(isinstance(v, Exception) for v in value)


def test_an_exception_with_attributes_keeps_them_and_its_bytes():
    error = ValueError("x")
    error.note = [1, 2]
    decoded = pickles.decode(pickles.encode(error))
    assert type(decoded) is ValueError and decoded.args == ("x",) and decoded.note == [1, 2]
    assert pickles.encode(decoded) == pickles.encode(error)
