"""Command line of the worker pipeline.

python -m examples.pipeline run --jobs 300 --workers 2      # everything on this machine
python -m examples.pipeline manager --bind HOST              # the pieces, separately
python -m examples.pipeline step calculate-hash --manager tcp://HOST:PORT
python -m examples.pipeline step mypackage.steps:Resize --manager tcp://HOST:PORT
python -m examples.pipeline submit --manager tcp://HOST:PORT --count 10
python -m examples.pipeline status --manager tcp://HOST:PORT JOB_ID
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import TYPE_CHECKING, Any

import gevent

from agentzero.core import SocketManager
from agentzero.errors import AgentZeroSocketError
from agentzero.zero import context, zmq
from examples.pipeline.builtin_steps import PIPELINES, STEPS, file_content
from examples.pipeline.manager import PipelineManager
from examples.pipeline.protocol import COMPLETED, new_job
from examples.pipeline.steps import BadStep, load_pipelines, load_step
from examples.pipeline.worker import ManagerUnreachable, StepWorker, ask_manager
from examples.processes import spawn_module, stop_processes

if TYPE_CHECKING:
    from rich.console import Console


class UsageError(Exception):
    """A bad argument or an unusable address: exit code 2 and one line."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``--help`` still shows the usage)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.command(args)
    except (UsageError, BadStep, ManagerUnreachable, AgentZeroSocketError) as problem:
        print(f"{parser.prog} {args.name}: error: {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m examples.pipeline", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="name", required=True)

    run = commands.add_parser("run", help="manager, workers and jobs on this machine, with a live view")
    run.add_argument("--pipeline", choices=sorted(PIPELINES), default="file-hash")
    run.add_argument("--jobs", type=positive, default=300, help="how many jobs to submit")
    run.add_argument("--workers", type=positive, default=2, help="worker processes per step")
    run.add_argument("--concurrency", type=positive, default=4, help="jobs at once per worker")
    run.add_argument("--max-attempts", type=positive, default=3)
    run.add_argument("--size", type=positive, default=4096, help="bytes per generated file")
    run.add_argument("--delay", type=float, default=0.0, help="simulated seconds of work per step")
    run.add_argument(
        "--kill-worker-at",
        type=fraction,
        default=None,
        metavar="FRACTION",
        help="SIGKILL one worker once this fraction of the jobs completed",
    )
    run.add_argument("--timeout", type=positive, default=300, help="seconds before giving up")
    run.add_argument("--heartbeat-timeout", type=seconds, default=3.0)
    run.add_argument("--keep-logs", action="store_true", help="keep the workers' log directory")
    run.set_defaults(command=command_run)

    manager = commands.add_parser("manager", help="run the pipeline manager")
    manager.add_argument("--bind", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    manager.add_argument("--port", type=int, default=0, help="status port; 0 picks a free one")
    manager.add_argument("--max-attempts", type=positive, default=3)
    manager.add_argument("--heartbeat-timeout", type=seconds, default=3.0)
    manager.add_argument(
        "--pipelines",
        default=None,
        metavar="MODULE:NAME|FILE.json",
        help="the pipelines (name -> job types); default: the built-in ones",
    )
    manager.set_defaults(command=command_manager)

    step = commands.add_parser("step", help="run one step worker")
    step.add_argument(
        "job_type", metavar="STEP", help=f"a built-in step ({', '.join(sorted(STEPS))}) or module:StepClass"
    )
    step.add_argument("--manager", required=True, help="the manager's status address, tcp://HOST:PORT")
    step.add_argument("--concurrency", type=positive, default=4)
    step.add_argument("--bind", default="127.0.0.1", help="interface for the jobs socket")
    step.add_argument("--connect-timeout", type=seconds, default=10.0)
    step.set_defaults(command=command_step)

    submit = commands.add_parser("submit", help="submit jobs to a running manager")
    submit.add_argument("--manager", required=True)
    submit.add_argument("--pipeline", default="file-hash")
    submit.add_argument("--count", type=positive, default=1)
    submit.add_argument("--instructions", type=json_object, default={}, help="a JSON object")
    submit.add_argument("--timeout", type=seconds, default=10.0, help="seconds to wait for the manager")
    submit.set_defaults(command=command_submit)

    status = commands.add_parser("status", help="ask a running manager about a job (or 'stats')")
    status.add_argument("--manager", required=True)
    status.add_argument("job_id", help="a job id, or 'stats' for the manager's statistics")
    status.add_argument("--timeout", type=seconds, default=10.0, help="seconds to wait for the manager")
    status.set_defaults(command=command_status)
    return parser


# -- argument types ------------------------------------------------------------------------


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite, non-negative number of seconds, got {text!r}")
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not JSON: {error}") from error
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


# -- commands ---------------------------------------------------------------------------------


def command_manager(args: argparse.Namespace) -> int:
    manager = PipelineManager(
        bind_host=args.bind,
        status_port=args.port,
        pipelines=load_pipelines(args.pipelines) if args.pipelines else None,
        max_attempts=args.max_attempts,
        heartbeat_timeout=args.heartbeat_timeout,
    )
    addresses = manager.bind()
    for name, address in addresses.items():
        print(f"{name:7s} {address}", flush=True)
    print(f"start workers with: python -m examples.pipeline step STEP --manager {addresses['status']}")
    gevent.signal_handler(signal.SIGTERM, manager.stop)
    try:
        manager.run()
    finally:
        manager.stop()
    return 0


def command_step(args: argparse.Namespace) -> int:
    worker = StepWorker(
        load_step(args.job_type), args.manager, concurrency=args.concurrency, bind_host=args.bind
    )
    worker.connect(timeout=args.connect_timeout)
    print(f"{worker.worker_id} pulling {worker.job_type} jobs on {worker.address}", flush=True)
    gevent.signal_handler(signal.SIGTERM, worker.stop)
    gevent.signal_handler(signal.SIGINT, worker.interrupt)  # Ctrl-C: at once, its jobs handed back
    try:
        worker.run()
    finally:
        worker.close()
    return 0


def command_submit(args: argparse.Namespace) -> int:
    with SocketManager(zmq, context) as sockets:
        for _ in range(args.count):
            job = new_job(args.pipeline, args.instructions)
            reply = ask_manager(sockets, args.manager, {"command": "submit", "job": job}, args.timeout)
            if reply.get("state") == "rejected":
                raise UsageError(reply["error"])
            print(reply["job_id"])
        sockets.close("manager", linger=0)
    return 0


def command_status(args: argparse.Namespace) -> int:
    request = {"command": "stats"} if args.job_id == "stats" else {"command": "status", "job_id": args.job_id}
    with SocketManager(zmq, context) as sockets:
        reply = ask_manager(sockets, args.manager, request, args.timeout)
        sockets.close("manager", linger=0)
    print(json.dumps(reply, indent=2, default=str))
    return 0 if reply.get("state") != "unknown" else 1


def command_run(args: argparse.Namespace) -> int:
    from examples.output import make_console  # only `run` draws: workers start faster without rich

    console = make_console()
    steps = PIPELINES[args.pipeline]
    manager = PipelineManager(max_attempts=args.max_attempts, heartbeat_timeout=args.heartbeat_timeout)
    addresses = manager.start()
    console.print(f"manager up: status {addresses['status']}, events {addresses['events']}")
    log_dir = tempfile.mkdtemp(prefix="agentzero-pipeline-logs-")
    workers = [
        start_worker(job_type, addresses["status"], args.concurrency, log_dir)
        for job_type in steps
        for _ in range(args.workers)
    ]
    console.print(f"started {len(workers)} worker processes ({args.workers} per step: {', '.join(steps)})")
    joining = time.monotonic()
    while len(manager.workers) < len(workers) and time.monotonic() - joining < 30:
        gevent.sleep(0.05)  # jobs wait for their workers anyway: measure from here
    console.print(f"{len(manager.workers)} workers joined in {time.monotonic() - joining:.1f}s")
    started = time.monotonic()
    jobs = [
        new_job(
            args.pipeline,
            {"size": args.size, "seed": f"job-{number}", "delay": args.delay},
            job_id=f"job-{number:05d}",
        )
        for number in range(args.jobs)
    ]
    with SocketManager(zmq, context) as client:
        client.ensure_and_connect("jobs", zmq.PUSH, addresses["jobs"], 0)
        for job in jobs:
            if not client.send_safe("jobs", job, timeout=10):
                raise UsageError("the manager stopped taking jobs")
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
    if not everything_completed:
        hint = "" if args.keep_logs else " (run with --keep-logs to read the workers' logs)"
        console.print(f"[red]not every job completed[/red]{hint}")
    elif verified is False:
        console.print("[red]some results do not match their files[/red]")
    else:
        console.print(f"[green]all {len(jobs)} jobs completed[/green]")
    return 0 if everything_completed and verified is not False else 1


# -- helpers of `run` ---------------------------------------------------------------------------


def start_worker(job_type: str, manager_address: str, concurrency: int, log_dir: str) -> subprocess.Popen:
    with open(os.path.join(log_dir, f"{job_type}-{time.monotonic_ns()}.log"), "wb") as log_file:
        process = _spawn_step(job_type, manager_address, concurrency, log_file)
    process.job_type = job_type  # type: ignore[attr-defined]
    return process


def _spawn_step(job_type: str, manager_address: str, concurrency: int, log_file: Any) -> subprocess.Popen:
    return spawn_module(
        "examples.pipeline",
        "step",
        job_type,
        "--manager",
        manager_address,
        "--concurrency",
        str(concurrency),
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )


stop_workers = stop_processes


def run_with_progress(
    console: Console,
    manager: PipelineManager,
    steps: list[str],
    args: argparse.Namespace,
    workers: list[subprocess.Popen],
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
        instructions = job["instructions"]
        expected = hashlib.sha256(file_content(instructions["seed"], instructions["size"])).hexdigest()
        if not isinstance(record.result, dict) or record.result.get("sha256") != expected:
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
    from rich.table import Table

    stats = manager.stats()
    table = Table(title="pipeline summary")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("jobs submitted", str(stats["jobs"] + stats["rejected"]))
    table.add_row("completed", str(stats["completed"]))
    table.add_row("failed", str(stats["failed"]))
    table.add_row("rejected", str(stats["rejected"]))
    table.add_row("retries", str(stats["retries"]))
    table.add_row("re-dispatches", str(stats["redispatches"]))
    table.add_row("stale results ignored", str(stats["stale_events"]))
    table.add_row("bad messages dropped", str(sum(stats["bad_messages"].values())))
    table.add_row("workers killed", str(len(killed)))
    table.add_row("workers lost (detected)", str(stats["workers_lost"]))
    for step in steps:
        table.add_row(f"{step} throughput", f"{stats['throughput_per_step'].get(step, 0.0):.1f} jobs/s")
    table.add_row("overall throughput", f"{stats['completed'] / wall:.1f} jobs/s" if wall else "-")
    table.add_row("wall time", f"{wall:.2f} s")
    if verified is not None:
        table.add_row("hashes verified", "yes" if verified else "NO")
    console.print(table)
    failures = [job for job in manager.jobs.values() if job.state != COMPLETED]
    for job in failures[:5]:
        console.print(f"[yellow]{job.id}[/yellow] {job.state}: {job.error}")


if __name__ == "__main__":
    sys.exit(main())
