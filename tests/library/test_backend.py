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
        more = _backend.more_reader(receiver)
        assert type(_backend.raw_get(receiver, _backend.RCVMORE)) is int and more() == 1
        second = _backend.raw_recv(receiver, _backend.NOBLOCK)
        assert second == b"two" and more() == 0
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


def test_libzmqs_own_getsockopt_is_found_here():
    """The wheel most users get is here: the fast RCVMORE read must be in use, not the fallback."""
    assert _backend._getsockopt is not None


@pytest.mark.parametrize("module", [zmq, zmq.green], ids=["plain", "green"])
@pytest.mark.parametrize("transport", ["inproc", "ipc", "tcp"])
def test_more_reader_agrees_with_pyzmqs_rcvmore_frame_by_frame(module, transport, tmp_path):
    context = module.Context()
    receiver, sender = context.socket(module.PULL), context.socket(module.PUSH)
    try:
        if transport == "tcp":
            port = receiver.bind_to_random_port("tcp://127.0.0.1")
            address = f"tcp://127.0.0.1:{port}"
        else:
            address = f"inproc://{uuid.uuid4().hex}" if transport == "inproc" else f"ipc://{tmp_path}/m"
            receiver.bind(address)
        sender.connect(address)
        more = _backend.more_reader(receiver)
        messages = [[b"one"], [b"a", b"b", b"c"], [b""], [b"x" * 70_000, b""]]
        for frames in messages:
            sender.send_multipart(frames)
        seen = []
        for frames in messages:
            for index, expected in enumerate(frames):
                assert receiver.poll(5000)
                assert _backend.raw_recv(receiver, _backend.NOBLOCK) == expected
                flag = more()
                assert bool(flag) == (index < len(frames) - 1) == bool(receiver.get(zmq.RCVMORE))
                seen.append(flag)
        assert seen.count(0) == len(messages)
    finally:
        receiver.close(linger=0)
        sender.close(linger=0)
        context.term()


def test_more_reader_of_a_closed_socket_raises_instead_of_reading_freed_memory():
    context = zmq.Context()
    socket = context.socket(zmq.PULL)
    more = _backend.more_reader(socket)
    assert more() == 0
    socket.close(linger=0)
    with pytest.raises(zmq.ZMQError) as caught:
        more()
    assert caught.value.errno == zmq.ENOTSOCK
    context.term()


def test_more_readers_of_two_sockets_in_two_threads_never_mix_their_answers():
    """Each socket's reader reads into its own int: one thread never sees another's flag."""
    import threading

    context = zmq.Context()
    errors: list[str] = []

    def stream(frames_per_message: int) -> None:
        address = f"inproc://{uuid.uuid4().hex}"
        receiver, sender = context.socket(zmq.PAIR), context.socket(zmq.PAIR)
        receiver.bind(address)
        sender.connect(address)
        more = _backend.more_reader(receiver)
        try:
            for _ in range(3000):
                sender.send_multipart([b"f"] * frames_per_message)
                for index in range(frames_per_message):
                    _backend.raw_recv(receiver, 0)
                    if bool(more()) != (index < frames_per_message - 1):
                        errors.append(f"{frames_per_message} frames: wrong flag at frame {index}")
                        return
        finally:
            receiver.close(linger=0)
            sender.close(linger=0)

    threads = [threading.Thread(target=stream, args=(count,)) for count in (1, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    context.term()
    assert errors == []
