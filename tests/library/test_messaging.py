"""send_safe, recv_safe, publish_safe, recv_event_safe, subscribe and waiting (plain and green)."""

from __future__ import annotations

import time

import pytest
import zmq

from agentzero.core import Event, SocketManager
from agentzero.errors import DeserializationError, SerializationError
from agentzero.serializers import JSON, MSGPACK
from tests.conftest import publish_until_received


@pytest.fixture
def pipe(manager, zmq_module):
    """A connected PUSH ('out') -> PULL ('in') pair over inproc."""
    manager.ensure_and_bind("in", zmq_module.PULL, "inproc://pipe", zmq.POLLIN)
    manager.ensure_and_connect("out", zmq_module.PUSH, "inproc://pipe", zmq.POLLOUT)
    return manager


@pytest.fixture
def events(manager, zmq_module):
    """A PUB ('pub') bound on loopback tcp, a SUB ('sub') connected to it."""
    manager.ensure_and_bind("pub", zmq_module.PUB, "tcp://127.0.0.1:*", zmq.POLLOUT)
    manager.ensure_and_connect("sub", zmq_module.SUB, manager.addresses["pub"], zmq.POLLIN)
    return manager


def test_send_and_recv_many_in_order(pipe):
    for number in range(500):
        assert pipe.send_safe("out", {"n": number})
    assert [pipe.recv_safe("in")["n"] for _ in range(500)] == list(range(500))


def test_recv_safe_returns_none_on_timeout_without_overshooting(pipe):
    started = time.monotonic()
    assert pipe.recv_safe("in", timeout=0.2) is None
    elapsed = time.monotonic() - started
    assert 0.15 <= elapsed < 1.0


def test_wait_until_ready_never_overshoots_by_a_polling_timeout(pipe):
    started = time.monotonic()
    assert pipe.wait_until_ready("in", zmq.POLLIN, timeout=0.3, polling_timeout=10000) is None
    assert time.monotonic() - started < 1.5
    started = time.monotonic()
    assert pipe.wait_until_ready("in", zmq.POLLIN, 0.3, 50) is None  # positional, small slices
    assert 0.25 <= time.monotonic() - started < 1.5


def test_wait_until_ready_returns_the_socket_once_ready(pipe):
    assert pipe.wait_until_ready("out", zmq.POLLOUT, timeout=1) is pipe.sockets["out"]
    pipe.send_safe("out", 1)
    assert pipe.wait_until_ready("in", zmq.POLLIN | zmq.POLLOUT, timeout=1) is pipe.sockets["in"]


def test_wait_until_ready_zero_timeout_only_checks(pipe):
    started = time.monotonic()
    assert pipe.wait_until_ready("in", zmq.POLLIN, timeout=0) is None
    assert time.monotonic() - started < 0.5


def test_wait_until_ready_rejects_negative_timeouts(pipe):
    with pytest.raises(ValueError, match="timeout must be a number >= 0, got -1"):
        pipe.wait_until_ready("in", zmq.POLLIN, timeout=-1)
    with pytest.raises(ValueError, match="polling_timeout"):
        pipe.recv_safe("in", timeout=0.1, polling_timeout=0)


def test_send_safe_returns_false_when_the_socket_never_becomes_available(manager, zmq_module):
    manager.ensure_and_bind("lonely", zmq_module.PUSH, "inproc://nobody", zmq.POLLOUT)
    started = time.monotonic()
    assert manager.send_safe("lonely", {"x": 1}, timeout=0.2) is False
    assert time.monotonic() - started < 1.0


def test_send_safe_waits_for_room_when_the_queue_is_full(manager, zmq_module):
    manager.create("in", zmq_module.PULL)
    manager.create("out", zmq_module.PUSH)
    manager.set_socket_option("in", zmq.HWM, 1)
    manager.set_socket_option("out", zmq.HWM, 1)
    manager.bind("in", "inproc://full", zmq.POLLIN)
    manager.connect("out", "inproc://full", zmq.POLLOUT)
    sent = 0
    while manager.send_safe("out", sent, timeout=0.1):
        sent += 1
        assert sent < 100, "a HWM of 1 should fill quickly"
    assert manager.send_safe("out", "late", timeout=0.1) is False
    received = [manager.recv_safe("in", timeout=1) for _ in range(sent)]
    assert received == list(range(sent))
    assert manager.send_safe("out", "now there is room", timeout=1) is True
    assert manager.recv_safe("in", timeout=1) == "now there is room"


