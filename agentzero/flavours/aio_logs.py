"""The log handler of the asyncio manager: publishing a record never blocks the event loop."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from agentzero.flavours.aio import adrive
from agentzero.logs import ZMQPubHandler
from agentzero.manager.waits import Pending

#: the most records an asyncio handler holds while its socket cannot take them; more are dropped
BACKLOG_LIMIT = 10000


class AsyncZMQPubHandler(ZMQPubHandler):
    """A :class:`~agentzero.logs.ZMQPubHandler` for :class:`agentzero.asyncio.SocketManager`.

    ``emit`` is a plain call, as :mod:`logging` wants, made from coroutines
    or callbacks of the loop. It publishes at once when the socket takes the
    record (a PUB socket always does); otherwise the record waits, in order,
    in a backlog that a task of the running loop publishes within the
    handler's ``timeout`` (records emitted outside a running loop, past
    :data:`BACKLOG_LIMIT` or not published in time are dropped and counted in
    :attr:`dropped`). Records of other threads wait in the base class's
    bounded queue until the loop's thread logs again, flushes or closes.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._backlog: deque[dict[str, Any]] = deque()
        self._drainer: asyncio.Task[None] | None = None

    def _publish(self, payload: dict[str, Any]) -> None:
        """Publish at once when the socket takes it, else keep it, in order, for the loop's task.

        Called by :meth:`ZMQPubHandler.emit` in the owner thread only: records of
        other threads wait in the base class's queue until then.
        """
        if self._closed or self.socket_name not in self.manager.sockets:
            self._count_dropped(1)
            return
        if self._backlog:
            self._defer(payload)
            return
        sent = self.manager._publish_now(self.socket_name, self.topic_name, payload)
        if sent.__class__ is Pending:  # its first frame went: the rest must follow, whatever it takes
            asyncio.get_running_loop().create_task(adrive(sent.steps))
        elif not sent:
            self._defer(payload)

    def close(self) -> None:
        """Drop the records still waiting, and close the handler."""
        if (
            self._drainer is not None
            and not self._drainer.done()
            and not self._drainer.get_loop().is_closed()
        ):
            self._drainer.cancel()
        self._drainer = None
        self._count_dropped(len(self._backlog))
        self._backlog.clear()
        super().close()

    def _defer(self, payload: dict[str, Any]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._count_dropped(1)
            return
        if len(self._backlog) >= BACKLOG_LIMIT:
            self._count_dropped(1)
            return
        self._backlog.append(payload)
        drainer = self._drainer
        if drainer is None or drainer.done() or drainer.get_loop() is not loop:
            self._drainer = loop.create_task(self._drain())

    async def _drain(self) -> None:
        backlog = self._backlog
        while backlog:
            try:
                sent = await self.manager.publish_safe(
                    self.socket_name, self.topic_name, backlog[0], timeout=self.timeout
                )
            except Exception:
                sent = False
            if backlog:
                backlog.popleft()
            if not sent:
                self._count_dropped(1)
