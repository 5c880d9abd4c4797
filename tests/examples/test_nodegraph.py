"""The command node and its node runners: in greenlets over inproc, and in processes over tcp."""

from __future__ import annotations

import base64
import json
import os
import pickle
import subprocess
import uuid

import gevent
import pytest

from agentzero.core import SocketManager
from agentzero.zero import context as green_context
from agentzero.zero import zmq
from examples.nodegraph.__main__ import run_graph
from examples.nodegraph.command import CommandNode, RemoteNodeError
from examples.nodegraph.graph import GRAPHS, run_locally
from examples.nodegraph.messages import (
    AnnounceMsg,
    EventMaker,
    EventMsg,
    IdentifyMsg,
    InitMsg,
    MessageSerializer,
    NodeStatus,
    StartMsg,
    StatusMsg,
)
from examples.nodegraph.pickles import RemoteGlobal
from examples.nodegraph.runner import NodeRunner

pytestmark = pytest.mark.timeout(90)


class InprocGraph:
    """A command node and one runner greenlet per node, all in this process."""

    def __init__(self, graph: str) -> None:
        tag = uuid.uuid4().hex[:8]
        self.specs = GRAPHS[graph]()
        self.command = CommandNode(
            [spec.node_id for spec in self.specs],
            pub_address=f"inproc://commands-{tag}",
            inbox_address=f"inproc://inbox-{tag}",
            timeout=10,
        )
        self.runners = {
            spec.node_id: NodeRunner(
                spec, self.command.pub_address, self.command.inbox_address, f"inproc://{spec.node_id}-{tag}"
            )
            for spec in self.specs
        }
        self.greenlets = [gevent.spawn(runner.run) for runner in self.runners.values()]
        self.command.wait_for_nodes()

    def close(self) -> None:
        try:
            if not all(runner.status == NodeStatus.stopped for runner in self.runners.values()):
                self.command.deinit()
        finally:
            self.command.close()
            gevent.joinall(self.greenlets, timeout=5)
            gevent.killall(self.greenlets)


@pytest.fixture
def inproc_graph():
    made = []

    def make(graph: str = "demo") -> InprocGraph:
        made.append(InprocGraph(graph))
        return made[-1]

    yield make
    for graph in made:
        graph.close()


def test_a_full_graph_run_over_inproc_matches_the_local_result(inproc_graph):
    graph = inproc_graph()
    graph.command.init()
    assert all(runner.status == NodeStatus.ready for runner in graph.runners.values())
    for epoch in range(40):
        outputs = graph.command.process(epoch)
    assert outputs == run_locally(graph.specs, 40)
    assert graph.command.epochs_ended == list(range(40))


def test_a_full_graph_run_over_tcp_with_processes_matches_the_local_result():
    outputs, rate = run_graph("demo", 30)
    assert outputs == run_locally(GRAPHS["demo"](), 30)
    assert rate > 0


def test_start_free_runs_exactly_n_epochs_and_stop_halts(inproc_graph):
    graph = inproc_graph()
    graph.command.init()
    graph.command.process(0)
    assert graph.command.start(25) == 25
    assert graph.command.epochs_ended == list(range(26))  # epoch 0, then 1..25 free-running
    assert set(graph.command.ping().values()) == {"ready"}
    graph.command.start()  # until stopped
    gevent.sleep(0.2)
    assert {runner.status for runner in graph.runners.values()} == {NodeStatus.running}
    graph.command.stop()
    halted = len(graph.command.epochs_ended)
    assert halted > 26
    gevent.sleep(0.3)
    assert len(graph.command.epochs_ended) <= halted + 1  # at most the epoch in flight
    assert set(graph.command.ping().values()) == {"ready"}


def test_ping_returns_each_nodes_status(inproc_graph):
    graph = inproc_graph()
    assert graph.command.ping() == {node: "stopped" for node in graph.runners}
    graph.command.init()
    assert graph.command.ping() == {node: "ready" for node in graph.runners}


def test_a_node_exception_reaches_the_caller_with_node_id_and_traceback(inproc_graph):
    graph = inproc_graph("fragile")
    graph.command.init()
    for epoch in range(3):
        graph.command.process(epoch)
    with pytest.raises(ValueError, match="fragile node refuses epoch 3") as builtin:
        graph.command.process(3)
    assert builtin.value.node_id == "fragile"
    assert "Traceback (most recent call last)" in builtin.value.remote_traceback
    assert "in __call__" in builtin.value.remote_traceback
    graph.command.process(4)  # the graph goes on after an error
    with pytest.raises(RemoteNodeError) as custom:
        graph.command.process(5)
    assert custom.value.node_id == "fragile"
    assert custom.value.err_type == "examples.nodegraph.graph.GraphError"
    assert "GraphError: ('a graph-specific failure', 5)" in custom.value.remote_traceback
    graph.command.process(6)
    with pytest.raises(TypeError, match="only built-in types are pickled") as unsendable:
        graph.command.process(7)  # an output that is neither JSON nor built-in is refused, not pickled
    assert unsendable.value.node_id == "fragile"