def test_ready_and_engage(pipe):
    assert pipe.ready("in", zmq.POLLIN, timeout=10) is None
    assert pipe.ready("out", zmq.POLLOUT) is pipe.sockets["out"]
    pipe.send_safe("out", "x")
    ready = pipe.engage(timeout=1000)
    assert isinstance(ready, dict)
    assert ready[pipe.sockets["in"]] & zmq.POLLIN
    assert ready[pipe.sockets["out"]] & zmq.POLLOUT
    assert pipe.ready("in", zmq.POLLIN, timeout=1000) is pipe.sockets["in"]


def test_engage_with_nothing_registered_returns_empty(manager):
    assert manager.engage(timeout=10) == {}


def test_serialization_error_sends_nothing(manager, zmq_module):
    manager.serialization_backend = MSGPACK()
    manager._pack = manager.serialization_backend.pack_bytes
    manager._unpack = manager.serialization_backend.unpack
    manager.ensure_and_bind("in", zmq_module.PULL, "inproc://ser", zmq.POLLIN)
    manager.ensure_and_connect("out", zmq_module.PUSH, "inproc://ser", zmq.POLLOUT)
    with pytest.raises(SerializationError):
        manager.send_safe("out", {"obj": object()})
    with pytest.raises(SerializationError):
        manager.publish_safe("out", "t", object())
    assert manager.recv_safe("in", timeout=0.1) is None
    assert manager.send_safe("out", {"fine": b"\x00"})
    assert manager.recv_safe("in") == {"fine": b"\x00"}


@pytest.mark.sync_only("it builds sync SocketManagers of its own")
@pytest.mark.parametrize("serializer", [JSON(), MSGPACK()], ids=["json", "msgpack"])
def test_malformed_payload_raises_and_the_next_message_gets_through(zmq_module, context, serializer):
    with SocketManager(zmq_module, context, serialization_backend=serializer) as sockets:
        sockets.ensure_and_bind("in", zmq_module.PULL, "inproc://garbage", zmq.POLLIN)
        sockets.ensure_and_connect("out", zmq_module.PUSH, "inproc://garbage", zmq.POLLOUT)
        raw = sockets.sockets["out"]
        raw.send(b"\xc1{garbage")
        raw.send_multipart([b"two", b"frames"])
        sockets.send_safe("out", {"valid": True})
        with pytest.raises(DeserializationError) as bad:
            sockets.recv_safe("in")
        assert bad.value.raw == b"\xc1{garbage"
        assert bad.value.socket_name == "in"
        # MSGPACK reads several frames (a document and its large buffers): b"two" is no document
        refusal = "invalid msgpack" if isinstance(serializer, MSGPACK) else "expected 1 frame, got 2"
        with pytest.raises(DeserializationError, match=refusal) as multi:
            sockets.recv_safe("in")
        assert multi.value.raw == [b"two", b"frames"]
        assert sockets.recv_safe("in") == {"valid": True}


def test_publish_safe_without_subscribers_never_blocks(manager, zmq_module):
    manager.ensure_and_bind("pub", zmq_module.PUB, "inproc://nobody-listens", zmq.POLLOUT)
    started = time.monotonic()
    for number in range(5000):
        assert manager.publish_safe("pub", "output", {"n": number}) is True
    assert time.monotonic() - started < 5


def test_recv_event_safe_subscribes_to_its_topic(events):
    assert events.recv_event_safe("sub", "logs", timeout=0.05) is None
    event = publish_until_received(events, "pub", "sub", "logs:2016-06-20", {"stdout": "hello world"})
    assert event.topic == b"logs:2016-06-20"
    assert event.data == {"stdout": "hello world"}
    topic, data = event
    assert (topic, data) == (b"logs:2016-06-20", {"stdout": "hello world"})
    # subscribing again to the same topic adds no second subscription
    events.recv_event_safe("sub", b"logs", timeout=0.01)
    assert events.get_record("sub").subscriptions == {b"logs"}


