"""A :class:`logging.Handler` that publishes log records on a ZeroMQ PUB socket."""

from __future__ import annotations

import logging
import threading
from typing import Any

_PLAIN_TYPES = (str, int, float, bool, type(None))


class ZMQPubHandler(logging.Handler):
    """Publish each log record through a named socket of a :class:`~agentzero.core.SocketManager`.

    Every record becomes one event on ``topic_name`` whose data is
    ``{"msg": <the formatted record>, "args": record.args, "level": record.levelno}``.
    Arguments that are not plain values are sent as their ``str()``.

    ``emit`` never raises into the caller: failures go through
    :meth:`logging.Handler.handleError`, records logged while publishing (by
    the serializer, say) are dropped instead of recursing, and so are records
    emitted after the socket was closed. :attr:`dropped` counts both.

    Parameters
    ----------
    manager : agentzero.core.SocketManager
        the manager that owns the socket (the asyncio manager hands out a
        subclass that never blocks its event loop)
    socket_name : str
        the name of a PUB (or PUSH) socket of ``manager``
    topic_name : str
        the topic the records are published on
    timeout : float, optional
        seconds to wait for a socket that cannot take a record at once; PUB
        sockets never wait. Defaults to the manager's timeout.
    level : int
        the handler's level
    """

    def __init__(
        self,
        manager: Any,
        socket_name: Any,
        topic_name: str = "logs",
        timeout: float | None = None,
        level: int = logging.NOTSET,
    ) -> None:
        super().__init__(level)
        self.manager = manager
        self.socket_name = socket_name
        self.topic_name = topic_name
        self.timeout = timeout
        #: how many records were not published (socket closed, re-entrant emit, time-out)
        self.dropped = 0
        self._local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._local, "emitting", False):
            self.dropped += 1
            return
        self._local.emitting = True
        try:
            if self.socket_name not in self.manager.sockets:
                self.dropped += 1
                return
            payload = {"msg": self.format(record), "args": _plain_args(record.args), "level": record.levelno}
            if not self.manager.publish_safe(
                self.socket_name, self.topic_name, payload, timeout=self.timeout
            ):
                self.dropped += 1
        except Exception:
            self.handleError(record)
        finally:
            self._local.emitting = False

    def __repr__(self) -> str:
        return f"<ZMQPubHandler socket={self.socket_name!r} topic={self.topic_name!r}>"


def _plain_args(args: Any) -> Any:
    if isinstance(args, tuple):
        return [arg if isinstance(arg, _PLAIN_TYPES) else str(arg) for arg in args]
    if isinstance(args, dict):
        return {
            str(key): value if isinstance(value, _PLAIN_TYPES) else str(value) for key, value in args.items()
        }
    return args