def test_deinit_leaves_every_runner_stopped_with_its_sockets_closed(inproc_graph):
    graph = inproc_graph()
    graph.command.init()
    graph.command.process(0)
    graph.command.deinit()
    for runner in graph.runners.values():
        assert runner.status == NodeStatus.stopped and runner.node is None
        assert "outbox" not in runner.sockets.sockets and "peers" not in runner.sockets.sockets
    assert set(graph.command.ping().values()) == {"stopped"}
    graph.command.init()  # and they come back
    assert graph.command.process(0)["sum"] == {"total": 0}


def test_malformed_messages_at_the_command_node_are_skipped(inproc_graph):
    graph = inproc_graph()
    graph.command.init()
    with SocketManager(zmq, green_context) as intruder:
        intruder.ensure_and_connect("dealer", zmq.DEALER, graph.command.inbox_address, 0)
        raw = intruder.sockets["dealer"]
        raw.send(b"\xff garbage")
        raw.send(b'{"type": "teleport", "node_id": "x"}')
        raw.send(b'{"type": "status", "node_id": "x", "value": "dancing"}')
        raw.send(b'{"type": "init", "node_id": "x"}')  # valid, but not something runners send
        gevent.sleep(0.2)
        intruder.close("dealer", linger=0)
    assert graph.command.skipped == 4
    assert graph.command.process(0)["sum"] == {"total": 0}


def _pck(value) -> str:
    return "pck__" + base64.b64encode(pickle.dumps(value)).decode()


class _Reduces:
    def __init__(self, target, *args):
        self.target, self.args = target, args

    def __reduce__(self):
        return self.target, self.args


def test_only_the_graphs_nodes_count_toward_an_epoch(inproc_graph):
    graph = inproc_graph()
    graph.command.init()
    tag = uuid.uuid4().hex[:8]
    with SocketManager(zmq, green_context, serialization_backend=MessageSerializer()) as intruder:
        intruder.ensure_and_connect("dealer", zmq.DEALER, graph.command.inbox_address, 0)
        intruder.ensure_and_bind("outbox", zmq.PUB, f"inproc://intruder-{tag}", 0)
        identity = {"node_id": "intruder", "outbox": f"inproc://intruder-{tag}", "status": "ready"}
        intruder.send_safe(
            "dealer", IdentifyMsg(node_id="intruder", value={**identity, "signals": ["total"], "slots": None})
        )
        intruder.send_safe("dealer", StatusMsg(node_id="intruder", value="ready"))
        gevent.sleep(0.3)  # were the command node to follow the identify, it would be linked by now
        maker = EventMaker("intruder")
        for epoch in range(3):  # early reports for the epochs about to run, with wrong values
            forged = EventMsg(node_id="intruder", value=[maker.event("total", epoch, -1)])
            intruder.send_safe("dealer", forged)  # events do not belong on the inbox at all
            intruder.publish_safe("outbox", b"event", forged)  # nor on an outbox nobody announced
        gevent.sleep(0.3)
        for epoch in range(3):
            outputs = graph.command.process(epoch)
            assert set(outputs) == {"counter", "square", "double", "sum"}
        assert outputs == run_locally(graph.specs, 3)
        assert f"inproc://intruder-{tag}" not in graph.command.links.connected
        assert "intruder" not in graph.command.nodes and "intruder" not in graph.command.statuses
        assert graph.command.intruders >= 2 and graph.command.skipped >= 3
        intruder.close_all(linger=0)


def test_a_hostile_error_pickle_reaches_the_caller_as_a_remote_error_and_runs_nothing(inproc_graph, tmp_path):
    graph = inproc_graph()
    graph.command.init()
    marker = tmp_path / "pwned"
    error = {"err_type": os.system, "err_args": (f"touch {marker}",), "traceback": "remote"}
    frame = json.dumps({"type": "error", "node_id": "sum", "value": _pck(error)}).encode()
    payload = _Reduces(subprocess.Popen, ["touch", str(marker)])
    event = json.dumps(
        {
            "type": "error",
            "node_id": "sum",
            "value": _pck({"err_type": ValueError, "err_args": (payload,), "traceback": ""}),
        }
    ).encode()
    with SocketManager(zmq, green_context) as peer:
        peer.ensure_and_connect("dealer", zmq.DEALER, graph.command.inbox_address, 0)
        peer.sockets["dealer"].send(frame)
        with pytest.raises(RemoteNodeError) as caught:
            graph.command.process(0)
        assert caught.value.err_type == os.system.__module__ + ".system"
        assert caught.value.remote_args == (f"touch {marker}",)
        peer.sockets["dealer"].send(event)
        with pytest.raises(ValueError) as caught:
            graph.command.process(1)
        assert isinstance(caught.value.args[0], RemoteGlobal)
        assert caught.value.args[0].qualified_name == "subprocess.Popen"
        peer.close_all(linger=0)
    assert not marker.exists()
    assert graph.command.process(2)["sum"] == run_locally(graph.specs, 3)["sum"]


