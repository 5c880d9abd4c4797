"""Microseconds per message: agentzero's safe calls beside raw pyzmq doing the same work.

Run: ``python benchmarks/bench_core.py [--messages N] [--repeats R]``

Each case sends one small dict and receives it over inproc, in one thread; the
best of ``--repeats`` rounds is kept, because this machine is shared and noisy.
Ratios compare cases measured in this same run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

import orjson
import zmq
import zmq.green

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agentzero.core import SocketManager  # noqa: E402
from agentzero.serializers import MSGPACK  # noqa: E402

MESSAGE = {"id": 1234, "job": "calculate-hash", "path": "/tmp/file-1234"}


def interleaved(cases: dict[str, Callable[[], object]], messages: int, repeats: int) -> dict[str, float]:
    """Best microseconds per call of each case; rounds alternate between cases so noise hits all alike."""
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(repeats):
        for name, step in cases.items():
            started = time.perf_counter()
            for _ in range(messages):
                step()
            best[name] = min(best[name], (time.perf_counter() - started) / messages * 1e6)
    return best


def measure(module, messages: int, repeats: int) -> dict[str, float]:
    context = module.Context()
    json_sockets = SocketManager(module, context)
    msgpack_sockets = SocketManager(module, context, serialization_backend=MSGPACK())
    for index, sockets in enumerate((json_sockets, msgpack_sockets)):
        sockets.ensure_and_bind("in", module.PULL, f"inproc://bench-{index}", zmq.POLLIN)
        sockets.ensure_and_connect("out", module.PUSH, f"inproc://bench-{index}", zmq.POLLOUT)
    out, inp = json_sockets.sockets["out"], json_sockets.sockets["in"]
    payload = orjson.dumps(MESSAGE)

    events = SocketManager(module, context)
    events.ensure_and_bind("pub", module.PUB, "inproc://bench-events", zmq.POLLOUT)
    events.ensure_and_connect("sub", module.SUB, "inproc://bench-events", zmq.POLLIN)
    events.set_topic("sub", "bench")
    while events.recv_event_safe("sub", timeout=0.01) is None:  # wait out the slow joiner
        events.publish_safe("pub", "bench", MESSAGE)
    pub, sub = events.sockets["pub"], events.sockets["sub"]
    frames = [b"bench", payload]

    def through(sockets):
        send, recv = sockets.send_safe, sockets.recv_safe
        return lambda: (send("out", MESSAGE), recv("in"))

    publish, receive = events.publish_safe, events.recv_event_safe
    results = interleaved(
        {
            "agentzero send_safe/recv_safe (json)": through(json_sockets),
            "agentzero send_safe/recv_safe (msgpack)": through(msgpack_sockets),
            "pyzmq send_json/recv_json": lambda: (out.send_json(MESSAGE), inp.recv_json()),
            "pyzmq send/recv bytes (floor)": lambda: (out.send(payload), inp.recv()),
            "agentzero publish_safe/recv_event_safe": lambda: (
                publish("pub", "bench", MESSAGE),
                receive("sub"),
            ),
            "pyzmq send/recv_multipart bytes (floor)": lambda: (
                pub.send_multipart(frames),
                sub.recv_multipart(),
            ),
        },
        messages,
        repeats,
    )
    for sockets in (json_sockets, msgpack_sockets, events):
        sockets.close_all(linger=0)
    context.term()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000, help="messages per round")
    parser.add_argument("--repeats", type=int, default=7, help="rounds; the best is kept")
    args = parser.parse_args(argv)
    print(f"pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()}; best of {args.repeats} x {args.messages}")
    for label, module in (("zmq", zmq), ("zmq.green", zmq.green)):
        results = measure(module, args.messages, args.repeats)
        print(f"\n[{label}]")
        for name, micros in results.items():
            print(f"  {name:45s} {micros:7.2f} us/msg")
        safe = results["agentzero send_safe/recv_safe (json)"]
        ratios = {
            "speed-up over pyzmq send_json/recv_json": results["pyzmq send_json/recv_json"] / safe,
            "cost over the raw-bytes floor": safe / results["pyzmq send/recv bytes (floor)"],
            "events, cost over the multipart floor": results["agentzero publish_safe/recv_event_safe"]
            / results["pyzmq send/recv_multipart bytes (floor)"],
        }
        for name, ratio in ratios.items():
            print(f"  {name:45s} {ratio:7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
