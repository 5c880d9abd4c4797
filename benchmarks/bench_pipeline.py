"""Jobs per second of the worker pipeline with a no-op step, at 1, 2 and 4 workers.

Run: ``python benchmarks/bench_pipeline.py [--jobs N]``

The manager runs in this process (green); workers are real processes on this
machine. "manager CPU per job" is this process's CPU time over the run divided
by the jobs: the manager's bookkeeping plus its socket work (receiving the job,
dispatching it, and the step's started/success events), and the submitting.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import gevent

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agentzero.core import SocketManager  # noqa: E402
from agentzero.zero import context, zmq  # noqa: E402
from examples.pipeline.__main__ import start_worker, stop_workers  # noqa: E402
from examples.pipeline.manager import PipelineManager  # noqa: E402
from examples.pipeline.protocol import new_job  # noqa: E402


def measure(workers: int, jobs: int, concurrency: int) -> dict[str, float]:
    manager = PipelineManager(heartbeat_timeout=10)
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
    finally:
        stop_workers(processes)
        manager.stop()
    return {"jobs/s": jobs / wall, "manager CPU us/job": cpu / jobs * 1e6, "wall s": wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16, help="jobs at once per worker")
    args = parser.parse_args(argv)
    print(f"{args.jobs} no-op jobs, concurrency {args.concurrency} per worker")
    baseline = None
    for workers in (1, 2, 4):
        result = measure(workers, args.jobs, args.concurrency)
        baseline = baseline or result["jobs/s"]
        print(
            f"  {workers} worker(s): {result['jobs/s']:8.0f} jobs/s  "
            f"({result['jobs/s'] / baseline:4.2f}x of 1 worker)  "
            f"manager CPU {result['manager CPU us/job']:6.1f} us/job  wall {result['wall s']:.2f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
