"""The core keeps its promises — nothing lost, nothing hangs, no raw errors, 0.4.6's surface.

Each test names the promise it holds the manager to; all run plain and green.
"""

from __future__ import annotations

import logging
import math
import subprocess
import sys
import threading
import time
import uuid
from collections import OrderedDict

import gevent
import pytest
import zmq
import zmq.green

from agentzero.core import SocketManager
from agentzero.errors import (
    DeserializationError,
    MessageTooLarge,
    SocketBindError,
    SocketClosed,
    SocketConnectError,
    WrongSocketType,
)
from tests.conftest import make_address, terminate

MESSAGES = 20_000


def _count_in_a_thread(context, address, expected, counted, done):
    """Receive with raw pyzmq in its own thread until ``expected`` messages or 10 s of silence."""
    sink = context.socket(zmq.PULL)
    sink.setsockopt(zmq.LINGER, 0)
    sink.connect(address)
    try:
        while counted[0] < expected and sink.poll(10_000):
            sink.recv()
            counted[0] += 1
    finally:
        sink.close()
        done.set()


@pytest.mark.slow
@pytest.mark.parametrize("run", range(3))
@pytest.mark.parametrize("transport", ["tcp"])
def test_close_with_linger_delivers_every_queued_message(transport, run, ipc_dir):
    # 0.4.6 users close right after sending: linger must keep every queued message.
    # Over ipc, libzmq 4.3 itself drops the tail of a closed socket's queue even with
    # linger (zeromq/libzmq#4660; raw pyzmq loses as many here), so ipc is not asserted.
    context = zmq.Context()
    manager = SocketManager(zmq, context, timeout=10)
    try:
        if transport == "tcp":
            manager.create("out", zmq.PUSH)
            _, address = manager.bind_to_random_port("out", zmq.POLLOUT, "tcp://127.0.0.1")
        else:
            address = make_address("ipc", ipc_dir)
            manager.ensure_and_bind("out", zmq.PUSH, address, zmq.POLLOUT)
        counted, done = [0], threading.Event()
        receiver = threading.Thread(
            target=_count_in_a_thread, args=(context, address, MESSAGES, counted, done), daemon=True
        )
        receiver.start()
        for number in range(MESSAGES):
            assert manager.send_safe("out", number)
        manager.close("out", linger=5000)
        assert done.wait(30)
        assert counted[0] == MESSAGES
    finally:
        manager.close_all(linger=0)
        terminate(context)


# -- timeouts: finite and non-negative, validated in one place ---------------------------------

BAD_NUMBERS = [float("nan"), float("inf"), -float("inf"), -1]


@pytest.mark.sync_only("it builds sync SocketManagers of its own")
@pytest.mark.parametrize("bad", [0, -1, 2**63, 10**30, float("nan"), 1.5, True])
def test_the_constructor_refuses_a_max_message_size_libzmq_cannot_take(zmq_module, context, bad):
    with pytest.raises(ValueError, match="max_message_size"):
        SocketManager(zmq_module, context, max_message_size=bad)


@pytest.mark.sync_only("it builds sync SocketManagers of its own")
@pytest.mark.parametrize("bad", BAD_NUMBERS, ids=repr)
def test_the_constructor_refuses_timeouts_that_are_not_finite(zmq_module, context, bad):
    with pytest.raises(ValueError, match="timeout"):
        SocketManager(zmq_module, context, timeout=bad)
    with pytest.raises(ValueError, match="polling_timeout"):
        SocketManager(zmq_module, context, polling_timeout=bad)


@pytest.fixture
def pipe(manager, zmq_module):
    address = f"inproc://{uuid.uuid4().hex}"
    manager.ensure_and_bind("in", zmq_module.PULL, address, zmq.POLLIN)
    manager.ensure_and_connect("out", zmq_module.PUSH, address, zmq.POLLOUT)
    return manager


