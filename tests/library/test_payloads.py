"""Large binary payloads with MSGPACK: buffers of 64 KiB or more travel as frames of their own.

Sent without a copy, received as a read-only ``memoryview`` without a second
copy, in every flavour; a hostile peer's malformed references are refused with
:class:`DeserializationError` and the next message arrives; memory stays
bounded by ``max_message_size``; JSON keeps one frame.
"""

from __future__ import annotations

import queue
import threading

import msgpack
import pytest
import zmq

from agentzero.asyncio import SocketManager as AsyncioSocketManager
from agentzero.core import SocketManager
from agentzero.errors import DeserializationError, MessageTooLarge, SerializationError
from agentzero.manager.releasing import _releaser
from agentzero.serializers import JSON, MSGPACK, OUT_OF_BAND_SIZE
from tests.blocking_asyncio import ASYNCIO_FLAVOUR, BlockingAsyncioManager

BIG = bytes(range(256)) * (OUT_OF_BAND_SIZE // 256 * 3)  # 192 KiB
LIMIT = 1024 * 1024


def _reference(index: int) -> msgpack.ExtType:
    return msgpack.ExtType(1, index.to_bytes(4, "big"))


def _document(value) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


@pytest.fixture
def manager(zmq_module, context):
    """The shared scenario's manager (plain, green or asyncio), with MSGPACK and a 1 MiB message limit."""
    if zmq_module is ASYNCIO_FLAVOUR:
        blocking = BlockingAsyncioManager(
            AsyncioSocketManager(
                context=context, timeout=5, serialization_backend=MSGPACK(), max_message_size=LIMIT
            )
        )
        yield blocking
        blocking.shut()
        return
    sockets = SocketManager(
        zmq_module, context, timeout=5, serialization_backend=MSGPACK(), max_message_size=LIMIT
    )
    yield sockets
    sockets.close_all(linger=0)


@pytest.fixture
def pipe(manager, zmq_module, address):
    manager.ensure_and_bind("in", zmq_module.PULL, address, zmq.POLLIN)
    manager.ensure_and_connect("out", zmq_module.PUSH, manager.addresses["in"], zmq.POLLOUT)
    return manager


def test_large_buffers_nested_anywhere_arrive_whole_as_read_only_views(pipe):
    value = {
        "top": BIG,
        "list": [1, bytearray(BIG[::-1]), "text", b"small"],
        "tuple": (memoryview(BIG)[:OUT_OF_BAND_SIZE],),
        "nested": {"deeper": [{"blob": BIG[:100_000]}]},
        "just under": bytes(OUT_OF_BAND_SIZE - 1),
    }
    assert pipe.send_safe("out", value)
    received = pipe.recv_safe("in")
    buffers = [
        received["top"],
        received["list"][1],
        received["tuple"][0],
        received["nested"]["deeper"][0]["blob"],
    ]
    for buffer in buffers:
        assert isinstance(buffer, memoryview) and buffer.readonly and buffer.format == "B"
    assert [bytes(buffer) for buffer in buffers] == [BIG, BIG[::-1], BIG[:OUT_OF_BAND_SIZE], BIG[:100_000]]
    assert received["list"][::2] == [1, "text"] and received["list"][3] == b"small"
    assert received["just under"] == bytes(OUT_OF_BAND_SIZE - 1)  # in the document, as bytes
    assert pipe.send_safe("out", {"small": True})
    assert pipe.recv_safe("in") == {"small": True}


def test_the_wire_format_is_the_document_then_the_buffers_in_reference_order(pipe):
    first, second = b"1" * OUT_OF_BAND_SIZE, b"2" * (OUT_OF_BAND_SIZE + 1)
    assert pipe.send_safe("out", {"a": first, "b": [second], "c": b"inline"})
    frames = pipe.recv_multipart_safe("in")
    assert len(frames) == 3
    document = msgpack.unpackb(frames[0], raw=False)
    assert document == {"a": _reference(1), "b": [_reference(2)], "c": b"inline"}
    assert frames[1:] == [first, second]


def test_events_carry_large_buffers_after_their_topic(manager, zmq_module):
    manager.ensure_and_bind("pub", zmq_module.PUB, "inproc://payload-events", zmq.POLLOUT)
    manager.ensure_and_connect("sub", zmq_module.SUB, "inproc://payload-events", zmq.POLLIN)
    manager.set_topic("sub", "frames")
    for _ in range(200):  # the slow joiner: publish until the subscription took
        assert manager.publish_safe("pub", "frames", {"image": BIG, "n": 1})
        event = manager.recv_event_safe("sub", timeout=0.05)
        if event is not None:
            break
    assert event is not None and event.topic == b"frames"
    assert isinstance(event.data["image"], memoryview) and bytes(event.data["image"]) == BIG


def test_a_buffer_given_as_memoryview_of_another_format_arrives_as_its_bytes(pipe):
    import array

    numbers = array.array("i", range(OUT_OF_BAND_SIZE // 4))
    assert pipe.send_safe("out", {"numbers": memoryview(numbers)})
    received = pipe.recv_safe("in")["numbers"]
    assert isinstance(received, memoryview) and received.format == "B"
    assert bytes(received) == numbers.tobytes()


HOSTILE = {
    "an unknown extension code": (
        [_document({"x": msgpack.ExtType(2, b"\0\0\0\1")}), BIG],
        "extension type 2",
    ),
    "a reference past the last frame": ([_document({"x": _reference(2)}), BIG], "names frame 2"),
    "a reference to frame 0": ([_document({"x": _reference(0)}), BIG], "names frame 0"),
    "a reference of 2 bytes": ([_document({"x": msgpack.ExtType(1, b"\0\1")}), BIG], "holds 2 bytes"),
    "a buffer referenced twice": ([_document([_reference(1), _reference(1)]), BIG], "referenced twice"),
    "a buffer frame referenced nowhere": ([_document({"x": _reference(1)}), BIG, BIG], "frame 2 of 2"),
    "a reference without its frame": ([_document({"x": _reference(1)})], "extension type 1"),
    "a document that is not msgpack": ([b"\xc1", BIG], "invalid msgpack"),
    "a timestamp beside a buffer": (
        [_document({"x": _reference(1), "t": msgpack.Timestamp(1, 0)}), BIG],
        "Timestamp",
    ),
}


@pytest.mark.parametrize("frames, complaint", list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_malformed_reference_is_refused_and_the_next_message_arrives(pipe, frames, complaint):
    assert pipe.send_multipart_safe("out", frames)
    assert pipe.send_safe("out", {"next": BIG})
    with pytest.raises(DeserializationError, match=complaint) as refused:
        pipe.recv_safe("in")
    assert refused.value.socket_name == "in"
    assert not isinstance(refused.value, MessageTooLarge)
    assert bytes(pipe.recv_safe("in")["next"]) == BIG


def test_a_message_over_the_limit_is_dropped_keeping_no_more_than_the_limit(pipe):
    over = [_document([_reference(index) for index in range(1, 7)])] + [BIG] * 6  # 1.1 MiB
    assert pipe.send_multipart_safe("out", over)
    assert pipe.send_safe("out", {"next": BIG})
    with pytest.raises(MessageTooLarge) as refused:
        pipe.recv_safe("in")
    assert refused.value.size == sum(len(frame) for frame in over)
    assert refused.value.limit == LIMIT
    assert sum(len(frame) for frame in refused.value.raw) <= LIMIT
    assert bytes(pipe.recv_safe("in")["next"]) == BIG


def test_a_message_of_too_many_frames_is_refused_and_the_next_arrives(pipe):
    many = [_document([_reference(index) for index in range(1, 1100)])] + [b"x"] * 1099
    assert pipe.send_multipart_safe("out", many)
    assert pipe.send_safe("out", {"next": 1})
    with pytest.raises(MessageTooLarge, match="frames exceeds max_frames"):
        pipe.recv_safe("in")
    assert pipe.recv_safe("in") == {"next": 1}


def test_an_event_over_the_limit_is_dropped_and_the_next_arrives(manager, zmq_module):
    manager.ensure_and_bind("in", zmq_module.PULL, "inproc://payload-limit-events", zmq.POLLIN)
    manager.ensure_and_connect("out", zmq_module.PUSH, "inproc://payload-limit-events", zmq.POLLOUT)
    over = [b"topic", _document([_reference(index) for index in range(1, 7)])] + [BIG] * 6
    assert manager.send_multipart_safe("out", over)
    assert manager.publish_safe("out", "topic", {"next": BIG})
    with pytest.raises(MessageTooLarge):
        manager.recv_event_safe("in")
    event = manager.recv_event_safe("in")
    assert event.topic == b"topic" and bytes(event.data["next"]) == BIG


def test_what_msgpack_refuses_is_still_refused_beside_a_large_buffer(pipe):
    with pytest.raises(SerializationError, match="map key of type int"):
        pipe.send_safe("out", {"blob": BIG, "bad": {1: "one"}})
    with pytest.raises(SerializationError, match="ExtType"):
        pipe.send_safe("out", {"blob": BIG, "forged": _reference(1)})
    assert pipe.recv_safe("in", timeout=0.05) is None  # nothing was sent


@pytest.mark.sync_only("it builds sync SocketManagers of its own")
def test_json_sends_large_bytes_in_one_frame_as_0_4_6_did(zmq_module, context):
    with SocketManager(zmq_module, context, serialization_backend=JSON()) as sockets:
        sockets.ensure_and_bind("in", zmq_module.PULL, "inproc://payload-json", zmq.POLLIN)
        sockets.ensure_and_connect("out", zmq_module.PUSH, "inproc://payload-json", zmq.POLLOUT)
        assert sockets.send_safe("out", {"blob": b"ab" * OUT_OF_BAND_SIZE})
        frames = sockets.recv_multipart_safe("in", timeout=5)
        assert len(frames) == 1
        assert JSON().unpack(frames[0]) == {"blob": str(b"ab" * OUT_OF_BAND_SIZE)}


def test_the_serializer_packs_and_unpacks_the_frames_itself():
    serializer = MSGPACK()
    value = {"blob": BIG, "list": [bytearray(BIG)], "small": b"s"}
    frames = serializer.pack_frames(value)
    assert len(frames) == 3 and frames[1] is BIG  # not copied
    assert serializer.unpack_frames(frames) == {"blob": BIG, "list": [BIG], "small": b"s"}
    assert serializer.pack_frames({"small": b"s"}) == [serializer.pack({"small": b"s"})]
    assert serializer.unpack(serializer.pack(value))["blob"] == BIG  # pack itself keeps one frame
    with pytest.raises(DeserializationError, match="expected 1 frame, got 2"):
        JSON().unpack_frames([b"{}", b"{}"])


class _Probe:
    """Records the thread that frees it."""

    def __init__(self, freed: queue.Queue) -> None:
        self.freed = freed

    def __del__(self) -> None:
        self.freed.put(threading.get_ident())


def test_the_releasing_thread_frees_what_it_is_handed_once_no_one_else_holds_it():
    # a zmq.Frame freed in the main thread may swallow a Ctrl-C (see agentzero.manager.buffers)
    freed: queue.Queue = queue.Queue()
    probe = _Probe(freed)
    _releaser.put([probe])
    with pytest.raises(queue.Empty):
        freed.get(timeout=0.1)  # still held here: not freed
    del probe
    assert freed.get(timeout=5) != threading.get_ident()
    owner = _Probe(queue.Queue())  # anything that takes a weak reference
    _releaser.watch(owner, _Probe(freed))
    with pytest.raises(queue.Empty):
        freed.get(timeout=0.1)
    del owner
    assert freed.get(timeout=5) != threading.get_ident()


def test_a_received_buffer_keeps_its_memory_until_the_view_is_dropped(pipe):
    assert pipe.send_safe("out", {"blob": BIG})
    view = pipe.recv_safe("in")["blob"]
    for _ in range(3):
        assert pipe.send_safe("out", {"blob": b"\xff" * len(BIG)})
        assert bytes(pipe.recv_safe("in")["blob"]) == b"\xff" * len(BIG)
    assert view.obj is not None and bytes(view) == BIG  # its memory was not reused meanwhile


def test_the_console_shows_a_large_buffer_as_its_bytes():
    from agentzero.cli.tail import render

    assert render({"blob": memoryview(b"\x00\xff")}) == render({"blob": b"\x00\xff"})


def test_a_large_received_frame_is_freed_as_soon_as_its_view_is_dropped(pipe):
    """Memory freed at once is reused at once: a round's wait per large frame halved a 1 MiB stream."""
    import weakref

    from agentzero.manager import releasing

    period = releasing._PERIOD
    releasing._PERIOD = 60.0  # rounds far apart: only freeing at once passes
    try:
        _releaser.wake.put(None)  # the thread's current round ends; its next waits a minute
        threading.Event().wait(0.05)
        size = 512 * 1024
        assert pipe.send_safe("out", {"blob": bytes(size)})
        view = pipe.recv_safe("in")["blob"]
        live = [release.frame for release in list(_releaser.live.values())]
        frames = [weakref.ref(frame) for frame in live if frame is not None and len(frame) == size]
        del live
        assert len(frames) == 1 and len(view) == size
        del view
        for _ in range(200):
            if frames[0]() is None:
                break
            threading.Event().wait(0.01)
        assert frames[0]() is None
    finally:
        releasing._PERIOD = period
        _releaser.wake.put(None)


def test_a_stream_of_large_buffers_does_not_wake_the_releasing_thread_for_each(pipe, monkeypatch):
    """A thread switch per message cost a large stream about 20 us each: the thread stays up between them."""
    wakes: list[int] = []
    wake = _releaser._wake
    monkeypatch.setattr(_releaser, "_wake", lambda: (wakes.append(1), wake())[1])
    for index in range(50):
        assert pipe.send_safe("out", {"blob": bytes([index % 256]) * len(BIG)})
        assert bytes(pipe.recv_safe("in")["blob"][:1]) == bytes([index % 256])
    assert len(wakes) <= 2, f"woken {len(wakes)} times for 50 messages"
