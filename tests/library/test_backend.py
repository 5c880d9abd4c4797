"""agentzero.manager.backend relies on a few names of pyzmq: fail loudly if a release changes them."""

from __future__ import annotations

import uuid

import pytest
import zmq
import zmq.backend
import zmq.green

from agentzero.manager import backend as _backend

# The range agentzero's fast paths were tested with; keep in step with the pin in pyproject.toml.
TESTED_PYZMQ_MAJORS = range(25, 28)


def test_pyzmq_is_a_tested_release():
    major = int(zmq.__version__.split(".")[0])
    assert major in TESTED_PYZMQ_MAJORS, (
        f"agentzero.manager.backend was tested with pyzmq "
        f"{TESTED_PYZMQ_MAJORS.start}-{TESTED_PYZMQ_MAJORS.stop - 1}, found {zmq.__version__}: "
        "check the backend socket's send/recv/get still behave as below"
    )


def test_constants_are_plain_ints_with_libzmqs_values():
    for name in (
        "NOBLOCK",
        "SNDMORE",
        "POLLIN",
        "POLLOUT",
        "EVENTS",
        "FD",
        "EAGAIN",
        "EFSM",
        "ENOTSOCK",
        "ETERM",
    ):
        value = getattr(_backend, name)
        assert type(value) is int
        assert value == int(getattr(zmq, name))
    assert _backend.NOT_READY_ERRNOS == {zmq.EAGAIN, zmq.EFSM}
    assert _backend.CLOSED_ERRNOS == {zmq.ENOTSOCK, zmq.ETERM}


@pytest.mark.parametrize("module", [zmq, zmq.green], ids=["plain", "green"])
def test_every_socket_is_a_backend_socket_and_the_raw_calls_work_on_it(module):
    context = module.Context()
    address = f"inproc://{uuid.uuid4().hex}"
    receiver, sender = context.socket(module.PULL), context.socket(module.PUSH)
    try:
        assert isinstance(receiver, zmq.backend.Socket) and isinstance(sender, zmq.backend.Socket)
        receiver.bind(address)
        sender.connect(address)
        with pytest.raises(zmq.Again) as caught:
            _backend.raw_recv(receiver, _backend.NOBLOCK)  # never blocks, even green
        assert caught.value.errno == _backend.EAGAIN
        assert _backend.raw_send(sender, b"one", _backend.NOBLOCK | _backend.SNDMORE) is None
        _backend.raw_send(sender, b"two", _backend.NOBLOCK)
        assert receiver.poll(2000) == zmq.POLLIN
        assert _backend.events(receiver) & _backend.POLLIN
        first = _backend.raw_recv(receiver, _backend.NOBLOCK)
        assert type(first) is bytes and first == b"one"
        assert type(_backend.raw_get(receiver, _backend.RCVMORE)) is int and _backend.more(receiver) == 1
        second = _backend.raw_recv(receiver, _backend.NOBLOCK)
        assert second == b"two" and _backend.more(receiver) == 0
        assert type(_backend.raw_get(receiver, _backend.EVENTS)) is int
        assert isinstance(_backend.fileno(receiver), int) and _backend.fileno(receiver) >= 0
    finally:
        receiver.close(linger=0)
        sender.close(linger=0)
        context.destroy(linger=0)


def test_a_closed_socket_reports_enotsock():
    context = zmq.Context()
    socket = context.socket(zmq.PULL)
    socket.close(linger=0)
    try:
        with pytest.raises(zmq.ZMQError) as caught:
            _backend.raw_recv(socket, _backend.NOBLOCK, False)
        assert caught.value.errno in _backend.CLOSED_ERRNOS
    finally:
        context.destroy(linger=0)


def test_pyzmq_keeps_the_monitor_socket_it_made_where_close_looks_for_it():
    context = zmq.Context()
    socket = context.socket(zmq.PUSH)
    try:
        assert _backend.monitor_socket_of(socket) is None
        monitor = socket.get_monitor_socket()
        assert _backend.monitor_socket_of(socket) is monitor
        monitor.close(linger=0)
        assert _backend.monitor_socket_of(socket) is None
    finally:
        socket.close(linger=0)
        context.destroy(linger=0)
