"""Messages of several frames made by the serializer: large buffers sent and received without a copy.

:class:`~agentzero.serializers.MSGPACK` sends each large buffer of a value as
a frame of its own (see :mod:`agentzero.serializers._out_of_band`). Here those
frames are sent with ``copy=False`` and received with ``copy=False``: ZeroMQ's
memory is handed to the caller as a read-only ``memoryview``, with no copy on
either side.

Both need a ``zmq.Frame``, and pyzmq's ``Frame.__dealloc__`` checks for
pending signals where an exception can only be printed and dropped (see
:mod:`agentzero.manager.backend`): a Ctrl-C landing while a large frame is
freed (``munmap`` takes milliseconds) would be lost. So no Frame of agentzero's
is ever freed in the main thread. A received frame is handed out as a view of
a ``ctypes`` array over its memory, not of the Frame; when the array is freed,
a weak reference's callback (a C function: no Python code runs, so no signal
handler either) queues the Frame to a thread of its own, which frees it. A
Frame that was sent is queued the same way once the call is over. Python runs
signal handlers only in the main thread, so a pending Ctrl-C stays pending and
is raised where the program is, as an ordinary ``KeyboardInterrupt``.
"""

from __future__ import annotations

import atexit
import collections
import ctypes
import os
import signal
import sys
import threading
import time
import weakref
from itertools import islice, repeat
from operator import length_hint
from typing import Any, Callable, Sequence, TypeVar

import zmq
import zmq.utils.garbage

from agentzero.errors import MessageTooLarge
from agentzero.manager.backend import (
    NOBLOCK,
    NOT_READY_ERRNOS,
    POLLOUT,
    SNDMORE,
    raw_recv,
    raw_send,
)
from agentzero.manager.checks import translate, wait_arguments
from agentzero.manager.frames import deserialization_error
from agentzero.manager.multipart import MAX_FRAMES, Multipart
from agentzero.manager.table import SocketRecord
from agentzero.manager.waits import Steps
from agentzero.patching import original

#: how often, in seconds, the releasing thread frees what it was handed while there is any
_PERIOD = 0.005
#: frames smaller than this are received as ``bytes`` (a copy costs less than a view's bookkeeping)
_VIEW_SIZE = 4096
#: how many frames of a refused message :class:`MessageTooLarge` keeps in ``raw``
_RAW_FRAMES_KEPT = 16

#: how many times :func:`send_whole` goes on after an interruption between two frames
_RESUMPTIONS = 8

_ZMQError = zmq.ZMQError
_T = TypeVar("_T")
_MAIN_THREAD = threading.main_thread().ident
_SIGINT = signal.SIGINT
_set_handler = original("_signal", "signal")  # signal.signal without its enum conversion (10x dearer)
#: pyzmq's zero-copy garbage collector (a thread that drops the buffers libzmq is done with)
_pyzmq_gc = zmq.utils.garbage.gc
_pyzmq_gc_lock = threading.Lock()
_monotonic = time.monotonic
_consume = collections.deque
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
    there is work, so a message costs no thread switch. With nothing pending,
    kept or watched, it waits until woken. Whoever drops the last reference to
    an object frees it: a Frame the caller still holds for a moment after
    handing it over is kept until the thread holds the only reference.
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

    def watch(self, owner: Any, frame: Any) -> None:
        """Free ``frame`` in the thread once ``owner`` is gone."""
        release = _Release(owner, self.pending.append)
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
        pending, live, sleep = self.pending, self.live, original("time", "sleep")
        kept: list[Any] = []
        while True:
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
            if kept or live:
                sleep(_PERIOD)
                continue
            self.asleep = True
            if not pending:
                self.wake.get()
            self.asleep = False


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


def _zero_copy_frame(buffer: Any) -> Any:
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
    _releaser.watch(owner, frame)
    return memoryview(owner).cast("B").toreadonly()


