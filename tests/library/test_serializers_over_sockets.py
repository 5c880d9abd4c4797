"""Through real sockets: what a receiver would refuse is refused by ``send_safe``; nothing is sent.

Each test sends a refused value through a real PUSH/PULL pair over inproc,
then a valid one, and checks that the valid one is the first (and only)
message the PULL socket receives: the refusal left nothing on the wire. The
plain and green managers run every case; the asyncio manager runs them too.
"""

from __future__ import annotations

import asyncio

import msgpack
import pytest
import zmq
import zmq.asyncio

from agentzero.asyncio import SocketManager as AsyncioSocketManager
from agentzero.core import SocketManager
from agentzero.errors import SerializationError
from agentzero.serializers import JSON, MSGPACK
from tests.conftest import make_address, publish_until_received, terminate


class RaisingStr:
    def __str__(self):
        raise LookupError("no text for you")


class RaisingItems(dict):
    def items(self):
        raise LookupError("no items for you")


REFUSED = [
    (MSGPACK, {}, {1: "a"}),
    (MSGPACK, {}, {"scores": {(1, 2): 0.5}}),
    (MSGPACK, {}, [msgpack.Timestamp(1466424000)]),
    (MSGPACK, {}, {"ext": msgpack.ExtType(5, b"x")}),
    (MSGPACK, {}, {"map": RaisingItems(a=1)}),
    (JSON, {}, [RaisingStr()]),
    (JSON, {}, [2**64, RaisingStr()]),
    (JSON, {"strict": True}, {"blob": b"ab"}),
    (JSON, {"strict": True}, {"tags": {1, 2}}),
    (JSON, {"strict": True}, [2**64, float("nan")]),
    (JSON, {"strict": True}, {1: "a"}),
]
IDS = [
    "msgpack-int-key",
    "msgpack-tuple-key",
    "msgpack-timestamp",
    "msgpack-ext",
    "msgpack-raising-items",
    "json-raising-str",
    "json-raising-str-beside-a-wide-integer",
    "strict-json-bytes",
    "strict-json-set",
    "strict-json-nan-beside-a-wide-integer",
    "strict-json-int-key",
]


def valid_message(serializer_class):
    return {"n": 2**64 if serializer_class is JSON else 2**63, "text": "é", "list": [1.5, None]}


@pytest.mark.sync_only("it builds sync SocketManagers of its own")
@pytest.mark.parametrize("serializer_class, options, refused", REFUSED, ids=IDS)
def test_send_safe_refuses_and_sends_nothing(zmq_module, context, serializer_class, options, refused):
    with SocketManager(zmq_module, context, serialization_backend=serializer_class(**options)) as sockets:
        address = make_address("inproc")
        sockets.ensure_and_bind("in", zmq_module.PULL, address, zmq.POLLIN)
        sockets.ensure_and_connect("out", zmq_module.PUSH, address, zmq.POLLOUT)
        with pytest.raises(SerializationError):
            sockets.send_safe("out", refused, timeout=2)
        assert sockets.send_safe("out", valid_message(serializer_class), timeout=2)
        assert sockets.recv_safe("in", timeout=2) == valid_message(serializer_class)
        assert sockets.recv_safe("in", timeout=0.1) is None
        sockets.close_all(linger=0)


@pytest.mark.parametrize("serializer_class, options, refused", REFUSED, ids=IDS)
def test_asyncio_send_safe_refuses_and_sends_nothing(serializer_class, options, refused):
    context = zmq.asyncio.Context()

    async def scenario():
        sockets = AsyncioSocketManager(context=context, serialization_backend=serializer_class(**options))
        try:
            address = make_address("inproc")
            sockets.ensure_and_bind("in", zmq.PULL, address, zmq.POLLIN)
            sockets.ensure_and_connect("out", zmq.PUSH, address, zmq.POLLOUT)
            with pytest.raises(SerializationError):
                await sockets.send_safe("out", refused, timeout=2)
            assert await sockets.send_safe("out", valid_message(serializer_class), timeout=2)
            assert await sockets.recv_safe("in", timeout=2) == valid_message(serializer_class)
            assert await sockets.recv_safe("in", timeout=0.1) is None
        finally:
            sockets.close_all(linger=0)

    try:
        asyncio.run(asyncio.wait_for(scenario(), 20))
    finally:
        terminate(context)


@pytest.mark.sync_only("it builds sync SocketManagers of its own")
def test_a_strict_json_publisher_refuses_and_publishes_nothing(zmq_module, context):
    with SocketManager(zmq_module, context, serialization_backend=JSON(strict=True)) as sockets:
        address = make_address("inproc")
        sockets.ensure_and_bind("pub", zmq_module.PUB, address, zmq.POLLOUT)
        sockets.ensure_and_connect("sub", zmq_module.SUB, address, zmq.POLLIN)
        sockets.set_topic("sub", "")
        publish_until_received(sockets, "pub", "sub", "probe", {"ready": True})
        while sockets.recv_event_safe("sub", timeout=0.05) is not None:
            pass  # the other probes
        with pytest.raises(SerializationError, match="bytes"):
            sockets.publish_safe("pub", "t", {"blob": b"ab"})
        sockets.publish_safe("pub", "t", {"ok": [1, 2]})
        event = sockets.recv_event_safe("sub", timeout=2)
        assert (event.topic, event.data) == (b"t", {"ok": [1, 2]})
        sockets.close_all(linger=0)
