"""The thread that frees agentzero's ``zmq.Frame`` objects, so that none is freed in the main thread."""

from __future__ import annotations

import atexit
import collections
import ctypes
import os
import signal
import sys
import threading
import weakref
from typing import Any, Callable, Sequence

import zmq
import zmq.utils.garbage

from agentzero.patching import original

#: how often, in seconds, the releasing thread frees what it was handed while there is any
_PERIOD = 0.005
#: rounds the thread goes on with after its last work before it sleeps: a stream of messages, each
#: handed over after the thread freed the one before, would otherwise wake it (a thread switch) every time
_IDLE_ROUNDS = 100
#: frames smaller than this are received as ``bytes`` (a copy costs less than a view's bookkeeping)
_VIEW_SIZE = 4096
#: received frames from this size are freed as soon as their view is gone, not at the thread's next round:
#: memory freed at once is reused at once, where a round's worth of them would come back from the system
_AT_ONCE_SIZE = 256 * 1024
#: pyzmq's zero-copy garbage collector (a thread that drops the buffers libzmq is done with)
_pyzmq_gc = zmq.utils.garbage.gc
_Empty = original("_queue", "Empty")
_pyzmq_gc_lock = threading.Lock()
_Frame = zmq.Frame
_c_char = ctypes.c_char


class _Release(weakref.ref):  # type: ignore[type-arg]
    """A weak reference to what the caller holds; its callback queues ``frame`` to the releasing thread."""

    __slots__ = ("frame",)
    frame: Any


class _Releaser:
    """The thread that frees agentzero's ``zmq.Frame`` objects, so that none is freed in the main thread.

    What is handed over is appended to ``pending`` (by a C function: no Python
    code runs), and the thread takes it every :data:`_PERIOD` seconds while
    there is work, so a message costs no thread switch. A received frame of
    :data:`_AT_ONCE_SIZE` or more is put in ``wake`` instead (a C function
    too), which wakes the thread at once: its memory is reused at once, as
    raw pyzmq's would be, for a thread switch per large frame. None of these
    Frames is freed in the main thread, where any signal handler's exception
    would be lost. With nothing pending, kept or watched for
    :data:`_IDLE_ROUNDS` rounds, the thread waits until woken. Whoever drops
    the last reference to an object frees it: a Frame the caller still holds
    for a moment after handing it over is kept until the thread holds the
    only reference.
    """

    def __init__(self) -> None:
        self.pending: collections.deque[Any] = collections.deque()
        self.live: dict[int, Any] = {}  # by id: a weak reference hashes as its referent
        self.wake = original("_queue", "SimpleQueue")()
        self.asleep = True
        self.started = False
        self.stopping = False
        self.stopped = original("_thread", "allocate_lock")()
        self.stopped.acquire()

    def put(self, item: Any) -> None:
        """Free ``item`` (any object, or a list of them) in the thread."""
        self.pending.append(item)
        if self.asleep:
            self._wake()

    def watch(self, owner: Any, frame: Any, at_once: bool = False) -> None:
        """Free ``frame`` in the thread once ``owner`` is gone: ``at_once``, or at the thread's next round."""
        release = _Release(owner, self.wake.put if at_once else self.pending.append)
        release.frame = frame
        self.live[id(release)] = release
        if self.asleep:
            self._wake()

    def _wake(self) -> None:
        if not self.started:
            self.started = True
            unsignalled(original("_thread", "start_new_thread"), self._run, ())
        else:
            self.wake.put(None)
        self.asleep = False

    def _run(self) -> None:
        pending, live, wake = self.pending, self.live, self.wake.get
        kept: list[Any] = []
        idle = 0  # rounds in a row with nothing to do
        while True:
            idle = 0 if (pending or kept or live) else idle + 1
            while pending:
                item = pending.popleft()
                if item.__class__ is _Release:
                    live.pop(id(item), None)
                    kept.append(item.frame)
                    item.frame = None
                elif item.__class__ is list:
                    kept.extend(item)
                else:
                    kept.append(item)
                del item
            kept = _held_elsewhere(kept)  # the others are freed here
            if self.stopping and not (kept or pending):
                self.stopped.release()
                return
            if kept or live or idle < _IDLE_ROUNDS:
                try:  # a round, cut short by a large frame's view gone, or any wake-up
                    woken = wake(timeout=_PERIOD)
                except _Empty:
                    continue
            else:
                self.asleep = True  # before looking again: a watch() from now on wakes the thread
                woken = wake() if not (pending or live) else None
                self.asleep = False
            if woken is not None:  # a large frame's view is gone: its Release, freed next
                pending.append(woken)
            del woken


