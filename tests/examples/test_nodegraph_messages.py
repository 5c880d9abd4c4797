"""Every message of the node graph protocol round-trips, with noob's wire shapes, and pickles stay inert."""

import base64
import datetime
import io
import json
import os
import pickle
import subprocess
import sys

import pytest

from examples.nodegraph import pickles
from examples.nodegraph.graph import GraphError
from examples.nodegraph.messages import (
    AnnounceMsg,
    DeinitMsg,
    EpochEndedMsg,
    ErrorMsg,
    Event,
    EventMaker,
    EventMsg,
    IdentifyMsg,
    InitMsg,
    MalformedMessage,
    Message,
    MessageSerializer,
    MessageType,
    MetaEvent,
    MetaEventType,
    MetaSignal,
    NodeStatus,
    PingMsg,
    ProcessMsg,
    RemoteNodeError,
    StartMsg,
    StatusMsg,
    StopMsg,
    parse_epoch,
)
from examples.nodegraph.pickles import RemoteGlobal, SafeUnpickler, UnsafePickle

WHEN = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.timezone.utc)
IDENTITY = {"node_id": "a", "outbox": "tcp://127.0.0.1:1", "status": "ready", "signals": ["s"], "slots": None}
MAKER = EventMaker("a")
MESSAGES = [
    AnnounceMsg(node_id="command", value={"inbox": "tcp://127.0.0.1:2", "nodes": {"a": IDENTITY}}),
    IdentifyMsg(node_id="a", value=IDENTITY),
    PingMsg(node_id="command"),
    ProcessMsg(node_id="command", value={"epoch": 3, "input": {"offset": 1}}),
    ProcessMsg(node_id="command", value={"epoch": [3, ["mapnode", 1]], "input": None}),
    InitMsg(node_id="command"),
    DeinitMsg(node_id="command"),
    StartMsg(node_id="command", value=10),
    StartMsg(node_id="command"),
    StatusMsg(node_id="a", value=NodeStatus.waiting),
    StopMsg(node_id="command"),
    EventMsg(
        node_id="a",
        value=[
            MAKER.event("s", 1, [1, 2]),
            MAKER.event("t", (1, ("mapnode", 0)), MetaSignal.NoEvent),
            MAKER.event("u", 1, b"\xff\x00 not utf-8"),
            MAKER.meta(MetaEventType.NodeReady, 1, "a"),
        ],
    ),
    ErrorMsg.from_exception("a", ValueError("bad", 2)),
    EpochEndedMsg(node_id="command", value=7),
    EpochEndedMsg(node_id="command", value=[3, ["mapnode", 1], ["inner", 0]]),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: f"{type(m).__name__}")
def test_round_trip_with_upstreams_key_order(message):
    frame = message.to_bytes()
    wire = json.loads(frame)
    assert list(wire) == ["type", "node_id", "timestamp", "value"]
    assert wire["type"] == message.type_
    again = Message.from_bytes([b"routing-identity", frame])
    assert type(again) is type(message)
    assert again.to_bytes() == frame
    if not isinstance(message, ErrorMsg):
        assert again == message


def test_every_message_type_has_a_class():
    covered = {type(message).model_fields["type_"].default for message in MESSAGES}
    assert covered == set(MessageType)


def test_event_items_have_upstreams_shape_and_meta_discriminator():
    frame = EventMsg(
        node_id="a",
        timestamp=WHEN,
        value=[
            Event(id=5, timestamp=WHEN, node_id="a", signal="s", epoch=2, value=MetaSignal.NoEvent),
            MetaEvent(id=6, timestamp=WHEN, signal="EpochEnded", epoch=2, value=2),
        ],
    ).to_bytes()
    items = json.loads(frame)["value"]
    assert items[0] == {
        "id": 5,
        "timestamp": "2026-01-02T03:04:05.678901+00:00",
        "node_id": "a",
        "signal": "s",
        "epoch": 2,
        "value": "__META__NoEvent",
    }
    assert items[1]["node_id"] == "meta" and items[1]["signal"] == "EpochEnded"
    parsed = Message.from_bytes([frame]).value
    assert type(parsed[0]) is Event and parsed[0].value is MetaSignal.NoEvent
    assert type(parsed[1]) is MetaEvent and parsed[1].signal is MetaEventType.EpochEnded


def test_values_json_cannot_carry_travel_as_pickles_and_pck_strings_survive():
    message = EventMsg(
        node_id="a", value=[MAKER.event("s", 0, b"\xff"), MAKER.event("t", 0, "pck__not-a-pickle")]
    )
    wire = json.loads(message.to_bytes())["value"]
    assert wire[0]["value"].startswith("pck__") and wire[1]["value"].startswith("pck__")
    values = [item.value for item in Message.from_bytes([message.to_bytes()]).value]
    assert values == [b"\xff", "pck__not-a-pickle"]


