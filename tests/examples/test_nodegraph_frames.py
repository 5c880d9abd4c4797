"""The hot-path frames are byte for byte what the message models write, or step aside."""

import datetime
import json

import pytest

from examples.nodegraph import frames
from examples.nodegraph.messages import (
    EpochEndedMsg,
    Event,
    EventMaker,
    EventMsg,
    MalformedMessage,
    Message,
    MetaSignal,
    ProcessMsg,
)

WHEN = datetime.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=datetime.timezone.utc)
PLAIN = [0, -1, 2**63 - 1, 2**64 - 1, -(2**63), 0.1, -0.0, 1e300, 5e-324, True, None, "", "é ∑ 😀", '"\\\n\t']


def _model_bytes(epoch, values):
    items = [
        Event.model_construct(
            id=index, timestamp=WHEN, node_id="n", signal=f"s{index}", epoch=epoch, value=value
        )
        for index, value in enumerate(values)
    ]
    return EventMsg(node_id="n", timestamp=WHEN, value=items).to_bytes()


@pytest.mark.parametrize("value", PLAIN + [MetaSignal.NoEvent], ids=repr)
@pytest.mark.parametrize("epoch", [7, (7, ("mapnode", 2))], ids=["epoch", "sub-epoch"])
def test_an_event_frame_is_what_the_model_writes(value, epoch):
    fast = frames.event_frame("n", epoch, [(0, "s0", value)], WHEN)
    assert fast == _model_bytes(epoch, [value])
    assert Message.from_bytes([fast]).value[0].value == value


@pytest.mark.parametrize(
    "value",
    [b"\xff not utf-8", "pck__looks pickled", float("nan"), float("inf"), 2**64, [1], {"a": 1}, "\ud800"],
    ids=repr,
)
def test_values_the_models_treat_specially_take_the_model_path(value):
    assert frames.event_frame("n", 1, [(0, "s0", value)], WHEN) is None
    frame = EventMaker("n").frame(1, [("s0", value)])  # the model path
    assert Message.from_bytes([frame]).value[0].value == (
        None if value != value or value == float("inf") else value
    )


@pytest.mark.parametrize("microsecond", [0, 5000, 999999])
@pytest.mark.parametrize("name", ["n", "a%d%s", 'q"\\é'])
def test_an_event_frame_is_what_the_model_writes_at_any_time_for_any_name(microsecond, name):
    when = WHEN.replace(microsecond=microsecond)
    epoch = (7, (name, 2))
    fast = frames.event_frame(name, epoch, [(0, name, 1), (1, "s", MetaSignal.NoEvent)], when)
    items = [
        Event.model_construct(id=0, timestamp=when, node_id=name, signal=name, epoch=epoch, value=1),
        Event.model_construct(
            id=1, timestamp=when, node_id=name, signal="s", epoch=epoch, value=MetaSignal.NoEvent
        ),
    ]
    assert fast == EventMsg(node_id=name, timestamp=when, value=items).to_bytes()
    other = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    assert (
        frames.event_frame(name, 7, [(0, "s", 1)], other)
        == EventMsg(
            node_id=name,
            timestamp=other,
            value=[Event.model_construct(id=0, timestamp=other, node_id=name, signal="s", epoch=7, value=1)],
        ).to_bytes()
    )


def test_command_frames_are_what_the_models_write():
    for epoch in (3, (3, ("mapnode", 1))):
        assert (
            frames.command_frame("process", "command", {"epoch": epoch, "input": None}, WHEN)
            == ProcessMsg(node_id="command", timestamp=WHEN, value={"epoch": epoch, "input": None}).to_bytes()
        )
        assert (
            frames.command_frame("epoch_ended", "command", epoch, WHEN)
            == EpochEndedMsg(node_id="command", timestamp=WHEN, value=epoch).to_bytes()
        )


def test_a_value_that_is_not_built_in_cannot_be_sent():
    with pytest.raises(TypeError, match="only built-in types"):
        EventMaker("n").frame(1, [("s0", object())])


