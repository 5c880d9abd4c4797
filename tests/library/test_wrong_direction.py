"""A call a socket cannot make raises a library error naming the socket, and the socket keeps working."""

from __future__ import annotations

import pytest
import zmq

from agentzero.errors import SocketClosed, WrongSocketType

SENDING = [
    ("send_safe", ("hello",)),
    ("publish_safe", ("topic", "hello")),
    ("send_multipart_safe", ([b"hello"],)),
]
RECEIVING = [
    ("recv_safe", ()),
    ("recv_event_safe", ()),
    ("recv_multipart_safe", ()),
]


def _pair(manager, address):
    """A PUSH bound to ``address`` (or a free port) and a PULL connected to it."""
    manager.create("out", zmq.PUSH)
    manager.bind("out", address, zmq.POLLOUT)
    manager.create("in", zmq.PULL)
    manager.connect("in", manager.addresses["out"], zmq.POLLIN)


@pytest.mark.parametrize("call, arguments", SENDING, ids=[call for call, _ in SENDING])
def test_sending_on_a_pull_socket_names_it_and_what_it_can_do(manager, address, call, arguments):
    _pair(manager, address)
    with pytest.raises(WrongSocketType) as raised:
        getattr(manager, call)("in", *arguments, timeout=1)
    error = raised.value
    assert (error.socket_name, error.actual, error.operation) == ("in", "PULL", "sending")
    assert str(error).startswith("socket 'in' is a PULL socket, which only receives: sending needs a PUSH")
    assert manager.send_safe("out", "still works", timeout=5)
    assert manager.recv_safe("in", timeout=5) == "still works"


@pytest.mark.parametrize("call, arguments", RECEIVING, ids=[call for call, _ in RECEIVING])
def test_receiving_on_a_push_socket_names_it_and_what_it_can_do(manager, address, call, arguments):
    _pair(manager, address)
    with pytest.raises(WrongSocketType) as raised:
        getattr(manager, call)("out", *arguments, timeout=1)
    error = raised.value
    assert (error.socket_name, error.actual, error.operation) == ("out", "PUSH", "receiving")
    assert str(error).startswith("socket 'out' is a PUSH socket, which only sends: receiving needs a PULL")
    assert manager.send_safe("out", "still works", timeout=5)
    assert manager.recv_safe("in", timeout=5) == "still works"


def test_receiving_an_event_on_a_pub_socket_names_it(manager):
    manager.create("events", zmq.PUB)
    with pytest.raises(WrongSocketType, match="socket 'events' is a PUB socket, which only sends"):
        manager.recv_event_safe("events", timeout=0)
    assert manager.publish_safe("events", "topic", "still works")


def test_create_after_the_context_was_terminated_says_so(manager, context):
    manager.create("alive", zmq.PAIR)
    manager.close_all(linger=0)
    context.term()
    with pytest.raises(SocketClosed) as raised:
        manager.create("late", zmq.PUSH)
    assert raised.value.socket_name == "late"
    assert str(raised.value) == "socket 'late' cannot be used: its context was terminated"
    assert "late" not in manager.sockets