def test_a_value_that_is_not_built_in_is_refused_when_sending():
    message = EventMsg(node_id="a", value=[MAKER.event("s", 0, GraphError("x"))])
    with pytest.raises(Exception, match="examples.nodegraph.graph.GraphError; only built-in types"):
        MessageSerializer().pack(message)


@pytest.mark.parametrize(
    "wire, epoch",
    [
        (3, 3),
        ([3], 3),
        ([3, ["mapnode", 1]], (3, ("mapnode", 1))),
        ([0, ["a", 0], ["b", 2]], (0, ("a", 0), ("b", 2))),
    ],
)
def test_epochs_and_sub_epochs_parse(wire, epoch):
    assert parse_epoch(wire) == epoch


@pytest.mark.parametrize(
    "wire", [-1, True, 2**64, 3.0, "3", [], [3, "x"], [3, ["m", -1]], [3, ["m"]], [3, [1, 1]]]
)
def test_bad_epochs_are_refused(wire):
    with pytest.raises(ValueError):
        parse_epoch(wire)


@pytest.mark.parametrize(
    "frames, reason",
    [
        ([b"not json"], "not a valid message"),
        ([b'{"type": "teleport", "node_id": "a"}'], "not a valid message"),
        ([b'{"type": "status", "node_id": "a", "value": "dancing"}'], "status"),
        ([b'{"type": "process", "node_id": "a", "value": {"epoch": "x"}}'], "process"),
        ([b'{"type": "epoch_ended", "node_id": "a", "value": Infinity}'], "epoch_ended"),
        ([b'{"type": "status", "node_id": "\\ud800", "value": "ready"}'], "not a valid message"),
        ([b'{"type": "ping", "node_id": "a", "value": ' + b"[" * 5000 + b"]" * 5000 + b"}"], "not a valid"),
        ([b'{"type": "error", "node_id": "a", "value": "pck__!!!"}'], "error"),
        ([b'{"type": "error", "node_id": "a", "value": {"err_type": "builtins.ValueError"}}'], "error"),
        ([b'{"type": "event", "node_id": "a", "value": [{"node_id": "meta", "signal": "Nope"}]}'], "event"),
        ([], "expected a list of frames"),
    ],
)
def test_malformed_frames_raise_malformed_message(frames, reason):
    with pytest.raises(MalformedMessage, match=reason):
        Message.from_bytes(frames)


def test_builtin_errors_are_rebuilt_and_custom_ones_carry_their_name():
    try:
        raise KeyError("missing")
    except KeyError as error:
        builtin = ErrorMsg.from_exception("n1", error)
    rebuilt = Message.from_bytes([builtin.to_bytes()]).to_exception()
    assert type(rebuilt) is KeyError and rebuilt.args == ("missing",)
    assert rebuilt.node_id == "n1" and 'raise KeyError("missing")' in rebuilt.remote_traceback

    custom = ErrorMsg.from_exception("n2", GraphError("graph broke", 5))
    assert custom.value["err_type"] is Exception  # the nearest built-in base travels
    assert custom.value["err_name"] == "examples.nodegraph.graph.GraphError"
    remote = Message.from_bytes([custom.to_bytes()]).to_exception()
    assert isinstance(remote, RemoteNodeError) and remote.err_type == "examples.nodegraph.graph.GraphError"
    assert remote.args == ("node 'n2' raised examples.nodegraph.graph.GraphError('graph broke', 5)",)
    # arguments that are not built-in values travel as their repr
    odd = ErrorMsg.from_exception("n3", ValueError(GraphError("inner")))
    assert odd.value["err_args"] == ("GraphError('inner')",)


# -- hostile pickles ---------------------------------------------------------------------------


class _Reduces:
    """Pickles as a call of ``target(*args)``: what a hostile peer would send."""

    def __init__(self, target, *args):
        self.target, self.args = target, args

    def __reduce__(self):
        return self.target, self.args


