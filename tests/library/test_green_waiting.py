"""The green waiting layer — no lost wake-ups, no thundering herd, exact once under load.

Every test runs real ``zmq.green`` sockets in one process with many greenlets;
timings are measured, not assumed, with margins wide enough for a loaded 2-core machine.
"""

from __future__ import annotations

import time
import uuid

import gevent
import pytest
import zmq
import zmq.green

from agentzero.core import SocketManager
from agentzero.errors import DeserializationError
from agentzero.flavours.cooperative import FALLBACK_SLICE as GREEN_FALLBACK_SLICE
from tests.conftest import terminate


@pytest.fixture
def green():
    context = zmq.green.Context()
    sockets = SocketManager(zmq.green, context, timeout=10)
    yield sockets
    sockets.close_all(linger=0)
    terminate(context)


def _inproc() -> str:
    return f"inproc://{uuid.uuid4().hex}"


def test_a_waiter_is_woken_when_another_greenlet_consumes_the_edge(green):
    # The socket's FD is edge-triggered: the send below processes the pending
    # "message arrived" command and eats the edge the waiter's watcher waits for.
    # The manager must wake the waiter itself, or it sleeps a whole fallback slice.
    address = _inproc()
    router = green.ensure_and_bind("router", zmq.green.ROUTER, address, zmq.POLLIN)
    green.ensure_and_connect("dealer", zmq.green.DEALER, address, zmq.POLLIN | zmq.POLLOUT)
    assert green.send_safe("dealer", "hello")
    identity, _ = router.recv_multipart()
    for round_number in range(50):
        waiter = gevent.spawn(green.recv_safe, "dealer", 5)
        gevent.sleep(0)  # the waiter is now asleep on the FD
        router.send_multipart([identity, b'"reply"'], flags=zmq.NOBLOCK)
        started = time.monotonic()
        assert green.send_safe("dealer", round_number)  # same socket, before the hub runs
        assert waiter.get(timeout=3) == "reply"
        assert time.monotonic() - started < GREEN_FALLBACK_SLICE / 5
        assert router.recv_multipart()[1] == str(round_number).encode()


def test_two_hundred_waiters_on_one_socket_each_get_one_message(green):
    address = _inproc()
    green.ensure_and_bind("in", zmq.green.PULL, address, zmq.POLLIN)
    green.ensure_and_connect("out", zmq.green.PUSH, address, zmq.POLLOUT)
    waiters = [gevent.spawn(green.recv_safe, "in", 10) for _ in range(200)]
    gevent.sleep(0.01)
    started = time.monotonic()
    for number in range(200):
        assert green.send_safe("out", number)
    gevent.joinall(waiters, timeout=10, raise_error=True)
    assert sorted(w.value for w in waiters) == list(range(200))
    assert time.monotonic() - started < 2


@pytest.mark.slow
def test_twenty_producers_four_consumers_under_hwm_exactly_once_in_order(green):
    address = _inproc()
    green.create("in", zmq.green.PULL)
    green.set_socket_option("in", zmq.RCVHWM, 5)
    green.bind("in", address, zmq.POLLIN)
    green.create("out", zmq.green.PUSH)
    green.set_socket_option("out", zmq.SNDHWM, 5)
    green.connect("out", address, zmq.POLLOUT)
    producers, per_producer = 20, 250
    seen: list[tuple[int, int]] = []

    def produce(producer: int) -> None:
        for sequence in range(per_producer):
            assert green.send_safe("out", [producer, sequence], timeout=10)

    def consume() -> None:
        while (message := green.recv_safe("in", timeout=1)) is not None:
            seen.append(tuple(message))  # appended before any other greenlet runs
            gevent.sleep(0)

    consumers = [gevent.spawn(consume) for _ in range(4)]
    gevent.joinall([gevent.spawn(produce, p) for p in range(producers)], timeout=30, raise_error=True)
    gevent.joinall(consumers, timeout=10, raise_error=True)
    assert sorted(seen) == [(p, s) for p in range(producers) for s in range(per_producer)]
    for producer in range(producers):
        assert [s for p, s in seen if p == producer] == list(range(per_producer))


def test_a_dealer_shared_by_a_sending_and_a_receiving_greenlet(green):
    address = _inproc()
    router = green.ensure_and_bind("router", zmq.green.ROUTER, address, zmq.POLLIN)
    green.ensure_and_connect("dealer", zmq.green.DEALER, address, zmq.POLLIN | zmq.POLLOUT)
    count = 2000

    def echo() -> None:
        for _ in range(count):
            router.send_multipart(router.recv_multipart())

    def send() -> None:
        for number in range(count):
            assert green.send_safe("dealer", number)
            if number % 10 == 0:
                gevent.sleep(0)

    def receive() -> list:
        return [green.recv_safe("dealer", timeout=5) for _ in range(count)]

    echoing = gevent.spawn(echo)
    receiving = gevent.spawn(receive)
    gevent.spawn(send).get(timeout=20)
    assert receiving.get(timeout=20) == list(range(count))
    echoing.get(timeout=5)


