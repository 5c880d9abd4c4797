"""The hot-path frames are byte for byte what the message models write, or step aside."""

import datetime

import pytest

from examples.nodegraph import frames
from examples.nodegraph.messages import (
    EpochEndedMsg,
    Event,
    EventMaker,
    EventMsg,
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
