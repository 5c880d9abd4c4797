"""``python -m agentzero.pipeline run``: a manager, its workers and a batch of jobs on this machine.

The manager runs in this process (green); each step's workers are processes
(``python -m agentzero.pipeline step ...``), so one can be killed part-way
(``--kill-worker-at``) and the manager seen to send its jobs again.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from typing import TYPE_CHECKING, Any

import gevent

from agentzero.core import SocketManager
from agentzero.pipeline.builtin_steps import PIPELINES, STEPS
from agentzero.pipeline.loading import BadStep, load_pipelines, load_step
from agentzero.pipeline.manager import PipelineManager
from agentzero.pipeline.processes import start_worker, stop_workers
from agentzero.pipeline.protocol import COMPLETED, new_job
from agentzero.pipeline.restarts import run_restarting
from agentzero.pipeline.steps import Step
from agentzero.pipeline.summary import hash_matches, print_table, verdict
from agentzero.zero import context, zmq

if TYPE_CHECKING:
    from rich.console import Console

#: the width rich is given when output is piped: a table takes what it needs, up to this
PIPED_WIDTH = 1000


class RunFailed(Exception):
    """The run could not go on (the manager stopped taking jobs)."""


def resolve_pipeline(spec: str) -> tuple[str, list[str], list[str]]:
    """Return ``(name, job types, worker specs)`` of the one pipeline ``run --pipeline`` names.

    ``spec`` is a built-in pipeline name, ``module:NAME`` (a mapping of one
    pipeline name to its job types) or a ``.json`` file holding such a
    mapping. Each job type is a built-in step, a ``module:StepClass`` path,
    or (for ``module:NAME``) the ``job_type`` of a :class:`Step` subclass
    defined in that module.

    Raises
    ------
    BadStep
        when the pipelines cannot be loaded, hold more than one pipeline, or
        a job type has no step to run it.
    """
    if spec in PIPELINES:
        return spec, list(PIPELINES[spec]), list(PIPELINES[spec])
    if ":" not in spec and not spec.endswith(".json"):
        raise BadStep(f"unknown pipeline {spec!r}: use one of {sorted(PIPELINES)}, module:NAME or FILE.json")
    pipelines = load_pipelines(spec)
    if len(pipelines) != 1:
        raise BadStep(
            f"{spec!r} holds {len(pipelines)} pipelines ({', '.join(sorted(pipelines))}): run takes one"
        )
    ((name, entries),) = pipelines.items()
    module = None if spec.endswith(".json") else importlib.import_module(spec.partition(":")[0])
    job_types, workers = [], []
    for entry in entries:
        if entry in STEPS:
            job_types.append(entry)
            workers.append(entry)
        elif ":" in entry:
            job_types.append(load_step(entry).job_type)
            workers.append(entry)
        else:
            found = (
                [
                    value
                    for value in vars(module).values()
                    if isinstance(value, type) and issubclass(value, Step) and value.job_type == entry
                ]
                if module is not None
                else []
            )
            if not found:
                raise BadStep(
                    f"{spec!r}: no step runs job type {entry!r} (a built-in, module:StepClass, "
                    "or a Step subclass in the pipelines' module)"
                )
            job_types.append(entry)
            workers.append(f"{found[0].__module__}:{found[0].__qualname__}")
    return name, job_types, workers


def make_console() -> Console:
    """A rich console that wraps at the terminal's width, and not at all when piped."""
    from rich.console import Console

    console = Console()
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console.width = PIPED_WIDTH
        console.soft_wrap = True
    return console


