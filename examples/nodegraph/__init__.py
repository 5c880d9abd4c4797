"""A command node driving a graph of node runners, on agentzero (the protocol of seed 001).

The command node broadcasts commands on a PUB and collects what runners say on
a ROUTER; each runner hosts one node, listens to commands on a SUB, answers on a
DEALER, publishes its events on its own PUB outbox and subscribes to the
outboxes of the nodes that feed its slots::

    command  [commands PUB] --> [commands SUB]  runner     (identify, init, process, ...)
    runner   [command DEALER] --> [inbox ROUTER] command   (identify, status, error)
    runner   [outbox PUB] --> [peers SUB]        runner    (events, peer to peer)
    runner   [outbox PUB] --> [events SUB]       command   (events, to end each epoch)

The messages are noob 1002's, byte for byte (:mod:`.messages`, :mod:`.events`);
pickled values and errors from peers are decoded without importing anything,
in time and memory bounded by their size (:mod:`.pickles`, :mod:`.unpickler`);
hot-path frames skip the models (:mod:`.frames`); the manager's ``socket_events`` tell when
links are up (:mod:`.links`).

Run ``python -m examples.nodegraph --help``.
"""

from examples.nodegraph.command import CommandNode, RemoteNodeError
from examples.nodegraph.graph import NodeSpec, demo_graph, run_locally
from examples.nodegraph.runner import NodeRunner

__all__ = ["CommandNode", "NodeRunner", "NodeSpec", "RemoteNodeError", "demo_graph", "run_locally"]
