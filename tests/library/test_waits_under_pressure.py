"""How long the waiting calls wait, and what they let run meanwhile.

* A ROUTER's ``POLLOUT`` means "some peer has room", not "the peer this reply
  goes to has room": a reply to a peer whose queue is full was retried in a
  tight loop until its timeout, burning a core and, under gevent or asyncio,
  starving every other greenlet or task for the whole timeout.
* The plain flavour receives with a blocking libzmq receive bounded by
  ``zmq.RCVTIMEO``, remembered per socket: the manager's own ``timeout`` and
  a ``RCVTIMEO`` set through ``set_socket_option`` must still bound it, and so
  must a signal handler that runs while it waits.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
import zmq
import zmq.green

from agentzero.asyncio import SocketManager as AsyncioSocketManager
from agentzero.core import SocketManager

#: how long the reply to the full peer may wait
REPLY_TIMEOUT = 0.5


def _router_with_a_full_peer(manager, context, address):
    """A ROUTER with two DEALER peers, ``slow`` (never reads, queue full) and ``fast``; returns them."""
    manager.create("router", zmq.ROUTER)
    manager.set_socket_option("router", zmq.SNDHWM, 1)
    manager.bind("router", address, zmq.POLLIN | zmq.POLLOUT)
    dealers = {}
    for identity in (b"slow", b"fast"):
        dealer = context.socket(zmq.DEALER)
        dealer.setsockopt(zmq.IDENTITY, identity)
        dealer.setsockopt(zmq.RCVHWM, 1)
        dealer.connect(address)
        dealers[identity] = dealer
    return dealers


def _fill(manager):
    sent = 0
    while manager.send_reply_safe("router", (b"slow",), sent, timeout=0):
        sent += 1
        assert sent < 1000
    return sent


def _hello(dealers):
    for dealer in dealers.values():
        dealer.send(b"1")


def test_plain_reply_to_a_full_peer_does_not_spin():
    context = zmq.Context()
    manager = SocketManager(zmq, context)
    dealers = _router_with_a_full_peer(manager, context, f"inproc://review4-{uuid.uuid4().hex}")
    try:
        _hello(dealers)
        for _ in dealers:
            assert manager.recv_request_safe("router", timeout=5) is not None
        _fill(manager)
        cpu, wall = time.process_time(), time.monotonic()
        assert manager.send_reply_safe("router", (b"slow",), "late", timeout=REPLY_TIMEOUT) is False
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        assert wall >= REPLY_TIMEOUT * 0.9
        assert cpu < wall * 0.3, f"busy-waited: {cpu:.3f} s of CPU in {wall:.3f} s"
    finally:
        manager.close_all(linger=0)
        for dealer in dealers.values():
            dealer.close(0)
        context.term()


def test_green_reply_to_a_full_peer_lets_other_greenlets_run():
    import gevent

    context = zmq.green.Context()
    manager = SocketManager(zmq.green, context)
    dealers = _router_with_a_full_peer(manager, context, f"inproc://review4-{uuid.uuid4().hex}")
    ticks = [0]

    def ticker():
        while True:
            gevent.sleep(0.01)
            ticks[0] += 1

    clock = gevent.spawn(ticker)
    try:
        _hello(dealers)
        for _ in dealers:
            assert manager.recv_request_safe("router", timeout=5) is not None
        _fill(manager)
        gevent.sleep(0.02)
        ticks[0] = 0
        assert manager.send_reply_safe("router", (b"slow",), "late", timeout=REPLY_TIMEOUT) is False
        assert ticks[0] >= 10, f"the hub was starved: the ticker ran {ticks[0]} times in {REPLY_TIMEOUT} s"
    finally:
        clock.kill()
        manager.close_all(linger=0)
        for dealer in dealers.values():
            dealer.close(0)
        context.term()


def test_asyncio_reply_to_a_full_peer_lets_other_tasks_run():
    async def scenario():
        context = zmq.Context()
        manager = AsyncioSocketManager(context=context)
        dealers = _router_with_a_full_peer(manager, context, f"inproc://review4-{uuid.uuid4().hex}")
        ticks = [0]

        async def ticker():
            while True:
                await asyncio.sleep(0.01)
                ticks[0] += 1

        clock = asyncio.get_running_loop().create_task(ticker())
        try:
            _hello(dealers)
            for _ in dealers:
                assert await manager.recv_request_safe("router", timeout=5) is not None
            while await manager.send_reply_safe("router", (b"slow",), 0, timeout=0):
                pass
            await asyncio.sleep(0.02)
            ticks[0] = 0
            assert await manager.send_reply_safe("router", (b"slow",), "late", timeout=REPLY_TIMEOUT) is False
            assert ticks[0] >= 10, f"the loop was starved: the ticker ran {ticks[0]} times"
        finally:
            clock.cancel()
            manager.close_all(linger=0)
            for dealer in dealers.values():
                dealer.close(0)
            context.term()

    asyncio.run(scenario())


def test_green_reply_reaches_a_full_peer_once_it_reads():
    import gevent

    context = zmq.green.Context()
    manager = SocketManager(zmq.green, context)
    dealers = _router_with_a_full_peer(manager, context, f"inproc://review4-{uuid.uuid4().hex}")
    try:
        _hello(dealers)
        for _ in dealers:
            assert manager.recv_request_safe("router", timeout=5) is not None
        queued = _fill(manager)

        def drain_later():
            gevent.sleep(0.2)
            for _ in range(queued):
                dealers[b"slow"].recv()

        reader = gevent.spawn(drain_later)
        started = time.monotonic()
        assert manager.send_reply_safe("router", (b"slow",), "late", timeout=5) is True
        assert time.monotonic() - started < 1.0
        reader.join(timeout=5)
        assert dealers[b"slow"].recv() == b'"late"'
    finally:
        manager.close_all(linger=0)
        for dealer in dealers.values():
            dealer.close(0)
        context.term()


# -- the plain flavour's blocking receive ------------------------------------------------------


def _plain_pull(timeout):
    context = zmq.Context()
    manager = SocketManager(zmq, context, timeout=timeout)
    manager.ensure_and_bind("in", zmq.PULL, f"inproc://review4-{uuid.uuid4().hex}", zmq.POLLIN)
    return context, manager


def _timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def test_plain_recv_honours_a_changed_manager_timeout():
    """``manager.timeout`` changed after construction bounds the next receive, as it bounds sends."""
    context, manager = _plain_pull(timeout=5)
    try:
        manager.timeout = 0.2
        result, took = _timed(lambda: manager.recv_safe("in"))
        assert result is None
        assert took < 2, f"recv_safe waited {took:.2f} s, the manager's old timeout"
    finally:
        manager.close_all(linger=0)
        context.term()


def test_plain_recv_timeout_after_rcvtimeo_set_through_the_manager():
    """A ``RCVTIMEO`` set with ``set_socket_option`` does not outlast the call's own timeout."""
    context, manager = _plain_pull(timeout=5)
    try:
        assert manager.recv_safe("in", timeout=0.1) is None  # the socket's RCVTIMEO is now 100 ms
        manager.set_socket_option("in", zmq.RCVTIMEO, 3000)
        result, took = _timed(lambda: manager.recv_safe("in", timeout=0.1))
        assert result is None
        assert took < 1.5, f"recv_safe(timeout=0.1) waited {took:.2f} s: the RCVTIMEO set by hand"
    finally:
        manager.close_all(linger=0)
        context.term()


