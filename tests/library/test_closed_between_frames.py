"""A socket closed, or its context terminated, between two frames of a message: ``SocketClosed``.

``SocketClosed`` is "raised when a socket is closed (or its context
terminated) while a call uses or waits on it". Between two frames of a
message, the ``zmq.RCVMORE`` read or the next frame's receive fails with the
``ZMQError`` (``ENOTSOCK``, ``ETERM``) that every other place translates; here
it escaped as it was, and a ``subscribe`` loop, which ends quietly when its
socket is gone, crashed with it.

Both happen in ordinary programs: ``context.term()`` from the main thread is
how a thread that receives is told to stop (more than half of the
``recv_multipart_safe`` calls it interrupted raised a bare ``ZMQError`` under
a steady stream of three-frame messages), and a SIGTERM handler that closes
the manager's sockets runs between two frames as readily as anywhere. Each
test makes it happen exactly there: on the first ``RCVMORE`` read after a
message's first frame (the record's ``more``).
"""

from __future__ import annotations

import threading
import time

import pytest
import zmq
import zmq.green

from agentzero.core import SocketManager
from agentzero.errors import SocketClosed
from agentzero.manager.backend import EVENTS, raw_get
from tests.conftest import make_address

MODULES = {"plain": zmq, "green": zmq.green}


class Scene:
    """A manager, a receiving socket ``"in"`` with messages queued, and the way it goes away."""

    def __init__(self, module, how):
        self.module, self.how = module, how
        self.context = module.Context()
        self.sockets = SocketManager(module, self.context, timeout=5)
        self.terminating: threading.Thread | None = None

    def break_on_first_read(self, name):
        """On the first ``RCVMORE`` read of ``name``, close it (a signal handler) or terminate the context."""
        record = self.sockets._records[name]
        real = record.more
        calls = []

        def more():
            calls.append(1)
            if len(calls) == 1:
                if self.how == "closed":
                    self.sockets.close(name, linger=0)
                else:
                    self._terminate(record.socket)
            return real()

        record.more = more

    def _terminate(self, socket):
        """``context.term()`` in another thread, as a program stops a receiving thread; wait until noticed."""
        self.terminating = threading.Thread(target=self.context.term, daemon=True)
        self.terminating.start()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                raw_get(socket, EVENTS)  # processes the socket's commands: the stop among them
            except zmq.ZMQError as exc:
                assert exc.errno == zmq.ETERM
                return
            time.sleep(0.001)
        raise AssertionError("the socket never noticed its context was terminated")

    def queued(self, name):
        socket = self.sockets.sockets[name]
        deadline = time.monotonic() + 5
        while not socket.poll(0) and time.monotonic() < deadline:
            time.sleep(0.001)
        assert socket.poll(0), "nothing arrived"

    def end(self):
        self.sockets.close_all(linger=0)
        if self.terminating is not None:
            self.terminating.join(5)
            assert not self.terminating.is_alive(), "the context was never terminated"
        else:
            self.context.destroy(linger=0)


@pytest.fixture(params=["closed", "terminated"])
def how(request):
    return request.param


@pytest.fixture(params=sorted(MODULES))
def scene(request, how):
    scene = Scene(MODULES[request.param], how)
    yield scene
    scene.end()


def _push_pull(scene, frames):
    module, sockets = scene.module, scene.sockets
    address = make_address("inproc")
    sockets.ensure_and_bind("in", module.PULL, address, zmq.POLLIN)
    sockets.ensure_and_connect("out", module.PUSH, address, zmq.POLLOUT)
    assert sockets.send_multipart_safe("out", frames, timeout=2)
    scene.queued("in")
    scene.break_on_first_read("in")
    return sockets


def test_recv_multipart_safe(scene):
    sockets = _push_pull(scene, [b"one", b"two", b"three"])
    with pytest.raises(SocketClosed):
        sockets.recv_multipart_safe("in", timeout=2)


def test_drain_multipart_safe(scene):
    sockets = _push_pull(scene, [b"one", b"two", b"three"])
    with pytest.raises(SocketClosed):
        list(sockets.drain_multipart_safe("in"))


def test_recv_safe_of_a_message_of_several_frames(scene):
    sockets = _push_pull(scene, [b'"one"', b'"two"'])
    with pytest.raises(SocketClosed):
        sockets.recv_safe("in", timeout=2)


def test_recv_event_safe(scene):
    sockets = _push_pull(scene, [b"topic", b'"data"'])
    with pytest.raises(SocketClosed):
        sockets.recv_event_safe("in", timeout=2)


def test_a_subscription_ends_quietly(scene):
    module, sockets = scene.module, scene.sockets
    address = make_address("inproc")
    sockets.ensure_and_bind("in", module.SUB, address, zmq.POLLIN)
    sockets.ensure_and_connect("out", module.PUB, address, zmq.POLLOUT)
    events = sockets.subscribe("in", "", timeout=2)
    deadline = time.monotonic() + 5
    while not sockets.sockets["in"].poll(0) and time.monotonic() < deadline:
        sockets.publish_safe("out", "topic", "data", timeout=2)  # until the subscription has reached PUB
        time.sleep(0.005)
    scene.break_on_first_read("in")
    assert list(events) == []


def test_recv_request_safe(scene):
    module, sockets = scene.module, scene.sockets
    address = make_address("inproc")
    sockets.ensure_and_bind("in", module.ROUTER, address, zmq.POLLIN)
    sockets.ensure_and_connect("out", module.DEALER, address, zmq.POLLOUT)
    assert sockets.send_multipart_safe("out", [b"", b'"request"'], timeout=2)
    scene.queued("in")
    scene.break_on_first_read("in")
    with pytest.raises(SocketClosed):
        sockets.recv_request_safe("in", timeout=2)
