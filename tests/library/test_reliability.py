"""Faults survived and nothing lost: resets, dead peers, slow subscribers, shutdown, load."""

from __future__ import annotations

import gc
import hashlib
import multiprocessing
import os
import signal
import time

import gevent
import pytest
import zmq
import zmq.green

from agentzero.core import SocketManager
from agentzero.util import get_free_tcp_port
from tests.conftest import publish_until_received

SPAWN = multiprocessing.get_context("spawn")


# -- reset: the lazy pirate ---------------------------------------------------------------


@pytest.mark.sync_only("it drives a peer socket's own blocking multipart calls")
def test_reset_recreates_a_stuck_req_socket_as_it_was(manager, zmq_module):
    manager.ensure_and_bind("server", zmq_module.ROUTER, "inproc://pirate", zmq.POLLIN | zmq.POLLOUT)
    manager.create("client", zmq_module.REQ)
    manager.set_socket_option("client", zmq.LINGER, 123)
    manager.connect("client", "inproc://pirate", zmq.POLLIN | zmq.POLLOUT)
    old = manager.sockets["client"]
    server = manager.sockets["server"]
    assert manager.send_safe("client", {"id": 1})
    server.recv_multipart()  # the server drops this request
    assert manager.recv_safe("client", timeout=0.2) is None
    # a REQ that got no reply is stuck: it never becomes writable (0.4.6: False, no raw ZMQError)
    assert manager.send_safe("client", {"id": 1}, timeout=0.2) is False
    new = manager.reset("client")
    assert new is not old and old.closed and manager.sockets["client"] is new
    assert new.getsockopt(zmq.LINGER) == 123
    assert manager.get_record("client").connects == ["inproc://pirate"]
    assert manager.send_safe("client", {"id": 1})
    identity, empty, payload = server.recv_multipart()
    server.send_multipart([identity, empty, payload])
    assert manager.recv_safe("client", timeout=2) == {"id": 1}


def test_reset_keeps_subscriptions_and_bound_addresses(manager, zmq_module):
    manager.ensure_and_bind("sub", zmq_module.SUB, "tcp://127.0.0.1:*", zmq.POLLIN)
    address = manager.addresses["sub"]
    manager.set_topic("sub", "keep")
    manager.ensure_and_connect("pub", zmq_module.PUB, address, zmq.POLLOUT)
    publish_until_received(manager, "pub", "sub", "keep", 1)
    manager.reset("sub")
    assert manager.addresses["sub"] == address
    assert manager.get_record("sub").subscriptions == {b"keep"}
    event = publish_until_received(manager, "pub", "sub", "keep:again", 2)
    assert event.topic.startswith(b"keep")
    manager.publish_safe("pub", "other", 3)
    while (late := manager.recv_event_safe("sub", timeout=0.2)) is not None:
        assert late.topic.startswith(b"keep")


def _dropping_server(port_queue, drop_every: int, answer: int) -> None:
    context = zmq.Context()
    server = context.socket(zmq.ROUTER)
    server.linger = 0
    port_queue.put(server.bind_to_random_port("tcp://127.0.0.1"))
    received = 0
    server.RCVTIMEO = 10000
    try:
        while answer > 0:
            identity, empty, payload = server.recv_multipart()
            received += 1
            if received % drop_every == 0:
                continue  # dropped: the client must time out, reset and retry
            server.send_multipart([identity, empty, payload])
            answer -= 1
    except zmq.Again:
        pass
    finally:
        server.close()
        context.term()


def test_lazy_pirate_retries_through_a_server_that_drops_requests(manager, zmq_module):
    ports = SPAWN.Queue()
    server = SPAWN.Process(target=_dropping_server, args=(ports, 2, 10))
    server.start()
    try:
        port = ports.get(timeout=20)
        manager.ensure_and_connect(
            "client", zmq_module.REQ, f"tcp://127.0.0.1:{port}", zmq.POLLIN | zmq.POLLOUT
        )
        retries = 0
        for request in range(10):
            for _attempt in range(10):
                assert manager.send_safe("client", {"request": request})
                reply = manager.recv_safe("client", timeout=0.3)
                if reply is not None:
                    break
                retries += 1
                manager.reset("client")
            assert reply == {"request": request}
        assert retries >= 5  # every other request was dropped
    finally:
        server.join(timeout=15)
        if server.is_alive():
            server.kill()


# -- a dead receiver, restarted on the same address -------------------------------------------


