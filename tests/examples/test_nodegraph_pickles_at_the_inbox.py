"""Hostile pickles sent to a real command node's inbox are skipped, and the graph runs on (issue 20)."""

from __future__ import annotations

import json

import gevent
import pytest

from agentzero.core import SocketManager
from agentzero.zero import context as green_context
from agentzero.zero import zmq
from examples.nodegraph.graph import run_locally
from tests.examples import test_nodegraph_pickles as hostile
from tests.examples.test_nodegraph import InprocGraph

pytestmark = pytest.mark.timeout(90)


def _error_frame(payload: bytes) -> bytes:
    """An error frame from ``sum`` whose ErrorValue is well formed but for its one argument, ``payload``."""
    error = (
        hostile.EMPTY_DICT
        + hostile.MARK
        + hostile.text("err_type")
        + hostile.global_("builtins", "ValueError")
    )
    error += hostile.text("err_args") + payload + hostile.TUPLE1
    error += hostile.text("traceback") + hostile.text("") + b"u"  # SETITEMS
    value = hostile.pck(hostile.PROTO + error + hostile.STOP)
    return json.dumps({"type": "error", "node_id": "sum", "value": value}).encode()


def _bytearray_bomb() -> bytes:
    body = hostile.global_("builtins", "bytearray") + hostile.MEMOIZE + hostile.POP
    body += hostile.binbytes(b"x" * (1 << 20)) + hostile.MEMOIZE + hostile.POP
    copy = hostile.binget(0) + hostile.binget(1) + hostile.TUPLE1 + hostile.REDUCE + hostile.APPEND
    return hostile.EMPTY_LIST + body + copy * 300


def _rewrite_set() -> bytes:
    state = hostile.NONE + hostile.EMPTY_DICT + hostile.text("__defaults__") + hostile.long1(5)
    state += hostile.TUPLE1 + b"s" + b"\x86"
    return hostile.global_("builtins", "set") + state + hostile.BUILD


HOSTILE = {
    "bytearray-bomb": _bytearray_bomb(),
    "hash-flood": hostile.CONTAINERS["set-additems"](hostile.COLLIDING),
    "deep": hostile.nested_lists(200_000),
    "rewrite-set": _rewrite_set(),
}


def test_hostile_error_pickles_at_the_inbox_are_skipped_and_the_graph_runs_on():
    graph = InprocGraph("demo")
    try:
        graph.command.init()
        before = graph.command.skipped
        with SocketManager(zmq, green_context) as peer:
            peer.ensure_and_connect("dealer", zmq.DEALER, graph.command.inbox_address, 0)
            for raw in HOSTILE.values():
                peer.sockets["dealer"].send(_error_frame(raw))
            gevent.sleep(0.5)
            peer.close_all(linger=0)
        assert graph.command.process(0)["sum"] == run_locally(graph.specs, 1)["sum"]
        assert graph.command.skipped - before == len(HOSTILE)
        # the decoder itself was not changed by the pickle that tried: set() still decodes
        benign = hostile.PROTO + hostile.global_("builtins", "set") + hostile.EMPTY_TUPLE + hostile.REDUCE
        assert hostile.pickles.decode(hostile.pck(benign + hostile.STOP)) == set()
    finally:
        graph.close()
