"""Run one node runner in this process.

python -m examples.nodegraph.run_node GRAPH NODE_ID COMMAND_PUB COMMAND_INBOX

Exits 0 once told to close, 1 when it lost its command node, 2 on bad arguments.
"""

from __future__ import annotations

import sys

import zmq

from examples.nodegraph.graph import GRAPHS
from examples.nodegraph.runner import NodeRunner


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 4 or arguments[0] not in GRAPHS:
        print(
            f"usage: python -m examples.nodegraph.run_node {{{','.join(GRAPHS)}}} NODE_ID PUB INBOX",
            file=sys.stderr,
        )
        return 2
    graph, node_id, command_pub, command_inbox = arguments
    specs = {spec.node_id: spec for spec in GRAPHS[graph]()}
    if node_id not in specs:
        print(f"run_node: error: graph {graph!r} has no node {node_id!r}", file=sys.stderr)
        return 2
    context = zmq.Context()  # alone in its process: plain ZeroMQ, no gevent hub in the way
    try:
        outcome = NodeRunner(specs[node_id], command_pub, command_inbox, context=context).run()
    finally:
        context.term()
    return 0 if outcome == "closed" else 1


if __name__ == "__main__":
    sys.exit(main())
