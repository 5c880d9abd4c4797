"""Large payloads between processes: 64 MiB intact, 256 MiB in about its own size in memory, no Ctrl-C lost.

Each test runs real processes (marked slow): a sender (or a receiver) of its
own over loopback tcp, so that neither side's memory is counted in the other's.
"""

from __future__ import annotations

import hashlib
import os
import queue
import signal
import subprocess
import sys
import threading

import pytest
import zmq

from agentzero.asyncio import SocketManager as AsyncioSocketManager
from agentzero.core import SocketManager
from agentzero.serializers import MSGPACK
from tests.blocking_asyncio import ASYNCIO_FLAVOUR, BlockingAsyncioManager

MiB = 1024 * 1024
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: rounds of the Ctrl-C test; each receives large payloads until the Ctrl-C lands
INTERRUPT_ROUNDS = int(os.environ.get("AGENTZERO_INTERRUPT_ROUNDS", "300"))

SENDER = r"""
import sys
import zmq
from agentzero.core import SocketManager
from agentzero.serializers import MSGPACK

address, size, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
context = zmq.Context()
sockets = SocketManager(zmq, context, serialization_backend=MSGPACK(), timeout=60)
sockets.ensure_and_connect("out", zmq.PUSH, address, zmq.POLLOUT)
for number in range(count):
    payload = bytes([number % 256]) * (size // 2) + bytes(range(256)) * (size // 2 // 256)
    assert sockets.send_safe("out", {"number": number, "payload": payload, "tail": [payload[:10]]})
sockets.close_all(linger=60_000)  # until everything is delivered
context.term()
"""


def _expected(number: int, size: int) -> str:
    payload = bytes([number % 256]) * (size // 2) + bytes(range(256)) * (size // 2 // 256)
    return hashlib.sha256(payload).hexdigest()


def _spawn(script: str, *arguments: object) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, arguments)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def manager(zmq_module, context):
    """The shared scenario's manager (plain, green or asyncio), with MSGPACK."""
    if zmq_module is ASYNCIO_FLAVOUR:
        blocking = BlockingAsyncioManager(
            AsyncioSocketManager(context=context, timeout=60, serialization_backend=MSGPACK())
        )
        yield blocking
        blocking.shut()
        return
    sockets = SocketManager(zmq_module, context, timeout=60, serialization_backend=MSGPACK())
    yield sockets
    sockets.close_all(linger=0)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_64_mib_payloads_cross_processes_intact(manager, zmq_module):
    manager.ensure_and_bind("in", zmq_module.PULL, "tcp://127.0.0.1:*", zmq.POLLIN)
    size, count = 64 * MiB, 2
    sender = _spawn(SENDER, manager.addresses["in"], size, count)
    try:
        for number in range(count):
            received = manager.recv_safe("in", timeout=60)
            assert received is not None, f"message {number} never came: {sender.stderr.read()[-2000:]}"
            assert received["number"] == number
            assert isinstance(received["payload"], memoryview) and received["payload"].nbytes == size
            assert hashlib.sha256(received["payload"]).hexdigest() == _expected(number, size)
            assert received["tail"] == [received["payload"][:10].tobytes()]
            del received
        assert sender.wait(timeout=60) == 0, sender.stderr.read()[-2000:]
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait()


# the peak resident memory of this process (VmHWM): ru_maxrss would do, but Linux keeps it across
# exec, so a child of a large pytest process starts with its parent's peak
RECEIVER = r"""
import hashlib


def peak_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

import zmq
from agentzero.core import SocketManager
from agentzero.serializers import MSGPACK

context = zmq.Context()
sockets = SocketManager(zmq, context, serialization_backend=MSGPACK(), timeout=60)
sockets.ensure_and_bind("in", zmq.PULL, "tcp://127.0.0.1:*", zmq.POLLIN)
hashlib.sha256(b"warm up")
before = peak_kib()
print(sockets.addresses["in"], flush=True)
received = sockets.recv_safe("in")
digest = hashlib.sha256(received["payload"]).hexdigest()
after = peak_kib()
print(before, after, len(received["payload"]), digest, flush=True)
del received
sockets.close_all(linger=0)
context.term()
"""


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_receiving_256_mib_peaks_at_most_1_3_times_the_payload_in_memory():
    size = 256 * MiB
    receiver = _spawn(RECEIVER)
    sender = None
    try:
        address = receiver.stdout.readline().strip()
        assert address.startswith("tcp://"), receiver.stderr.read()[-2000:]
        sender = _spawn(SENDER, address, size, 1)
        before, after, received, digest = receiver.stdout.readline().split()
        assert receiver.wait(timeout=60) == 0, receiver.stderr.read()[-2000:]
        assert sender.wait(timeout=60) == 0, sender.stderr.read()[-2000:]
        assert int(received) == size and digest == _expected(0, size)
        growth = (int(after) - int(before)) * 1024 / size
        print(f"peak resident memory grew by {growth:.2f}x the 256 MiB payload")
        assert growth <= 1.3
    finally:
        for process in (receiver, sender):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