@pytest.mark.parametrize("bad", BAD_NUMBERS, ids=repr)
def test_every_wait_refuses_timeouts_that_are_not_finite(pipe, bad):
    calls = [
        lambda: pipe.wait_until_ready("in", zmq.POLLIN, bad),
        lambda: pipe.ready("in", zmq.POLLIN, bad),
        lambda: pipe.engage(bad),
        lambda: pipe.recv_safe("in", timeout=bad),
        lambda: pipe.send_safe("out", "x", timeout=bad),
        lambda: pipe.recv_safe("in", 0.01, bad),
        lambda: pipe.publish_safe("out", "t", "x", timeout=bad),
        lambda: pipe.recv_event_safe("in", timeout=bad),
    ]
    for call in calls:
        started = time.monotonic()
        with pytest.raises(ValueError, match="timeout"):
            call()
        assert time.monotonic() - started < 0.5


# -- REQ/REP out of turn: False/None, never a raw EFSM ------------------------------------------


def test_send_safe_on_a_socket_whose_turn_it_is_not_returns_false(manager, zmq_module):
    manager.create("rep", zmq_module.REP)
    _, address = manager.bind_to_random_port("rep", zmq.POLLIN | zmq.POLLOUT, "tcp://127.0.0.1")
    manager.ensure_and_connect("req", zmq_module.REQ, address, zmq.POLLIN | zmq.POLLOUT)
    started = time.monotonic()
    assert manager.send_safe("rep", "nobody asked", timeout=0.1) is False
    assert manager.send_safe("req", "question", timeout=1) is True
    assert manager.send_safe("req", "again", timeout=0.1) is False
    assert time.monotonic() - started < 1.5
    # ... and the pair still works for the next valid exchange
    assert manager.recv_safe("rep", timeout=2) == "question"
    assert manager.recv_safe("rep", timeout=0.05) is None
    assert manager.send_safe("rep", "answer", timeout=1) is True
    assert manager.recv_safe("req", timeout=2) == "answer"


def test_recv_safe_on_a_req_that_sent_nothing_returns_none(manager, zmq_module):
    manager.create("req", zmq_module.REQ)
    manager.bind_to_random_port("req", zmq.POLLIN, "tcp://127.0.0.1")
    assert manager.recv_safe("req", timeout=0.05) is None


# -- a socket closed under a waiting greenlet ---------------------------------------------------


def test_a_greenlet_waiting_on_a_socket_another_closes_ends_promptly():
    context = zmq.green.Context()
    manager = SocketManager(zmq.green, context, timeout=10)
    try:
        manager.ensure_and_bind("in", zmq.green.PULL, f"inproc://{uuid.uuid4().hex}", zmq.POLLIN)
        waiter = gevent.spawn(manager.recv_safe, "in", 5)
        gevent.sleep(0.05)
        started = time.monotonic()
        manager.close("in", linger=0)
        waiter.join(2)
        assert waiter.ready()
        assert isinstance(waiter.exception, SocketClosed)
        assert "in" in str(waiter.exception)
        assert time.monotonic() - started < 0.2
    finally:
        manager.close_all(linger=0)
        terminate(context)


def test_subscribe_ends_at_once_when_its_socket_is_closed_by_another_greenlet():
    context = zmq.green.Context()
    manager = SocketManager(zmq.green, context, timeout=10)
    try:
        manager.ensure_and_connect("sub", zmq.green.SUB, f"inproc://{uuid.uuid4().hex}", zmq.POLLIN)
        loop = gevent.spawn(lambda: list(manager.subscribe("sub")))
        gevent.sleep(0.05)
        manager.close("sub", linger=0)
        loop.join(2)
        assert loop.successful() and loop.value == []
    finally:
        manager.close_all(linger=0)
        terminate(context)


# -- clear library errors instead of raw ZMQError ---------------------------------------------


