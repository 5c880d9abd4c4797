"""Epochs per second of the node graph, every runner in its own process.

Run: ``python benchmarks/bench_nodegraph.py [--epochs N]``

"stepped" drives each epoch with ``process()`` and waits for it; "free-run"
uses ``start(n)``, where sources pace themselves on ``epoch_ended``. The no-op
graph has the demo's shape with nodes that do nothing, so its time per epoch is
the coordination overhead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from examples.nodegraph.__main__ import run_graph  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=500)
    args = parser.parse_args(argv)
    rates = {}
    for graph in ("demo", "noop"):
        for free_run in (False, True):
            _, rate = run_graph(graph, args.epochs, free_run=free_run)
            mode = "free-run" if free_run else "stepped"
            rates[graph, mode] = rate
            print(f"  {graph:5s} {mode:9s} {rate:7.0f} epochs/s  {1000 / rate:6.2f} ms/epoch")
    for mode in ("stepped", "free-run"):
        ratio = rates["demo", mode] / rates["noop", mode]
        print(
            f"  {mode}: a no-op epoch takes {ratio:.2f}x the time of a demo epoch (1.00x: all coordination)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