@pytest.mark.slow
def test_fifty_subscribers_each_get_every_event_in_order(green):
    address = _inproc()
    green.ensure_and_bind("pub", zmq.green.PUB, address, zmq.POLLOUT)
    names = [f"sub-{number}" for number in range(50)]
    for name in names:
        green.ensure_and_connect(name, zmq.green.SUB, address, zmq.POLLIN)
        green.set_topic(name, "t")
    # the slow joiner: publish until every subscriber heard one warm-up event
    pending = set(names)
    while pending:
        green.publish_safe("pub", "t", "warmup")
        for name in list(pending):
            while green.recv_event_safe(name, timeout=0.01) is not None:
                pending.discard(name)
    for name in names:
        while green.recv_event_safe(name, timeout=0.005) is not None:
            pass
    events = 200

    def listen(name: str) -> list:
        return [green.recv_event_safe(name, timeout=5).data for _ in range(events)]

    listeners = [gevent.spawn(listen, name) for name in names]
    gevent.sleep(0.01)
    for number in range(events):
        assert green.publish_safe("pub", "t", number)
        if number % 50 == 0:
            gevent.sleep(0)
    gevent.joinall(listeners, timeout=30, raise_error=True)
    assert all(listener.value == list(range(events)) for listener in listeners)


def test_timeouts_hold_to_a_few_milliseconds_under_load(green):
    address = _inproc()
    green.ensure_and_bind("busy-in", zmq.green.PULL, address, zmq.POLLIN)
    green.ensure_and_connect("busy-out", zmq.green.PUSH, address, zmq.POLLOUT)
    quiet = [f"quiet-{number}" for number in range(100)]
    for name in quiet:
        green.ensure_and_bind(name, zmq.green.PULL, _inproc(), zmq.POLLIN)
    running = True

    def pump() -> None:
        number = 0
        while running:
            green.send_safe("busy-out", number)
            green.recv_safe("busy-in", timeout=1)
            number += 1
            if number % 20 == 0:
                gevent.sleep(0)

    def timed(name: str, timeout: float) -> float:
        started = time.monotonic()
        assert green.recv_safe(name, timeout=timeout) is None
        return time.monotonic() - started

    def control(timeout: float) -> float:
        started = time.monotonic()
        gevent.sleep(timeout)
        return time.monotonic() - started

    expected = [0.05 + (index % 5) * 0.01 for index in range(len(quiet))]
    pumps = [gevent.spawn(pump) for _ in range(2)]
    try:
        waits = [gevent.spawn(timed, name, timeout) for name, timeout in zip(quiet, expected)]
        # the same timeouts as plain gevent sleeps, at the same moment: how late the hub
        # itself runs on this (shared, maybe busy) machine
        controls = [gevent.spawn(control, timeout) for timeout in expected]
        gevent.joinall(waits + controls, timeout=10, raise_error=True)
    finally:
        running = False
        gevent.joinall(pumps, timeout=5)
    ours = sorted(w.value - timeout for w, timeout in zip(waits, expected))
    hubs = sorted(c.value - timeout for c, timeout in zip(controls, expected))
    assert ours[0] >= -0.001  # never early
    # never later than a plain sleep of the same length by more than a few milliseconds
    assert ours[len(ours) // 2] <= hubs[len(hubs) // 2] + 0.005, (ours, hubs)
    assert ours[-1] <= hubs[-1] + 0.03, (ours, hubs)


def test_a_ticker_keeps_running_while_others_wait(green):
    green.ensure_and_bind("in", zmq.green.PULL, _inproc(), zmq.POLLIN)
    ticks = []

    def tick() -> None:
        while True:
            ticks.append(time.monotonic())
            gevent.sleep(0.01)

    ticker = gevent.spawn(tick)
    try:
        waiters = [gevent.spawn(green.recv_safe, "in", 0.3) for _ in range(20)]
        gevent.joinall(waiters, timeout=5, raise_error=True)
    finally:
        ticker.kill()
    assert all(w.value is None for w in waiters)
    assert len(ticks) >= 15  # ~30 expected at 10 ms; the hub was never blocked
    gaps = [later - earlier for earlier, later in zip(ticks, ticks[1:])]
    assert max(gaps) < 0.1


def test_closing_a_socket_that_engage_polls_in_another_greenlet_returns_promptly(green):
    # engage() watches every registered socket's descriptor; closing one of them from
    # another greenlet must stop that watcher first (libev aborts on a freed descriptor)
    # and end the poll, so the caller polls the sockets as they are now.
    for number in range(5):
        green.ensure_and_bind(f"in-{number}", zmq.green.PULL, _inproc(), zmq.POLLIN)
    for round_number in range(30):
        polling = gevent.spawn(green.engage, 5000)
        gevent.sleep(0.005)
        name = f"in-{round_number % 5}"
        started = time.monotonic()
        green.close(name, linger=0)
        address = _inproc()
        green.ensure_and_bind(name, zmq.green.PULL, address, zmq.POLLIN)  # likely reuses the descriptor
        assert polling.get(timeout=3) == {}
        assert time.monotonic() - started < 0.5
        green.ensure_and_connect("probe", zmq.green.PUSH, address, zmq.POLLOUT)
        assert green.send_safe("probe", round_number)
        assert green.engage(2000).get(green.sockets[name]) == zmq.POLLIN
        assert green.recv_safe(name, timeout=1) == round_number
        green.close("probe", linger=0)


def test_engage_is_told_when_another_greenlet_consumes_the_edge(green):
    # engage() parked on X; the main greenlet takes one of two messages with recv_safe,
    # which eats the descriptor's edge while X stays readable: the poll must hear of it.
    address = _inproc()
    green.ensure_and_bind("x", zmq.green.PULL, address, zmq.POLLIN)
    green.ensure_and_connect("p", zmq.green.PUSH, address, 0)
    for round_number in range(20):
        polling = gevent.spawn(green.engage, 3000)
        gevent.sleep(0.005)
        assert green.send_safe("p", 1) and green.send_safe("p", 2)
        started = time.monotonic()
        assert green.recv_safe("x", timeout=0) == 1
        assert polling.get(timeout=3) == {green.sockets["x"]: zmq.POLLIN}
        assert time.monotonic() - started < GREEN_FALLBACK_SLICE / 5, round_number
        assert green.recv_safe("x", timeout=1) == 2


def test_a_green_manager_used_from_another_thread_says_so(green):
    import threading

    green.ensure_and_bind("in", zmq.green.PULL, _inproc(), zmq.POLLIN)
    caught = []

    def other_thread() -> None:
        try:
            green.recv_safe("in", timeout=0.2)
        except Exception as exc:  # noqa: BLE001 - the test looks at what it is
            caught.append(exc)

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join(5)
    assert len(caught) == 1 and isinstance(caught[0], RuntimeError)
    assert "thread that created it" in str(caught[0])
    assert green.recv_safe("in", timeout=0.01) is None  # the owner's manager still works


@pytest.mark.parametrize(
    "call, refused",
    [
        ("recv_safe", [b"1", b"2", b"3"]),  # too many frames
        ("recv_safe", [b"x" * 50, b"y" * 50]),  # too large, over two frames
        ("recv_safe", [b"x" * 100]),  # too large, one frame
        ("recv_event_safe", [b"t", b"a", b"b"]),  # too many frames
        ("recv_event_safe", [b"t", b"x" * 100]),  # too large
        ("recv_event_safe", [b"x" * 100]),  # one frame, too large
        ("recv_event_safe", [b"x"]),  # one frame
    ],
    ids=["frames", "large-frames", "large", "event-frames", "event-large", "event-one-large", "event-one"],
)
def test_a_refused_message_still_wakes_a_waiting_greenlet(call, refused):
    # This greenlet reads the refused message without waiting, which consumes the FD's edge
    # for both messages: the receive must wake the waiter (after_operation) on its error path
    # too, or the waiter sleeps a whole fallback slice before it sees the good message.
    context = zmq.green.Context()
    sockets = SocketManager(zmq.green, context, timeout=10, max_message_size=64)
    sender = context.socket(zmq.green.PUSH)
    sender.setsockopt(zmq.LINGER, 0)
    try:
        address = _inproc()
        sockets.ensure_and_bind("in", zmq.green.PULL, address, zmq.POLLIN)
        sender.connect(address)
        received: list = []

        def wait_for_one() -> None:
            received.append(getattr(sockets, call)("in", timeout=8, polling_timeout=5000))
            received.append(time.monotonic())

        waiter = gevent.spawn(wait_for_one)
        gevent.sleep(0.1)
        assert len(sockets.get_record("in").waiters) == 1
        good = [b"topic", b'"good"'] if call == "recv_event_safe" else [b'"good"']
        sender.send_multipart(refused)
        sender.send_multipart(good)
        with pytest.raises(DeserializationError):
            getattr(sockets, call)("in", timeout=0)
        refused_at = time.monotonic()
        waiter.join(timeout=8)
        assert received, "the waiting greenlet got nothing"
        assert received[0] == ("good" if call == "recv_safe" else (b"topic", "good"))
        slept = received[1] - refused_at
        assert slept < GREEN_FALLBACK_SLICE / 2, f"the waiter slept {slept:.2f} s after the refused message"
    finally:
        sender.close(linger=0)
        sockets.close_all(linger=0)
        terminate(context)