@pytest.mark.parametrize("kind", ["PUB", "PUSH", "REQ"])
def test_subscribe_on_a_socket_that_is_not_a_sub_names_the_problem(manager, zmq_module, kind):
    manager.create("not-a-sub", getattr(zmq_module, kind))
    with pytest.raises(WrongSocketType, match="not-a-sub"):
        manager.subscribe("not-a-sub", "topic")
    with pytest.raises(WrongSocketType, match="SUB"):
        manager.set_topic("not-a-sub", "topic")
    with pytest.raises(TypeError):  # WrongSocketType is also a TypeError
        manager.recv_event_safe("not-a-sub", "topic", timeout=0.01)


@pytest.mark.parametrize("port", ["65536", "99999", "-1", "1000000"])
def test_bind_refuses_ports_out_of_range(manager, zmq_module, port):
    manager.create("server", zmq_module.PULL)
    with pytest.raises(SocketBindError, match=port):
        manager.bind("server", f"tcp://127.0.0.1:{port}", zmq.POLLIN)
    _, address = manager.bind_to_random_port("server", zmq.POLLIN, "tcp://127.0.0.1")
    assert address.startswith("tcp://127.0.0.1:")


@pytest.mark.parametrize("port", ["0", "65536", "70000", "*"])
def test_connect_refuses_ports_out_of_range(manager, zmq_module, port):
    manager.create("client", zmq_module.PUSH)
    with pytest.raises(SocketConnectError, match="127.0.0.1"):
        manager.connect("client", f"tcp://127.0.0.1:{port}", zmq.POLLOUT)


def test_disconnect_of_an_unknown_address_is_harmless(manager, zmq_module):
    manager.create("server", zmq_module.PULL)
    _, address = manager.bind_to_random_port("server", zmq.POLLIN, "tcp://127.0.0.1")
    manager.ensure_and_connect("client", zmq_module.PUSH, address, zmq.POLLOUT)
    assert manager.disconnect("client", "tcp://127.0.0.1:1") is False
    assert manager.disconnect("client", address) is True
    assert manager.disconnect("client", address) is False
    assert "client" not in manager.addresses
    assert manager.disconnect("client") is False


# -- the whole message is capped, not each frame -----------------------------------------------


@pytest.mark.sync_only("it builds sync SocketManagers of its own")
def test_max_message_size_caps_a_multipart_message_and_memory_stays_bounded(zmq_module, context):
    with SocketManager(zmq_module, context, timeout=5, max_message_size=1024) as manager:
        address = f"inproc://{uuid.uuid4().hex}"
        manager.ensure_and_bind("in", zmq_module.PULL, address, zmq.POLLIN)
        sender = context.socket(zmq_module.PUSH)
        sender.setsockopt(zmq.LINGER, 0)
        sender.connect(address)
        try:
            frames = [b"x" * 1000] * 5000  # 5 MB in 1,000-byte frames
            sender.send_multipart(frames)
            with pytest.raises(MessageTooLarge) as caught:
                manager.recv_safe("in", timeout=5)
            assert sum(len(frame) for frame in caught.value.raw) <= 1024
            sender.send(b'"next"')
            assert manager.recv_safe("in", timeout=5) == "next"
            # the same cap holds for events
            manager.ensure_and_bind("events", zmq_module.SUB, f"inproc://{uuid.uuid4().hex}", zmq.POLLIN)
        finally:
            sender.close(linger=0)


def test_an_oversized_one_frame_event_is_too_large_and_keeps_no_more_than_the_limit(manager, zmq_module):
    # recv_event_safe refused it as "got 1 frame" with the whole payload as raw: past the cap
    address = f"inproc://{uuid.uuid4().hex}"
    manager.ensure_and_bind("in", zmq_module.PULL, address, zmq.POLLIN)
    manager.set_socket_option("in", zmq.MAXMSGSIZE, 64)
    manager.ensure_and_connect("out", zmq_module.PUSH, address, zmq.POLLOUT)
    assert manager.send_safe("out", "x" * 10_000)  # one frame, no topic
    with pytest.raises(MessageTooLarge) as caught:
        manager.recv_event_safe("in", timeout=5)
    assert caught.value.size == 10_002 and caught.value.limit == 64
    assert sum(len(frame) for frame in caught.value.raw) <= 64
    assert manager.publish_safe("out", "topic", "next")
    assert manager.recv_event_safe("in", timeout=5) == (b"topic", "next")
    assert manager.send_safe("out", "small")  # under the cap, one frame is still the frame error
    with pytest.raises(DeserializationError, match="expected 2 frames") as caught:
        manager.recv_event_safe("in", timeout=5)
    assert not isinstance(caught.value, MessageTooLarge)


