"""Large binary payloads between two processes: agentzero's MSGPACK beside raw pyzmq ``copy=False``.

Run: ``python benchmarks/bench_payloads.py [--repeats R] [--smoke]``

A child process sends ``bytes`` payloads (1 MiB and 16 MiB) over loopback tcp
to this process, which receives them: with agentzero, ``send_safe`` and
``recv_safe`` of ``{"payload": payload}`` with :class:`~agentzero.serializers.MSGPACK`
(the buffer travels as a frame of its own, sent and received without a
copy); raw, pyzmq's ``send(copy=False)`` and ``recv(copy=False)`` of the
bytes alone. Each round times a batch from the order to send it to the last
message received; rounds alternate between cases, so noise hits all alike,
and the best of ``--repeats`` is kept (this machine is shared and noisy).
Ratios compare cases of this same run. ``--smoke`` sends a few small batches
only, to check that everything runs (no timing means anything then).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agentzero.core import SocketManager  # noqa: E402
from agentzero.serializers import MSGPACK  # noqa: E402

MiB = 1024 * 1024
#: payload size -> messages per batch
SIZES = {1 * MiB: 200, 16 * MiB: 16}
SMOKE_SIZES = {1 * MiB: 3, 16 * MiB: 1}
CASES = ("raw pyzmq copy=False", "agentzero MSGPACK")


def sender(control_address: str, raw_address: str, safe_address: str) -> None:
    """The child: sends each batch it is told to, then says so."""
    context = zmq.Context()
    control = context.socket(zmq.PAIR)
    control.connect(control_address)
    raw = context.socket(zmq.PUSH)
    raw.connect(raw_address)
    manager = SocketManager(zmq, context, serialization_backend=MSGPACK(), timeout=60)
    manager.ensure_and_connect("out", zmq.PUSH, safe_address, zmq.POLLOUT)
    payloads: dict[int, bytes] = {}
    while True:
        order = control.recv_json()
        if order is None:
            break
        case, size, count = order
        payload = payloads.setdefault(size, bytes(size))
        if case == CASES[0]:
            for _ in range(count):
                raw.send(payload, copy=False)
        else:
            for _ in range(count):
                manager.send_safe("out", {"payload": payload})
        control.send_json("sent")
    manager.close_all(linger=0)
    raw.close(linger=0)
    control.close(linger=0)
    context.term()


def measure(sizes: dict[int, int], repeats: int) -> dict[tuple[str, int], float]:
    """Best MiB/s of each case and size; rounds alternate between cases."""
    context = zmq.Context()
    control = context.socket(zmq.PAIR)
    control_port = control.bind_to_random_port("tcp://127.0.0.1")
    raw = context.socket(zmq.PULL)
    raw_port = raw.bind_to_random_port("tcp://127.0.0.1")
    manager = SocketManager(zmq, context, serialization_backend=MSGPACK(), timeout=60)
    manager.ensure_and_bind("in", zmq.PULL, "tcp://127.0.0.1:*", zmq.POLLIN)
    child = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--send",
            f"tcp://127.0.0.1:{control_port}",
            f"tcp://127.0.0.1:{raw_port}",
            manager.addresses["in"],
        ]
    )
    receive: dict[str, Any] = {
        CASES[0]: lambda: raw.recv(copy=False),
        CASES[1]: lambda: manager.recv_safe("in"),
    }
    best = {(case, size): 0.0 for case in CASES for size in sizes}
    try:
        for _ in range(repeats):
            for size, count in sizes.items():
                for case in CASES:
                    started = time.perf_counter()
                    control.send_json([case, size, count])
                    for _ in range(count):
                        received = receive[case]()
                        assert received is not None, f"{case}: a message never came"
                        del received
                    assert control.recv_json() == "sent"
                    rate = size * count / MiB / (time.perf_counter() - started)
                    best[case, size] = max(best[case, size], rate)
        control.send_json(None)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        manager.close_all(linger=0)
        raw.close(linger=0)
        control.close(linger=0)
        context.term()
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="rounds; the best is kept")
    parser.add_argument("--smoke", action="store_true", help="a few small batches: a check, not a measure")
    parser.add_argument("--send", nargs=3, metavar="ADDRESS", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.send:
        sender(*args.send)
        return 0
    sizes, repeats = (SMOKE_SIZES, 1) if args.smoke else (SIZES, args.repeats)
    print(f"pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()}; best of {repeats}, tcp on loopback")
    best = measure(sizes, repeats)
    for size in sizes:
        print(f"\n[{size // MiB} MiB bytes payloads, {sizes[size]} per batch]")
        for case in CASES:
            print(f"  {case:40s} {best[case, size]:9.0f} MiB/s")
        ratio = best[CASES[1], size] / best[CASES[0], size]
        target = ">= 0.9x" if size >= 16 * MiB else ">= 0.8x"
        print(f"  {'agentzero / raw pyzmq copy=False':40s} {ratio:9.2f}x   (target {target})")
    print()
    for size in sizes:
        ratio = best[CASES[1], size] / best[CASES[0], size]
        print(f"RESULT payload_{size // MiB}mib_ratio {ratio:.2f} x")
        print(f"RESULT payload_{size // MiB}mib_agentzero {best[CASES[1], size]:.0f} MiB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