def _counting_receiver(address: str, ready, results) -> None:
    context = zmq.Context()
    with SocketManager(zmq, context, timeout=30) as sockets:
        sockets.ensure_and_bind("in", zmq.PULL, address, zmq.POLLIN)
        ready.set()
        phase_two = []
        while True:
            message = sockets.recv_safe("in", timeout=30)
            if message is None or message == "end":
                break
            if message["phase"] == 2:
                phase_two.append(message["n"])
        results.put(phase_two)
    context.term()


def test_sigkilled_receiver_restarted_on_the_same_address_gets_the_rest(manager, zmq_module):
    address = f"tcp://127.0.0.1:{get_free_tcp_port()}"
    results = SPAWN.Queue()
    first_ready = SPAWN.Event()
    first = SPAWN.Process(target=_counting_receiver, args=(address, first_ready, results))
    first.start()
    assert first_ready.wait(20)
    manager.ensure_and_connect("out", zmq_module.PUSH, address, zmq.POLLOUT)
    for number in range(2000):
        manager.send_safe("out", {"phase": 1, "n": number}, timeout=0.01)
        if number == 1000:
            os.kill(first.pid, signal.SIGKILL)  # mid-stream
    first.join(timeout=10)
    started = time.monotonic()
    while manager.send_safe("out", {"phase": 1, "n": -1}, timeout=0.01):  # until the queue is full
        assert time.monotonic() - started < 10, "a PUSH with no peer should fill its queue"
    second_ready = SPAWN.Event()
    second = SPAWN.Process(target=_counting_receiver, args=(address, second_ready, results))
    second.start()
    try:
        assert second_ready.wait(20)
        for number in range(3000):
            assert manager.send_safe("out", {"phase": 2, "n": number}, timeout=10)
        assert manager.send_safe("out", "end", timeout=10)
        received = results.get(timeout=30)
        assert received == list(range(3000))  # everything sent after the restart, in order
    finally:
        second.join(timeout=10)
        if second.is_alive():
            second.kill()


# -- slow subscribers, shutdown, descriptors -------------------------------------------------


def test_slow_subscriber_never_blocks_the_publisher_and_loses_a_bounded_tail(manager, zmq_module):
    manager.create("pub", zmq_module.PUB)
    manager.set_socket_option("pub", zmq.SNDHWM, 100)
    manager.bind("pub", "inproc://slow", zmq.POLLOUT)
    manager.create("sub", zmq_module.SUB)
    manager.set_socket_option("sub", zmq.RCVHWM, 100)
    manager.connect("sub", "inproc://slow", zmq.POLLIN)
    manager.set_topic("sub", "n")
    publish_until_received(manager, "pub", "sub", "n", -1)
    while manager.recv_event_safe("sub", timeout=0.05) is not None:
        pass
    started = time.monotonic()
    for number in range(20000):  # the subscriber reads nothing meanwhile
        assert manager.publish_safe("pub", "n", number) is True
    assert time.monotonic() - started < 10
    received = []
    while (event := manager.recv_event_safe("sub", timeout=0.2)) is not None:
        received.append(event.data)
    # over inproc a subscriber holds at most SNDHWM + RCVHWM messages; the rest is dropped
    assert 0 < len(received) <= 200
    assert received == list(range(len(received)))  # the oldest are kept, in order, no duplicates


def _pending_then_shutdown(address: str) -> None:
    context = zmq.Context()
    sockets = SocketManager(zmq, context)
    sockets.ensure_and_connect("out", zmq.PUSH, address, zmq.POLLOUT)
    for number in range(100):
        sockets.send_safe("out", {"n": number}, timeout=0.1)  # nobody listens: they stay queued
    sockets.close_all(linger=200)
    context.term()


def test_context_shutdown_with_pending_messages_does_not_hang():
    address = f"tcp://127.0.0.1:{get_free_tcp_port()}"  # nothing listens there
    child = SPAWN.Process(target=_pending_then_shutdown, args=(address,))
    started = time.monotonic()
    child.start()
    child.join(timeout=30)
    assert child.exitcode == 0 and time.monotonic() - started < 30


@pytest.mark.sync_only("it builds sync SocketManagers of its own")
def test_ten_thousand_create_close_cycles_leave_no_descriptors(zmq_module, context):
    def open_descriptors() -> int:
        return len(os.listdir("/proc/self/fd"))

    sockets = SocketManager(zmq_module, context)
    sockets.ensure_and_bind("warmup", zmq_module.PULL, "inproc://fd-warmup", zmq.POLLIN)
    sockets.close("warmup")
    gc.collect()
    before = open_descriptors()
    for number in range(10000):
        sockets.ensure_and_bind("cycle", zmq_module.PULL, f"inproc://fd-{number % 3}", zmq.POLLIN)
        sockets.close("cycle", linger=0)
    gc.collect()
    deadline = time.monotonic() + 5
    while open_descriptors() > before + 2 and time.monotonic() < deadline:
        time.sleep(0.05)  # libzmq's reaper closes mailboxes in the background
    assert open_descriptors() <= before + 2
    assert sockets.sockets == {}