def _event_bytes(**changes):
    item = {"id": 1, "timestamp": "2026-01-02T03:04:05.000006+00:00", "node_id": "n", "signal": "s0"}
    item.update({"epoch": 7, "value": 5})
    item.update(changes.pop("item", {}))
    message = {"type": "event", "node_id": "n", "timestamp": "2026-01-02T03:04:05.000006Z", "value": [item]}
    message.update(changes)
    return json.dumps(message, separators=(",", ":")).encode()


@pytest.mark.parametrize("value", PLAIN + [MetaSignal.NoEvent], ids=repr)
@pytest.mark.parametrize("epoch", [7, (7, ("mapnode", 2))], ids=["epoch", "sub-epoch"])
def test_reading_a_plain_event_gives_what_the_models_give(value, epoch):
    frame = frames.event_frame("n", epoch, [(0, "s0", value)], WHEN)
    node_id, items = frames.read_event(frame)
    message = Message.from_bytes([frame])
    assert node_id == message.node_id == "n"
    assert items == [(item.node_id, item.signal, item.epoch, item.value) for item in message.value]
    assert type(items[0][3]) is type(message.value[0].value)


@pytest.mark.parametrize(
    "frame",
    [
        b'{"type":"event","node_id":"n","timestamp":"2026-01-02T03:04:05Z","value":[{"id":1,'
        b'"timestamp":"2026-01-02T03:04:05Z","node_id":"n","signal":"s","epoch":1,"value":Infinity}]}',
        b'{"type":"event","node_id":"n","timestamp":"2026-01-02T03:04:05Z","value":[{"id":1,'
        b'"timestamp":"2026-01-02T03:04:05Z","node_id":"n","signal":"s","epoch":1,"value":"\\ud800"}]}',
        b'{"type":"event","node_id":"n","timestamp":"2026-01-02T03:04:05Z","value":[{"id":1,'
        b'"timestamp":"2026-01-02T03:04:05Z","node_id":"n","signal":"s","epoch":1,"value":1e400}]}',
        b'{"type":"event","node_id":"n","timestamp":"2026-01-02T03:04:05Z","value":[{"id":1,'
        b'"timestamp":"2026-01-02T03:04:05Z","node_id":"n","signal":"s","epoch":1,"value":'
        + b"[" * 5000
        + b"]" * 5000
        + b"}]}",
        b'{"type":"event","node_id":"n"' + b"\xff" + b"}",
        _event_bytes(timestamp="2026-02-31T03:04:05Z"),
        _event_bytes(item={"timestamp": "yesterday"}),
        _event_bytes(item={"epoch": -1}),
        _event_bytes(item={"epoch": [1, ["x"]]}),
        _event_bytes(item={"epoch": 2**63}),
        _event_bytes(item={"id": "1"}),
        _event_bytes(item={"id": True}),
        _event_bytes(item={"signal": 3}),
        _event_bytes(item={"node_id": None}),
        _event_bytes(node_id=4),
        _event_bytes(value={"not": "a list"}),
        _event_bytes(item={"value": "pck__bm90IGEgcGlja2xl"}),
        _event_bytes(item={"value": {"a": 1}}),
        _event_bytes(item={"value": [1, 2]}),
        _event_bytes(item={"extra": 1}),
        _event_bytes(item={"node_id": "meta", "signal": "EpochEnded"}),
        _event_bytes(extra=1),
        b'{"type":"ping","node_id":"n","value":null}',
        b"[1, 2]",
        b"",
    ],
    ids=range(25),
)
def test_reading_anything_else_is_left_to_the_models(frame):
    assert frames.read_event(frame) is None


def test_what_the_fast_reader_declines_the_models_judge_as_before():
    with pytest.raises(MalformedMessage):
        Message.from_bytes([_event_bytes(item={"epoch": -1})])
    message = Message.from_bytes([_event_bytes(extra=1, item={"value": [1, 2]})])  # extra keys ignored
    assert message.value[0].value == [1, 2]


def test_a_long_integer_reads_as_the_models_read_it():
    frame = _event_bytes(item={"value": 2**70, "id": 2**64 - 1})
    assert frames.read_event(frame)[1][0][3] == Message.from_bytes([frame]).value[0].value == 2**70
