"""First messages lost to the slow joiner: raw pyzmq at once, agentzero after ``wait_for_subscribers``.

Run: ``python benchmarks/bench_peers.py [--trials N] [--raw-trials N] [--smoke]``

A subscriber in another process binds a SUB (subscribed to everything) on
tcp and on ipc, and answers every message it gets over a control PAIR. Each
trial makes a fresh publisher that connects to it and publishes one message:

- raw pyzmq: a PUB that publishes right after ``connect``, without waiting
  (what a new user writes); it waits 50 ms for the answer, then counts the
  message lost;
- agentzero (plain, green and asyncio managers): an XPUB that publishes right
  after ``wait_for_subscribers`` returned ``True``; it waits a second for
  the answer.

Both run in this same run, on the same subscriber. The last lines are
``RESULT peers_raw_lost_<transport> <lost>/<trials>`` and
``RESULT peers_agentzero_lost_<transport> <lost>/<trials>`` (the three
flavours added up).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import zmq
import zmq.green

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agentzero.asyncio import SocketManager as AsyncioSocketManager  # noqa: E402
from agentzero.core import SocketManager  # noqa: E402

TRANSPORTS = ("tcp", "ipc")

SUBSCRIBER = r"""
import json, sys, zmq
context = zmq.Context()
control = context.socket(zmq.PAIR)
control.linger = 0
control.connect(sys.argv[1])
subs = {}
for transport, address in (("tcp", "tcp://127.0.0.1:*"), ("ipc", "ipc://" + sys.argv[2])):
    sub = subs[transport] = context.socket(zmq.SUB)
    sub.linger = 0
    sub.subscribe(b"")
    sub.bind(address)
control.send_json({name: sub.getsockopt_string(zmq.LAST_ENDPOINT) for name, sub in subs.items()})
poller = zmq.Poller()
poller.register(control, zmq.POLLIN)
for sub in subs.values():
    poller.register(sub, zmq.POLLIN)
while True:
    for socket, _ in poller.poll():
        if socket is control:
            context.destroy(0)
            sys.exit(0)
        _, payload = socket.recv_multipart()
        control.send(payload)
"""


class Subscriber:
    """The subscriber process, and the answers it gave."""

    def __init__(self, workdir: str) -> None:
        self.context = zmq.Context()
        self.control = self.context.socket(zmq.PAIR)
        self.control.linger = 0
        port = self.control.bind_to_random_port("tcp://127.0.0.1")
        self.child = subprocess.Popen(
            [sys.executable, "-c", SUBSCRIBER, f"tcp://127.0.0.1:{port}", os.path.join(workdir, "sub")]
        )
        if not self.control.poll(10_000):
            raise RuntimeError("the subscriber did not start")
        self.addresses: dict[str, str] = self.control.recv_json()  # type: ignore[assignment]
        self.answered: set[str] = set()

    def answer(self, trial: str, seconds: float) -> bool:
        """Whether the subscriber answered ``trial`` within ``seconds`` (other answers are kept)."""
        deadline = time.monotonic() + seconds
        while trial not in self.answered:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.control.poll(remaining * 1000):
                return False
            self.answered.add(json.loads(self.control.recv()))
        return True

    def stop(self) -> None:
        self.control.send(b"stop")
        self.child.wait(timeout=10)
        self.context.destroy(0)


def raw_trials(subscriber: Subscriber, transport: str, trials: int) -> int:
    """Lost first messages of a raw PUB that publishes right after ``connect``."""
    context = zmq.Context()
    lost = 0
    for number in range(trials):
        trial = f"raw-{transport}-{number}"
        pub = context.socket(zmq.PUB)
        pub.connect(subscriber.addresses[transport])
        pub.send_multipart([b"trial", json.dumps(trial).encode()])
        lost += not subscriber.answer(trial, 0.05)
        pub.close(0)
    context.destroy(0)
    return lost


def sync_trials(module: Any, subscriber: Subscriber, transport: str, trials: int) -> int:
    """Lost first messages of an XPUB that publishes right after ``wait_for_subscribers``."""
    lost = 0
    context = module.Context()
    with SocketManager(module, context) as sockets:
        for number in range(trials):
            trial = f"{module.__name__}-{transport}-{number}"
            sockets.ensure_and_connect("pub", zmq.XPUB, subscriber.addresses[transport], zmq.POLLOUT)
            if not sockets.wait_for_subscribers("pub", timeout=5):
                raise RuntimeError("the subscriber never subscribed")
            sockets.publish_safe("pub", "trial", trial)
            lost += not subscriber.answer(trial, 1.0)
            sockets.close("pub", linger=0)
    context.destroy(0)
    return lost


def asyncio_trials(subscriber: Subscriber, transport: str, trials: int) -> int:
    async def run() -> int:
        lost = 0
        with AsyncioSocketManager() as sockets:
            for number in range(trials):
                trial = f"asyncio-{transport}-{number}"
                sockets.ensure_and_connect("pub", zmq.XPUB, subscriber.addresses[transport], zmq.POLLOUT)
                if not await sockets.wait_for_subscribers("pub", timeout=5):
                    raise RuntimeError("the subscriber never subscribed")
                await sockets.publish_safe("pub", "trial", trial)
                lost += not subscriber.answer(trial, 1.0)
                sockets.close("pub", linger=0)
        return lost

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000, help="agentzero trials per flavour and transport")
    parser.add_argument("--raw-trials", type=int, default=200, help="raw pyzmq trials per transport")
    parser.add_argument("--smoke", action="store_true", help="20 trials of each, to check that it runs")
    args = parser.parse_args(argv)
    trials, raw = (20, 20) if args.smoke else (args.trials, args.raw_trials)
    print(f"pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()}; one subscriber in another process")
    workdir = tempfile.mkdtemp(prefix="az-peers-")
    subscriber = Subscriber(workdir)
    results: dict[str, tuple[int, int]] = {}
    try:
        for transport in TRANSPORTS:
            results[f"raw_lost_{transport}"] = (raw_trials(subscriber, transport, raw), raw)
            lost = 0
            for flavour in ("plain", "green", "asyncio"):
                started = time.perf_counter()
                if flavour == "asyncio":
                    lost_here = asyncio_trials(subscriber, transport, trials)
                else:
                    lost_here = sync_trials(
                        zmq if flavour == "plain" else zmq.green, subscriber, transport, trials
                    )
                took = time.perf_counter() - started
                print(f"  agentzero {flavour:8s} {transport}: {lost_here}/{trials} lost ({took:.1f} s)")
                lost += lost_here
            results[f"agentzero_lost_{transport}"] = (lost, 3 * trials)
            print(f"  raw pyzmq         {transport}: {results[f'raw_lost_{transport}'][0]}/{raw} lost")
    finally:
        subscriber.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    for name, (lost, total) in results.items():
        print(f"RESULT peers_{name} {lost}/{total}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
