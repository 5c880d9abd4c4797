"""Closing named sockets, one or all: linger, the monitor stopped first, the endpoints freed for bind."""

from __future__ import annotations

import time
from typing import Any

import zmq

from agentzero.manager.backend import NOBLOCK, monitor_socket_of, raw_recv
from agentzero.manager.checks import check_linger, closing_linger
from agentzero.manager.endpoints import released_key
from agentzero.manager.monitors import stop_monitor
from agentzero.manager.table import ManagerState

#: seconds during which an endpoint released by close() may be waited for by bind()
REBIND_GRACE = 1.0
#: milliseconds a closed socket keeps delivering its queued messages, unless told otherwise (see ``close``)
DEFAULT_LINGER = 1000
_monotonic = time.monotonic


class Closing(ManagerState):
    """Close the manager's named sockets, one or all, and stop the authenticator."""

    def close(self, socket_name: str, linger: int | None = None) -> None:
        """Close a socket if it exists, remove it from the poller and free its name.

        Messages still queued are delivered for up to ``linger`` milliseconds,
        exactly as ``zmq.Socket.close(linger)`` promises (the socket is not
        unbound first, which would discard them). Over ``ipc://``, libzmq 4.3
        itself can drop the tail of the queue of a socket closed right after
        sending (zeromq/libzmq#4660): wait for the receiver's confirmation
        before closing when every message matters. Greenlets waiting on
        the socket wake up with :class:`~agentzero.errors.SocketClosed`, and the
        log handlers attached to it (see :meth:`get_logger`) are detached. An
        address it was bound to can be bound again at once: :meth:`bind` waits
        (up to a second) while libzmq releases it in the background.

        Parameters
        ----------
        socket_name : str
            the socket name; an unknown name does nothing.
        linger : int, optional
            milliseconds to keep trying to deliver pending messages. ``-1``
            waits until they are delivered, ``0`` drops them at once. By
            default, the socket's own ``zmq.LINGER`` when it was set through
            :meth:`set_socket_option` or is bounded (set on the context, say),
            else the manager's ``linger`` (1000 ms unless the constructor was
            told otherwise), so that terminating the context cannot hang.

        Returns
        -------
        None

        Raises
        ------
        TypeError
            when ``linger`` is not a whole number of milliseconds; nothing is
            closed then, and the socket keeps working.
        ValueError
            when ``linger`` does not fit in 32 bits; nothing is closed either.
        """
        check_linger(linger)
        self._detach_log_handlers(socket_name)
        try:
            record = self._records[socket_name]
        except (KeyError, TypeError):
            return
        self._table.remove(record)
        self._waiting.closing(record)
        released, now = self._released, _monotonic()
        # oldest first, since every release lasts REBIND_GRACE: forget the expired in O(1) each
        while released and next(iter(released.values())) <= now:
            released.popitem(last=False)
        for endpoint in record.binds:
            key = released_key(endpoint)
            released[key] = now + REBIND_GRACE
            released.move_to_end(key)
        _stop_monitor(record.socket)
        stop_monitor(record, self._waiting)
        record.socket.close(closing_linger(record.socket, record.options, linger, self.linger))

    def close_all(self, linger: int | None = None) -> None:
        """Close every socket (see :meth:`close`) and stop the authenticator.

        A socket whose close fails does not stop the rest; the first error is
        raised once all were tried.

        Parameters
        ----------
        linger : int, optional
            milliseconds to keep trying to deliver pending messages; by default
            each socket's own bounded ``zmq.LINGER``, else the manager's
            ``linger`` (see :meth:`close`).

        Returns
        -------
        None

        Raises
        ------
        Exception
            the first error raised while closing a socket (``TypeError`` for a
            bad ``linger``, a ``zmq.ZMQError``, ...), raised again once every
            other socket was closed and the authenticator stopped.
        """
        check_linger(linger)
        first_error: BaseException | None = None
        self._table.unregister_named()  # at once, or each close would renumber the poller: O(n²)
        for name in list(self._records):
            try:
                self.close(name, linger)
            except Exception as exc:
                first_error = first_error or exc
        for name in list(self._log_handlers):  # handlers of sockets never created
            self._detach_log_handlers(name)
        if self._authenticator is not None:
            self._authenticator.stop()
            self._authenticator = None
        if first_error is not None:
            raise first_error

    def _detach_log_handlers(self, socket_name: Any) -> None:
        """Detach and close the log handlers publishing through ``socket_name``."""


def _stop_monitor(socket: Any) -> None:
    """Stop the socket's monitor (``get_monitor_socket``) before it closes.

    libzmq 4.3 can hang its I/O thread, and with it every later connection of
    the context, when a socket closes while its monitor is active; and stopping
    a monitor sends one last event with a blocking send, which never returns
    (holding the GIL) when nobody read the monitor and its queue is full. So
    the events nobody read are dropped first, then the monitor is stopped.
    """
    monitor = monitor_socket_of(socket)
    if monitor is None:
        return
    try:
        for _ in range(1_000_000):  # bounded: the I/O thread could keep adding events
            raw_recv(monitor, NOBLOCK, True)
    except zmq.ZMQError:
        pass  # drained (EAGAIN), or already closed
    try:
        socket.disable_monitor()
    except (zmq.ZMQError, AttributeError):
        pass
