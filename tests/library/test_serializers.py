import datetime
import json

import msgpack
import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from agentzero.core import SocketManager
from agentzero.errors import AgentZeroSocketError, DeserializationError, SerializationError
from agentzero.serializers import JSON, MAX_DEPTH, MSGPACK, BaseSerializer
from tests.conftest import publish_until_received


class Custom:
    def __str__(self):
        return "custom!"


def test_json_pack_is_compact_text():
    assert JSON().pack({"foo": "bar"}) == '{"foo":"bar"}'
    assert JSON().pack([1, 2.5, None, True]) == "[1,2.5,null,true]"


def test_json_pack_falls_back_to_str_for_unknown_types():
    when = datetime.datetime(2016, 6, 20, 12, 0, 0)
    packed = JSON().pack({"obj": Custom(), "when": when, "blob": b"x"})
    assert json.loads(packed) == {"obj": "custom!", "when": str(when), "blob": str(b"x")}


def test_json_pack_handles_what_orjson_refuses():
    huge = 2**80
    assert JSON().unpack(JSON().pack({"n": huge})) == {"n": huge}
    assert JSON().pack({1: "a"}) == '{"1":"a"}'


def test_json_pack_bytes_matches_pack():
    data = {"a": [1, "é"]}
    assert JSON().pack_bytes(data) == JSON().pack(data).encode("utf-8")


@pytest.mark.parametrize("payload", ['{"foo":"bar"}', b'{"foo":"bar"}', bytearray(b'{"foo":"bar"}')])
def test_json_unpack_takes_text_or_bytes(payload):
    assert JSON().unpack(payload) == {"foo": "bar"}


@pytest.mark.parametrize("payload", [b"{not json", b"\xff\xfe", "", b"", None])
def test_json_unpack_rejects_garbage_with_the_raw_payload(payload):
    with pytest.raises(DeserializationError) as caught:
        JSON().unpack(payload)
    assert caught.value.raw == payload
    assert isinstance(caught.value, AgentZeroSocketError)


def test_json_circular_structure_raises_serialization_error():
    loop = []
    loop.append(loop)
    with pytest.raises(SerializationError, match="JSON cannot pack a value of type list"):
        JSON().pack(loop)


def test_msgpack_round_trips_bytes_text_and_nesting():
    data = {"blob": b"\x00\xff", "text": "héllo", "nested": {"list": [1, 2.5, None, [b"x"]]}}
    packed = MSGPACK().pack(data)
    assert isinstance(packed, bytes)
    assert MSGPACK().unpack(packed) == data


def test_msgpack_refuses_unknown_types():
    with pytest.raises(SerializationError, match="MSGPACK cannot pack a value of type Custom"):
        MSGPACK().pack(Custom())


@pytest.mark.parametrize("payload", [b"\xc1", b"\x92\x01", "text", None])
def test_msgpack_unpack_rejects_garbage(payload):
    with pytest.raises(DeserializationError) as caught:
        MSGPACK().unpack(payload)
    assert caught.value.raw == payload


def test_base_serializer_passes_constructor_arguments_to_initialize():
    class Upper(BaseSerializer):
        def initialize(self, suffix, *, repeat=1):
            self.suffix = suffix * repeat

        def pack(self, data):
            return data.upper() + self.suffix

        def unpack(self, data):
            return data

    serializer = Upper("!", repeat=2)
    assert serializer.pack("hi") == "HI!!"
    assert serializer.pack_bytes("hi") == b"HI!!"


def test_base_serializer_methods_must_be_implemented():
    with pytest.raises(NotImplementedError, match="BaseSerializer must implement pack"):
        BaseSerializer().pack({})
    with pytest.raises(NotImplementedError, match="must implement unpack"):
        BaseSerializer().unpack(b"")


# -- what unpack accepts, pack sends back ---------------------------------------------


def nested(depth, leaf=None):
    value = [] if leaf is None else [leaf]
    for _ in range(depth - 1):
        value = [value]
    return value


LONG = "12345678901234567890123"  # wider than 64 bits: the exact (standard library) path


@pytest.mark.parametrize(
    "payload",
    [
        b'"\\ud800"',
        b'{"echo": "a\\udfffb"}',
        b'{"\\ud800": 1}',
        b'["\\ude00\\ud83d"]',  # a low then a high surrogate: not a pair
        ('{"n": ' + LONG + ', "s": "\\ud800"}').encode(),
        ('{"\\udc00": ' + LONG + "}").encode(),
        b'"\xed\xa0\x80"',  # a surrogate as raw (CESU-8) bytes
        '"\ud800"',  # text holding a lone surrogate itself
    ],
)
def test_json_refuses_lone_surrogates_on_the_way_in(payload):
    with pytest.raises(DeserializationError):
        JSON().unpack(payload)