SIGNALLED_CHILD = textwrap.dedent(
    r"""
    import signal, sys, time
    import zmq
    from agentzero.core import SocketManager

    context = zmq.Context()
    manager = SocketManager(zmq, context)
    manager.ensure_and_bind("in", zmq.PULL, "inproc://review4-signals", zmq.POLLIN)
    signal.signal(signal.SIGALRM, lambda *_: None)  # any Python handler: SIGCHLD, SIGWINCH, a profiler
    signal.setitimer(signal.ITIMER_REAL, 0.2, 0.2)
    started = time.monotonic()
    result = manager.recv_safe("in", timeout=1.0)
    signal.setitimer(signal.ITIMER_REAL, 0)
    print("took", round(time.monotonic() - started, 3), result, flush=True)
    manager.close_all(linger=0)
    context.term()
    """
)


@pytest.mark.timeout(30)
def test_plain_recv_timeout_holds_while_signal_handlers_run():
    # a receive blocking in libzmq with RCVTIMEO would wait for ever here: pyzmq retries an
    # interrupted receive (EINTR) with the socket's whole RCVTIMEO; zmq_poll counts down
    try:
        child = subprocess.run(
            [sys.executable, "-c", SIGNALLED_CHILD], capture_output=True, text=True, timeout=8
        )
    except subprocess.TimeoutExpired:
        pytest.fail("recv_safe(timeout=1.0) was still waiting after 8 s")
    assert child.returncode == 0, child.stderr
    took = float(child.stdout.split()[1])
    assert took < 3, child.stdout