# -- loggers are detached when their socket closes ---------------------------------------------


@pytest.mark.sync_only("it builds sync SocketManagers of its own")
def test_two_hundred_managers_that_closed_leave_no_handlers_behind(zmq_module, context):
    name = f"shared-{uuid.uuid4().hex}"
    logger = logging.getLogger(name)
    for _ in range(200):
        manager = SocketManager(zmq_module, context)
        manager.ensure_and_bind("logs", zmq_module.PUB, f"inproc://{uuid.uuid4().hex}", zmq.POLLOUT)
        assert manager.get_logger("logs", logger_name=name) is logger
        manager.close("logs", linger=0)
    assert logger.handlers == []


@pytest.mark.sync_only("it builds sync SocketManagers of its own")
def test_two_managers_with_the_same_socket_name_publish_only_their_own_records(zmq_module, context):
    name_one, name_two = f"one-{uuid.uuid4().hex}", f"two-{uuid.uuid4().hex}"
    first, second = SocketManager(zmq_module, context), SocketManager(zmq_module, context)
    try:
        for manager in (first, second):
            manager.ensure_and_bind("logs", zmq_module.PUB, f"inproc://{uuid.uuid4().hex}", zmq.POLLOUT)
        one = first.get_logger("logs", logger_name=name_one)
        two = second.get_logger("logs", logger_name=name_two)
        assert len(one.handlers) == 1 and len(two.handlers) == 1
        assert one.handlers[0].manager is first and two.handlers[0].manager is second
        first.close("logs", linger=0)
        assert one.handlers == [] and len(two.handlers) == 1
    finally:
        first.close_all(linger=0)
        second.close_all(linger=0)


# -- 0.4.6's attributes -------------------------------------------------------------------------


def test_the_attributes_code_written_for_0_4_6_reads(manager, zmq_module):
    assert manager.zmq is zmq_module
    assert isinstance(manager.poller, zmq_module.Poller)
    for mapping in (manager.sockets, manager.registry, manager.addresses):
        assert isinstance(mapping, OrderedDict)
    address = f"inproc://{uuid.uuid4().hex}"
    socket = manager.ensure_and_bind("in", zmq_module.PULL, address, zmq.POLLIN)
    manager.ensure_and_connect("out", zmq_module.PUSH, address, zmq.POLLOUT)
    assert manager.registry[socket] == zmq.POLLIN
    assert list(manager.sockets) == ["in", "out"]
    assert manager.addresses["out"] == address
    assert manager.disconnect("out") is True
    assert "out" not in manager.addresses
    assert math.isfinite(manager.timeout)


# -- a monitored socket closes cleanly ---------------------------------------------------------


@pytest.mark.sync_only("it builds sync SocketManagers of its own")
@pytest.mark.slow
def test_closing_monitored_sockets_never_wedges_the_context(zmq_module, context):
    # libzmq 4.3 can hang its I/O thread when a socket closes with an active monitor;
    # close() stops the monitor first, so the context keeps serving new connections.
    with SocketManager(zmq_module, context, timeout=5) as manager:
        manager.create("server", zmq_module.PULL)
        _, address = manager.bind_to_random_port("server", zmq.POLLIN, "tcp://127.0.0.1")
        for cycle in range(150):
            socket = manager.ensure_and_connect("client", zmq_module.PUSH, address, zmq.POLLOUT)
            monitor = socket.get_monitor_socket()
            assert manager.send_safe("client", cycle, timeout=5)
            assert manager.recv_safe("server", timeout=5) == cycle
            manager.close("client", linger=0)
            monitor.close(linger=0)


