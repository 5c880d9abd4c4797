"""Run one node runner in this process.

python -m examples.nodegraph.run_node GRAPH NODE_ID COMMAND_PUB COMMAND_INBOX [OUTBOX]

OUTBOX is where the node's outbox binds (``tcp://127.0.0.1:*`` by default; an
``ipc://`` path works too, as upstream noob's runners use).

Exits 0 once told to close, 1 when it lost its command node, 2 on bad arguments.
"""

from __future__ import annotations

import sys

import zmq

from examples.nodegraph.graph import GRAPHS
from examples.nodegraph.runner import NodeRunner


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) not in (4, 5) or arguments[0] not in GRAPHS:
        print(
            f"usage: python -m examples.nodegraph.run_node {{{','.join(GRAPHS)}}} NODE_ID PUB INBOX [OUTBOX]",
            file=sys.stderr,
        )
        return 2
    graph, node_id, command_pub, command_inbox = arguments[:4]
    outbox = arguments[4] if len(arguments) == 5 else "tcp://127.0.0.1:*"
    specs = {spec.node_id: spec for spec in GRAPHS[graph]()}
    if node_id not in specs:
        print(f"run_node: error: graph {graph!r} has no node {node_id!r}", file=sys.stderr)
        return 2
    context = zmq.Context()  # alone in its process: plain ZeroMQ, no gevent hub in the way
    try:
        try:
            runner = NodeRunner(specs[node_id], command_pub, command_inbox, outbox, context=context)
        except (zmq.ZMQError, ValueError) as error:
            print(f"run_node: error: {error}", file=sys.stderr)
            return 2
        outcome = runner.run()
    finally:
        context.destroy(linger=0)
    return 0 if outcome == "closed" else 1


if __name__ == "__main__":
    sys.exit(main())
