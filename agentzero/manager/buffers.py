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
handler either) queues the Frame to a thread of its own, which frees it
(:mod:`agentzero.manager.releasing`). A
Frame that was sent is queued the same way once the call is over. Python runs
signal handlers only in the main thread, so a pending Ctrl-C stays pending and
is raised where the program is, as an ordinary ``KeyboardInterrupt``.
"""

from __future__ import annotations

import collections
import os
import signal
import time
from itertools import islice, repeat
from operator import length_hint
from typing import Any, Callable, TypeVar

import zmq

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
from agentzero.manager.releasing import release, release_sent, view_of, zero_copy_frame
from agentzero.manager.table import SocketRecord
from agentzero.manager.waits import Steps
from agentzero.patching import original

#: how many frames of a refused message :class:`MessageTooLarge` keeps in ``raw``
_RAW_FRAMES_KEPT = 16

#: how many times :func:`send_whole` goes on after an interruption between two frames
_RESUMPTIONS = 8

_ZMQError = zmq.ZMQError
_T = TypeVar("_T")
_SIGINT = signal.SIGINT
_set_handler = original("_signal", "signal")  # signal.signal without its enum conversion (10x dearer)
_monotonic = time.monotonic
_consume = collections.deque
_Frame = zmq.Frame


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
            release_sent(frames)
            raise
        if not sent:
            return self._finish(self._several_steps(record, frames, timeout, polling_timeout))
        release_sent(frames)
        if record.waiters:
            self._waiting.after_operation(record)
        return True

    def _send_several_now(self, record: SocketRecord, head: tuple[bytes, ...], packed: list[Any]) -> bool:
        """Send as :meth:`_send_several` if the socket takes it at once; else ``False``."""
        frames: list[Any] = [*head, packed[0], *packed[1:]]
        try:
            return bool(guarded(send_whole, record, frames, len(head) + 1))
        finally:
            release_sent(frames)

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
            release_sent(frames)

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
                release(frame)  # dropped at once: no more than the limit is kept
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

    Whether this thread runs the signal handlers is Python's own answer (a
    handler can be set only there), not a thread id kept aside: a process
    forked from a thread runs them in that thread, and gevent's
    monkey-patching makes ``threading.get_ident`` a greenlet's id.
    """
    received: list[Any] = []
    try:
        previous = _set_handler(_SIGINT, lambda number, frame: received.append(frame))
    except (ValueError, OSError):  # not the thread that runs the signal handlers: no SIGINT to hold back
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
    in ``frames``, once, to be released with :func:`~agentzero.manager.releasing.release_sent`).

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
            frames[index] = zero_copy_frame(frames[index])
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


def _kept(frames: list[Any], limit: int | None) -> list[Any]:
    """What :class:`MessageTooLarge` keeps of a refused message: its first frames, at most ``limit`` bytes."""
    if limit is None:
        return frames[:_RAW_FRAMES_KEPT]
    kept = []
    for frame in frames[:_RAW_FRAMES_KEPT]:
        kept.append(bytes(frame[:limit]))
        limit -= len(kept[-1])
    return kept
