"""A Ctrl-C that lands between two frames of a message splits no message, whichever call receives it.

tests/library/test_interrupts.py sends real SIGINTs to a child at random
moments; here the interruption lands exactly where it hurts, every time: on
the first ``zmq.RCVMORE`` read after a message's first frame (the socket
record's ``more``, a Python function whose entry is where Python runs a
signal handler). The call must raise the ``KeyboardInterrupt``, drop the
rest of that message, and the next call must receive the next message whole.
"""

from __future__ import annotations

import time

import pytest
import zmq
import zmq.green

from agentzero.core import SocketManager
from agentzero.serializers import MSGPACK
from tests.conftest import make_address, terminate

MODULES = {"plain": zmq, "green": zmq.green}


class CtrlCOnFirstRead:
    """Wraps a record's ``more``: its first call raises ``KeyboardInterrupt``, as a Ctrl-C landing there."""

    def __init__(self, more):
        self.more = more
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.calls == 1:
            raise KeyboardInterrupt
        return self.more()


@pytest.fixture(params=sorted(MODULES))
def pair(request):
    module = MODULES[request.param]
    context = module.Context()
    sockets = SocketManager(module, context, timeout=5)
    yield module, sockets
    sockets.close_all(linger=0)
    terminate(context)


def _interrupt_next_read(sockets, name):
    record = sockets._records[name]
    record.more = CtrlCOnFirstRead(record.more)
    return record


def _queued(sockets, name):
    """Wait until the first message can be read from ``name``; the next, sent after it, is there too."""
    socket = sockets.sockets[name]
    deadline = time.monotonic() + 5
    while not socket.poll(0) and time.monotonic() < deadline:
        time.sleep(0.001)
    assert socket.poll(0), "nothing arrived"


def _push_pull(module, sockets):
    address = make_address("inproc")
    sockets.ensure_and_bind("in", module.PULL, address, zmq.POLLIN)
    sockets.ensure_and_connect("out", module.PUSH, address, zmq.POLLOUT)


def test_drain_multipart_safe(pair):
    module, sockets = pair
    _push_pull(module, sockets)
    assert sockets.send_multipart_safe("out", [b"one", b"two", b"three"], timeout=2)
    assert sockets.send_multipart_safe("out", [b"next"], timeout=2)
    _queued(sockets, "in")
    _interrupt_next_read(sockets, "in")
    with pytest.raises(KeyboardInterrupt):
        list(sockets.drain_multipart_safe("in"))
    assert sockets.recv_multipart_safe("in", timeout=2) == [b"next"]


def test_recv_multipart_safe(pair):
    module, sockets = pair
    _push_pull(module, sockets)
    assert sockets.send_multipart_safe("out", [b"one", b"two", b"three"], timeout=2)
    assert sockets.send_multipart_safe("out", [b"next"], timeout=2)
    _queued(sockets, "in")
    _interrupt_next_read(sockets, "in")
    with pytest.raises(KeyboardInterrupt):
        sockets.recv_multipart_safe("in", timeout=2)
    assert sockets.recv_multipart_safe("in", timeout=2) == [b"next"]


def test_recv_safe_of_a_hostile_message_of_several_frames(pair):
    module, sockets = pair
    _push_pull(module, sockets)
    assert sockets.send_multipart_safe("out", [b'"one"', b'"two"', b'"three"'], timeout=2)
    assert sockets.send_safe("out", "next", timeout=2)
    _queued(sockets, "in")
    _interrupt_next_read(sockets, "in")
    with pytest.raises(KeyboardInterrupt):
        sockets.recv_safe("in", timeout=2)
    assert sockets.recv_safe("in", timeout=2) == "next"


def test_recv_event_safe(pair):
    module, sockets = pair
    _push_pull(module, sockets)
    assert sockets.send_multipart_safe("out", [b"topic", b'"data"'], timeout=2)
    assert sockets.send_multipart_safe("out", [b"topic", b'"next"'], timeout=2)
    _queued(sockets, "in")
    _interrupt_next_read(sockets, "in")
    with pytest.raises(KeyboardInterrupt):
        sockets.recv_event_safe("in", timeout=2)
    assert sockets.recv_event_safe("in", timeout=2).data == "next"


@pytest.mark.parametrize("flavour", sorted(MODULES))
def test_recv_safe_of_msgpack_buffers_sent_out_of_band(flavour):
    module = MODULES[flavour]
    context = module.Context()
    sockets = SocketManager(module, context, timeout=5, serialization_backend=MSGPACK())
    try:
        _push_pull(module, sockets)
        big = {"blob": b"x" * 100_000, "other": b"y" * 100_000}
        assert sockets.send_safe("out", big, timeout=2)
        assert sockets.send_safe("out", "next", timeout=2)
        _queued(sockets, "in")
        _interrupt_next_read(sockets, "in")
        with pytest.raises(KeyboardInterrupt):
            sockets.recv_safe("in", timeout=2)
        assert sockets.recv_safe("in", timeout=2) == "next"
    finally:
        sockets.close_all(linger=0)
        terminate(context)


def test_recv_request_safe(pair):
    module, sockets = pair
    address = make_address("inproc")
    sockets.ensure_and_bind("server", module.ROUTER, address, zmq.POLLIN)
    sockets.ensure_and_connect("client", module.DEALER, address, zmq.POLLOUT)
    assert sockets.send_multipart_safe("client", [b"", b'"first"'], timeout=2)
    assert sockets.send_multipart_safe("client", [b"", b'"next"'], timeout=2)
    _queued(sockets, "server")
    _interrupt_next_read(sockets, "server")
    with pytest.raises(KeyboardInterrupt):
        sockets.recv_request_safe("server", timeout=2)
    assert sockets.recv_request_safe("server", timeout=2).data == "next"


def test_wait_for_subscribers_counts_a_subscription_read_when_a_ctrl_c_lands(pair):
    """The XPUB's subscriptions are counted across calls: one read and lost would be missing for ever."""
    module, sockets = pair
    sockets.ensure_and_bind("pub", module.XPUB, "tcp://127.0.0.1:*", zmq.POLLOUT)
    sockets.ensure_and_connect("sub", module.SUB, sockets.addresses["pub"], zmq.POLLIN)
    sockets.set_topic("sub", "weather")
    _queued(sockets, "pub")
    _interrupt_next_read(sockets, "pub")
    with pytest.raises(KeyboardInterrupt):
        sockets.wait_for_subscribers("pub", 1, timeout=2)
    assert sockets.wait_for_subscribers("pub", 1, timeout=0.5) is True