@pytest.mark.sync_only("it builds sync SocketManagers of its own")
def test_close_all_detaches_the_handlers_of_sockets_never_created(zmq_module, context):
    name = f"never-{uuid.uuid4().hex}"
    manager = SocketManager(zmq_module, context)
    logger = manager.get_logger("never-created", logger_name=name)
    assert len(logger.handlers) == 1
    manager.close_all()
    assert logger.handlers == []


UNREAD_MONITOR = """
import sys, time, zmq, zmq.green
from agentzero.core import SocketManager
module = zmq.green if sys.argv[1] == "green" else zmq
context = module.Context()
with SocketManager(module, context, timeout=5) as manager:
    manager.create("server", module.PULL)
    _, address = manager.bind_to_random_port("server", zmq.POLLIN, "tcp://127.0.0.1")
    monitor = manager.sockets["server"].get_monitor_socket()  # and nobody reads it
    peer = context.socket(zmq.PUSH)
    peer.linger = 0
    for _ in range(1000):  # accepted, handshake, disconnected: more events than the queue holds
        peer.connect(address)
        time.sleep(0.001)
        peer.disconnect(address)
    time.sleep(0.5)
    manager.close("server", linger=0)
    monitor.close(linger=0)
    peer.close(linger=0)
context.destroy(linger=0)
print("closed")
"""


@pytest.mark.slow
@pytest.mark.parametrize("flavour", ["plain", "green"])
def test_close_returns_at_once_when_nobody_read_the_sockets_monitor(flavour):
    # Stopping a monitor sends a last event with a blocking send: with its queue full
    # of unread events, libzmq never returned, holding the GIL (so: a subprocess).
    result = subprocess.run(
        [sys.executable, "-c", UNREAD_MONITOR, flavour], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "closed"


@pytest.mark.parametrize("bad", ["1000", 1.5, True, 2**31, 10**30])
def test_close_with_a_bad_linger_closes_nothing(manager, zmq_module, bad):
    manager.create("server", zmq_module.PULL)
    _, address = manager.bind_to_random_port("server", zmq.POLLIN, "tcp://127.0.0.1")
    error = ValueError if isinstance(bad, int) and not isinstance(bad, bool) else TypeError
    with pytest.raises(error, match="linger"):
        manager.close("server", linger=bad)
    with pytest.raises(error, match="linger"):
        manager.close_all(linger=bad)
    assert "server" in manager.sockets and not manager.sockets["server"].closed
    manager.close("server", linger=0)
    manager.create("again", zmq_module.PULL)
    manager.bind("again", address, zmq.POLLIN)  # the port was really released


@pytest.mark.parametrize("huge", [10**400, 1e300])
def test_huge_timeouts_are_refused_or_honoured_never_overflow(pipe, huge):
    if isinstance(huge, int):
        with pytest.raises(ValueError, match="timeout"):
            pipe.recv_safe("in", timeout=huge)
        with pytest.raises(ValueError, match="timeout"):
            pipe.engage(huge)
    else:  # finite: accepted, and the waits still end when something is ready
        assert pipe.send_safe("out", "x", timeout=huge)
        assert pipe.engage(huge)
        assert pipe.recv_safe("in", timeout=huge, polling_timeout=huge) == "x"


def test_engage_forgets_a_registered_socket_closed_behind_its_back(manager, zmq_module, context):
    manager.ensure_and_bind("quiet", zmq_module.PULL, f"inproc://{uuid.uuid4().hex}", zmq.POLLIN)
    outsider = context.socket(zmq_module.PULL)
    manager.register_socket(outsider, zmq.POLLIN)
    outsider.close(linger=0)
    started = time.monotonic()
    assert manager.engage(200) == {}
    assert 0.15 <= time.monotonic() - started < 1.5  # a real wait, not a spin nor fd 0
    assert outsider not in manager.registry