def unsignalled(start: Callable[..., Any], *arguments: Any) -> Any:
    """Call ``start`` (which starts a thread) with every signal blocked, so the thread never receives one.

    A thread inherits its signal mask. A process-directed signal (Ctrl-C's
    SIGINT) goes to any thread that does not block it; Python handles it in
    the main thread anyway, but a blocking call in the thread it landed on
    fails with ``EINTR``: pyzmq's zero-copy garbage-collection thread dies of
    it, and every zero-copy send of the process after it. libzmq's own threads
    block every signal the same way.
    """
    block = getattr(signal, "pthread_sigmask", None)
    if block is None:  # Windows: no signal masks, and no such signals
        return start(*arguments)
    previous = block(signal.SIG_BLOCK, signal.valid_signals())
    try:
        return start(*arguments)
    finally:
        block(signal.SIG_SETMASK, previous)


def zero_copy_frame(buffer: Any) -> Any:
    """``zmq.Frame(buffer, copy=False)``, pyzmq's garbage-collection thread started first, unsignalled."""
    if not _pyzmq_gc.is_alive():
        with _pyzmq_gc_lock:
            if not _pyzmq_gc.is_alive():
                unsignalled(_pyzmq_gc.start)
    return _Frame(buffer, copy=False)


def _held_elsewhere(items: list[Any]) -> list[Any]:
    """Those of ``items`` that someone else than the releasing thread still holds."""
    held = []
    for item in items:
        if getrefcount(item) > _ALONE:
            held.append(item)
    return held


def _alone() -> int:
    """What ``getrefcount`` says, in :func:`_held_elsewhere`'s loop, of an item no one else holds."""
    for item in [object()]:
        return getrefcount(item)
    raise AssertionError("unreachable")


getrefcount = sys.getrefcount
_ALONE = _alone()


_releaser = _Releaser()


@atexit.register  # before pyzmq's garbage collector stops (atexit runs the last registered first)
def _stop_releasing() -> None:
    """Free what the thread holds before the interpreter (and pyzmq's garbage collector) goes away."""
    releaser = _releaser
    if releaser.started:
        releaser.stopping = True
        releaser.wake.put(None)
        releaser.stopped.acquire(timeout=2)


def _after_fork() -> None:  # the thread is not in the child; its Frames belong to the parent's context
    global _releaser
    _releaser = _Releaser()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_after_fork)


def release(item: Any) -> None:
    """Free ``item`` (a Frame, or a list of them) in the releasing thread."""
    _releaser.put(item)


def view_of(frame: Any) -> Any:
    """A read-only ``memoryview`` of a received ``zmq.Frame``'s memory; the Frame is freed elsewhere."""
    size = len(frame)
    if size < _VIEW_SIZE:
        data: bytes = frame.bytes
        _releaser.put(frame)
        return data
    whole = memoryview(frame)
    address = ctypes.addressof((_c_char * size).from_buffer(whole))
    whole.release()
    owner = (_c_char * size).from_address(address)
    _releaser.watch(owner, frame, size >= _AT_ONCE_SIZE)
    return memoryview(owner).cast("B").toreadonly()


def release_sent(frames: Sequence[Any]) -> None:
    """Hand the Frames of a sent message to the releasing thread (the last reference to each goes there)."""
    sent = [frame for frame in frames if isinstance(frame, _Frame)]
    if sent:
        if isinstance(frames, list):
            frames[:] = [frame for frame in frames if not isinstance(frame, _Frame)]
        _releaser.put(sent)
