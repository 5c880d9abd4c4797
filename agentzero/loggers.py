"""The manager's loggers: log records published through its named sockets."""

from __future__ import annotations

import logging
from typing import Any

from agentzero.logs import ZMQPubHandler
from agentzero.manager.sockets import Sockets


class Loggers(Sockets):
    """Hand out :class:`ZMQPubHandler` handlers and loggers, and detach them when their socket closes."""

    #: the handler class :meth:`get_log_handler` makes (the asyncio manager's publishes without blocking)
    _log_handler_class: type[ZMQPubHandler] = ZMQPubHandler

    def get_log_handler(self, socket_name: str, topic_name: str = "logs") -> ZMQPubHandler:
        """Return a :class:`ZMQPubHandler` that publishes log records through a named socket.

        The socket need not exist yet: records logged before it exists (or
        after it is closed) are dropped and counted in the handler's ``dropped``.

        Parameters
        ----------
        socket_name : str
            the name of a PUB (or PUSH) socket of this manager
        topic_name : str
            the topic the records are published on

        Returns
        -------
        ZMQPubHandler
            the same handler for the same socket and topic, until the socket is closed.

        Raises
        ------
        TypeError
            when ``socket_name`` or ``topic_name`` is not hashable. Nothing else:
            a socket that does not exist yet is not an error.
        """
        hash((socket_name, topic_name))  # TypeError for an unhashable name, before anything is kept
        topics = self._log_handlers.get(socket_name)
        handler = topics.get(topic_name) if topics is not None else None
        if handler is None:
            handler = self._log_handler_class(self, socket_name, topic_name)
            self._log_handlers.setdefault(socket_name, {})[topic_name] = handler
        return handler

    def get_logger(
        self, socket_name: str, topic_name: str = "logs", logger_name: str | None = None
    ) -> logging.Logger:
        """Return a :class:`logging.Logger` whose records are published through a named socket.

        The handler is attached once: calling again for the same socket and
        topic adds no second one. A logger without a level of its own is set to
        ``DEBUG`` so that every record it gets is published. Closing the socket
        detaches the handler from the logger.

        Parameters
        ----------
        socket_name : str
            the name of a PUB (or PUSH) socket of this manager
        topic_name : str
            the topic the records are published on, ``"logs"`` by default
        logger_name : str, optional
            defaults to the socket name

        Returns
        -------
        logging.Logger
            the logger, with the handler attached

        Raises
        ------
        TypeError
            when ``socket_name`` or ``topic_name`` is not hashable, or
            ``logger_name`` is not text. Nothing else: a socket that does not
            exist yet is not an error (see :meth:`get_log_handler`).
        """
        handler = self.get_log_handler(socket_name, topic_name)
        logger = logging.getLogger(logger_name or str(socket_name))
        if handler not in logger.handlers:
            logger.addHandler(handler)
            self._attached_loggers.setdefault(handler, []).append(logger)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.DEBUG)
        return logger

    def _detach_log_handlers(self, socket_name: Any) -> None:
        # looked up by the socket's name, never scanned: closing n sockets stays O(n)
        try:
            topics = self._log_handlers.pop(socket_name, None)
        except TypeError:  # an unhashable name has no handler
            return
        if not topics:
            return
        for handler in topics.values():
            for logger in self._attached_loggers.pop(handler, ()):
                logger.removeHandler(handler)
            handler.close()