def test_set_topic_filters_events(events):
    events.set_topic("sub", "logs")
    first = publish_until_received(events, "pub", "sub", "logs", {"n": 0})
    assert first.topic == b"logs"
    for number in range(20):
        events.publish_safe("pub", "metrics", {"n": number})
        events.publish_safe("pub", f"logs:{number}", {"n": number})
    received = []
    while (event := events.recv_event_safe("sub", timeout=0.3)) is not None:
        received.append(event)
    assert received and all(event.topic.startswith(b"logs") for event in received)
    assert [event.data["n"] for event in received if event.topic != b"logs"] == list(range(20))


@pytest.mark.sync_only("it drives a peer socket's own blocking multipart calls")
def test_recv_event_safe_rejects_wrong_shapes_and_keeps_going(events):
    events.set_topic("sub", "")
    publish_until_received(events, "pub", "sub", "warmup", 0)
    pub = events.sockets["pub"]
    pub.send(b"single-frame")
    pub.send_multipart([b"t", b"not json"])
    pub.send_multipart([b"t", b"1", b"extra"])
    events.publish_safe("pub", "t", {"ok": 1})
    with pytest.raises(DeserializationError, match="expected 2 frames"):
        events.recv_event_safe("sub", timeout=2)
    with pytest.raises(DeserializationError, match="invalid JSON") as bad:
        events.recv_event_safe("sub", timeout=2)
    assert bad.value.raw == b"not json" and bad.value.socket_name == "sub"
    with pytest.raises(DeserializationError, match="got 3"):
        events.recv_event_safe("sub", timeout=2)
    assert events.recv_event_safe("sub", timeout=2) == Event(b"t", {"ok": 1})


def test_subscribe_yields_events_as_pairs(events):
    stream = events.subscribe("sub", "output")
    publish_until_received(events, "pub", "sub", "output", "warmup")
    for number in range(3):
        events.publish_safe("pub", f"output:{number}", f"data {number}")
    received = []
    for topic, data in stream:
        received.append((topic, data))
        if len(received) == 3:
            break
    assert received == [(f"output:{n}".encode(), f"data {n}") for n in range(3)]


def test_subscribe_without_topic_subscribes_to_everything(events):
    events.subscribe("sub")
    assert events.get_record("sub").subscriptions == {b""}
    event = publish_until_received(events, "pub", "sub", "anything", [1])
    assert event.topic == b"anything"


def test_subscribe_keep_polling_must_be_callable(events):
    with pytest.raises(TypeError, match="keep_polling must be callable"):
        events.subscribe("sub", "x", keep_polling=True)


def test_subscribe_stops_soon_after_keep_polling_turns_false(events):
    stop_at = time.monotonic() + 0.3
    started = time.monotonic()
    received = list(events.subscribe("sub", "silence", keep_polling=lambda: time.monotonic() < stop_at))
    assert received == []
    assert time.monotonic() - started < 0.3 + 1.5


def test_subscribe_ends_when_the_socket_is_closed(events):
    stream = events.subscribe("sub", "t")
    publish_until_received(events, "pub", "sub", "t", 1)
    events.publish_safe("pub", "t", 2)
    assert next(stream).data == 2
    events.close("sub", linger=0)
    started = time.monotonic()
    assert list(stream) == []
    assert time.monotonic() - started < 2


@pytest.mark.sync_only("it builds sync SocketManagers of its own")
def test_msgpack_events_keep_bytes(zmq_module, context):
    with SocketManager(zmq_module, context, serialization_backend=MSGPACK()) as sockets:
        sockets.ensure_and_bind("pub", zmq_module.PUB, "inproc://mp-events", zmq.POLLOUT)
        sockets.ensure_and_connect("sub", zmq_module.SUB, "inproc://mp-events", zmq.POLLIN)
        sockets.set_topic("sub", b"bin")
        event = publish_until_received(sockets, "pub", "sub", b"bin", {"blob": b"\x00\x01"})
        assert event == Event(b"bin", {"blob": b"\x00\x01"})
