"""Our node graph messages against upstream noob 1002's own classes, in both directions.

For every message type: what we send, upstream parses into the same message and
writes back byte for byte; what upstream sends, we parse and write back byte for
byte. Needs ``noob==1002.0.0`` (the ``test`` extra; Python >= 3.11).
"""

from __future__ import annotations

import datetime
import json
import warnings

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # noob warns when XDG_RUNTIME_DIR is unset
    upstream = pytest.importorskip(
        "noob.network.message", reason="noob 1002 is not installed (it needs Python >= 3.11)"
    )
from noob.event import MetaSignal as UpstreamMetaSignal  # noqa: E402
from noob_core import Epoch as UpstreamEpoch  # noqa: E402

from examples.nodegraph import messages as ours  # noqa: E402
from examples.nodegraph.graph import GraphError  # noqa: E402
from examples.nodegraph.pickles import RemoteGlobal  # noqa: E402

WHEN = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.timezone.utc)
IDENTITY = {"node_id": "a", "outbox": "ipc:///tmp/a", "status": "waiting", "signals": ["s"], "slots": None}


def _item(node_id, signal, epoch, value, id=1):
    return {"id": id, "timestamp": WHEN, "node_id": node_id, "signal": signal, "epoch": epoch, "value": value}


# (class name, value) pairs that both modules build with the same arguments
CASES = {
    "announce": ("AnnounceMsg", {"inbox": "ipc:///tmp/inbox", "nodes": {"a": IDENTITY}}),
    "identify": ("IdentifyMsg", IDENTITY),
    "ping": ("PingMsg", None),
    "process": ("ProcessMsg", {"epoch": 3, "input": {"offset": 1}}),
    "process-sub-epoch": ("ProcessMsg", {"epoch": [3, ["mapnode", 1]], "input": None}),
    "init": ("InitMsg", None),
    "deinit": ("DeinitMsg", None),
    "start": ("StartMsg", 25),
    "start-forever": ("StartMsg", None),
    "status": ("StatusMsg", "ready"),
    "stop": ("StopMsg", None),
    "error": ("ErrorMsg", {"err_type": KeyError, "err_args": ("missing", 3), "traceback": "Traceback..."}),
    "epoch_ended": ("EpochEndedMsg", 7),
    "epoch_ended-sub-epoch": ("EpochEndedMsg", [3, ["mapnode", 1], ["inner", 2]]),
    "event": (
        "EventMsg",
        [
            _item("a", "s", 2, {"x": [1, 2.5, None, "é"]}, id=2**63 + 5),
            _item("a", "t", [2, ["mapnode", 0]], "__META__NoEvent", id=6),
            _item("a", "u", 2, range(3), id=7),  # not JSON: a pck__ pickle of a built-in type
            _item("a", "v", 2, ValueError("inside", 2), id=8),
            _item("meta", "NodeReady", 2, "a", id=9),
            _item("meta", "EpochEnded", 2, 2, id=10),
        ],
    ),
}


def _build(module, name, value):
    cls = getattr(module, name)
    if value is None:
        return cls(node_id="n", timestamp=WHEN)
    return cls(node_id="n", timestamp=WHEN, value=json.loads(json.dumps(value, default=_jsonable)))


def _jsonable(value):
    raise TypeError  # only used to deep-copy plain values; pickled ones are built below


def _build_event(module):
    _, items = CASES["event"]
    return module.EventMsg(node_id="a", timestamp=WHEN, value=[dict(item) for item in items])


def _make(module, case):
    name, value = CASES[case]
    if name == "ErrorMsg":  # a class inside: built as is, pickled whole on the wire
        return module.ErrorMsg(node_id="n", timestamp=WHEN, value=dict(value))
    return _build_event(module) if name == "EventMsg" else _build(module, name, value)


@pytest.mark.parametrize("case", list(CASES))
def test_ours_and_upstreams_bytes_are_identical(case):
    assert _make(ours, case).to_bytes() == _make(upstream, case).to_bytes()


@pytest.mark.parametrize("case", list(CASES))
def test_upstream_parses_ours_and_writes_it_back_byte_for_byte(case):
    frame = _make(ours, case).to_bytes()
    parsed = upstream.Message.from_bytes([frame])
    assert type(parsed).__name__ == CASES[case][0]
    assert parsed.to_bytes() == frame