PARTNER = r"""
import os, sys
import zmq
from agentzero.core import SocketManager
from agentzero.serializers import MSGPACK

direction, address = sys.argv[1], sys.argv[2]
parent = os.getppid()
sockets = SocketManager(zmq, zmq.Context(), serialization_backend=MSGPACK())
big = bytes(4 * 1024 * 1024)
if direction == "receive":  # the child receives: send to it until it kills this process
    sockets.ensure_and_connect("out", zmq.PUSH, address, zmq.POLLOUT)
    while os.getppid() == parent:  # until the child is gone
        sockets.send_safe("out", {"big": big}, timeout=1)
else:
    sockets.ensure_and_connect("in", zmq.PULL, address, zmq.POLLIN)
    while os.getppid() == parent:
        sockets.recv_safe("in", timeout=1)
"""

INTERRUPTED = r"""
import faulthandler, signal, subprocess, sys
import zmq
from agentzero.core import SocketManager
from agentzero.serializers import MSGPACK

signal.signal(signal.SIGINT, signal.default_int_handler)
faulthandler.register(signal.SIGUSR1)  # the test asks for every thread's stack if a round never ends
direction, rounds, partner = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sockets = SocketManager(zmq, zmq.Context(), serialization_backend=MSGPACK())
big = bytes(4 * 1024 * 1024)
kind = zmq.PULL if direction == "receive" else zmq.PUSH
mechanism = zmq.POLLIN if direction == "receive" else zmq.POLLOUT
sockets.ensure_and_bind("here", kind, "tcp://127.0.0.1:*", mechanism)
# the other side: a process of its own, which no Ctrl-C reaches
other = subprocess.Popen(
    [sys.executable, "-c", partner, direction, sockets.addresses["here"]], stdout=subprocess.DEVNULL
)
if direction == "receive":
    step = lambda: sockets.recv_safe("here", timeout=0.2)  # the last payload is freed here
else:
    step = lambda: sockets.send_safe("here", {"big": big}, timeout=0.2) or None
interrupted = moved = 0
while interrupted < rounds:
    try:
        print("waiting", interrupted, flush=True)
        while True:
            moved += step() is not None
    except KeyboardInterrupt:
        interrupted += 1
print("done", interrupted, moved, flush=True)
other.kill()
other.wait()
sockets.close_all(linger=0)
"""


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("direction", ["receive", "send"])
def test_every_ctrl_c_interrupts_a_loop_of_large_buffers(direction, tmp_path):
    # a buffer's zmq.Frame checks for signals when it is freed, where a Ctrl-C is only
    # printed and dropped: agentzero frees its Frames in a thread of its own, and holds
    # SIGINT back while pyzmq frees its own; the other side is a process of its own
    # (in one process, pyzmq's zero-copy garbage collector has hazards of its own)
    errors = (tmp_path / "stderr").open("w+")
    child = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED, direction, str(INTERRUPT_ROUNDS), PARTNER],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in child.stdout], daemon=True).start()
    try:
        for expected in range(INTERRUPT_ROUNDS):
            try:
                line = lines.get(timeout=10)
            except queue.Empty:
                child.send_signal(signal.SIGUSR1)
                threading.Event().wait(1)
                errors.seek(0)
                pytest.fail(f"round {expected}: the child never got its Ctrl-C back: {errors.read()[-4000:]}")
            assert line == f"waiting {expected}\n", line
            threading.Event().wait(0.002 + 0.01 * (expected % 7) / 7)  # land anywhere in the loop
            child.send_signal(signal.SIGINT)
        done = lines.get(timeout=30).split()
        assert done[:2] == ["done", str(INTERRUPT_ROUNDS)]
        assert int(done[2]) > INTERRUPT_ROUNDS // 4, "too few payloads moved for the test to mean anything"
        assert child.wait(timeout=30) == 0
        errors.seek(0)
        assert "Exception ignored" not in errors.read()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        errors.close()
