"""Messages per second streamed between two processes over loopback tcp: agentzero beside raw pyzmq, one run.

Run: ``python benchmarks/bench_streaming.py [--messages N] [--repeats R] [--smoke]``

A sender process pushes ``--messages`` small dicts (PUSH, connect) as fast as
it can; this process receives them (PULL, bind) and times the first to the
last. Each case pairs the same library on both ends:

* plain: agentzero ``send_safe``/``recv_safe`` (JSON) beside hand-written
  ``orjson`` + raw pyzmq blocking ``send``/``recv``;
* green: agentzero with ``zmq.green`` beside raw ``zmq.green`` bytes;
* asyncio: ``agentzero.asyncio`` beside raw ``zmq.asyncio`` bytes.

The best of ``--repeats`` rounds is kept; rounds alternate between cases, so
the machine's noise hits all alike. The last lines are ``RESULT`` lines.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import zmq
import zmq.asyncio
import zmq.green

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agentzero.asyncio import SocketManager as AsyncSocketManager  # noqa: E402
from agentzero.core import SocketManager  # noqa: E402

MESSAGE = {"id": 1234, "job": "calculate-hash", "path": "/tmp/file-1234"}
PAYLOAD = orjson.dumps(MESSAGE)
HWM = 100_000  # a round's messages fit in the queues: the receiver's speed is measured, not a stall

CASES = (
    "plain agentzero",
    "plain by hand",
    "green agentzero",
    "green raw",
    "asyncio agentzero",
    "asyncio raw",
)


# -- the sender (a process of its own) -----------------------------------------------------


def send(case: str, address: str, messages: int) -> None:
    flavour, kind = case.split(" ", 1)
    if flavour == "asyncio":
        asyncio.run(_send_asyncio(kind, address, messages))
        return
    module: Any = zmq.green if flavour == "green" else zmq
    context = module.Context()
    if kind == "agentzero":
        sockets = SocketManager(module, context)
        sockets.create("out", module.PUSH)
        sockets.set_socket_option("out", zmq.SNDHWM, HWM)
        sockets.connect("out", address, 0)
        for _ in range(messages):
            sockets.send_safe("out", MESSAGE)
        sockets.close_all(linger=5000)
    else:
        out = context.socket(module.PUSH)
        out.sndhwm = HWM
        out.connect(address)
        dumps = orjson.dumps
        for _ in range(messages):
            out.send(dumps(MESSAGE) if flavour == "plain" else PAYLOAD)
        out.close(linger=5000)
    context.term()


async def _send_asyncio(kind: str, address: str, messages: int) -> None:
    context = zmq.asyncio.Context()
    if kind == "agentzero":
        sockets = AsyncSocketManager(context=context)
        sockets.create("out", zmq.PUSH)
        sockets.set_socket_option("out", zmq.SNDHWM, HWM)
        sockets.connect("out", address, 0)
        for _ in range(messages):
            await sockets.send_safe("out", MESSAGE)
        sockets.close_all(linger=5000)
    else:
        out = context.socket(zmq.PUSH)
        out.sndhwm = HWM
        out.connect(address)
        for _ in range(messages):
            await out.send(PAYLOAD)
        out.close(linger=5000)
    context.term()


# -- the receiver (this process) -----------------------------------------------------------


def _sender(case: str, address: str, messages: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--role",
            "send",
            "--case",
            case,
            "--address",
            address,
            "--messages",
            str(messages),
        ]
    )


def receive_sync(case: str, messages: int) -> float:
    flavour, kind = case.split(" ", 1)
    module: Any = zmq.green if flavour == "green" else zmq
    context = module.Context()
    try:
        if kind == "agentzero":
            sockets = SocketManager(module, context, timeout=30)
            sockets.create("in", module.PULL)
            sockets.set_socket_option("in", zmq.RCVHWM, HWM)
            _, address = sockets.bind_to_random_port("in", zmq.POLLIN, local_address="tcp://127.0.0.1")
            sender = _sender(case, address, messages)
            recv = sockets.recv_safe
            assert recv("in") == MESSAGE
            started = time.perf_counter()
            for _ in range(messages - 1):
                recv("in")
            elapsed = time.perf_counter() - started
            sockets.close_all(linger=0)
        else:
            inp = context.socket(module.PULL)
            inp.rcvhwm = HWM
            port = inp.bind_to_random_port("tcp://127.0.0.1")
            sender = _sender(case, f"tcp://127.0.0.1:{port}", messages)
            loads = orjson.loads
            inp.recv()
            started = time.perf_counter()
            if flavour == "plain":
                for _ in range(messages - 1):
                    loads(inp.recv())
            else:
                for _ in range(messages - 1):
                    inp.recv()
            elapsed = time.perf_counter() - started
            inp.close(linger=0)
        sender.wait(timeout=60)
    finally:
        context.term()
    return (messages - 1) / elapsed


def receive_asyncio(case: str, messages: int) -> float:
    async def run() -> float:
        context = zmq.asyncio.Context()
        kind = case.split(" ", 1)[1]
        if kind == "agentzero":
            sockets = AsyncSocketManager(context=context, timeout=30)
            sockets.create("in", zmq.PULL)
            sockets.set_socket_option("in", zmq.RCVHWM, HWM)
            _, address = sockets.bind_to_random_port("in", zmq.POLLIN, local_address="tcp://127.0.0.1")
            sender = _sender(case, address, messages)
            recv = sockets.recv_safe
            await recv("in")
            started = time.perf_counter()
            for _ in range(messages - 1):
                await recv("in")
            elapsed = time.perf_counter() - started
            sockets.close_all(linger=0)
        else:
            inp = context.socket(zmq.PULL)
            inp.rcvhwm = HWM
            port = inp.bind_to_random_port("tcp://127.0.0.1")
            sender = _sender(case, f"tcp://127.0.0.1:{port}", messages)
            await inp.recv()
            started = time.perf_counter()
            for _ in range(messages - 1):
                await inp.recv()
            elapsed = time.perf_counter() - started
            inp.close(linger=0)
        await asyncio.get_running_loop().run_in_executor(None, sender.wait, 60)
        context.term()
        return (messages - 1) / elapsed

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000, help="messages per round")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; the best is kept")
    parser.add_argument("--smoke", action="store_true", help="a tiny run that only checks everything works")
    parser.add_argument("--role", choices=["receive", "send"], default="receive", help=argparse.SUPPRESS)
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.role == "send":
        send(arguments.case, arguments.address, arguments.messages)
        return
    messages, repeats = (2000, 1) if arguments.smoke else (arguments.messages, arguments.repeats)
    best = dict.fromkeys(CASES, 0.0)
    for _ in range(repeats):
        for case in CASES:
            receive = receive_asyncio if case.startswith("asyncio") else receive_sync
            best[case] = max(best[case], receive(case, messages))
    print(f"{messages} small dicts per round, two processes over loopback tcp, best of {repeats}")
    for case, rate in best.items():
        print(f"  {case:24s} {rate:12,.0f} msg/s")
    ratios = {
        "streaming_plain_vs_orjson_by_hand": ("plain agentzero", "plain by hand", ">= 0.8x"),
        "streaming_green_vs_raw_green": ("green agentzero", "green raw", ">= 2x"),
        "streaming_asyncio_vs_raw_asyncio": ("asyncio agentzero", "asyncio raw", ">= 3x"),
    }
    for label, (ours, theirs, target) in ratios.items():
        print(f"  {label:40s} {best[ours] / best[theirs]:6.2f}x   (target {target})")
    for label, (ours, theirs, _) in ratios.items():
        print(f"RESULT {label} {best[ours] / best[theirs]:.2f} x")


if __name__ == "__main__":
    main()
