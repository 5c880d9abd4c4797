"""Random frames and multipart shapes thrown at recv_safe, recv_event_safe and subscribe.

The only outcomes allowed are a value, None or DeserializationError, and the
next valid message always gets through.
"""

from __future__ import annotations

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentzero.core import Event, SocketManager
from agentzero.errors import DeserializationError
from agentzero.serializers import JSON, MSGPACK
from tests.conftest import publish_until_received

FRAMES = st.lists(st.binary(max_size=48), min_size=1, max_size=4)
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(params=[JSON, MSGPACK], ids=["json", "msgpack"])
def fuzzed(request, zmq_module, context):
    sockets = SocketManager(zmq_module, context, serialization_backend=request.param(), timeout=2)
    sockets.ensure_and_bind("in", zmq_module.PULL, "inproc://fuzz-pipe", zmq.POLLIN)
    sockets.ensure_and_connect("out", zmq_module.PUSH, "inproc://fuzz-pipe", zmq.POLLOUT)
    sockets.ensure_and_bind("pub", zmq_module.PUB, "inproc://fuzz-events", zmq.POLLOUT)
    sockets.ensure_and_connect("sub", zmq_module.SUB, "inproc://fuzz-events", zmq.POLLIN)
    sockets.set_topic("sub", "")
    publish_until_received(sockets, "pub", "sub", "warmup", 0)
    yield sockets
    sockets.close_all(linger=0)


def _expected_single(sockets, frames):
    """What recv_safe may return for these frames: the unpacked value, or None for an error."""
    if len(frames) != 1:
        return DeserializationError
    try:
        return sockets.serialization_backend.unpack(frames[0])
    except DeserializationError:
        return DeserializationError


@pytest.mark.sync_only("it drives a peer socket's own blocking multipart calls")
@FUZZ
@given(frames=FRAMES)
def test_recv_safe_survives_any_frames(fuzzed, frames):
    fuzzed.sockets["out"].send_multipart(frames)
    expected = _expected_single(fuzzed, frames)
    try:
        outcome = fuzzed.recv_safe("in", timeout=2)
    except DeserializationError as error:
        assert expected is DeserializationError
        assert error.socket_name == "in"
    else:
        assert outcome == expected or (outcome != outcome and expected != expected)  # NaN
    assert fuzzed.send_safe("out", {"valid": True})
    assert fuzzed.recv_safe("in", timeout=2) == {"valid": True}
    assert fuzzed.recv_safe("in", timeout=0) is None


@pytest.mark.sync_only("it drives a peer socket's own blocking multipart calls")
@FUZZ
@given(frames=FRAMES)
def test_recv_event_safe_survives_any_frames(fuzzed, frames):
    fuzzed.sockets["pub"].send_multipart(frames)
    try:
        outcome = fuzzed.recv_event_safe("sub", timeout=2)
    except DeserializationError as error:
        assert error.socket_name == "sub"
    else:
        assert isinstance(outcome, Event) and len(frames) == 2 and outcome.topic == frames[0]
    assert fuzzed.publish_safe("pub", "valid", {"ok": 1})
    assert fuzzed.recv_event_safe("sub", timeout=2) == Event(b"valid", {"ok": 1})


@pytest.mark.sync_only("it drives a peer socket's own blocking multipart calls")
@FUZZ
@given(batch=st.lists(FRAMES, min_size=1, max_size=5))
def test_subscribe_survives_any_frames(fuzzed, batch):
    for frames in batch:
        fuzzed.sockets["pub"].send_multipart(frames)
    fuzzed.publish_safe("pub", "valid", {"ok": 2})
    seen = 0
    while True:
        stream = fuzzed.subscribe("sub", timeout=2)
        try:
            for event in stream:
                assert isinstance(event, Event)
                seen += 1
                if event == Event(b"valid", {"ok": 2}):
                    return
        except DeserializationError:
            pass  # the generator ends; a new subscribe() picks up the next message
        assert seen <= len(batch) + 1