class Buffers(Multipart):
    """Sending and receiving the messages of several frames a serializer makes, for every flavour."""

    _unpack_frames: Callable[[list[Any]], Any] | None

    def _send_several(
        self,
        record: SocketRecord,
        head: tuple[bytes, ...],
        packed: list[Any],
        timeout: float | None,
        polling_timeout: float | None,
    ) -> bool:
        """Send ``head`` (a topic, or nothing), then ``packed``: a document, and buffers not copied."""
        frames: list[Any] = [*head, packed[0], *packed[1:]]  # the buffers become Frames in send_whole
        try:
            sent = guarded(send_whole, record, frames, len(head) + 1)
        except BaseException:
            _release(frames)
            raise
        if not sent:
            return self._finish(self._several_steps(record, frames, timeout, polling_timeout))
        _release(frames)
        if record.waiters:
            self._waiting.after_operation(record)
        return True

    def _send_several_now(self, record: SocketRecord, head: tuple[bytes, ...], packed: list[Any]) -> bool:
        """Send as :meth:`_send_several` if the socket takes it at once; else ``False``."""
        frames: list[Any] = [*head, packed[0], *packed[1:]]
        try:
            return bool(guarded(send_whole, record, frames, len(head) + 1))
        finally:
            _release(frames)

    def _several_steps(
        self, record: SocketRecord, frames: list[Any], timeout: float | None, polling_timeout: float | None
    ) -> Steps[bool]:
        """Wait until the socket takes the message, then send it whole; ``False`` on time-out."""
        try:
            seconds, slice_ms = wait_arguments(self, timeout, polling_timeout)
            deadline = _monotonic() + seconds
            wait = self._waiting.wait
            while True:
                remaining = deadline - _monotonic()
                if remaining < 0 or not (yield wait, record, POLLOUT, remaining, slice_ms):
                    return False
                if guarded(send_whole, record, frames, len(frames)):  # the Frames are made
                    if record.waiters:
                        self._waiting.after_operation(record)
                    return True
        finally:
            _release(frames)

    def _several_frames(self, record: SocketRecord, head: list[bytes], keep: int) -> Any:
        """:meth:`_read_several`, a Ctrl-C that pyzmq would drop raised again (see :func:`guarded`)."""
        return guarded(self._read_several, record, head, keep)

    def _read_several(self, record: SocketRecord, head: list[bytes], keep: int) -> Any:
        """Read the rest of a message whose first frames are ``head``; unpack ``head[keep:]`` and the rest.

        The rest is read with ``copy=False`` (see the module's text); the
        message is bounded by the socket's ``max_message_size`` (frames added
        up) and :data:`~agentzero.manager.multipart.MAX_FRAMES` frames, and
        refused with :class:`MessageTooLarge` past either, the rest dropped.
        """
        socket = record.socket
        limit = record.max_size
        size = sum(len(frame) for frame in head)
        count = len(head)
        refused = limit is not None and size > limit
        frames: list[Any] = list(head)
        more = record.more
        while more():  # the frames of a message arrive together: this never waits
            frame = raw_recv(socket, NOBLOCK, False)
            count += 1
            size += len(frame)
            if refused or count > MAX_FRAMES or (limit is not None and size > limit):
                refused = True
                _releaser.put(frame)  # dropped at once: no more than the limit is kept
            else:
                frames.append(view_of(frame))
        if record.waiters:
            self._waiting.after_operation(record)
        if refused:
            kept = _kept(frames, limit)
            raise MessageTooLarge(kept, size, limit, record.name, frames=count, max_frames=MAX_FRAMES)
        assert self._unpack_frames is not None
        try:
            return self._unpack_frames(frames[keep:])
        except Exception as exc:
            raise deserialization_error(frames[keep:], exc, record.name) from exc


