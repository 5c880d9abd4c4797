"""Ctrl-C always reaches a program waiting in agentzero: no receive path swallows it.

pyzmq's ``zmq.Frame`` checks for pending signals when it is freed, where an
exception can only be printed ("Exception ignored in Frame.__dealloc__") and
dropped. A receive path that makes Frames therefore loses a Ctrl-C that lands
just before one is freed, and a ``while True: recv_safe(...)`` loop never
stops: one round in about 3,000 on this machine, which is how ``agentzero
tail`` once ignored a Ctrl-C in CI.

Each test runs a child process that waits in a loop and counts the
``KeyboardInterrupt`` it gets, while this process sends it SIGINT as soon as
it says it waits, 6,000 times; a lost interrupt leaves the child
waiting, and the round times out.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading

import pytest

ROUNDS = int(os.environ.get("AGENTZERO_INTERRUPT_ROUNDS", "6000"))

CHILD = r"""
import signal, sys

# Python's own Ctrl-C handler, even if the test runs with SIGINT ignored (a script's background job)
signal.signal(signal.SIGINT, signal.default_int_handler)

flavour, call, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
if flavour == "green":
    import zmq.green as zmq
else:
    import zmq
from agentzero.core import SocketManager

context = zmq.Context()
sockets = SocketManager(zmq, context)
if call == "recv_event_safe":
    sockets.ensure_and_bind("in", zmq.SUB, "inproc://interrupts", zmq.POLLIN)
    sockets.set_topic("in", "")
    receive = lambda: sockets.recv_event_safe("in", timeout=0.2)
else:
    sockets.ensure_and_bind("in", zmq.PULL, "inproc://interrupts", zmq.POLLIN)
    receive = lambda: sockets.recv_safe("in", timeout=0.2)
interrupted = 0
while interrupted < rounds:
    try:
        print("waiting", interrupted, flush=True)
        while True:
            receive()
    except KeyboardInterrupt:
        interrupted += 1
print("done", interrupted, flush=True)
sockets.close_all(linger=0)
context.term()
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("call", ["recv_safe", "recv_event_safe"])
@pytest.mark.parametrize("flavour", ["plain", "green"])
def test_every_ctrl_c_interrupts_a_receive_loop(flavour, call):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, flavour, call, str(ROUNDS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in child.stdout], daemon=True).start()
    try:
        for expected in range(ROUNDS):
            try:
                line = lines.get(timeout=5)
            except queue.Empty:
                pytest.fail(f"round {expected}: the child never got its Ctrl-C back ({flavour} {call})")
            assert line == f"waiting {expected}\n", line
            child.send_signal(signal.SIGINT)
        assert lines.get(timeout=10) == f"done {ROUNDS}\n"
        assert child.wait(timeout=10) == 0
        assert "Exception ignored" not in child.stderr.read()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
