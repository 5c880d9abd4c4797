"""With zmq.green every wait is cooperative: other greenlets run meanwhile."""

from __future__ import annotations

import gevent
import pytest
import zmq.green

from agentzero.core import SocketManager


@pytest.fixture
def green():
    context = zmq.green.Context()
    sockets = SocketManager(zmq.green, context, timeout=5)
    yield sockets
    sockets.close_all(linger=0)
    context.destroy(linger=0)


def test_other_greenlets_run_while_one_waits_to_receive(green):
    green.ensure_and_bind("in", zmq.green.PULL, "inproc://green-wait", zmq.POLLIN)
    green.ensure_and_connect("out", zmq.green.PUSH, "inproc://green-wait", zmq.POLLOUT)
    ticks = []

    def ticker():
        for number in range(5):
            ticks.append(number)
            gevent.sleep(0.01)
        green.send_safe("out", {"after": len(ticks)})

    waiter = gevent.spawn(green.recv_safe, "in", timeout=3)
    gevent.spawn(ticker)
    assert waiter.get(timeout=5) == {"after": 5}
    assert ticks == [0, 1, 2, 3, 4]


def test_wait_until_ready_yields_and_times_out(green):
    green.ensure_and_bind("in", zmq.green.PULL, "inproc://green-idle", zmq.POLLIN)
    progress = []
    other = gevent.spawn(lambda: [progress.append(gevent.sleep(0.02)) for _ in range(5)])
    assert green.wait_until_ready("in", zmq.green.POLLIN, timeout=0.3) is None
    other.join(timeout=1)
    assert len(progress) == 5


def test_subscribe_loop_in_a_greenlet_ends_on_close(green):
    green.ensure_and_bind("pub", zmq.green.PUB, "inproc://green-sub", zmq.POLLOUT)
    green.ensure_and_connect("sub", zmq.green.SUB, "inproc://green-sub", zmq.POLLIN)
    received = []

    def consume():
        for event in green.subscribe("sub", "t"):
            received.append(event.data)

    consumer = gevent.spawn(consume)
    while not received:
        green.publish_safe("pub", "t", "hello")
        gevent.sleep(0.02)
    green.close("sub", linger=0)
    consumer.join(timeout=3)
    assert consumer.dead and consumer.successful()


def test_a_callers_own_gevent_timeout_passes_through(green):
    green.ensure_and_bind("in", zmq.green.PULL, "inproc://green-timeout", zmq.POLLIN)
    with pytest.raises(gevent.Timeout) as caught:
        with gevent.Timeout(0.1):
            green.recv_safe("in", timeout=5)
    assert caught.value.seconds == 0.1


def test_waits_work_with_descriptors_above_1023():
    import os

    filler = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    context = zmq.green.Context()
    sockets = SocketManager(zmq.green, context, timeout=5)
    try:
        sockets.ensure_and_bind("in", zmq.green.PULL, "inproc://high-fds", zmq.POLLIN)
        sockets.ensure_and_connect("out", zmq.green.PUSH, "inproc://high-fds", 0)
        assert sockets.sockets["in"].getsockopt(zmq.FD) > 1023
        assert sockets.recv_safe("in", timeout=0.1) is None  # waits, then times out
        assert sockets.engage(timeout=10) == {}
        later = gevent.spawn_later(0.05, sockets.send_safe, "out", "late")
        assert sockets.recv_safe("in", timeout=2) == "late"
        later.join()
        sockets.send_safe("out", "again")
        assert sockets.engage(timeout=1000) == {sockets.sockets["in"]: zmq.POLLIN}
    finally:
        sockets.close_all(linger=0)
        context.term()
        for descriptor in filler:
            os.close(descriptor)
