"""Messages of several frames made by the serializer: large buffers sent and received without a copy.

:class:`~agentzero.serializers.MSGPACK` sends each large buffer of a value as
a frame of its own (see :mod:`agentzero._out_of_band`). Here those frames are
sent with ``copy=False`` and received with ``copy=False``: ZeroMQ's memory is
handed to the caller as a read-only ``memoryview``, with no copy on either side.

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

import collections
import ctypes
import os
import sys
import weakref
from typing import Any, Callable, Sequence

import zmq

from agentzero.errors import MessageTooLarge
from agentzero.manager.backend import NOBLOCK, NOT_READY_ERRNOS, RCVMORE, SNDMORE, raw_get, raw_recv, raw_send
from agentzero.manager.checks import translate
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

_ZMQError = zmq.ZMQError
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
        self.asleep = False
        if not self.started:
            self.started = True
            original("_thread", "start_new_thread")(self._run, ())
        else:
            self.wake.put(None)

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
            if kept or live:
                sleep(_PERIOD)
                continue
            self.asleep = True
            if not pending:
                self.wake.get()
            self.asleep = False


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
        frames: list[Any] = [*head, packed[0], *(_Frame(buffer, copy=False) for buffer in packed[1:])]
        try:
            raw_send(record.socket, frames[0], NOBLOCK | SNDMORE)
        except _ZMQError as exc:
            steps = self._send_steps(record, frames, exc, timeout, polling_timeout)  # type: ignore[arg-type]
            return self._finish(self._releasing(steps, frames))
        except BaseException:
            _release(frames)
            raise
        try:
            rest = self._send_rest(record, frames, 1)  # type: ignore[arg-type]
        except BaseException:
            _release(frames)
            raise
        if rest is not None:
            return self._finish(self._releasing(rest, frames))
        _release(frames)
        if record.waiters:
            self._waiting.after_operation(record)
        return True

    def _send_several_now(self, record: SocketRecord, head: tuple[bytes, ...], packed: list[Any]) -> bool:
        """Send as :meth:`_send_several` if the socket takes it at once; else ``False``."""
        try:
            raw_send(record.socket, head[0] if head else packed[0], NOBLOCK | SNDMORE)
        except _ZMQError as exc:
            if exc.errno in NOT_READY_ERRNOS:
                return False
            raise translate(record, exc, True) from None
        frames: list[Any] = [*head, packed[0], *(_Frame(buffer, copy=False) for buffer in packed[1:])]
        try:
            rest = self._send_rest(record, frames, 1)  # type: ignore[arg-type]
            if rest is not None:
                return bool(self._finish(self._releasing(rest, frames)))
        finally:
            _release(frames)
        return True

    def _releasing(self, steps: Steps[bool], frames: list[Any]) -> Steps[bool]:
        try:
            return (yield from steps)
        finally:
            _release(frames)

    def _several_frames(self, record: SocketRecord, head: list[bytes], keep: int) -> Any:
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
        while raw_get(socket, RCVMORE):  # the frames of a message arrive together: this never waits
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