def test_json_refuses_lone_surrogates_on_the_way_out():
    for value in ("\ud800", {"k": ["x\udfff"]}, {"\ud800": 1}, {"n": 10**30, "s": "\ud800"}):
        with pytest.raises(SerializationError):
            JSON().pack_bytes(value)


def test_json_surrogate_pairs_are_text_and_travel_both_ways():
    value = JSON().unpack(b'{"smile": "\\ud83d\\ude00", "n": %s}' % LONG.encode())
    assert value == {"smile": "\U0001f600", "n": int(LONG)}
    assert JSON().unpack(JSON().pack_bytes(value)) == value


ESCAPED_TEXT = st.text(
    st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010) | st.characters(), max_size=6
)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | ESCAPED_TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(ESCAPED_TEXT, children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(value=JSONISH)
def test_json_sends_back_whatever_it_accepts(value):
    payload = json.dumps(value, ensure_ascii=True).encode()  # lone surrogates become \\udxxx escapes
    try:
        received = JSON().unpack(payload)
    except DeserializationError:
        return
    assert JSON().unpack(JSON().pack_bytes(received)) == received


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e999", "-1e400"])
@pytest.mark.parametrize("exact_path", [False, True], ids=["orjson", "exact"])
def test_json_refuses_nan_and_infinity_on_the_way_in(constant, exact_path):
    payload = f'{{"x": {constant}, "n": {LONG if exact_path else 1}}}'
    with pytest.raises(DeserializationError):
        JSON().unpack(payload.encode())


@pytest.mark.parametrize("number", [10**30 + 1, -(2**63) - 1, 2**64, 2**64 - 1, -(2**63), 2**100 + 1])
def test_json_integers_of_any_size_stay_exact(number):
    value = {"n": number, "list": [number, 1.5], "text": "é"}
    received = JSON().unpack(JSON().pack_bytes(value))
    assert received == value and type(received["n"]) is int
    assert JSON().unpack(str(number)) == number


def test_json_long_digit_runs_in_text_are_harmless():
    value = {"phone": "0" * 40, "when": 1466424000.5, "ok": [True, None]}
    assert JSON().unpack(JSON().pack_bytes(value)) == value


def test_json_refuses_integers_too_long_to_parse():
    with pytest.raises(DeserializationError):
        JSON().unpack(b"1" * 100_000)


@pytest.mark.parametrize("serializer", [JSON(), MSGPACK()], ids=["json", "msgpack"])
def test_nesting_up_to_max_depth_travels_both_ways(serializer):
    deepest = {"deep": nested(MAX_DEPTH - 1, leaf=1)}
    assert serializer.unpack(serializer.pack_bytes(deepest)) == deepest
    too_deep = nested(MAX_DEPTH + 1)
    with pytest.raises(SerializationError, match="nested deeper than 254 levels"):
        serializer.pack_bytes(too_deep)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1024, 1025, 5000, 200_000])
@pytest.mark.parametrize("exact_path", [False, True], ids=["orjson", "exact"])
def test_json_refuses_deep_nesting_without_recursion_error(depth, exact_path):
    leaf = LONG if exact_path else "1"
    payload = ("[" * depth + leaf + "]" * depth).encode()
    with pytest.raises(DeserializationError) as refused:
        JSON().unpack(payload)
    assert not isinstance(refused.value.__cause__, RecursionError) or exact_path
    objects = ('{"a":' * depth + leaf + "}" * depth).encode()
    with pytest.raises(DeserializationError):
        JSON().unpack(objects)


def test_json_wide_payloads_with_many_brackets_are_fine():
    value = [{"id": index, "tags": ["a", "b"]} for index in range(2000)]
    assert JSON().unpack(JSON().pack_bytes(value)) == value


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1024, 1025, 200_000])
def test_msgpack_refuses_deep_nesting(depth):
    payload = b"\x91" * (depth - 1) + b"\x90"
    with pytest.raises(DeserializationError):
        MSGPACK().unpack(payload)
    maps = b"\x81\xa1k" * (depth - 1) + b"\x80"
    with pytest.raises(DeserializationError):
        MSGPACK().unpack(maps)


@pytest.mark.parametrize(
    "payload",
    [
        msgpack.packb(msgpack.ExtType(5, b"x")),
        msgpack.packb({"when": msgpack.ExtType(42, b"12345678")}),
        msgpack.packb(msgpack.Timestamp(1466424000)),
        msgpack.packb({"list": [1, {"when": msgpack.Timestamp(1, 5)}]}, datetime=False),
        msgpack.packb(datetime.datetime(2016, 6, 20, tzinfo=datetime.timezone.utc), datetime=True),
        msgpack.packb({"pad": b"x" * 10_000, "items": [{"when": msgpack.Timestamp(1)}]}),
    ],
    ids=["ext", "nested-ext", "timestamp", "nested-timestamp", "datetime", "large-payload"],
)
def test_msgpack_refuses_extension_types_and_timestamps(payload):
    with pytest.raises(DeserializationError, match="not plain data"):
        MSGPACK().unpack(payload)


