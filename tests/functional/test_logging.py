"""ZMQPubHandler, get_log_handler and get_logger (plain and green)."""

from __future__ import annotations

import logging
import uuid

import pytest
import zmq

from agentzero.core import SocketManager, ZMQPubHandler
from agentzero.errors import SerializationError
from agentzero.serializers import JSON
from tests.conftest import publish_until_received


@pytest.fixture
def logs(manager, zmq_module):
    manager.ensure_and_bind("logs", zmq_module.PUB, "inproc://logs", zmq.POLLOUT)
    manager.ensure_and_connect("tail", zmq_module.SUB, "inproc://logs", zmq.POLLIN)
    manager.set_topic("tail", "")
    publish_until_received(manager, "logs", "tail", "warmup", None)
    return manager


@pytest.fixture
def logger_name():
    name = f"test-{uuid.uuid4().hex}"
    yield name
    logger = logging.getLogger(name)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)


def test_get_log_handler_publishes_records(logs, logger_name):
    handler = logs.get_log_handler("logs", topic_name="app_logs")
    assert isinstance(handler, ZMQPubHandler) and isinstance(handler, logging.Handler)
    logger = logging.getLogger(logger_name)
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    logger.info("Server is up on %s:%d", "127.0.0.1", 5000)
    event = logs.recv_event_safe("tail", timeout=2)
    assert event.topic == b"app_logs"
    assert event.data == {"msg": "Server is up on 127.0.0.1:5000", "args": ["127.0.0.1", 5000], "level": 20}


def test_get_logger_attaches_one_handler_and_publishes(logs, logger_name):
    logger = logs.get_logger("logs", topic_name="logs", logger_name=logger_name)
    again = logs.get_logger("logs", topic_name="logs", logger_name=logger_name)
    assert logger is again
    assert sum(isinstance(h, ZMQPubHandler) for h in logger.handlers) == 1
    logger.debug("Server is up!")
    event = logs.recv_event_safe("tail", timeout=2)
    assert event.topic == b"logs"
    assert event.data["msg"] == "Server is up!" and event.data["level"] == logging.DEBUG


def test_get_logger_defaults_to_the_socket_name(logs):
    logger = logs.get_logger("logs")
    try:
        assert logger.name == "logs"
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)


def test_handler_sends_unusual_arguments_as_text(logs, logger_name):
    logger = logs.get_logger("logs", logger_name=logger_name)
    marker = object()
    logger.warning("object %s", marker)
    event = logs.recv_event_safe("tail", timeout=2)
    assert event.data["args"] == [str(marker)]
    assert event.data["level"] == logging.WARNING


def test_log_handler_works_before_its_socket_exists(manager, zmq_module, logger_name):
    # 0.4.6 (and the seed's example) ask for the handler of a socket created later:
    # records logged before the socket exists are dropped and counted, not raised.
    handler = manager.get_log_handler("later")
    logger = manager.get_logger("later", logger_name=logger_name)
    assert handler in logger.handlers
    logger.info("too early")
    assert handler.dropped == 1


class ExplodingJSON(JSON):
    def pack_bytes(self, data):
        raise SerializationError(self, data, "refused on purpose")


def test_emit_never_raises_into_the_caller(zmq_module, context, logger_name, capsys):
    with SocketManager(zmq_module, context, serialization_backend=ExplodingJSON()) as sockets:
        sockets.ensure_and_bind("logs", zmq_module.PUB, "inproc://exploding", zmq.POLLOUT)
        logger = sockets.get_logger("logs", logger_name=logger_name)
        logger.error("this cannot be serialized")  # must not raise
    assert "refused on purpose" in capsys.readouterr().err


class LoggingJSON(JSON):
    """A serializer that logs while packing: publishing a record logs again."""

    def initialize(self, logger_name):
        self.logger_name = logger_name
        self.calls = 0

    def pack_bytes(self, data):
        self.calls += 1
        logging.getLogger(self.logger_name).info("packing %s", self.calls)
        return super().pack_bytes(data)


def test_emit_does_not_recurse(zmq_module, context, logger_name):
    serializer = LoggingJSON(logger_name)
    with SocketManager(zmq_module, context, serialization_backend=serializer) as sockets:
        sockets.ensure_and_bind("logs", zmq_module.PUB, "inproc://recursive", zmq.POLLOUT)
        logger = sockets.get_logger("logs", logger_name=logger_name)
        handler = logger.handlers[0]
        logger.info("once")
        assert serializer.calls == 1
        assert handler.dropped == 1


def test_records_after_close_are_dropped_quietly(logs, logger_name, capsys):
    logger = logs.get_logger("logs", logger_name=logger_name)
    handler = logger.handlers[0]
    logs.close("logs", linger=0)
    # closing the socket detaches the handler (issue 10: no dead handlers left behind) ...
    assert handler not in logger.handlers
    logger.info("nobody hears this")
    # ... and a record that still reaches it (a caller holding it) is dropped and counted
    handler.handle(logger.makeRecord(logger_name, logging.INFO, __file__, 1, "late", (), None))
    assert handler.dropped == 1
    assert "Logging error" not in capsys.readouterr().err
