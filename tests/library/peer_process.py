"""A peer in another process, for the tests of ``peers``: plain pyzmq, started with ``python -c``.

``connect ADDRESS TYPE``: connect one socket of that type (subscribing to
everything when it is a SUB), print ``ready`` and wait to be killed.

``first-messages CONTROL``: say ``"hello"`` on a PAIR connected to
``CONTROL``; then for each address received there, connect a fresh SUB,
subscribe to everything, wait up to a second for one message, answer
``"got"`` or ``"lost"`` and close the SUB; stop on ``"stop"``. Every
message is JSON.
"""

from __future__ import annotations

import subprocess
import sys

CHILD = r"""
import json, sys, time, zmq
context = zmq.Context()
mode = sys.argv[1]
if mode == "connect":
    socket = context.socket(getattr(zmq, sys.argv[3]))
    socket.linger = 0
    if sys.argv[3] == "SUB":
        socket.subscribe(b"")
    socket.connect(sys.argv[2])
    print("ready", flush=True)
    while True:
        time.sleep(60)
elif mode == "first-messages":
    control = context.socket(zmq.PAIR)
    control.linger = 0
    control.connect(sys.argv[2])
    control.send(json.dumps("hello").encode())
    while True:
        address = json.loads(control.recv())
        if address == "stop":
            break
        sub = context.socket(zmq.SUB)
        sub.linger = 0
        sub.subscribe(b"")
        sub.connect(address)
        got = sub.poll(1000)
        if got:
            sub.recv_multipart()
        sub.close()
        control.send(json.dumps("got" if got else "lost").encode())
    control.close()
    context.term()
"""


def start_peer(*arguments: str) -> subprocess.Popen[str]:
    """Start the peer with ``arguments`` (see the module's text); ``connect`` waits for its ``ready``."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, *arguments], stdout=subprocess.PIPE, text=True)
    if arguments[0] == "connect":
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip() == "ready", f"the peer did not start: {line!r}"
    return child


def stop_peer(child: subprocess.Popen[str]) -> None:
    """Kill the peer (waking it first, should it be stopped) and reap it."""
    if child.poll() is None:
        child.kill()
    child.wait(timeout=10)
    if child.stdout is not None:
        child.stdout.close()
