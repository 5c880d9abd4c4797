"""The manager's ``linger``: leaving a ``with`` block never leaves ``context.term()`` hanging."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import zmq

from agentzero.asyncio import SocketManager as AsyncioSocketManager
from agentzero.core import SocketManager


@pytest.fixture
def silent_peer():
    """A tcp address on loopback whose listener accepts nothing: a peer that never reads."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    yield f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def term_within(context, seconds: float) -> float:
    """Terminate ``context`` in a thread; return how long it took, failing when it is still stuck."""
    started = time.monotonic()
    ending = threading.Thread(target=context.term, daemon=True)
    ending.start()
    ending.join(seconds)
    assert not ending.is_alive(), f"context.term() still hangs after {seconds}s"
    return time.monotonic() - started


def test_the_with_form_never_leaves_term_hanging_on_a_queued_message(manager, context, silent_peer):
    with manager:
        manager.ensure_and_connect("jobs", zmq.PUSH, silent_peer, zmq.POLLOUT)
        assert manager.send_safe("jobs", {"queued": "for a peer that never reads"}, timeout=1)
    assert not manager.sockets
    term_within(context, 5)


@pytest.mark.parametrize("manager_class", [SocketManager, AsyncioSocketManager], ids=["sync", "asyncio"])
def test_the_managers_linger_bounds_close_all(manager_class, silent_peer):
    context = zmq.Context()
    sockets = manager_class(context=context, linger=50)
    assert sockets.linger == 50
    sockets.ensure_and_connect("jobs", zmq.PUSH, silent_peer, zmq.POLLOUT)
    sockets.get_by_name("jobs").send(b"queued", zmq.NOBLOCK)
    sockets.close_all()
    assert term_within(context, 3) < 2


@pytest.mark.parametrize("manager_class", [SocketManager, AsyncioSocketManager], ids=["sync", "asyncio"])
@pytest.mark.parametrize(
    "linger, error",
    [
        ("1000", TypeError),
        (1.5, TypeError),
        (True, TypeError),
        (2**31, ValueError),
        (-(2**31) - 1, ValueError),
    ],
)
def test_a_linger_libzmq_cannot_take_is_refused_by_the_constructor(manager_class, linger, error):
    context = zmq.Context()
    try:
        with pytest.raises(error, match="linger"):
            manager_class(context=context, linger=linger)
    finally:
        context.term()


def test_the_default_linger_is_bounded():
    from agentzero.core import DEFAULT_LINGER

    assert 0 < DEFAULT_LINGER <= 5000
    context = zmq.Context()
    try:
        assert SocketManager(zmq, context).linger == DEFAULT_LINGER
        assert SocketManager(zmq, context, linger=None).linger is None
    finally:
        context.term()
