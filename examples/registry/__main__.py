"""A registry and agent worker processes: jobs dispatched, one worker killed part-way.

python -m examples.registry --workers 3 --jobs 60
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time

import gevent
from rich.console import Console
from rich.table import Table

from examples.output import make_console
from examples.processes import spawn_module, stop_processes
from examples.registry.registry import Registry

TOKEN = "demo-token"


def start_worker(
    address: str, name: str, max_processes: int = 4, token: str = TOKEN, *options: str
) -> subprocess.Popen:
    """Start one worker process (``run_worker``); ``options`` are more of its command-line flags."""
    return spawn_module(
        "examples.registry.run_worker",
        "--registry",
        address,
        "--token",
        token,
        "--agent-name",
        name,
        "--max-processes",
        str(max_processes),
        *options,
    )


stop_workers = stop_processes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.registry", description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=0.1, help="how long each job runs")
    parser.add_argument("--no-kill", action="store_true", help="do not kill a worker part-way")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.jobs < 1:
        parser.error("--workers and --jobs must be >= 1")
    console = make_console()
    registry = Registry({TOKEN}, heartbeat_timeout=1.5)
    processes = {f"agent-{n}": start_worker(registry.address, f"agent-{n}") for n in range(args.workers)}
    started = time.monotonic()
    try:
        if not registry.wait(lambda: len(registry.workers) == args.workers, timeout=30):
            console.print("[red]the workers did not register[/red]")
            return 1
        for number in range(args.jobs):
            registry.submit(metadata={"seconds": args.seconds}, job_id=f"job-{number:03d}")
        victim = None
        if not args.no_kill and args.workers > 1:
            registry.wait(
                lambda: sum(j.status == "completed" for j in registry.jobs.values()) >= args.jobs // 3, 60
            )
            victim = next(iter(processes))
            processes[victim].send_signal(signal.SIGKILL)
            console.print(f"killed {victim} (pid {processes[victim].pid}) with SIGKILL")
        finished = registry.wait(registry.all_final, timeout=120)
        wall = time.monotonic() - started
    finally:
        stop_workers(list(processes.values()))
        gevent.sleep(0.2)
        registry.close()
    print_summary(console, registry, wall, victim)
    completed = sum(job.status == "completed" for job in registry.jobs.values())
    return 0 if finished and completed == args.jobs else 1


def print_summary(console: Console, registry: Registry, wall: float, victim: str | None) -> None:
    table = Table(title="registry summary")
    for column in ("worker", "agent", "jobs run", "completed", "failed", "peak concurrency", "limit"):
        table.add_column(column, justify="right" if column not in ("worker", "agent") else "left")
    for worker in registry.workers.values():
        runs = sum(worker.worker_id in job.history for job in registry.jobs.values())
        limit = f"{worker.max_processes} x {worker.load_threshold:g}"
        name = worker.agent_name + (" (killed)" if worker.agent_name == victim else "")
        table.add_row(
            worker.worker_id[:8],
            name,
            str(runs),
            str(worker.completed),
            str(worker.failed),
            str(worker.peak),
            limit,
        )
    console.print(table)
    jobs = list(registry.jobs.values())
    console.print(
        f"jobs: {len(jobs)}, completed {sum(j.status == 'completed' for j in jobs)}, "
        f"failed {sum(j.status == 'failed' for j in jobs)}, re-queued {sum(j.requeued for j in jobs)}, "
        f"wall time {wall:.2f} s"
    )


if __name__ == "__main__":
    sys.exit(main())
