"""Microseconds per message: agentzero's safe calls beside raw pyzmq doing the same work, in one run.

Run: ``python benchmarks/bench_core.py [--messages N] [--repeats R]``

Per message (inproc, one thread): one small dict sent and received with
agentzero (plain, green and asyncio managers), raw pyzmq sending pre-serialized
bytes (the floors: plain, green and asyncio), pyzmq's ``send_json``/``recv_json``
and hand-written ``orjson`` + raw send/recv. Streaming (ipc and tcp on
loopback): batches of messages sent, then received. The best of ``--repeats``
rounds is kept (this machine is shared and noisy) and rounds alternate between
cases, so noise hits all alike. Ratios compare cases of this same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import orjson
import zmq
import zmq.asyncio
import zmq.green

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agentzero.core import SocketManager  # noqa: E402

MESSAGE = {"id": 1234, "job": "calculate-hash", "path": "/tmp/file-1234"}
PAYLOAD = orjson.dumps(MESSAGE)
BATCH = 200


def interleaved(cases: dict[str, Callable[[], object]], messages: int, repeats: int) -> dict[str, float]:
    """Best microseconds per call of each case; rounds alternate between cases."""
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(repeats):
        for name, step in cases.items():
            started = time.perf_counter()
            for _ in range(messages):
                step()
            best[name] = min(best[name], (time.perf_counter() - started) / messages * 1e6)
    return best


def _pair(manager: SocketManager, module: Any, address: str, prefix: str = "") -> tuple[Any, Any]:
    manager.ensure_and_bind(f"{prefix}in", module.PULL, address, zmq.POLLIN)
    manager.ensure_and_connect(f"{prefix}out", module.PUSH, manager.addresses[f"{prefix}in"], zmq.POLLOUT)
    manager.wait_until_ready(f"{prefix}out", zmq.POLLOUT, timeout=5)
    return manager.sockets[f"{prefix}out"], manager.sockets[f"{prefix}in"]


def measure_sync(module: Any, messages: int, repeats: int, workdir: str) -> dict[str, float]:
    context = module.Context()
    sockets = SocketManager(module, context)
    out, inp = _pair(sockets, module, "inproc://bench-pipe")
    sockets.ensure_and_bind("pub", module.PUB, "inproc://bench-events", zmq.POLLOUT)
    sockets.ensure_and_connect("sub", module.SUB, "inproc://bench-events", zmq.POLLIN)
    sockets.set_topic("sub", "bench")
    while sockets.recv_event_safe("sub", timeout=0.01) is None:  # wait out the slow joiner
        sockets.publish_safe("pub", "bench", MESSAGE)
    pub, sub = sockets.sockets["pub"], sockets.sockets["sub"]
    frames = [b"bench", PAYLOAD]
    send, recv = sockets.send_safe, sockets.recv_safe
    publish, receive = sockets.publish_safe, sockets.recv_event_safe
    dumps, loads = orjson.dumps, orjson.loads

    cases: dict[str, Callable[[], object]] = {
        "agentzero send_safe+recv_safe": lambda: (send("out", MESSAGE), recv("in")),
        "pyzmq send+recv bytes (floor)": lambda: (out.send(PAYLOAD), inp.recv()),
        "orjson + pyzmq send+recv (by hand)": lambda: (out.send(dumps(MESSAGE)), loads(inp.recv())),
        "pyzmq send_json+recv_json": lambda: (out.send_json(MESSAGE), inp.recv_json()),
        "agentzero publish_safe+recv_event_safe": lambda: (publish("pub", "bench", MESSAGE), receive("sub")),
        "pyzmq send+recv_multipart bytes (floor)": lambda: (pub.send_multipart(frames), sub.recv_multipart()),
    }
    streaming: dict[str, Callable[[], object]] = {}
    for transport, address in (("ipc", f"ipc://{workdir}/{module.__name__}"), ("tcp", "tcp://127.0.0.1:*")):
        stream_out, stream_in = _pair(sockets, module, address, prefix=transport)

        def safe_batch(transport: str = transport) -> None:
            for _ in range(BATCH):
                send(f"{transport}out", MESSAGE)
            for _ in range(BATCH):
                recv(f"{transport}in")

        def raw_batch(stream_out: Any = stream_out, stream_in: Any = stream_in) -> None:
            for _ in range(BATCH):
                stream_out.send(PAYLOAD)
            for _ in range(BATCH):
                stream_in.recv()

        streaming[f"agentzero streaming over {transport} (per msg)"] = safe_batch
        streaming[f"pyzmq bytes streaming over {transport} (per msg)"] = raw_batch
    results = interleaved(cases, messages, repeats)
    # a streaming step moves BATCH messages: as many messages per round as the other cases
    batches = interleaved(streaming, max(messages // BATCH, 5), repeats)
    results.update({name: value / BATCH for name, value in batches.items()})
    sockets.close_all(linger=0)
    context.term()
    return results


def measure_asyncio(messages: int, repeats: int) -> dict[str, float]:
    from agentzero.asyncio import SocketManager as AsyncSocketManager

    async def run() -> dict[str, float]:
        context = zmq.asyncio.Context()
        sockets = AsyncSocketManager(context=context)
        sockets.ensure_and_bind("in", zmq.PULL, "inproc://bench-async", zmq.POLLIN)
        sockets.ensure_and_connect("out", zmq.PUSH, "inproc://bench-async", zmq.POLLOUT)
        await sockets.wait_until_ready("out", zmq.POLLOUT, timeout=5)
        # the floors get sockets of their own: zmq.asyncio's reader stays off the manager's
        inp = context.socket(zmq.PULL)
        inp.bind("inproc://bench-async-raw")
        out = context.socket(zmq.PUSH)
        out.connect("inproc://bench-async-raw")
        send, recv = sockets.send_safe, sockets.recv_safe
        dumps, loads = orjson.dumps, orjson.loads
        cases = {
            "agentzero asyncio send_safe+recv_safe": lambda: _both(send("out", MESSAGE), recv("in")),
            "zmq.asyncio send+recv bytes (floor)": lambda: _both(out.send(PAYLOAD), inp.recv()),
            "zmq.asyncio send_json+recv_json": lambda: _both(out.send_json(MESSAGE), inp.recv_json()),
            "orjson + zmq.asyncio send+recv (by hand)": lambda: _both(
                out.send(dumps(MESSAGE)), inp.recv(), loads
            ),
        }
        best = dict.fromkeys(cases, float("inf"))
        for _ in range(repeats):
            for name, step in cases.items():
                started = time.perf_counter()
                for _ in range(messages):
                    await step()
                best[name] = min(best[name], (time.perf_counter() - started) / messages * 1e6)
        sockets.close_all(linger=0)
        inp.close(linger=0)
        out.close(linger=0)
        context.term()
        return best

    return asyncio.run(run())


async def _both(sending: Any, receiving: Any, decode: Callable[[Any], Any] | None = None) -> Any:
    await sending
    received = await receiving
    return decode(received) if decode else received


def report(results: dict[str, float], ratios: dict[str, tuple[str, str, str]]) -> None:
    for name, micros in results.items():
        print(f"  {name:48s} {micros:8.2f} us/msg")
    for label, (top, bottom, target) in ratios.items():
        print(f"  {label:60s} {results[top] / results[bottom]:6.2f}x   (target {target})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000, help="messages per round")
    parser.add_argument("--repeats", type=int, default=5, help="rounds; the best is kept")
    args = parser.parse_args(argv)
    print(f"pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()}; best of {args.repeats} x {args.messages}")
    workdir = tempfile.mkdtemp(prefix="az-bench-")
    try:
        plain = measure_sync(zmq, args.messages, args.repeats, workdir)
        green = measure_sync(zmq.green, args.messages, args.repeats, workdir)
        try:
            aio = measure_asyncio(max(args.messages // 4, 1000), args.repeats)
        except ImportError as exc:  # an agentzero without its asyncio flavour
            print(f"asyncio skipped: {exc}")
            aio = {}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    safe = "agentzero send_safe+recv_safe"
    print("\n[zmq]")
    report(
        plain,
        {
            "plain safe / raw bytes floor": (safe, "pyzmq send+recv bytes (floor)", "<= 2x"),
            "plain safe / orjson by hand": (safe, "orjson + pyzmq send+recv (by hand)", "<= 1x"),
            "speed-up: send_json+recv_json / plain safe": ("pyzmq send_json+recv_json", safe, ">= 1.5x"),
        },
    )
    print("\n[zmq.green]")
    report(
        green,
        {
            "speed-up: raw green bytes / green safe": ("pyzmq send+recv bytes (floor)", safe, ">= 4x"),
            "green events / green multipart floor (speed-up)": (
                "pyzmq send+recv_multipart bytes (floor)",
                "agentzero publish_safe+recv_event_safe",
                "> 1x",
            ),
        },
    )
    both = {f"green {name}": value for name, value in green.items()}
    both.update({f"plain {name}": value for name, value in plain.items()})
    ratio = both["green " + safe] / both["plain " + safe]
    print(f"  {'green safe / plain safe':60s} {ratio:6.2f}x   (target <= 1.3x)")
    if aio:
        print("\n[asyncio]")
        report(
            aio,
            {
                "speed-up: zmq.asyncio bytes / asyncio safe": (
                    "zmq.asyncio send+recv bytes (floor)",
                    "agentzero asyncio send_safe+recv_safe",
                    ">= 4x",
                ),
                "speed-up: zmq.asyncio send_json+recv_json / asyncio safe": (
                    "zmq.asyncio send_json+recv_json",
                    "agentzero asyncio send_safe+recv_safe",
                    "> 4x",
                ),
            },
        )
    print(f"\nRESULT core_green_speedup {green['pyzmq send+recv bytes (floor)'] / green[safe]:.2f} x")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