def guarded(call: Callable[..., _T], *arguments: Any) -> _T:
    """``call(*arguments)`` with Ctrl-C held back until it returns, then raised as an ordinary exception.

    pyzmq frees a ``zmq.Frame`` of its own inside every send of one (and in a
    receive that fails), and a Frame that is freed runs the signal handlers
    where an exception can only be printed and dropped; its zero-copy
    garbage collector is Python code that a ``KeyboardInterrupt`` leaves
    broken (on Python 3.11, ``Thread.is_alive()`` interrupted marks the
    thread dead). So, in the main thread, SIGINT's handler is replaced while
    ``call`` runs by one that only notes the signal, and the handler it
    replaced is run with it once ``call`` is over: the message is whole, and
    the ``KeyboardInterrupt`` is raised here. ``call`` never waits.
    """
    if threading.get_ident() != _MAIN_THREAD:  # signal handlers run in the main thread only
        return call(*arguments)
    received: list[Any] = []
    try:
        previous = _set_handler(_SIGINT, lambda number, frame: received.append(frame))
    except (ValueError, OSError):  # no SIGINT to hold back here
        return call(*arguments)
    try:
        result = call(*arguments)
    finally:
        _set_handler(_SIGINT, previous)
        if received:
            _deliver(previous, received[0])
    return result


def _deliver(handler: Any, frame: Any) -> None:
    """Run ``handler`` (SIGINT's, which :func:`guarded` held back) as the signal would have."""
    if callable(handler):
        handler(_SIGINT, frame)  # Python's own raises KeyboardInterrupt
    elif handler == signal.SIG_DFL:
        os.kill(os.getpid(), _SIGINT)


def send_whole(record: SocketRecord, frames: list[Any], buffers: int) -> bool:
    """Send ``frames`` as one message if the socket takes its first frame now; else ``False``, nothing sent.

    ``frames[buffers:]`` are sent without a copy (each becomes a ``zmq.Frame``
    in ``frames``, once, to be released with :func:`_release`).

    A message is never cut short: an exception raised between two frames (a
    Ctrl-C, which pyzmq raises once a frame is sent) is raised again only
    once every frame was sent, so the next message cannot be glued to the
    head of this one. The frames are handed to libzmq by C code (``map``
    over the backend's ``send``), so ``pending`` always tells which were: one
    that raised after it was handed over was sent (libzmq takes every frame
    of a message once it took the first), except a first frame refused with
    ``EAGAIN`` or ``EFSM``.
    """
    socket = record.socket
    last = len(frames) - 1
    for index in range(buffers, last + 1):
        if not isinstance(frames[index], _Frame):
            frames[index] = _zero_copy_frame(frames[index])
    pending = iter(frames)
    flags = iter([NOBLOCK | SNDMORE] * last + [NOBLOCK])
    interruption: BaseException | None = None
    for _ in range(_RESUMPTIONS):  # each pass goes on where the last was interrupted
        try:
            while length_hint(pending):
                try:
                    _consume(map(raw_send, repeat(socket), pending, flags), maxlen=0)
                except _ZMQError as exc:
                    taken = len(frames) - length_hint(pending) - 1  # the frame that raised was not taken
                    if exc.errno not in NOT_READY_ERRNOS:
                        raise translate(record, exc, True) from None
                    if taken == 0:  # the socket did not take the message: nothing was sent
                        if interruption is not None:
                            raise interruption from None
                        return False
                    pending = iter(frames)  # no list of its own: the Frames stay in ``frames`` only
                    _consume(islice(pending, taken), maxlen=0)
                    flags = iter([NOBLOCK | SNDMORE] * (last - taken) + [NOBLOCK])
            break
        except _ZMQError:
            raise
        except BaseException as exc:  # after a frame was handed over: the message is finished first
            if interruption is None:
                interruption = exc
    if interruption is not None:
        raise interruption
    return True


def _release(frames: Sequence[Any]) -> None:
    """Hand the Frames of a sent message to the releasing thread (the last reference to each goes there)."""
    sent = [frame for frame in frames if isinstance(frame, _Frame)]
    if sent:
        if isinstance(frames, list):
            frames[:] = [frame for frame in frames if not isinstance(frame, _Frame)]
        _releaser.put(sent)


def _kept(frames: list[Any], limit: int | None) -> list[Any]:
    """What :class:`MessageTooLarge` keeps of a refused message: its first frames, at most ``limit`` bytes."""
    if limit is None:
        return frames[:_RAW_FRAMES_KEPT]
    kept = []
    for frame in frames[:_RAW_FRAMES_KEPT]:
        kept.append(bytes(frame[:limit]))
        limit -= len(kept[-1])
    return kept
