"""Large received frames freed by the next large receive (``free_urgent``): no Ctrl-C lost, no frame lost.

A received frame of 256 KiB or more whose view is gone is freed in the
receiving thread, inside :func:`~agentzero.manager.buffers.guarded`, where
SIGINT's handler only notes the signal; a ``zmq.Frame`` that is freed runs
the signal handlers, where an exception can only be printed and dropped.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: a child that frees a "large frame" at the start of a receive while a Ctrl-C lands; argv[1] says
#: where it receives: in the main thread, in a process forked from a thread (whose main thread it
#: is), or in a greenlet of a gevent-monkey-patched program (in the main thread)
FREED_WHILE_CTRL_C_LANDS = r"""
import sys

if sys.argv[1] == "greenlet":
    from gevent import monkey

    monkey.patch_all()
    import gevent
    import zmq.green as zmq
else:
    import zmq
import os, signal, threading
from agentzero.core import SocketManager
from agentzero.manager import releasing
from agentzero.serializers import MSGPACK


SIGNAL = getattr(signal, sys.argv[2])


class FreedLikeAFrame:
    # zmq.Frame.__dealloc__ runs the signal handlers: here, a Ctrl-C (or SIGNAL) lands just then
    def __del__(self):
        os.kill(os.getpid(), SIGNAL)


class Owner:
    pass


def receive():
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(SIGNAL, signal.default_int_handler)  # a service's SIGTERM raised as Ctrl-C's is
    lost = []
    sys.unraisablehook = lambda unraisable: lost.append(repr(unraisable.exc_value))
    context = zmq.Context()
    sockets = SocketManager(zmq, context, serialization_backend=MSGPACK(), timeout=5)
    sockets.ensure_and_bind("in", zmq.PULL, "inproc://freed", zmq.POLLIN)
    sockets.ensure_and_connect("out", zmq.PUSH, "inproc://freed", zmq.POLLOUT)
    assert sockets.send_safe("out", {"blob": bytes(512 * 1024)})
    owner = Owner()  # a large frame whose view is gone: queued to be freed by the next large receive
    release = releasing._Release(owner, releasing._releaser.urgent.append)
    release.frame = FreedLikeAFrame()
    releasing._releaser.live[id(release)] = release
    del release, owner
    try:
        sockets.recv_safe("in")
        outcome = "not interrupted"
    except KeyboardInterrupt:
        outcome = "interrupted"
    sockets.close_all(linger=0)
    context.term()
    return f"{outcome} {lost}"


if sys.argv[1] == "main":
    print(receive(), flush=True)
elif sys.argv[1] == "greenlet":
    print(gevent.spawn(receive).get(), flush=True)
else:
    def fork():
        pid = os.fork()
        if pid == 0:
            try:
                os.write(1, (receive() + "\n").encode())
            finally:
                os._exit(0)
        os.waitpid(pid, 0)

    thread = threading.Thread(target=fork)
    thread.start()
    thread.join()
"""


@pytest.mark.timeout(30)
@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks")
@pytest.mark.parametrize("where", ["main", "forked-from-a-thread", "greenlet"])
def test_a_ctrl_c_landing_while_a_large_frame_is_freed_by_a_receive_is_raised_not_lost(where):
    # guarded must hold Ctrl-C back wherever Python runs the signal handlers: a process forked from a
    # thread runs them in that thread (guarded compared with the parent's main thread, and did nothing);
    # gevent's monkey-patching makes threading.get_ident a greenlet's id (guarded did nothing in any
    # greenlet but the main one: a Ctrl-C while a large frame was freed was printed and lost)
    child = subprocess.run(
        [sys.executable, "-c", FREED_WHILE_CTRL_C_LANDS, where, "SIGINT"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=25,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    assert child.stdout == "interrupted []\n", child.stderr[-2000:]


@pytest.mark.timeout(30)
def test_a_sigterm_raised_by_its_handler_landing_while_a_large_frame_is_freed_by_a_receive_is_not_lost():
    # before free_urgent, no received Frame was freed in the main thread: every signal's exception
    # reached the program; guarded holds back SIGINT only, so a service whose SIGTERM handler raises
    # (signal.default_int_handler, sys.exit) has it printed as "Exception ignored" and keeps running
    child = subprocess.run(
        [sys.executable, "-c", FREED_WHILE_CTRL_C_LANDS, "main", "SIGTERM"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=25,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    assert child.stdout == "interrupted []\n", child.stderr[-2000:]
