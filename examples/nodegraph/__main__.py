"""Run the demo graph with every node runner in its own process.

python -m examples.nodegraph --epochs 200
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import zmq

from examples.nodegraph.command import CommandNode
from examples.nodegraph.graph import GRAPHS, run_locally
from examples.processes import spawn_module, stop_processes


def start_runners(graph: str, command: CommandNode) -> list[subprocess.Popen]:
    return [
        spawn_module(
            "examples.nodegraph.run_node", graph, spec.node_id, command.pub_address, command.inbox_address
        )
        for spec in GRAPHS[graph]()
    ]


def run_graph(graph: str, epochs: int, free_run: bool = False) -> tuple[dict, float]:
    """Run ``epochs`` epochs of ``graph`` with runner processes; return the last outputs and epochs/s."""
    specs = GRAPHS[graph]()
    context = zmq.Context()  # the runners are other processes: no gevent needed here
    command = CommandNode([spec.node_id for spec in specs], context=context)
    processes = start_runners(graph, command)
    try:
        command.wait_for_nodes(timeout=30)
        command.init()
        started = time.perf_counter()
        if free_run:
            command.start(epochs, timeout=120)
            outputs = {}
        else:
            for epoch in range(epochs):
                outputs = command.process(epoch)
        rate = epochs / (time.perf_counter() - started)
        command.deinit()
    finally:
        command.close()
        stop_processes(processes, timeout=10, terminate=False)  # closed runners exit by themselves
        context.destroy(linger=0)
    return outputs, rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.nodegraph", description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--graph", choices=sorted(GRAPHS), default="demo")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")
    try:
        outputs, rate = run_graph(args.graph, args.epochs)
    except Exception as error:
        if not hasattr(error, "node_id"):
            raise
        print(f"error: node {error.node_id!r} raised {error!r}", file=sys.stderr)  # type: ignore[attr-defined]
        return 1
    expected = run_locally(GRAPHS[args.graph](), args.epochs)
    for node, values in outputs.items():
        print(f"{node:8s} {values}")
    same = outputs == expected
    print(f"{args.epochs} epochs at {rate:.0f} epochs/s; local run gives the same outputs: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
