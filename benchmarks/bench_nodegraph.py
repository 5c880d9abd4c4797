"""Epochs per second of the node graph, every runner in its own process, against raw pyzmq.

Run: ``python benchmarks/bench_nodegraph.py [--epochs N]``

"stepped" drives each epoch with ``process()`` and waits for it; "free-run"
uses ``start(n)``, where sources pace themselves on ``epoch_ended``. The no-op
graph has the demo's shape with nodes that do nothing, so its time per epoch is
the coordination overhead. "raw pyzmq" is the floor: the same four processes
and sockets (command PUB, outbox PUBs, SUBs) passing a few bytes per hop with
plain pyzmq, no protocol, no JSON, no agentzero. The last line is the stepped
demo rate.

Each figure is the best of ``--rounds`` runs (3 by default), raw and ours
taking turns, so that a burst of load on a shared machine skews the ratio less.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import zmq  # noqa: E402

from examples.nodegraph.__main__ import run_graph  # noqa: E402
from examples.processes import REPO_ROOT, spawn_module, stop_processes  # noqa: E402

#: the demo graph's shape: node -> the nodes it waits for
SHAPE = {"counter": [], "square": ["counter"], "double": ["counter"], "sum": ["square", "double"]}


def raw_node(node: str, command_pub: str, report: str) -> None:
    """One raw node: bind an outbox, say where on ``report``, then pass epochs along."""
    context = zmq.Context()
    commands = context.socket(zmq.SUB)
    commands.setsockopt(zmq.SUBSCRIBE, b"")
    commands.connect(command_pub)
    outbox = context.socket(zmq.PUB)
    port = outbox.bind_to_random_port("tcp://127.0.0.1")
    hello = context.socket(zmq.PUSH)
    hello.connect(report)
    hello.send_string(f"{node} tcp://127.0.0.1:{port}")
    peers_wanted = SHAPE[node]
    addresses = commands.recv_string().split()  # "name=address ..." once every node said hello
    peers = context.socket(zmq.SUB)
    peers.setsockopt(zmq.SUBSCRIBE, b"")
    for pair in addresses:
        name, address = pair.split("=")
        if name in peers_wanted:
            peers.connect(address)
    time.sleep(0.5)  # the slow joiner: let every subscription arrive
    hello.send_string(f"{node} ready")
    poller = zmq.Poller()
    poller.register(commands, zmq.POLLIN)
    poller.register(peers, zmq.POLLIN)
    got: dict[bytes, int] = {}
    while True:
        for socket, _ in poller.poll():
            message = socket.recv()
            if socket is commands:
                if message == b"quit":
                    context.destroy(linger=0)
                    return
                if b"=" in message:
                    continue  # the address list again
                if not peers_wanted:
                    outbox.send(message)
            else:
                got[message] = got.get(message, 0) + 1
                if got[message] == len(peers_wanted):
                    del got[message]
                    outbox.send(message)


def raw_rate(epochs: int) -> float:
    """Stepped epochs per second of the raw pyzmq graph."""
    context = zmq.Context()
    commands = context.socket(zmq.PUB)
    pub_port = commands.bind_to_random_port("tcp://127.0.0.1")
    hello = context.socket(zmq.PULL)
    hello_port = hello.bind_to_random_port("tcp://127.0.0.1")
    events = context.socket(zmq.SUB)
    events.setsockopt(zmq.SUBSCRIBE, b"")
    processes = [
        spawn_module(
            "benchmarks.bench_nodegraph",
            "--raw-node",
            node,
            f"tcp://127.0.0.1:{pub_port}",
            f"tcp://127.0.0.1:{hello_port}",
            cwd=str(REPO_ROOT),
        )
        for node in SHAPE
    ]
    try:
        outboxes = dict(hello.recv_string().split() for _ in SHAPE)
        for address in outboxes.values():
            events.connect(address)
        ready = set()
        while len(ready) < len(SHAPE):
            commands.send_string(" ".join(f"{name}={address}" for name, address in outboxes.items()))
            if hello.poll(200):
                ready.add(hello.recv_string())
        time.sleep(0.3)
        started = time.perf_counter()
        for epoch in range(epochs):
            commands.send(b"%d" % epoch)
            for _ in SHAPE:
                if not events.poll(10_000):
                    raise TimeoutError(f"raw epoch {epoch} did not complete")
                events.recv()
        rate = epochs / (time.perf_counter() - started)
        commands.send(b"quit")
    finally:
        stop_processes(processes, timeout=5)
        context.destroy(linger=0)
    return rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--raw-node", nargs=3, metavar=("NODE", "PUB", "REPORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.raw_node:
        raw_node(*args.raw_node)
        return 0
    floor = 0.0
    rates: dict[tuple[str, str], float] = {}
    for _ in range(args.rounds):
        floor = max(floor, raw_rate(args.epochs))
        for graph in ("demo", "noop"):
            for free_run in (False, True):
                _, rate = run_graph(graph, args.epochs, free_run=free_run)
                key = (graph, "free-run" if free_run else "stepped")
                rates[key] = max(rates.get(key, 0.0), rate)
    print(f"  best of {args.rounds} rounds of {args.epochs} epochs, every node its own process")
    print(f"  raw pyzmq stepped {floor:7.0f} epochs/s  {1000 / floor:6.2f} ms/epoch  (the floor)")
    for (graph, mode), rate in rates.items():
        ratio = rate / floor
        print(f"  {graph:5s} {mode:9s} {rate:7.0f} epochs/s  {1000 / rate:6.2f} ms/epoch  {ratio:5.2f}x raw")
    for mode in ("stepped", "free-run"):
        ratio = rates["demo", mode] / rates["noop", mode]
        print(
            f"  {mode}: a no-op epoch takes {ratio:.2f}x the time of a demo epoch (1.00x: all coordination)"
        )
    print(f"RESULT nodegraph {rates['demo', 'stepped']:.0f} epochs/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
