"""A Ctrl-C that lands while wait_for_subscribers reads an XPUB's subscription loses no subscription.

The XPUB gives each subscription once, and ``wait_for_subscribers`` counts
them across calls: one read and dropped is missing for good, and the call
waits for a subscriber that is there. pyzmq's ``recv`` checks for signals
once ``zmq_msg_recv`` has taken the frame (a Ctrl-C arriving meanwhile, while
the GIL is released, is raised there, and the frame is dropped): in a loop of
non-blocking reads, that is where a real Ctrl-C almost always lands.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CHILD = r"""
import os, signal, sys, time
import zmq
from agentzero.core import SocketManager
from agentzero.manager import peers

signal.signal(signal.SIGINT, signal.default_int_handler)
context = zmq.Context()
sockets = SocketManager(zmq, context, timeout=5)
sockets.ensure_and_bind("pub", zmq.XPUB, "tcp://127.0.0.1:*", zmq.POLLOUT)
sockets.ensure_and_connect("sub", zmq.SUB, sockets.addresses["pub"], zmq.POLLIN)
sockets.set_topic("sub", "weather")
deadline = time.monotonic() + 5
while not sockets.sockets["pub"].poll(0) and time.monotonic() < deadline:
    time.sleep(0.001)
assert sockets.sockets["pub"].poll(0), "no subscription came"
real_recv = peers.raw_recv
calls = []


def recv_then_ctrl_c(socket, *arguments):
    # as pyzmq's recv when a Ctrl-C arrives during zmq_msg_recv: the frame is taken, then the
    # signal handlers run (here os.kill runs them, in pyzmq its check after the receive does)
    frame = real_recv(socket, *arguments)
    calls.append(frame)
    if len(calls) == 1:
        os.kill(os.getpid(), signal.SIGINT)
    return frame


peers.raw_recv = recv_then_ctrl_c
try:
    sockets.wait_for_subscribers("pub", 1, timeout=2)
    first = "not interrupted"
except KeyboardInterrupt:
    first = "interrupted"
peers.raw_recv = real_recv
print(first, calls[:1], sockets.wait_for_subscribers("pub", 1, timeout=1), flush=True)
sockets.close_all(linger=0)
context.term()
"""


@pytest.mark.timeout(30)
def test_a_ctrl_c_landing_in_the_read_of_a_subscription_loses_no_subscription():
    child = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, timeout=25
    )
    assert child.returncode == 0, child.stderr[-2000:]
    # the Ctrl-C is raised, and the subscription read meanwhile still counts
    assert child.stdout == "interrupted [b'\\x01weather'] True\n", child.stderr[-2000:]