def test_hostile_commands_and_peer_events_never_stop_a_runner(inproc_graph):
    graph = inproc_graph()
    graph.command.init()
    commands = graph.command.sockets.sockets["commands"]  # what any publisher there could send
    bad_outbox = {"node_id": "counter", "outbox": "carrier-pigeon://x", "status": "ready"}
    for frames in (
        [b"ping", b"\xff not json"],
        [b"ping", b'{"type": "ping", "node_id": "\\ud800"}'],
        [b"ping", b"[" * 10000 + b"]" * 10000],
        [b"one frame only"],
        [b"three", b"frames", b"here"],
        [b"start", StartMsg(node_id="command", value=-5).to_bytes()],
        [b"process", b'{"type": "process", "node_id": "command", "value": {"epoch": Infinity}}'],
        [
            b"event",
            EventMsg(node_id="counter", value=[EventMaker("counter").event("count", 0, 666)]).to_bytes(),
        ],
        [
            b"announce",
            AnnounceMsg(
                node_id="command",
                value={"inbox": "x", "nodes": {"counter": {**bad_outbox, "signals": None, "slots": None}}},
            ).to_bytes(),
        ],
    ):
        commands.send_multipart(frames)
    # and on the outboxes: a forged item (square reporting for counter) reaches sum
    forged = EventMsg(node_id="square", value=[EventMaker("counter").event("count", 0, 666)])
    graph.runners["square"].sockets.publish_safe("outbox", b"event", forged)
    gevent.sleep(0.3)
    assert all(runner.status == NodeStatus.ready for runner in graph.runners.values())
    assert graph.runners["sum"].skipped >= 1
    assert sum(runner.skipped for runner in graph.runners.values()) >= 4 * 4
    for epoch in range(3):
        outputs = graph.command.process(epoch)
    assert outputs == run_locally(graph.specs, 3)


def test_a_runner_waits_out_incomplete_or_hostile_announces():
    tag = uuid.uuid4().hex[:8]
    spec = {spec.node_id: spec for spec in GRAPHS["demo"]()}["square"]
    with SocketManager(zmq, green_context, serialization_backend=MessageSerializer()) as command:
        command.ensure_and_bind("commands", zmq.PUB, f"inproc://commands-{tag}", 0)
        command.ensure_and_bind("inbox", zmq.ROUTER, f"inproc://inbox-{tag}", zmq.POLLIN)
        command.ensure_and_bind("counter", zmq.PUB, f"inproc://counter-{tag}", 0)
        runner = NodeRunner(
            spec, f"inproc://commands-{tag}", f"inproc://inbox-{tag}", f"inproc://square-{tag}"
        )
        greenlet = gevent.spawn(runner.run)
        try:
            counter = {"node_id": "counter", "status": "ready", "signals": ["count"], "slots": None}

            def announce(outbox):
                nodes = {} if outbox is None else {"counter": {**counter, "outbox": outbox}}
                message = AnnounceMsg(node_id="command", value={"inbox": "x", "nodes": nodes})
                command.publish_safe("commands", b"announce", message)
                gevent.sleep(0.15)

            gevent.sleep(0.2)
            announce(None)  # lacks the node square depends on
            announce("carrier-pigeon://counter")  # an endpoint no runner should connect to
            command.publish_safe("commands", b"init", InitMsg(node_id="command"))
            gevent.sleep(0.15)
            assert runner.status == NodeStatus.waiting and runner.peer_link is None
            announce(f"inproc://counter-{tag}")
            assert runner.status == NodeStatus.ready
            assert runner.peer_link.connected == [f"inproc://counter-{tag}"]
            maker = EventMaker("counter")
            command.publish_safe(
                "counter", b"event", EventMsg(node_id="counter", value=[maker.event("count", 4, 4)])
            )
            gevent.sleep(0.15)
            assert not greenlet.dead
        finally:
            runner._closing = True
            greenlet.join(timeout=5)
            command.close_all(linger=0)
    assert greenlet.successful()
