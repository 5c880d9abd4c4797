"""A thread that receives is stopped by ``context.term()`` from another, as the README says."""

from __future__ import annotations

import threading
import time

import pytest
import zmq

from agentzero.core import SocketManager
from agentzero.errors import SocketClosed
from tests.conftest import make_address


@pytest.mark.parametrize("call", ["recv_safe", "recv_multipart_safe", "subscribe"])
def test_context_term_from_another_thread_stops_a_receiving_thread(call):
    context = zmq.Context()
    sockets = SocketManager(zmq, context, timeout=30)
    kind = zmq.SUB if call == "subscribe" else zmq.PULL
    sockets.ensure_and_bind("in", kind, make_address("inproc"), zmq.POLLIN)
    outcome: list[object] = []
    waiting = threading.Event()

    def receive() -> None:
        waiting.set()
        try:
            if call == "subscribe":
                outcome.extend(sockets.subscribe("in", topic="t"))
                outcome.append("ended")
            else:
                outcome.append(getattr(sockets, call)("in", timeout=30))
        except SocketClosed as error:
            outcome.append(error)
        finally:
            sockets.close_all(linger=0)

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    assert waiting.wait(5)
    time.sleep(0.2)  # it is waiting inside the call now
    started = time.monotonic()
    terminating = threading.Thread(target=context.term, daemon=True)
    terminating.start()
    thread.join(5)
    terminating.join(5)
    assert not thread.is_alive() and not terminating.is_alive(), "term() did not stop the receiving thread"
    assert time.monotonic() - started < 5
    if call == "subscribe":
        assert outcome == ["ended"]
    else:
        assert len(outcome) == 1 and isinstance(outcome[0], SocketClosed), outcome
