"""Frames freed without losing a signal: Ctrl-C held back in sends, large frames freed off the main thread.

A ``zmq.Frame`` that is freed runs the signal handlers, where an exception
can only be printed and dropped. While pyzmq makes and frees Frames of its
own during a send, :func:`~agentzero.manager.buffers.guarded` replaces
SIGINT's handler with one that only notes the signal, and runs it once the
call is over. A received frame is never freed in the main thread: a large
one (:data:`~agentzero.manager.releasing._AT_ONCE_SIZE` or more) is freed by
the releasing thread as soon as its view is gone, so any signal's exception
reaches the program.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: a child that runs guarded() while a Ctrl-C lands, in the main thread, in a process forked from a
#: thread (whose main thread it is then), or in a greenlet of a gevent-monkey-patched program
CTRL_C_IN_GUARDED = r"""
import sys

if sys.argv[1] == "greenlet":
    from gevent import monkey

    monkey.patch_all()
    import gevent
import os, signal, threading
from agentzero.manager.buffers import guarded


finished = []


def call():
    os.kill(os.getpid(), signal.SIGINT)  # the handler runs at the next check: inside this call
    for _ in range(100_000):
        pass
    finished.append("whole")


def run():
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        guarded(call)
        return "not interrupted"
    except KeyboardInterrupt:
        return f"interrupted after {finished or ['nothing']}"


if sys.argv[1] == "main":
    print(run(), flush=True)
elif sys.argv[1] == "greenlet":
    print(gevent.spawn(run).get(), flush=True)
else:
    def fork():
        pid = os.fork()
        if pid == 0:
            try:
                os.write(1, (run() + "\n").encode())
            finally:
                os._exit(0)
        os.waitpid(pid, 0)

    thread = threading.Thread(target=fork)
    thread.start()
    thread.join()
"""

#: a child whose SIGTERM handler raises (as a service's may), sent while a large received frame is freed
SIGNAL_WHILE_A_LARGE_FRAME_IS_FREED = r"""
import os, signal, sys, threading, time
import zmq
from agentzero.core import SocketManager
from agentzero.manager import releasing
from agentzero.serializers import MSGPACK


class FreedLikeAFrame:
    # zmq.Frame.__dealloc__ runs the signal handlers: here, SIGTERM lands just then
    def __len__(self):
        return 512 * 1024

    def __del__(self):
        where.append(threading.current_thread() is threading.main_thread())
        os.kill(os.getpid(), signal.SIGTERM)


class Owner:
    pass


where = []
lost = []
sys.unraisablehook = lambda unraisable: lost.append(repr(unraisable.exc_value))
signal.signal(signal.SIGTERM, signal.default_int_handler)
context = zmq.Context()
sockets = SocketManager(zmq, context, serialization_backend=MSGPACK(), timeout=5)
sockets.ensure_and_bind("in", zmq.PULL, "inproc://freed", zmq.POLLIN)
sockets.ensure_and_connect("out", zmq.PUSH, "inproc://freed", zmq.POLLOUT)
outcome = "not interrupted"
try:
    assert sockets.send_safe("out", {"blob": bytes(512 * 1024)})
    view = sockets.recv_safe("in")["blob"]  # the releasing thread runs now
    owner = Owner()
    releasing._releaser.watch(owner, FreedLikeAFrame(), True)  # as view_of does for a large frame
    del owner, view
    assert sockets.send_safe("out", {"blob": bytes(512 * 1024)})
    view = sockets.recv_safe("in")["blob"]  # a large receive: never where the frame above is freed
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        time.sleep(0.01)
except KeyboardInterrupt:
    outcome = "interrupted"
sockets.close_all(linger=0)
context.term()
print(outcome, where, lost, flush=True)
"""


def _child(script: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script, *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=25,
    )


@pytest.mark.timeout(30)
@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks")
@pytest.mark.parametrize("where", ["main", "forked-from-a-thread", "greenlet"])
def test_guarded_holds_a_ctrl_c_back_wherever_python_runs_the_signal_handlers(where):
    # a process forked from a thread runs them in that thread (guarded compared with the parent's main
    # thread, and did nothing); gevent's monkey-patching makes threading.get_ident a greenlet's id
    # (guarded did nothing in any greenlet but the main one: a Ctrl-C while pyzmq freed a Frame of a
    # zero-copy send was printed and lost)
    child = _child(CTRL_C_IN_GUARDED, where)
    assert child.returncode == 0, child.stderr[-2000:]
    assert child.stdout == "interrupted after ['whole']\n", child.stderr[-2000:]


@pytest.mark.timeout(30)
def test_a_signal_whose_handler_raises_while_a_large_received_frame_is_freed_reaches_the_program():
    # guarded holds back SIGINT only: a received Frame freed in the main thread would have a service's
    # SIGTERM (signal.default_int_handler, sys.exit) printed as "Exception ignored" and lost
    child = _child(SIGNAL_WHILE_A_LARGE_FRAME_IS_FREED)
    assert child.returncode == 0, child.stderr[-2000:]
    assert child.stdout == "interrupted [False] []\n", child.stderr[-2000:]
