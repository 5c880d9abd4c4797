"""The routing calls carry their data in one frame, large MSGPACK buffers inline: envelopes stay whole."""

from __future__ import annotations

import pytest
import zmq

from agentzero import Request
from agentzero.serializers import MSGPACK, OUT_OF_BAND_SIZE
from tests.conftest import terminate


@pytest.mark.parametrize("flavour", ["plain", "green", "asyncio"])
def test_a_reply_with_a_large_buffer_reaches_a_dealer_whole(flavour):
    # each flavour's manager is built here, with MSGPACK (the ``manager`` fixture's serializer is JSON)
    from tests.blocking_asyncio import ASYNCIO_FLAVOUR, BlockingAsyncioManager
    from tests.conftest import ZMQ_MODULES

    zmq_module = ZMQ_MODULES[flavour]
    context = zmq_module.Context()
    if zmq_module is ASYNCIO_FLAVOUR:
        from agentzero.asyncio import SocketManager as Asyncio

        manager = BlockingAsyncioManager(Asyncio(context=context, serialization_backend=MSGPACK()))
    else:
        from agentzero.core import SocketManager

        manager = SocketManager(zmq_module, context, serialization_backend=MSGPACK())
    try:
        manager.ensure_and_bind("server", zmq.ROUTER, "inproc://routing-payloads", zmq.POLLIN)
        manager.create("client", zmq.DEALER)
        manager.set_socket_option("client", zmq.ROUTING_ID, b"dealer-1")
        manager.connect("client", "inproc://routing-payloads", zmq.POLLIN)
        blob = bytes(range(256)) * (OUT_OF_BAND_SIZE // 256 + 1)  # over the out-of-band size
        assert manager.send_safe("client", {"small": "request"})
        request = manager.recv_request_safe("server", timeout=5)
        assert request == Request((b"dealer-1",), {"small": "request"})
        assert manager.send_reply_safe("server", request.envelope, {"blob": blob})
        frames = manager.recv_multipart_safe("client", timeout=5)
        assert len(frames) == 1  # the buffer travelled inline, in the one data frame
        assert MSGPACK().unpack(frames[0]) == {"blob": blob}
        assert manager.send_reply_safe("server", request.envelope, {"blob": blob})
        assert bytes(manager.recv_safe("client", timeout=5)["blob"]) == blob
    finally:
        manager.close_all(linger=0)
        terminate(context)
