"""A :class:`logging.Handler` that publishes log records on a ZeroMQ PUB socket.

A ZeroMQ socket belongs to one thread, and a logging handler is called from
whatever thread logs. :class:`ZMQPubHandler` therefore only touches its socket
from the thread that created it (its *owner*, the manager's thread). A record
logged by any other thread is formatted there and handed over through a
thread-safe, bounded queue (``max_pending`` records); the owner publishes the
queued records, in order, before its own next record, and when it calls
:meth:`~ZMQPubHandler.flush` or :meth:`~ZMQPubHandler.close`. Under gevent the
handing thread also wakes the owner's hub with a gevent ``async`` watcher (the
one gevent object that is safe to signal from another thread), so queued
records go out as soon as the owner's loop runs, without waiting for its next
record. A record that finds the queue full is dropped and counted.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any

from agentzero.errors import SocketClosed, SocketNotFound
from agentzero.manager.checks import check_seconds
from agentzero.patching import original

_PLAIN_TYPES = (str, int, float, bool, type(None))

#: agentzero 0.4.6's record text, and its date format (UTC)
DEFAULT_FORMAT = "[%(asctime)s] %(levelname)s %(filename)s:%(lineno)d - %(message)s\n"
ERROR_FORMAT = "[%(asctime)s] %(levelname)s %(filename)s:%(lineno)d - %(message)s - %(exc_info)s\n"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def _utc_formatter(fmt: str) -> logging.Formatter:
    formatter = logging.Formatter(fmt, datefmt=DATE_FORMAT)
    formatter.converter = time.gmtime  # the format says Z: keep it true
    return formatter


try:
    from greenlet import getcurrent as _current_greenlet
except ImportError:  # pragma: no cover - greenlet comes with gevent, a dependency
    _ONLY_GREENLET = object()  # without greenlets, the thread itself is the one "greenlet"

    def _current_greenlet() -> Any:
        return _ONLY_GREENLET


_thread_ident = original("_thread", "get_ident")
_allocate_lock = original("_thread", "allocate_lock")
_RLock = original("_thread", "RLock")


class ZMQPubHandler(logging.Handler):
    """Publish each log record through a named socket of a :class:`~agentzero.core.SocketManager`.

    Every record becomes one event on ``topic_name`` whose data is
    ``{"msg": <the formatted record, str>, "args": record.args, "level": record.levelno}``.
    Arguments that are not plain values are sent as their ``str()``. Without a
    formatter of its own (see :meth:`~logging.Handler.setFormatter`, which
    wins), a record is formatted as agentzero 0.4.6 did:
    ``"[%(asctime)s] %(levelname)s %(filename)s:%(lineno)d - %(message)s\\n"``
    with dates as ``%Y-%m-%dT%H:%M:%SZ`` (in UTC), and ``" - %(exc_info)s"``
    before the newline of an ``ERROR`` record.

    The handler never blocks and never raises into the caller:

    - the socket is looked up by name for every record, so the handler works
      before the socket exists and after it is closed; such records are dropped;
    - a socket that cannot take a record at once (a PUSH at its high-water
      mark, a slow peer) drops it instead of waiting;
    - only the owner thread touches the socket; other threads queue their
      records (see the module's documentation), and a full queue drops them;
    - records logged while publishing (by the serializer, say) are dropped
      instead of recursing, and failures go through :meth:`~logging.Handler.handleError`;
    - with a ``timeout``, a record that another greenlet of the owner thread
      logs while a publish waits is queued as another thread's would be, and
      published, in order, as soon as that publish ends.

    :attr:`dropped` counts every record that was not published.

    Parameters
    ----------
    manager : agentzero.core.SocketManager
        the manager that owns the socket (the asyncio manager hands out a
        subclass that never blocks its event loop)
    socket_name : str
        the name of a PUB (or PUSH) socket of ``manager`` (``"logs"`` by default, as in 0.4.6)
    topic_name : str
        the topic the records are published on
    timeout : float or None
        seconds the owner thread may wait for a socket that cannot take a
        record at once; ``0`` (the default) never waits, ``None`` waits as long
        as the manager's ``timeout``. Other threads never wait.
    level : int
        the handler's level
    max_pending : int
        how many records of other threads may wait for the owner thread.

    Raises
    ------
    ValueError
        when ``timeout`` is negative, infinite or NaN, or ``max_pending`` is not an int >= 0.
    """

    def __init__(
        self,
        manager: Any,
        socket_name: Any = "logs",
        topic_name: str = "logs",
        timeout: float | None = 0.0,
        level: int = logging.NOTSET,
        max_pending: int = 1000,
    ) -> None:
        super().__init__(level)
        if timeout is not None:
            check_seconds("timeout", timeout)
        if not isinstance(max_pending, int) or isinstance(max_pending, bool) or max_pending < 0:
            raise ValueError(f"max_pending must be an int >= 0, got {max_pending!r}")
        self.manager = manager
        self.socket_name = socket_name
        self.topic_name = topic_name
        self.timeout = timeout
        self.max_pending = max_pending
        #: how many records were not published (no socket, full queue or socket, re-entrant emit)
        self.dropped = 0
        #: the thread (``_thread.get_ident()``, never a greenlet's id) that may touch the socket
        self.owner = _thread_ident()
        self._pending: collections.deque[dict[str, Any]] = collections.deque()
        self._count_lock = _allocate_lock()
        self._queue_lock = _allocate_lock()  # other threads' check-and-append; never held while waiting
        self._emitter: Any = (
            None  # the greenlet publishing now (None: nobody); what it logs meanwhile is dropped
        )
        self._local = threading.local()  # the re-entrancy flag of subclasses written before ``_emitter``
        self._closed = False  # logging.Handler.close() sets it too
        self._closing = False  # close() was called: no record is accepted any more
        self._shut = False  # closed for good: nothing is published any more
        flavour = getattr(manager, "_waiting", None)
        self._wake = flavour.wake_from_threads(self._wake_up) if flavour is not None else None
        self._default_formatter = _utc_formatter(DEFAULT_FORMAT)
        self._error_formatter = _utc_formatter(ERROR_FORMAT)

    def createLock(self) -> None:  # noqa: N802 - logging's name
        """A real lock even under gevent's monkey-patching: real threads take it too."""
        self.lock = _RLock()

    @property
    def pending(self) -> int:
        """How many records of other threads wait for the owner thread."""
        return len(self._pending)

    def format(self, record: logging.LogRecord) -> str:
        """Format ``record`` with the handler's formatter, or agentzero 0.4.6's format."""
        if self.formatter is not None:
            return self.formatter.format(record)
        if record.levelno == logging.ERROR:
            return self._error_formatter.format(record)
        return self._default_formatter.format(record)

    def handle(self, record: logging.LogRecord) -> Any:
        """Emit ``record`` if the filters let it through, *without* holding the handler's lock.

        :class:`logging.Handler` holds its lock around :meth:`emit`, so a thread
        that logged while the owner waited for its socket (see ``timeout``)
        waited as long. :meth:`emit` needs no lock: only the owner thread
        touches the socket, and other threads only queue their records.

        Parameters
        ----------
        record : logging.LogRecord
            the record to emit

        Returns
        -------
        bool or logging.LogRecord
            what the filters returned: false when the record was filtered out.
        """
        passed = self.filter(record)
        if isinstance(passed, logging.LogRecord):  # Python 3.12: a filter may hand back another record
            record = passed
        if passed:
            self.emit(record)
        return passed

    def emit(self, record: logging.LogRecord) -> None:
        if _thread_ident() != self.owner:
            self._hand_over(record)
            return
        if self._closing:  # close() was called; a waiting publish still sends what came before
            self._count_dropped(1)
            return
        if self._emitter is not None:
            if _current_greenlet() is self._emitter:
                self._count_dropped(1)  # logged by the publish itself: no recursion
            else:
                self._hand_over(record)  # another greenlet, while a publish waits: next in line
            return
        self._emitter = _current_greenlet()
        try:
            if self._pending:
                self._publish_pending()
            try:
                payload = self._payload(record)
            except Exception:  # a record its own arguments cannot format: reported below
                self._count_dropped(1)
                raise
            self._publish(payload)
            if self._pending:  # what other greenlets logged while this publish waited
                self._publish_pending()
        except Exception:
            self.handleError(record)
        finally:
            self._done_publishing()

    def flush(self) -> None:
        """Publish the records other threads queued; only the owner thread does (elsewhere: nothing)."""
        if _thread_ident() != self.owner or self._emitter is not None or not self._pending:
            return
        self._emitter = _current_greenlet()
        try:
            self._publish_pending()
        finally:
            self._done_publishing()

    def close(self) -> None:
        """Publish what is queued (from the owner thread), then drop every later record.

        Called while another greenlet of the owner thread waits to publish (a
        ``timeout``), it returns at once: that publish sends what was queued
        before, then the handler is closed.
        """
        if not self._closing:
            try:
                self.flush()
            except Exception:  # noqa: S110 - closing must go on; flush already counted what it dropped
                pass
            with self._queue_lock:
                self._closing = True  # no record is queued from now on
            if not (self._emitter is not None and _thread_ident() == self.owner):
                self._finish_closing()
            if self._wake is not None and _thread_ident() == self.owner:
                wake, self._wake = self._wake, None
                try:
                    wake.close()
                except Exception:  # noqa: S110 - the hub is already gone (interpreter exit)
                    pass
        super().close()

    def _done_publishing(self) -> None:
        """The owner's publish (:meth:`emit` or :meth:`flush`) is over: finish a ``close()`` it held up."""
        self._emitter = None
        if self._closing:
            self._finish_closing()

    def _finish_closing(self) -> None:
        """Drop (and count) what is still queued; from now on every record is dropped."""
        with self._queue_lock:  # no thread queues a record after the drain, uncounted
            self._shut = self._closed = True
            left = _drain(self._pending)
        self._count_dropped(left)

    # -- the owner thread -------------------------------------------------------------------

    def _publish(self, payload: dict[str, Any]) -> None:
        manager = self.manager
        if self._shut or self.socket_name not in manager.sockets:
            self._count_dropped(1)
            return
        try:
            sent = manager.publish_safe(self.socket_name, self.topic_name, payload, timeout=self.timeout)
        except (SocketNotFound, SocketClosed):  # closed since the look-up: as if it were gone
            sent = False
        except Exception:  # a payload the serializer refuses: reported by handleError
            self._count_dropped(1)
            raise
        if not sent:
            self._count_dropped(1)

    def _publish_pending(self) -> None:
        pending = self._pending
        while pending:
            try:
                payload = pending.popleft()
            except IndexError:  # pragma: no cover - only the owner pops
                return
            try:
                self._publish(payload)
            except Exception:
                self.handleError(_FailedRecord(payload))

    def _wake_up(self) -> None:
        """Run in the owner's gevent hub when another thread queued records: publish them from a greenlet."""
        if self._pending and not self._closing:
            import gevent

            gevent.spawn(self.flush)

    # -- any thread -------------------------------------------------------------------------

    def _hand_over(self, record: logging.LogRecord) -> None:
        if self._closing or len(self._pending) >= self.max_pending:
            self._count_dropped(1)
            return
        try:
            payload = self._payload(record)
        except Exception:
            self._count_dropped(1)
            self.handleError(record)
            return
        with self._queue_lock:  # threads log at once (no handler lock): keep max_pending exact
            queued = not self._closing and len(self._pending) < self.max_pending
            if queued:
                self._pending.append(payload)
        if not queued:
            self._count_dropped(1)
            return
        wake = self._wake
        if wake is not None:
            try:
                wake.send()
            except Exception:  # noqa: S110 - the watcher was closed meanwhile: the record waits for flush
                pass

    def _payload(self, record: logging.LogRecord) -> dict[str, Any]:
        return {"msg": self.format(record), "args": _plain_args(record.args), "level": record.levelno}

    def _count_dropped(self, count: int) -> None:
        if count:
            with self._count_lock:
                self.dropped += count

    def __repr__(self) -> str:
        return f"<ZMQPubHandler socket={self.socket_name!r} topic={self.topic_name!r}>"


class _FailedRecord(logging.LogRecord):
    """What :meth:`logging.Handler.handleError` reports for a queued record that could not be published."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(
            "agentzero.logs", payload.get("level", 0), __file__, 0, "%s", (payload["msg"],), None
        )


def _drain(pending: collections.deque[Any]) -> int:
    count = 0
    while True:
        try:
            pending.popleft()
        except IndexError:
            return count
        count += 1


def _plain_args(args: Any) -> Any:
    if isinstance(args, tuple):
        return [arg if isinstance(arg, _PLAIN_TYPES) else str(arg) for arg in args]
    if isinstance(args, dict):
        return {
            str(key): value if isinstance(value, _PLAIN_TYPES) else str(value) for key, value in args.items()
        }
    return args