@pytest.mark.parametrize("case", list(CASES))
def test_we_parse_upstreams_and_write_it_back_byte_for_byte(case):
    frame = _make(upstream, case).to_bytes()
    parsed = ours.Message.from_bytes([b"routing", frame])
    assert type(parsed).__name__ == CASES[case][0]
    assert parsed.to_bytes() == frame


def test_every_message_type_is_covered():
    assert {getattr(ours, name).model_fields["type_"].default for name, _ in CASES.values()} == set(
        ours.MessageType
    )
    assert {member.value for member in upstream.MessageType} == {member.value for member in ours.MessageType}


def test_sub_epochs_and_no_event_mean_the_same_on_both_sides():
    frame = _make(upstream, "event").to_bytes()
    items = ours.Message.from_bytes([frame]).value
    assert items[1].epoch == (2, ("mapnode", 0)) and items[1].value is ours.MetaSignal.NoEvent
    assert items[2].value == range(3) and type(items[3].value) is ValueError
    assert [type(item) for item in items[4:]] == [ours.MetaEvent, ours.MetaEvent]
    back = upstream.Message.from_bytes([_make(ours, "event").to_bytes()]).value
    assert back[1]["epoch"] == UpstreamEpoch(2, [("mapnode", 0)])
    assert back[1]["value"] is UpstreamMetaSignal.NoEvent
    assert back[2]["value"] == range(3)
    ended = upstream.Message.from_bytes([_make(ours, "epoch_ended-sub-epoch").to_bytes()])
    assert ended.value == UpstreamEpoch(3, [("mapnode", 1), ("inner", 2)])


def test_a_builtin_error_crosses_both_ways_byte_for_byte():
    try:
        raise KeyError("missing", 3)
    except KeyError as error:
        mine = ours.ErrorMsg.from_exception("a", error)
    mine.timestamp = WHEN
    theirs = upstream.ErrorMsg(
        node_id="a",
        timestamp=WHEN,
        value={"err_type": KeyError, "err_args": ("missing", 3), "traceback": mine.value["traceback"]},
    )
    assert mine.to_bytes() == theirs.to_bytes()
    assert json.loads(mine.to_bytes())["value"].startswith("pck__")
    raised = upstream.Message.from_bytes([mine.to_bytes()]).to_exception()
    assert type(raised) is KeyError and raised.args == ("missing", 3)
    rebuilt = ours.Message.from_bytes([theirs.to_bytes()]).to_exception()
    assert type(rebuilt) is KeyError and rebuilt.args == ("missing", 3) and rebuilt.node_id == "a"


def test_a_custom_error_reaches_upstream_as_a_builtin_and_comes_back_with_its_name():
    mine = ours.ErrorMsg.from_exception("a", GraphError("graph broke", 5))
    raised = upstream.Message.from_bytes([mine.to_bytes()]).to_exception()
    assert type(raised) is Exception and raised.args == ("graph broke", 5)
    assert any("examples.nodegraph.graph.GraphError" in note for note in raised.__notes__)
    # upstream pickles a custom class by reference; we never import it
    theirs = upstream.ErrorMsg(
        node_id="a", value={"err_type": GraphError, "err_args": ("graph broke", 5), "traceback": "tb"}
    )
    rebuilt = ours.Message.from_bytes([theirs.to_bytes()]).to_exception()
    assert isinstance(rebuilt, ours.RemoteNodeError)
    assert rebuilt.err_type == "examples.nodegraph.graph.GraphError" and rebuilt.remote_args == (
        "graph broke",
        5,
    )


def test_upstreams_non_builtin_values_arrive_as_inert_stand_ins():
    theirs = upstream.EventMsg(node_id="a", value=[_item("a", "s", 0, GraphError("not built in", 1))])
    assert json.loads(theirs.to_bytes())["value"][0]["value"].startswith("pck__")
    value = ours.Message.from_bytes([theirs.to_bytes()]).value[0].value
    assert isinstance(value, RemoteGlobal) and value.qualified_name == "examples.nodegraph.graph.GraphError"
    assert value.args == ("not built in", 1)
