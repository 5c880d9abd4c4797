"""Jobs per second through the worker registry: no-op jobs, 3 worker processes, against raw pyzmq.

Run: ``python benchmarks/bench_registry.py [--jobs N] [--workers 3] [--max-processes 16]``

Each job takes the protocol's full round: ``availability_request`` ->
``availability_response`` -> ``job_assignment`` -> ``job_update`` (running),
``status_update``, ``job_update`` (completed), ``status_update``. "registry" is
the example (green registry, every message checked, worker processes from
``examples.registry.run_worker``); "raw pyzmq" is the same exchange written
directly on plain pyzmq sockets with orjson and no checks, the floor for the
pattern in Python. The job itself does nothing, so the rate is all coordination.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gevent  # noqa: E402
import orjson  # noqa: E402
import zmq  # noqa: E402

from examples.processes import stop_processes  # noqa: E402
from examples.registry.__main__ import start_worker  # noqa: E402
from examples.registry.registry import Registry  # noqa: E402

TOKEN = "bench-token"


def completed(hub: Registry) -> int:
    return sum(worker.completed for worker in hub.workers.values())


def measure_registry(workers: int, jobs: int, max_processes: int) -> float:
    hub = Registry({TOKEN}, heartbeat_timeout=30, availability_timeout=10)
    options = ("--load-threshold", "1.0")
    processes = [
        start_worker(hub.address, f"bench-{n}", max_processes, TOKEN, *options) for n in range(workers)
    ]
    try:
        if not hub.wait(lambda: len(hub.workers) == workers, 60):
            raise RuntimeError("the workers did not register")
        warm = min(200, jobs)
        for _ in range(warm):
            hub.submit(metadata={"seconds": 0})
        if not hub.wait(lambda: completed(hub) == warm, 60):
            raise RuntimeError("the warm-up jobs did not complete")
        started = time.perf_counter()
        for _ in range(jobs):
            hub.submit(metadata={"seconds": 0})
        if not hub.wait(lambda: completed(hub) == warm + jobs, 300):
            raise RuntimeError(f"only {completed(hub) - warm} of {jobs} jobs completed")
        return jobs / (time.perf_counter() - started)
    finally:
        stop_processes(processes)
        gevent.sleep(0.2)
        hub.close()


# -- the same exchange on raw pyzmq ------------------------------------------------------------


def raw_worker(address: str) -> int:
    """A worker process: answer, run the no-op job, report, on a plain DEALER."""
    context = zmq.Context()
    socket = context.socket(zmq.DEALER)
    socket.linger = 0
    socket.connect(address)
    socket.send(orjson.dumps({"type": "register", "token": TOKEN}))
    running = 0
    while True:
        message = orjson.loads(socket.recv())
        kind = message["type"]
        if kind == "availability_request":
            answer = {"type": "availability_response", "job_id": message["job_id"], "available": True}
            socket.send(orjson.dumps(answer))
        elif kind == "job_assignment":
            job_id = message["job_id"]
            running += 1
            socket.send(orjson.dumps({"type": "job_update", "job_id": job_id, "status": "running"}))
            socket.send(orjson.dumps({"type": "status_update", "status": "available", "job_count": running}))
            running -= 1
            socket.send(orjson.dumps({"type": "job_update", "job_id": job_id, "status": "completed"}))
            socket.send(orjson.dumps({"type": "status_update", "status": "available", "job_count": running}))
        elif kind == "stop":
            socket.close()
            context.term()
            return 0


def measure_raw(workers: int, jobs: int, max_processes: int) -> float:
    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    router.linger = 0
    port = router.bind_to_random_port("tcp://127.0.0.1")
    address = f"tcp://127.0.0.1:{port}"
    script = str(Path(__file__).resolve())
    processes = [subprocess.Popen([sys.executable, script, "--raw-worker", address]) for _ in range(workers)]
    try:
        peers = []
        while len(peers) < workers:
            if not router.poll(60_000):
                raise RuntimeError("the raw workers did not register")
            identity, _ = router.recv_multipart()
            peers.append(identity)
        started = time.perf_counter()
        pending = list(range(jobs))
        committed = {peer: 0 for peer in peers}
        done = 0
        while done < jobs:
            for peer in peers:
                while pending and committed[peer] < max_processes:
                    job_id = str(pending.pop())
                    committed[peer] += 1
                    request = {"type": "availability_request", "job_id": job_id, "job_type": "room"}
                    router.send_multipart([peer, orjson.dumps(request)])
            peer, payload = router.recv_multipart()
            message = orjson.loads(payload)
            kind = message["type"]
            if kind == "availability_response":
                assignment = {
                    "type": "job_assignment",
                    "job_id": message["job_id"],
                    "metadata": {"seconds": 0},
                }
                router.send_multipart([peer, orjson.dumps(assignment)])
            elif kind == "job_update" and message["status"] == "completed":
                committed[peer] -= 1
                done += 1
        rate = jobs / (time.perf_counter() - started)
        for peer in peers:
            router.send_multipart([peer, b'{"type": "stop"}'])
        return rate
    finally:
        stop_processes(processes, terminate=False, timeout=5)
        router.close(linger=0)
        context.term()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--max-processes", type=int, default=16, help="jobs at once per worker")
    parser.add_argument("--raw-worker", metavar="ADDRESS", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.raw_worker:
        return raw_worker(args.raw_worker)
    if args.jobs < 1 or args.workers < 1 or args.max_processes < 1:
        parser.error("--jobs, --workers and --max-processes must be >= 1")
    print(f"{args.jobs} no-op jobs, {args.workers} worker processes, {args.max_processes} jobs at once each")
    raw = measure_raw(args.workers, args.jobs, args.max_processes)
    print(f"  raw pyzmq  {raw:8.0f} jobs/s  {1e6 / raw:7.1f} us/job")
    ours = measure_registry(args.workers, args.jobs, args.max_processes)
    print(f"  registry   {ours:8.0f} jobs/s  {1e6 / ours:7.1f} us/job  ({ours / raw:.2f}x raw pyzmq)")
    print(f"RESULT registry {ours:.0f} jobs/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
