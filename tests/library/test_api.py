"""The public surface: import paths, names and constants the documentation promises."""

import logging

import zmq

import agentzero
from agentzero import core, errors, serializers


def test_package_exports():
    assert agentzero.SocketManager is core.SocketManager
    assert agentzero.ZMQPubHandler is core.ZMQPubHandler
    assert agentzero.Event is core.Event
    assert agentzero.serializers is serializers
    assert agentzero.__version__ == agentzero.version
    for name in (
        "AgentZeroSocketError",
        "SocketAlreadyExists",
        "SocketNotFound",
        "SocketBindError",
        "SocketConnectError",
        "SerializationError",
        "DeserializationError",
    ):
        assert getattr(agentzero, name) is getattr(errors, name)


def test_defaults():
    assert core.DEFAULT_TIMEOUT_IN_SECONDS == 10
    assert core.DEFAULT_POLLING_TIMEOUT == 10000
    assert core.zmq is zmq
    assert issubclass(core.ZMQPubHandler, logging.Handler)


def test_every_error_is_an_agentzero_error_and_an_exception():
    for error in (
        errors.SocketAlreadyExists,
        errors.SocketNotFound,
        errors.SocketBindError,
        errors.SocketConnectError,
        errors.SerializationError,
        errors.DeserializationError,
    ):
        assert issubclass(error, errors.AgentZeroSocketError)
    assert issubclass(errors.AgentZeroSocketError, Exception)


def test_error_messages():
    class Fake:
        def __repr__(self):
            return "SocketManager(sockets=['foo', 'bar'])"

    assert (
        str(errors.SocketNotFound(Fake(), "boom"))
        == "SocketManager(sockets=['foo', 'bar']) has no sockets named 'boom'."
    )
    assert (
        str(errors.SocketAlreadyExists(Fake(), "foo"))
        == "SocketManager(sockets=['foo', 'bar']) already has a socket named 'foo'."
    )
    bind = errors.SocketBindError("api", "tcp://127.0.0.1:1", zmq.ZMQError(zmq.EADDRINUSE))
    assert "'api'" in str(bind) and "'tcp://127.0.0.1:1'" in str(bind)
    assert bind.errno == zmq.EADDRINUSE
    decode = errors.DeserializationError(b"\xff" * 200, "bad", "pipe-in")
    assert "'pipe-in'" in str(decode) and decode.raw == b"\xff" * 200
    assert len(str(decode)) < 200


def test_event_unpacks_like_a_pair():
    event = core.Event(b"logs", {"stdout": "hello"})
    topic, data = event
    assert (topic, data) == (b"logs", {"stdout": "hello"})
    assert event.topic == b"logs" and event.data == {"stdout": "hello"}


def test_zero_module_gives_green_zmq_and_one_context():
    from agentzero import zero

    assert zero.zmq.__name__ == "zmq.green"
    assert isinstance(zero.context, zero.zmq.Context)
    from agentzero.zero import context
    from agentzero.zero import zmq as green

    assert context is zero.context and green is zero.zmq
