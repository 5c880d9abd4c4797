"""Every message of the node graph protocol round-trips, with its type under the key 'type'."""

import json

import pytest

from examples.nodegraph.command import RemoteNodeError
from examples.nodegraph.graph import GraphError
from examples.nodegraph.messages import (
    AnnounceMsg,
    DeinitMsg,
    EpochEndedMsg,
    ErrorMsg,
    Event,
    EventMsg,
    IdentifyMsg,
    InitMsg,
    MalformedMessage,
    Message,
    MessageType,
    MetaEvent,
    NodeStatus,
    PingMsg,
    ProcessMsg,
    StartMsg,
    StatusMsg,
    StopMsg,
)

IDENTITY = {"node_id": "a", "outbox": "tcp://127.0.0.1:1", "status": "ready", "signals": ["s"], "slots": None}
MESSAGES = [
    AnnounceMsg(node_id="command", value={"inbox": "tcp://127.0.0.1:2", "nodes": {"a": IDENTITY}}),
    IdentifyMsg(node_id="a", value=IDENTITY),
    PingMsg(node_id="command"),
    ProcessMsg(node_id="command", value={"epoch": 3, "input": {"offset": 1}}),
    InitMsg(node_id="command"),
    DeinitMsg(node_id="command"),
    StartMsg(node_id="command", value=10),
    StartMsg(node_id="command"),
    StatusMsg(node_id="a", value=NodeStatus.waiting),
    StopMsg(node_id="command"),
    EventMsg(
        node_id="a",
        value=[
            Event(node_id="a", signal="s", epoch=1, value=[1, 2]),
            MetaEvent(node_id="a", signal="status"),
        ],
    ),
    ErrorMsg.from_exception("a", ValueError("bad", 2)),
    EpochEndedMsg(node_id="command", value=7),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: f"{type(m).__name__}")
def test_round_trip_with_the_alias_on_the_wire(message):
    frame = message.to_bytes()
    wire = json.loads(frame)
    assert wire["type"] == message.type_ and "type_" not in wire
    again = Message.from_bytes([b"routing-identity", frame])
    assert type(again) is type(message)
    assert again == message


def test_every_message_type_has_a_class():
    covered = {type(message).model_fields["type_"].default for message in MESSAGES}
    assert covered == set(MessageType)


@pytest.mark.parametrize(
    "frames, reason",
    [
        ([b"not json"], "not a message"),
        ([b'{"type": "teleport", "node_id": "a"}'], "type"),
        ([b'{"type": "status", "node_id": "a", "value": "dancing"}'], "bad status message"),
        ([b'{"type": "process", "node_id": "a", "value": {"epoch": "x"}}'], "bad process message"),
        ([], "expected a list of frames"),
    ],
)
def test_malformed_frames_raise_malformed_message(frames, reason):
    with pytest.raises(MalformedMessage, match=reason):
        Message.from_bytes(frames)


def test_errors_are_rebuilt_without_importing_anything():
    try:
        raise KeyError("missing")
    except KeyError as error:
        builtin = ErrorMsg.from_exception("n1", error)
    rebuilt = Message.from_bytes([builtin.to_bytes()]).to_exception()
    assert type(rebuilt) is KeyError and rebuilt.args == ("missing",)
    assert rebuilt.node_id == "n1" and 'raise KeyError("missing")' in rebuilt.remote_traceback

    custom = ErrorMsg.from_exception("n2", GraphError("graph broke", 5))
    assert custom.value["err_type"] == "examples.nodegraph.graph.GraphError"
    remote = Message.from_bytes([custom.to_bytes()]).to_exception()
    assert isinstance(remote, RemoteNodeError) and remote.err_type == "examples.nodegraph.graph.GraphError"
    assert remote.args == ("node 'n2' raised examples.nodegraph.graph.GraphError('graph broke', 5)",)
    # a peer naming a dangerous type gets a RemoteNodeError, never an import
    forged = ErrorMsg(
        node_id="x", value={"err_type": "os.system", "err_args": ("rm -rf /",), "traceback": ""}
    )
    assert isinstance(forged.to_exception(), RemoteNodeError)
    assert isinstance(
        ErrorMsg(
            node_id="x", value={"err_type": "builtins.print", "err_args": (), "traceback": ""}
        ).to_exception(),
        RemoteNodeError,
    )