def _pck(value) -> str:
    return "pck__" + base64.b64encode(pickle.dumps(value)).decode()


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "pwned"


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda path: _Reduces(os.system, f"touch {path}"), os.system.__module__ + ".system"),
        (lambda path: _Reduces(subprocess.Popen, ["touch", str(path)]), "subprocess.Popen"),
        (lambda path: _Reduces(eval, f"open({str(path)!r}, 'w')"), "builtins.eval"),
        (lambda path: _Reduces(exec, f"open({str(path)!r}, 'w')"), "builtins.exec"),
        (lambda path: _Reduces(getattr, _Reduces(__import__, "os"), "system"), "builtins.getattr"),
    ],
    ids=["os.system", "subprocess.Popen", "builtins.eval", "builtins.exec", "builtins.getattr"],
)
def test_a_hostile_pickle_does_nothing_and_becomes_a_stand_in(marker, make, name):
    decoded = pickles.decode(_pck(make(marker)))
    assert isinstance(decoded, RemoteGlobal) and decoded.qualified_name == name
    assert not marker.exists()
    # the same pickle as an event value and as an error's type
    event = {"id": 1, "timestamp": WHEN.isoformat(), "node_id": "a", "signal": "s", "epoch": 0}
    frame = json.dumps({"type": "event", "node_id": "a", "value": [{**event, "value": _pck(make(marker))}]})
    assert isinstance(Message.from_bytes([frame.encode()]).value[0].value, RemoteGlobal)
    error = {"err_type": _Reduces(type, "X", (), {}), "err_args": (make(marker),), "traceback": ""}
    frame = json.dumps({"type": "error", "node_id": "a", "value": _pck(error)})
    with pytest.raises(MalformedMessage):  # a stand-in *instance* is not an exception class
        Message.from_bytes([frame.encode()])
    assert not marker.exists()


def test_a_hostile_error_type_becomes_a_remote_node_error(marker):
    error = {"err_type": os.system, "err_args": (f"touch {marker}",), "traceback": "remote"}
    frame = json.dumps({"type": "error", "node_id": "a", "value": _pck(error)}).encode()
    rebuilt = Message.from_bytes([frame]).to_exception()
    assert isinstance(rebuilt, RemoteNodeError) and rebuilt.err_type == os.system.__module__ + ".system"
    assert rebuilt.remote_traceback == "remote" and not marker.exists()


def test_decoding_imports_nothing():
    # plain pickle.loads would import the module ``this`` (and print the Zen of Python) to find ``spam``
    assert "this" not in sys.modules
    crafted = b"\x80\x04\x8c\x04this\x94\x8c\x04spam\x94\x93\x94."  # STACK_GLOBAL this.spam
    decoded = SafeUnpickler(io.BytesIO(crafted)).load()
    assert issubclass(decoded, RemoteGlobal) and decoded.qualified_name == "this.spam"
    assert "this" not in sys.modules


def test_builtin_exceptions_resolve_but_other_globals_do_not():
    assert pickles.decode(_pck(ValueError)) is ValueError
    assert type(pickles.decode(_pck(ValueError("x", 1)))) is ValueError
    assert pickles.decode(_pck({1, 2, frozenset({3})})) == {1, 2, frozenset({3})}
    assert pickles.decode(_pck([range(3), slice(1, 2), 1j, bytearray(b"ab")])) == [
        range(3),
        slice(1, 2),
        1j,
        bytearray(b"ab"),
    ]
    assert isinstance(pickles.decode(_pck(KeyboardInterrupt)), type)  # a stand-in class, not the real one
    assert pickles.decode(_pck(KeyboardInterrupt)) is not KeyboardInterrupt
    stand_in = pickles.decode(_pck(GraphError("a", 1)))
    assert stand_in.qualified_name == "examples.nodegraph.graph.GraphError" and stand_in.args == ("a", 1)


@pytest.mark.parametrize(
    "value, reason",
    [
        (_Reduces(bytearray, 10**12), "bytearray"),
        (_Reduces(set, range(10**15)), "set"),
        (_Reduces(frozenset, range(10**15)), "frozenset"),
        (_Reduces(complex, [1]), "complex"),
    ],
    ids=["bytearray-size", "set-of-range", "frozenset-of-range", "complex-of-list"],
)
def test_constructors_refuse_arguments_that_would_allocate_without_bound(value, reason):
    with pytest.raises(UnsafePickle, match=reason):
        pickles.decode(_pck(value))


@pytest.mark.parametrize(
    "text, reason",
    [
        ("pck__%%%", "not base64"),
        ("pck__" + base64.b64encode(b"\x80\x04garbage").decode(), "not a valid pickle"),
    ],
)
def test_broken_pickles_are_refused(text, reason):
    with pytest.raises(UnsafePickle, match=reason):
        pickles.decode(text)


def test_persistent_ids_are_refused():
    class Persistent(pickle.Pickler):
        def persistent_id(self, obj):
            return "x" if obj == "secret" else None

    buffer = io.BytesIO()
    Persistent(buffer).dump(["secret"])
    with pytest.raises(UnsafePickle, match="persistent"):
        pickles.decode("pck__" + base64.b64encode(buffer.getvalue()).decode())


def test_sending_pickles_only_builtin_types():
    assert pickles.encode({"a": (1, b"\xff")}).startswith("pck__")
    for value in (GraphError("x"), [1, object()], {"k": _Reduces(print)}, {ValueError: 1}.keys()):
        with pytest.raises(pickles.NotBuiltinValue):
            pickles.encode(value)
