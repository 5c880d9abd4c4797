"""send_safe/recv_safe across real processes over tcp and ipc."""

from __future__ import annotations

import multiprocessing
import os

import pytest
import zmq

from agentzero.core import SocketManager


def _producer(address: str, count: int, green: bool, received_all) -> None:
    import zmq.green

    module = zmq.green if green else zmq
    context = module.Context()
    with SocketManager(module, context, timeout=10) as sockets:
        sockets.ensure_and_connect("out", module.PUSH, address, zmq.POLLOUT)
        for number in range(count):
            assert sockets.send_safe("out", {"n": number, "pid": os.getpid()})
        sockets.send_safe("out", {"done": True})
        # libzmq can drop the last messages of a socket closed right after sending
        # (even with linger, notably over ipc): close once the receiver confirms.
        received_all.wait(20)
        sockets.close("out", linger=1000)
    context.term()


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
@pytest.mark.parametrize("green", [False, True], ids=["plain", "green"])
def test_messages_cross_processes_in_order(manager, zmq_module, transport, ipc_dir, green):
    address = "tcp://127.0.0.1:*" if transport == "tcp" else f"ipc://{ipc_dir}/pipe"
    manager.ensure_and_bind("in", zmq_module.PULL, address, zmq.POLLIN)
    spawn = multiprocessing.get_context("spawn")
    received_all = spawn.Event()
    child = spawn.Process(target=_producer, args=(manager.addresses["in"], 2000, green, received_all))
    child.start()
    try:
        received = []
        while True:
            message = manager.recv_safe("in", timeout=20)
            assert message is not None, f"the producer went silent after {len(received)} messages"
            if message.get("done"):
                break
            received.append(message)
        received_all.set()
        assert [m["n"] for m in received] == list(range(2000))
        assert {m["pid"] for m in received} == {child.pid}
    finally:
        received_all.set()
        child.join(timeout=10)
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0