@pytest.mark.parametrize("size", [4, 400])
def test_msgpack_blobs_that_look_like_extensions_are_plain_data(size):
    value = {
        "blob": bytes(range(256)) * size,
        "items": [{"i": index, b"raw": b"\xd6"} for index in range(300)],
    }
    assert MSGPACK().unpack(MSGPACK().pack(value)) == value


# -- the binary attribute: 0.4.6 serializers receive str ---------------------------------------


class LegacyUpper:
    """A serializer written for agentzero 0.4.6: no base class, no ``binary``; unpack gets text."""

    def pack(self, data):
        return data.upper()

    def unpack(self, data):
        assert isinstance(data, str), f"0.4.6's unpack must receive a string, got {type(data).__name__}"
        return ("text", data)


class RawFrames(BaseSerializer):
    binary = True

    def pack(self, data):
        return bytes(data)

    def unpack(self, data):
        return ("bytes", data) if isinstance(data, bytes) else ("other", data)


def test_builtin_serializers_are_binary_and_others_are_not():
    assert JSON.binary is True and MSGPACK.binary is True
    assert BaseSerializer.binary is False
    assert not getattr(LegacyUpper(), "binary", False)


@pytest.mark.sync_only("it builds sync SocketManagers of its own")
def test_a_0_4_6_serializer_receives_str(manager, zmq_module):
    with SocketManager(zmq_module, manager.context, serialization_backend=LegacyUpper()) as sockets:
        sockets.ensure_and_bind("in", zmq_module.PULL, "inproc://legacy", zmq.POLLIN)
        sockets.ensure_and_connect("out", zmq_module.PUSH, "inproc://legacy", zmq.POLLOUT)
        sockets.ensure_and_bind("pub", zmq_module.PUB, "inproc://legacy-events", zmq.POLLOUT)
        sockets.ensure_and_connect("sub", zmq_module.SUB, "inproc://legacy-events", zmq.POLLIN)
        sockets.set_topic("sub", "")
        assert sockets.send_safe("out", "héllo")
        assert sockets.recv_safe("in", timeout=2) == ("text", "HÉLLO")
        event = publish_until_received(sockets, "pub", "sub", "t", "ping")
        assert event.data == ("text", "PING")
        # a frame that is not UTF-8 never reaches unpack; the next one does
        sockets.sockets["out"].send(b"\xff\xfe")
        with pytest.raises(DeserializationError, match="not UTF-8"):
            sockets.recv_safe("in", timeout=2)
        assert sockets.send_safe("out", "next")
        assert sockets.recv_safe("in", timeout=2) == ("text", "NEXT")


@pytest.mark.sync_only("it builds sync SocketManagers of its own")
def test_a_binary_serializer_receives_bytes(manager, zmq_module):
    with SocketManager(zmq_module, manager.context, serialization_backend=RawFrames()) as sockets:
        sockets.ensure_and_bind("in", zmq_module.PULL, "inproc://raw", zmq.POLLIN)
        sockets.ensure_and_connect("out", zmq_module.PUSH, "inproc://raw", zmq.POLLOUT)
        assert sockets.send_safe("out", b"\xff\x00")
        assert sockets.recv_safe("in", timeout=2) == ("bytes", b"\xff\x00")


def test_pack_bytes_refuses_what_is_not_a_frame():
    class Dicts(BaseSerializer):
        def pack(self, data):
            return data

    with pytest.raises(SerializationError, match="returned dict, not str or bytes"):
        Dicts().pack_bytes({"a": 1})
    with pytest.raises(SerializationError):
        Dicts().pack_bytes("\ud800")
    assert Dicts().pack_bytes(bytearray(b"ab")) == b"ab"


def test_the_public_serializers_name_agentzero_serializers_as_their_module():
    """Their code lives in private modules of the package; pickles, reprs and ``help()`` name the package."""
    import pickle
    import pydoc

    from agentzero import serializers

    public = [serializers.frame_packer, serializers.message_packer, serializers.frame_unpacker]
    public += [serializers.frames_unpacker, BaseSerializer, JSON, MSGPACK, JSON.unpack, MSGPACK.pack_frames]
    assert {item.__module__ for item in public} == {"agentzero.serializers"}
    assert repr(JSON) == "<class 'agentzero.serializers.JSON'>"
    assert b"agentzero.serializers\nJSON\n" in pickle.dumps(JSON(strict=True), protocol=0)
    assert repr(pickle.loads(pickle.dumps(JSON(strict=True)))) == "JSON(strict=True)"
    described = pydoc.render_doc(serializers, renderer=pydoc.plaintext)
    for name in ("class BaseSerializer", "class JSON", "class MSGPACK", "frame_packer(", "frame_unpacker("):
        assert name in described, name