# -- load --------------------------------------------------------------------------------------


def _million_sender(address: str, count: int, acknowledged) -> None:
    context = zmq.Context()
    with SocketManager(zmq, context, timeout=30) as sockets:
        sockets.ensure_and_connect("out", zmq.PUSH, address, zmq.POLLOUT)
        for number in range(count):
            if not sockets.send_safe("out", number):
                raise SystemExit(f"send {number} timed out")
        sockets.send_safe("out", "end")
        acknowledged.wait(120)
        sockets.close("out", linger=1000)
    context.term()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_million_messages_between_processes_none_lost_none_duplicated(ipc_dir):
    count = 1_000_000
    context = zmq.Context()
    sockets = SocketManager(zmq, context, timeout=30)
    sockets.ensure_and_bind("in", zmq.PULL, f"ipc://{ipc_dir}/million", zmq.POLLIN)
    acknowledged = SPAWN.Event()
    sender = SPAWN.Process(target=_million_sender, args=(sockets.addresses["in"], count, acknowledged))
    sender.start()
    try:
        received, total, digest, expected = 0, 0, hashlib.sha256(), 0
        while True:
            number = sockets.recv_safe("in", timeout=60)
            assert number is not None, f"the stream stopped after {received} messages"
            if number == "end":
                break
            assert number == expected, f"expected {expected}, got {number}"  # no loss, no duplicate
            expected += 1
            received += 1
            total += number
        acknowledged.set()
        assert received == count and total == count * (count - 1) // 2
        del digest
    finally:
        acknowledged.set()
        sender.join(timeout=30)
        if sender.is_alive():
            sender.kill()
        sockets.close_all(linger=0)
        context.term()
    assert sender.exitcode == 0


@pytest.mark.timeout(120)
def test_a_thousand_greenlets_doing_request_reply_through_one_manager():
    context = zmq.green.Context()
    sockets = SocketManager(zmq.green, context, timeout=30)
    server = sockets.ensure_and_bind("server", zmq.green.ROUTER, "inproc://thousand", zmq.POLLIN)

    def serve() -> None:
        while True:
            identity, empty, payload = server.recv_multipart()
            server.send_multipart([identity, empty, payload])

    def client(number: int) -> bool:
        name = f"client-{number}"
        sockets.ensure_and_connect(name, zmq.green.REQ, "inproc://thousand", zmq.POLLIN | zmq.POLLOUT)
        nonce = os.urandom(8).hex()
        for round_trip in range(3):
            request = {"client": number, "round": round_trip, "nonce": nonce}
            assert sockets.send_safe(name, request)
            assert sockets.recv_safe(name) == request
        return True

    serving = gevent.spawn(serve)
    try:
        clients = [gevent.spawn(client, number) for number in range(1000)]
        gevent.joinall(clients, timeout=90, raise_error=True)
        assert all(c.successful() and c.value is True for c in clients)
        assert len(sockets.sockets) == 1001
    finally:
        serving.kill()
        sockets.close_all(linger=0)
        context.term()


# -- the concurrency contract ------------------------------------------------------------------


def test_several_greenlets_waiting_on_one_socket_share_its_messages():
    context = zmq.green.Context()
    sockets = SocketManager(zmq.green, context)
    sockets.ensure_and_bind("in", zmq.green.PULL, "inproc://shared", zmq.POLLIN)
    sockets.ensure_and_connect("out", zmq.green.PUSH, "inproc://shared", zmq.POLLOUT)
    received: dict[int, list] = {}

    def reader(number: int) -> None:
        mine = received.setdefault(number, [])
        while (message := sockets.recv_safe("in", timeout=1)) is not None:
            mine.append(message)
            gevent.sleep(0)  # a consumer doing some cooperative work per message

    readers = [gevent.spawn(reader, number) for number in range(10)]
    gevent.sleep(0.05)
    for number in range(3000):
        sockets.send_safe("out", {"n": number, "payload": "x" * (number % 50)})
        if number % 200 == 0:
            gevent.sleep(0)
    gevent.joinall(readers, timeout=10, raise_error=True)
    everything = sorted(m["n"] for mine in received.values() for m in mine)
    assert everything == list(range(3000))  # each message exactly once, none corrupted
    assert sum(1 for mine in received.values() if mine) > 1  # the waiting was shared
    sockets.close_all(linger=0)
    context.term()
