import datetime
import json

import pytest

from agentzero.errors import AgentZeroSocketError, DeserializationError, SerializationError
from agentzero.serializers import JSON, MSGPACK, BaseSerializer


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
