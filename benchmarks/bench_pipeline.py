"""Jobs per second of the worker pipeline with a no-op step, at 1, 2 and 4 workers, against raw pyzmq.

Run: ``python benchmarks/bench_pipeline.py [--jobs N] [--concurrency N]``

The manager runs in this process (green); workers are real processes on this
machine. "manager CPU per job" is this process's CPU time over the run divided
by the jobs: the manager's bookkeeping plus its socket work (receiving the job,
dispatching it, receiving its result), and the submitting.

The raw pyzmq baseline has the same sockets and the same messages per job
(a job in, a dispatch to one worker's PUSH, a result back on a PUB), JSON
encoded, with nothing else: no validation, no tokens, no retries. The ratio
says what the pipeline's guarantees cost.

Each pipeline figure is measured twice in the same run: without a journal,
and with the manager's SQLite journal (``journal/none``: what writing every
job down costs; issue 21 asks for at least 0.7x).

Each figure is the best of ``--repeat`` runs (the machine is shared: the best
run is the one least disturbed). The last line is
``RESULT pipeline <jobs/s at 4 workers> jobs/s``.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import gevent
import orjson
import zmq as plain_zmq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agentzero.core import SocketManager  # noqa: E402
from agentzero.pipeline.manager import PipelineManager  # noqa: E402
from agentzero.pipeline.protocol import new_job  # noqa: E402
from agentzero.pipeline.run import start_worker, stop_workers  # noqa: E402
from agentzero.zero import context, zmq  # noqa: E402

RAW_WORKER = """
import orjson as json, sys, zmq
ctx = zmq.Context()
jobs = ctx.socket(zmq.PULL)
port = jobs.bind_to_random_port("tcp://127.0.0.1")
events = ctx.socket(zmq.PUB)
events.connect(sys.argv[1])
print(port, flush=True)
while True:
    dispatch = json.loads(jobs.recv())
    if dispatch is None:
        break
    result = {"job_id": dispatch["job_id"], "result": dispatch["data"]}
    events.send_multipart([b"job:success", json.dumps(result)])
