"""ROUTER servers: requests with their envelopes, replies routed back, hostile envelopes, peers that left.

Every scenario runs in each flavour through the ``manager`` fixture.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq

from agentzero import PeerUnreachable, Request
from agentzero.errors import DeserializationError, MessageTooLarge, WrongSocketType
from agentzero.manager.multipart import MAX_FRAMES

ROOT = Path(__file__).resolve().parents[2]


def server_and_client(manager, address, client_type, identity=None):
    """A ROUTER ``server`` bound to ``address`` and a ``client`` of ``client_type`` connected to it."""
    manager.ensure_and_bind("server", zmq.ROUTER, address, zmq.POLLIN)
    manager.create("client", client_type)
    if identity is not None:
        manager.set_socket_option("client", zmq.ROUTING_ID, identity)
    manager.connect("client", manager.addresses["server"], zmq.POLLIN)


# -- envelopes that round-trip ------------------------------------------------------------------


def test_a_req_peer_is_answered_through_its_envelope(manager, address):
    server_and_client(manager, address, zmq.REQ)
    for number in range(3):
        assert manager.send_safe("client", {"question": number})
        request = manager.recv_request_safe("server", timeout=5)
        assert isinstance(request, Request)
        identity, delimiter = request.envelope  # a REQ peer adds the empty delimiter
        assert identity and delimiter == b""
        assert request.data == {"question": number}
        assert manager.send_reply_safe("server", request.envelope, {"answer": number * 2})
        assert manager.recv_safe("client", timeout=5) == {"answer": number * 2}


def test_a_dealer_peer_is_answered_through_its_envelope(manager, address):
    server_and_client(manager, address, zmq.DEALER, b"dealer-7")
    # what a DEALER client's send_safe looks like to the ROUTER: [identity, payload]
    for number in range(3):
        assert manager.send_safe("client", ["job", number])
        assert manager.recv_request_safe("server", timeout=5) == Request((b"dealer-7",), ["job", number])
        assert manager.send_reply_safe("server", [b"dealer-7"], {"done": number})
        assert manager.recv_safe("client", timeout=5) == {"done": number}


def test_the_envelope_grows_through_a_router_to_dealer_queue(manager):
    """REQ client -> [ROUTER front | DEALER back] queue -> ROUTER server, and the reply back."""
    manager.ensure_and_bind("front", zmq.ROUTER, "inproc://routing-front", zmq.POLLIN)
    manager.ensure_and_bind("back", zmq.DEALER, "inproc://routing-back", zmq.POLLIN)
    manager.ensure_and_connect("server", zmq.ROUTER, "inproc://routing-back", zmq.POLLIN)
    manager.ensure_and_connect("client", zmq.REQ, "inproc://routing-front", zmq.POLLIN)
    for number in range(3):
        assert manager.send_safe("client", {"question": number})
        assert manager.send_multipart_safe("back", manager.recv_multipart_safe("front", timeout=5))
        request = manager.recv_request_safe("server", timeout=5)
        queue_identity, client_identity, delimiter = request.envelope
        assert queue_identity and client_identity and delimiter == b""
        assert request.data == {"question": number}
        assert manager.send_reply_safe("server", request.envelope, {"answer": number})
        assert manager.send_multipart_safe("front", manager.recv_multipart_safe("back", timeout=5))
        assert manager.recv_safe("client", timeout=5) == {"answer": number}


def test_recv_request_safe_times_out_with_none(manager):
    manager.ensure_and_bind("server", zmq.ROUTER, "inproc://routing-idle", zmq.POLLIN)
    started = time.monotonic()
    assert manager.recv_request_safe("server", timeout=0.1) is None
    assert 0.09 <= time.monotonic() - started < 2


# -- the one-frame calls on a ROUTER --------------------------------------------------------------

ONE_FRAME_CALLS = [
    ("recv_safe", ()),
    ("recv_event_safe", ()),
    ("send_safe", ({"hello": 1},)),
    ("publish_safe", (b"dealer-7", {"hello": 1})),  # the topic would have been taken for an identity
]


@pytest.mark.parametrize("call, arguments", ONE_FRAME_CALLS, ids=[call for call, _ in ONE_FRAME_CALLS])
def test_one_frame_calls_on_a_router_name_the_routing_calls_and_touch_nothing(manager, call, arguments):
    server_and_client(manager, "inproc://routing-wrong-type", zmq.DEALER, b"dealer-7")
    assert manager.send_safe("client", "waiting")
    assert manager.recv_multipart_safe("server", timeout=5) == [b"dealer-7", b'"waiting"']  # connected
    assert manager.send_safe("client", "request")
    with pytest.raises(WrongSocketType) as raised:
        getattr(manager, call)("server", *arguments, timeout=1)
    error = raised.value
    assert (error.socket_name, error.actual, error.operation) == ("server", "ROUTER", call)
    message = str(error)
    assert message.startswith(f"socket 'server' is a ROUTER socket, which routes by identity: {call} needs")
    for named in ("recv_request_safe", "send_reply_safe", "recv_multipart_safe", "send_multipart_safe"):
        assert named in message
    # nothing was received: the request is still there, whole
    assert manager.recv_request_safe("server", timeout=5) == Request((b"dealer-7",), "request")
    # nothing was sent: the client has no message
    assert manager.recv_multipart_safe("client", timeout=0.1) is None


# -- hostile envelopes ---------------------------------------------------------------------------


def hostile_peer(manager, identity=None):
    """A ROUTER ``server`` and a DEALER ``peer`` that sends whatever frames it likes."""
    manager.ensure_and_bind("server", zmq.ROUTER, "inproc://routing-hostile", zmq.POLLIN)
    manager.create("peer", zmq.DEALER)
    if identity is not None:
        manager.set_socket_option("peer", zmq.ROUTING_ID, identity)
    manager.connect("peer", "inproc://routing-hostile", zmq.POLLIN)


def next_request_is_served(manager):
    assert manager.send_safe("peer", {"after": "the hostile one"})
    request = manager.recv_request_safe("server", timeout=5)
    assert request.data == {"after": "the hostile one"}
    assert manager.send_reply_safe("server", request.envelope, "served")
    assert manager.recv_safe("peer", timeout=5) == "served"


MALFORMED = [
    ([b"", b"", b"1"], "malformed envelope: 2 empty frames (one delimiter at most)"),
    ([b"", b"", b"", b"1"], "malformed envelope: 3 empty frames (one delimiter at most)"),
    ([b"hop", b"", b"hop", b"1"], "malformed envelope: an empty routing frame (frame 3 of 4)"),
]


@pytest.mark.parametrize("frames, reason", MALFORMED, ids=["two-empty", "three-empty", "empty-routing"])
def test_empty_frames_in_an_envelope_are_refused_and_the_next_request_served(manager, frames, reason):
    hostile_peer(manager)
    assert manager.send_multipart_safe("peer", frames)
    with pytest.raises(DeserializationError) as raised:
        manager.recv_request_safe("server", timeout=5)
    assert raised.value.reason == reason
    assert raised.value.socket_name == "server"
    assert "socket 'server'" in str(raised.value)
    next_request_is_served(manager)


def test_an_empty_data_frame_is_refused_by_the_serializer_and_the_next_request_served(manager):
    hostile_peer(manager)
    assert manager.send_multipart_safe("peer", [b""])
    with pytest.raises(DeserializationError, match="socket 'server'"):
        manager.recv_request_safe("server", timeout=5)
    next_request_is_served(manager)


def test_ten_thousand_frames_are_refused_and_the_next_request_served(manager):
    hostile_peer(manager)
    assert manager.send_multipart_safe("peer", [b"x"] * 10_000)
    with pytest.raises(MessageTooLarge) as raised:
        manager.recv_request_safe("server", timeout=5)
    assert raised.value.frames == 10_001 and raised.value.max_frames == MAX_FRAMES
    assert len(raised.value.raw) <= 16
    next_request_is_served(manager)


def test_a_frame_over_max_message_size_is_refused_and_the_next_request_served(manager):
    hostile_peer(manager)
    manager.set_socket_option("server", zmq.MAXMSGSIZE, 1000)
    assert manager.send_multipart_safe("peer", [b"x" * 5000])
    with pytest.raises(MessageTooLarge) as raised:
        manager.recv_request_safe("server", timeout=5)
    assert raised.value.limit == 1000 and raised.value.size > 5000
    assert sum(len(frame) for frame in raised.value.raw) <= 1000
    next_request_is_served(manager)


def test_undecodable_data_names_the_socket_and_the_next_request_is_served(manager):
    hostile_peer(manager)
    assert manager.send_multipart_safe("peer", [b"\xff not json"])
    with pytest.raises(DeserializationError, match="socket 'server'") as raised:
        manager.recv_request_safe("server", timeout=5)
    assert not isinstance(raised.value, MessageTooLarge)
    next_request_is_served(manager)


# -- the envelope given to send_reply_safe ------------------------------------------------------

BAD_ENVELOPES = [
    (b"dealer-7", TypeError, "envelope must be a tuple of bytes frames"),
    ("dealer-7", TypeError, "envelope must be a tuple of bytes frames"),
    (None, TypeError, "envelope must be a tuple of bytes frames"),
    (("dealer-7",), TypeError, "envelope frames must be bytes-like"),
    ((), ValueError, "malformed envelope: no routing frame"),
    ((b"",), ValueError, "malformed envelope: no routing frame before the empty delimiter"),
    ((b"", b"dealer-7"), ValueError, "malformed envelope: an empty routing frame"),
]


@pytest.mark.parametrize("envelope, error, message", BAD_ENVELOPES)
def test_a_malformed_envelope_to_reply_to_sends_nothing(manager, envelope, error, message):
    hostile_peer(manager, b"dealer-7")
    assert manager.send_safe("peer", "hello")
    assert manager.recv_request_safe("server", timeout=5).envelope == (b"dealer-7",)
    with pytest.raises(error, match=message):
        manager.send_reply_safe("server", envelope, "reply")
    assert manager.recv_safe("peer", timeout=0.05) is None
    next_request_is_served(manager)


# -- peers that are gone, and peers that are slow ------------------------------------------------


def test_a_reply_to_a_peer_never_connected_raises_peer_unreachable_at_once(manager):
    hostile_peer(manager)
    started = time.monotonic()
    with pytest.raises(PeerUnreachable) as raised:
        manager.send_reply_safe("server", (b"\x00nobody", b""), "reply", timeout=5)
    assert time.monotonic() - started < 0.5
    assert (raised.value.socket_name, raised.value.identity) == ("server", b"\x00nobody")
    assert str(raised.value).startswith("socket 'server' cannot reach peer 006e6f626f6479 ")
    with pytest.raises(PeerUnreachable):  # raw frames too
        manager.send_multipart_safe("server", [b"\x00nobody", b"data"], timeout=5)
    next_request_is_served(manager)


def test_a_long_identity_is_shown_bounded():
    error = PeerUnreachable("server", b"\xab" * 200)
    assert str(error) == (
        f"socket 'server' cannot reach peer {'ab' * 32}... (200 bytes) (it left, or never connected); "
        "nothing was sent."
    )
    assert error.identity == b"\xab" * 200


def test_a_full_peer_waits_until_the_timeout_and_returns_false(manager):
    manager.create("server", zmq.ROUTER)
    manager.set_socket_option("server", zmq.SNDHWM, 1)
    manager.bind("server", "inproc://routing-full", zmq.POLLIN)
    manager.create("peer", zmq.DEALER)
    manager.set_socket_option("peer", zmq.RCVHWM, 1)
    manager.set_socket_option("peer", zmq.ROUTING_ID, b"slow")
    manager.connect("peer", "inproc://routing-full", zmq.POLLIN)
    assert manager.send_safe("peer", "hello")
    assert manager.recv_request_safe("server", timeout=5).envelope == (b"slow",)
    sent = 0
    while manager.send_reply_safe("server", (b"slow",), sent, timeout=0):
        sent += 1
        assert sent < 100, "the peer's queue never filled"
    started = time.monotonic()
    assert manager.send_reply_safe("server", (b"slow",), "one more", timeout=0.2) is False
    assert 0.15 <= time.monotonic() - started < 2
    assert manager.recv_safe("peer", timeout=5) == 0  # the queue drains, in order
    assert manager.send_reply_safe("server", (b"slow",), "room again", timeout=5)


def killable_client(address: str) -> subprocess.Popen:
    """A REQ client in another process: it sends one request and waits for ever for the reply."""
    script = (
        "import sys, zmq\n"
        "socket = zmq.Context().socket(zmq.REQ)\n"
        "socket.connect(sys.argv[1])\n"
        'socket.send(b\'{"please": "answer"}\')\n'
        "socket.recv()\n"
    )
    return subprocess.Popen([sys.executable, "-c", script, address], cwd=ROOT)


def test_a_reply_to_a_client_killed_with_sigkill_raises_peer_unreachable_at_once(manager):
    manager.ensure_and_bind("server", zmq.ROUTER, "tcp://127.0.0.1:*", zmq.POLLIN)
    client = killable_client(manager.addresses["server"])
    try:
        request = manager.recv_request_safe("server", timeout=20)
        assert request is not None and request.data == {"please": "answer"}
    finally:
        client.send_signal(signal.SIGKILL)
        client.wait(timeout=10)
    # ZeroMQ learns of the death when the kernel closes the connection: a reply sent before that
    # moment is queued (and lost with the connection); from then on, each reply is refused at once
    deadline = time.monotonic() + 5
    while True:
        started = time.monotonic()
        try:
            manager.send_reply_safe("server", request.envelope, "too late", timeout=5)
        except PeerUnreachable as error:
            assert time.monotonic() - started < 0.5
            assert error.identity == request.envelope[0]
            break
        assert time.monotonic() < deadline, "the ROUTER never noticed its peer died"
        time.sleep(0.01)
    started = time.monotonic()
    with pytest.raises(PeerUnreachable):
        manager.send_reply_safe("server", request.envelope, "still too late", timeout=5)
    assert time.monotonic() - started < 0.5