def command_run(args: argparse.Namespace) -> int:
    console = make_console()
    name, steps, worker_specs = resolve_pipeline(args.pipeline)
    if args.kill_manager_at:
        return run_restarting(console, name, steps, worker_specs, make_jobs(name, args), args)
    manager = PipelineManager(
        pipelines={name: steps}, max_attempts=args.max_attempts, heartbeat_timeout=args.heartbeat_timeout
    )
    addresses = manager.start()
    console.print(f"manager up: status {addresses['status']}, events {addresses['events']}")
    log_dir = tempfile.mkdtemp(prefix="agentzero-pipeline-logs-")
    workers = [
        start_worker(spec, addresses["status"], args.concurrency, log_dir)
        for spec in worker_specs
        for _ in range(args.workers)
    ]
    console.print(f"started {len(workers)} worker processes ({args.workers} per step: {', '.join(steps)})")
    joining = time.monotonic()
    while len(manager.workers) < len(workers) and time.monotonic() - joining < 30:
        gevent.sleep(0.05)  # jobs wait for their workers anyway: measure from here
    console.print(f"{len(manager.workers)} workers joined in {time.monotonic() - joining:.1f}s")
    started = time.monotonic()
    jobs = make_jobs(name, args)
    with SocketManager(zmq, context) as client:
        client.ensure_and_connect("jobs", zmq.PUSH, addresses["jobs"], 0)
        for job in jobs:
            if not client.send_safe("jobs", job, timeout=10):
                raise RunFailed("the manager stopped taking jobs")
        killed: list[int] = []
        finished = run_with_progress(console, manager, steps, args, workers, killed)
        client.close("jobs", linger=1000)
    wall = time.monotonic() - started
    stop_workers(workers)
    manager.stop()

    verified = verify_results(manager, jobs) if args.pipeline == "file-hash" else None
    print_summary(console, manager, steps, wall, killed, verified)
    everything_completed = finished and manager.stats()["completed"] == len(jobs)
    if args.keep_logs:
        console.print(f"worker logs are in {log_dir}")
    else:
        shutil.rmtree(log_dir, ignore_errors=True)
    hint = "" if args.keep_logs else " (run with --keep-logs to read the workers' logs)"
    return verdict(
        console,
        everything_completed,
        verified,
        f"[red]not every job completed[/red]{hint}",
        f"[green]all {len(jobs)} jobs completed[/green]",
    )


def make_jobs(name: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The jobs of ``run``: ``job-00000``, ``job-00001``..., each with its own file to make."""
    return [
        new_job(
            name,
            {"size": args.size, "seed": f"job-{number}", "delay": args.delay, **args.instructions},
            job_id=f"job-{number:05d}",
        )
        for number in range(args.jobs)
    ]


# -- worker processes ---------------------------------------------------------------------------


def run_with_progress(
    console: Console,
    manager: PipelineManager,
    steps: list[str],
    args: argparse.Namespace,
    workers: list[subprocess.Popen[Any]],
    killed: list[int],
) -> bool:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description:>16}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        overall = progress.add_task("all jobs", total=args.jobs)
        per_step = {step: progress.add_task(step, total=args.jobs) for step in steps}

        def tick() -> None:
            stats = manager.stats()
            for step, task in per_step.items():
                progress.update(task, completed=stats["completed_per_step"].get(step, 0))
            finished = stats["completed"] + stats["failed"] + stats["rejected"]
            progress.update(overall, completed=finished)
            if args.kill_worker_at and not killed and stats["completed"] >= args.kill_worker_at * args.jobs:
                victim = workers[len(workers) // 2]
                victim.send_signal(signal.SIGKILL)
                killed.append(victim.pid)
                job_type = victim.job_type  # type: ignore[attr-defined]
                console.print(f"killed worker process {victim.pid} ({job_type}) with SIGKILL")

        return manager.wait(args.jobs, timeout=args.timeout, on_tick=tick)


def verify_results(manager: PipelineManager, jobs: list[dict[str, Any]]) -> bool:
    """Check each completed job's hash against the file its instructions describe."""
    for job in jobs:
        record = manager.jobs.get(job["id"])
        if record is None or record.state != COMPLETED:
            continue
        if not hash_matches(job, record.result):
            return False
    return True


def print_summary(
    console: Console,
    manager: PipelineManager,
    steps: list[str],
    wall: float,
    killed: list[int],
    verified: bool | None,
) -> None:
    stats = manager.stats()
    rows = [
        ("jobs submitted", str(stats["jobs"] + stats["rejected"])),
        ("completed", str(stats["completed"])),
        ("failed", str(stats["failed"])),
        ("rejected", str(stats["rejected"])),
        ("retries", str(stats["retries"])),
        ("re-dispatches", str(stats["redispatches"])),
        ("stale results ignored", str(stats["stale_events"])),
        ("bad messages dropped", str(sum(stats["bad_messages"].values()))),
        ("workers killed", str(len(killed))),
        ("workers lost (detected)", str(stats["workers_lost"])),
    ]
    for step in steps:
        rows.append((f"{step} throughput", f"{stats['throughput_per_step'].get(step, 0.0):.1f} jobs/s"))
    print_table(console, "pipeline summary", rows, stats["completed"], wall, verified)
    failures = [job for job in manager.jobs.values() if job.state != COMPLETED]
    for job in failures[:5]:
        console.print(f"[yellow]{job.id}[/yellow] {job.state}: {job.error}")