events.close(linger=1000)
"""


def measure(workers: int, jobs: int, concurrency: int, journal: bool = False) -> dict[str, float]:
    """Run ``jobs`` no-op jobs through the pipeline with ``workers`` worker processes (and a journal)."""
    journal_dir = tempfile.mkdtemp(prefix="az-bench-journal-")
    manager = PipelineManager(
        heartbeat_timeout=10, journal=os.path.join(journal_dir, "journal.sqlite3") if journal else None
    )
    addresses = manager.start()
    log_dir = tempfile.mkdtemp(prefix="az-bench-")
    processes = [start_worker("noop", addresses["status"], concurrency, log_dir) for _ in range(workers)]
    try:
        while len(manager.workers) < workers:
            gevent.sleep(0.05)
        with SocketManager(zmq, context) as client:
            client.ensure_and_connect("jobs", zmq.PUSH, addresses["jobs"], 0)
            cpu, wall = time.process_time(), time.perf_counter()
            for number in range(jobs):
                client.send_safe("jobs", new_job("noop", {"n": number}, job_id=str(number)))
            if not manager.wait(jobs, timeout=300):
                raise RuntimeError(f"not done: {manager.stats()}")
            wall = time.perf_counter() - wall
            cpu = time.process_time() - cpu
            client.close("jobs", linger=0)
        assert manager.stats()["completed"] == jobs
    finally:
        stop_workers(processes)
        manager.stop()
        shutil.rmtree(journal_dir, ignore_errors=True)
    return {"jobs/s": jobs / wall, "manager CPU us/job": cpu / jobs * 1e6, "wall s": wall}


def measure_raw(workers: int, jobs: int, concurrency: int) -> dict[str, float]:
    """The same messages with raw, plain pyzmq and orjson, the submitter in a thread: the ceiling."""
    ctx = plain_zmq.Context()
    sub = ctx.socket(plain_zmq.SUB)
    sub.setsockopt(plain_zmq.SUBSCRIBE, b"")
    events = f"tcp://127.0.0.1:{sub.bind_to_random_port('tcp://127.0.0.1')}"
    jobs_in = ctx.socket(plain_zmq.PULL)
    jobs_address = f"tcp://127.0.0.1:{jobs_in.bind_to_random_port('tcp://127.0.0.1')}"
    processes = [
        subprocess.Popen([sys.executable, "-c", RAW_WORKER, events], stdout=subprocess.PIPE, text=True)
        for _ in range(workers)
    ]
    pushes = []

    def submit() -> None:
        client = ctx.socket(plain_zmq.PUSH)
        client.connect(jobs_address)
        for number in range(jobs):
            client.send(orjson.dumps(new_job("noop", {"n": number}, str(number))))
        client.close(linger=-1)

    try:
        for process in processes:
            push = ctx.socket(plain_zmq.PUSH)
            push.connect(f"tcp://127.0.0.1:{process.stdout.readline().strip()}")
            pushes.append(push)
        time.sleep(0.3)  # the PUBs' slow joining
        cpu, wall = time.process_time(), time.perf_counter()
        submitter = threading.Thread(target=submit)
        submitter.start()
        room, dispatched, done, turn = 2 * concurrency * workers, 0, 0, 0
        waiting: collections.deque[dict] = collections.deque()
        poller = plain_zmq.Poller()
        poller.register(sub, plain_zmq.POLLIN)
        poller.register(jobs_in, plain_zmq.POLLIN)
        while done < jobs:
            poller.poll(1000)
            for _ in range(1000):
                try:
                    waiting.append(orjson.loads(jobs_in.recv(plain_zmq.NOBLOCK)))
                except plain_zmq.Again:
                    break
            for _ in range(1000):
                try:
                    _, payload = sub.recv_multipart(plain_zmq.NOBLOCK)
                except plain_zmq.Again:
                    break
                orjson.loads(payload)
                done += 1
            while waiting and dispatched - done < room:  # credit, as the manager gives
                job = waiting.popleft()
                turn = (turn + 1) % workers
                pushes[turn].send(orjson.dumps({"job_id": job["id"], "token": "0" * 16, "data": job}))
                dispatched += 1
        wall = time.perf_counter() - wall
        cpu = time.process_time() - cpu
        submitter.join()
        for push in pushes:
            push.send(b"null")
    finally:
        for process in processes:
            process.wait(timeout=10)
        ctx.destroy(linger=0)
    return {"jobs/s": jobs / wall, "manager CPU us/job": cpu / jobs * 1e6, "wall s": wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=16, help="jobs at once per worker")
    parser.add_argument("--repeat", type=int, default=2, help="runs per figure; the best is shown")
    args = parser.parse_args(argv)
    print(f"{args.jobs} no-op jobs, concurrency {args.concurrency} per worker, best of {args.repeat}")
    result = {}
    for workers in (1, 2, 4):
        raw = max(
            (measure_raw(workers, args.jobs, args.concurrency) for _ in range(args.repeat)),
            key=lambda run: run["jobs/s"],
        )
        result = max(
            (measure(workers, args.jobs, args.concurrency) for _ in range(args.repeat)),
            key=lambda run: run["jobs/s"],
        )
        journaled = max(
            (measure(workers, args.jobs, args.concurrency, journal=True) for _ in range(args.repeat)),
            key=lambda run: run["jobs/s"],
        )
        print(
            f"  {workers} worker(s): {result['jobs/s']:8.0f} jobs/s, manager CPU "
            f"{result['manager CPU us/job']:6.1f} us/job | raw pyzmq {raw['jobs/s']:8.0f} jobs/s, "
            f"{raw['manager CPU us/job']:6.1f} us/job | pipeline/raw {result['jobs/s'] / raw['jobs/s']:4.2f}x"
        )
        print(
            f"  {workers} worker(s), with the journal: {journaled['jobs/s']:8.0f} jobs/s, manager CPU "
            f"{journaled['manager CPU us/job']:6.1f} us/job | journal/none "
            f"{journaled['jobs/s'] / result['jobs/s']:4.2f}x"
        )
    print(f"RESULT pipeline {result['jobs/s']:.0f} jobs/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
