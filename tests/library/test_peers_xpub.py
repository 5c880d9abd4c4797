"""``wait_for_subscribers`` on an XPUB: the first message published after it reaches the subscriber."""

from __future__ import annotations

import pytest
import zmq

from agentzero.errors import PeersNotVisible, WrongSocketType
from tests.conftest import make_address, wait_for
from tests.library.peer_process import start_peer, stop_peer

NETWORK = ["ipc", "tcp"]


def test_a_pub_cannot_wait_for_subscribers_and_keeps_publishing(manager, ipc_dir):
    manager.ensure_and_bind("pub", zmq.PUB, make_address("tcp"), zmq.POLLOUT)
    with pytest.raises(WrongSocketType, match="PUB socket, which never sees its subscriptions.*XPUB"):
        manager.wait_for_subscribers("pub", timeout=0)
    manager.create("push", zmq.PUSH)
    with pytest.raises(WrongSocketType, match="needs a XPUB socket"):
        manager.wait_for_subscribers("push", timeout=0)
    assert manager.publish_safe("pub", "topic", "still publishing")


@pytest.mark.parametrize("transport", NETWORK)
def test_subscribers_are_counted_and_reached_in_process(manager, transport, ipc_dir):
    manager.ensure_and_bind("pub", zmq.XPUB, make_address(transport, ipc_dir), zmq.POLLOUT)
    assert manager.wait_for_subscribers("pub", timeout=0.1) is False
    for name in ("one", "two"):
        manager.ensure_and_connect(name, zmq.SUB, manager.addresses["pub"], zmq.POLLIN)
        manager.set_topic(name, "news")
    assert manager.wait_for_subscribers("pub", count=2, timeout=5)
    assert manager.publish_safe("pub", "news", {"first": True})
    for name in ("one", "two"):
        assert manager.recv_event_safe(name, timeout=5) == (b"news", {"first": True})
    manager.close("two", linger=0)
    wait_for(lambda: manager.peers("pub") == 1, timeout=2)
    assert manager.wait_for_subscribers("pub", count=2, timeout=0.2) is False
    assert manager.wait_for_subscribers("pub", count=1, timeout=0)


def test_a_connected_peer_that_did_not_subscribe_is_not_a_subscriber(manager, ipc_dir):
    manager.ensure_and_bind("pub", zmq.XPUB, make_address("ipc", ipc_dir), zmq.POLLOUT)
    manager.ensure_and_connect("quiet", zmq.SUB, manager.addresses["pub"], zmq.POLLIN)
    assert manager.wait_for_peers("pub", timeout=5)
    assert manager.wait_for_subscribers("pub", timeout=0.2) is False


def test_an_inproc_xpub_cannot_see_its_subscribers(manager):
    manager.ensure_and_bind("pub", zmq.XPUB, "inproc://xpub-inproc", zmq.POLLOUT)
    with pytest.raises(PeersNotVisible):
        manager.wait_for_subscribers("pub", timeout=0)


def first_messages(manager, transport, ipc_dir, trials: int) -> int:
    """How many of ``trials`` first messages, published right after ``wait_for_subscribers``, were lost."""
    manager.ensure_and_bind("control", zmq.PAIR, make_address("tcp"), zmq.POLLIN)
    child = start_peer("first-messages", manager.addresses["control"])
    lost = 0
    try:
        assert manager.recv_safe("control", timeout=10) == "hello"
        for trial in range(trials):
            manager.ensure_and_bind("pub", zmq.XPUB, make_address(transport, ipc_dir), zmq.POLLOUT)
            assert manager.send_safe("control", manager.addresses["pub"])
            assert manager.wait_for_subscribers("pub", timeout=5)
            assert manager.publish_safe("pub", "trial", trial)
            answer = manager.recv_safe("control", timeout=5)
            assert answer in ("got", "lost")
            lost += answer == "lost"
            manager.close("pub", linger=0)
        manager.send_safe("control", "stop")
        child.wait(timeout=10)
    finally:
        stop_peer(child)
    return lost


@pytest.mark.timeout(120)
@pytest.mark.parametrize("transport", NETWORK)
def test_no_first_message_of_1000_is_lost_after_wait_for_subscribers(manager, transport, ipc_dir):
    assert first_messages(manager, transport, ipc_dir, trials=1000) == 0
