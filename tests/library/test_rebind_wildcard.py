"""The rebind grace: an address closed by the manager binds again at once, wildcard hosts included."""

from __future__ import annotations

import zmq


def test_a_wildcard_endpoint_and_its_reported_form_are_one_released_key():
    from agentzero.manager.endpoints import released_key

    assert (
        released_key("tcp://*:5000") == released_key("tcp://0.0.0.0:5000") == released_key("tcp://[::]:5000")
    )
    assert released_key("tcp://127.0.0.1:5000") == "tcp://127.0.0.1:5000"
    assert released_key("tcp://*:5000") != released_key("tcp://*:5001")
    assert released_key("ipc:///tmp/x") == "ipc:///tmp/x"


def test_tcp_wildcard_binds_again_right_after_close_every_time(manager):
    """``tcp://*:PORT``, closed (libzmq reports ``tcp://0.0.0.0:PORT``), binds again at once, 100 times."""
    manager.ensure_and_bind("x", zmq.PULL, "tcp://*:*", zmq.POLLIN)
    port = manager.addresses["x"].rsplit(":", 1)[1]
    wildcard = f"tcp://*:{port}"
    for _ in range(100):
        manager.close("x", linger=0)
        manager.ensure_and_bind("x", zmq.PULL, wildcard, zmq.POLLIN)
    manager.ensure_and_connect("out", zmq.PUSH, f"tcp://127.0.0.1:{port}", zmq.POLLOUT)
    assert manager.send_safe("out", "after 100 rebinds")
    assert manager.recv_safe("x") == "after 100 rebinds"


def test_released_endpoints_are_forgotten_once_their_grace_is_over(manager):
    manager.ensure_and_bind("x", zmq.PULL, "inproc://forgotten-grace", zmq.POLLIN)
    manager.close("x")
    assert list(manager._released) == ["inproc://forgotten-grace"]
    manager._released["inproc://forgotten-grace"] = 0.0  # its grace is over
    manager.create("y", zmq.PULL)
    manager.close("y")
    assert not manager._released
