"""``run --kill-manager-at``: the manager in a process of its own, killed with SIGKILL part-way and restarted.

The manager runs as ``python -m agentzero.pipeline manager --port P --journal J``;
this process submits the jobs through its status socket (each acknowledged
once journaled), watches the progress through it, kills the manager once a
fraction of the jobs completed, and starts it again on the same port and
journal. The workers follow it by themselves. At the end, each job's view
(``status JOB_ID``) shows it completed exactly once: its hash checked
against its file's content, and the steps it passed counted, once per job.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gevent

from agentzero.core import SocketManager
from agentzero.pipeline.probe import ManagerUnreachable, ask_manager
from agentzero.pipeline.processes import spawn_pipeline, start_worker, stop_workers
from agentzero.pipeline.protocol import COMPLETED
from agentzero.pipeline.summary import hash_matches, print_table, verdict
from agentzero.util import get_free_tcp_port
from agentzero.zero import context, zmq

if TYPE_CHECKING:
    from rich.console import Console


class ManagerProcess:
    """A manager process on a fixed port and journal, which can be killed and started again."""

    def __init__(self, name: str, steps: list[str], args: argparse.Namespace, directory: Path) -> None:
        self.directory = directory
        self.port = get_free_tcp_port("127.0.0.1")
        self.status = f"tcp://127.0.0.1:{self.port}"
        self.pipelines = directory / "pipelines.json"
        self.pipelines.write_text(json.dumps({name: steps}))
        self.args = args
        self.process: subprocess.Popen[Any] | None = None
        self.starts = 0
        self.sockets = SocketManager(zmq, context)

    def start(self) -> None:
        self.starts += 1
        with open(self.directory / f"manager-{self.starts}.log", "wb") as log:
            self.process = spawn_pipeline(
                "manager",
                "--port",
                str(self.port),
                "--journal",
                str(self.directory / "journal.sqlite3"),
                "--pipelines",
                str(self.pipelines),
                "--max-attempts",
                str(self.args.max_attempts),
                "--heartbeat-timeout",
                str(self.args.heartbeat_timeout),
                "--farewell",
                "3",
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        return self.process.pid

    def ask(self, request: dict[str, Any], timeout: float = 30.0) -> Any:
        if self.process is not None and self.process.poll() not in (None, -signal.SIGKILL):
            raise ManagerUnreachable(f"the manager process exited with code {self.process.returncode}")
        return ask_manager(self.sockets, self.status, request, timeout)

    def stop(self) -> None:
        """SIGTERM: the manager tells its workers, which leave."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.sockets.close_all(linger=0)


def run_restarting(
    console: Console,
    name: str,
    steps: list[str],
    worker_specs: list[str],
    jobs: list[dict[str, Any]],
    args: argparse.Namespace,
) -> int:
    """Run the jobs with a manager process, killed once ``args.kill_manager_at`` of them completed."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    directory = Path(tempfile.mkdtemp(prefix="agentzero-pipeline-run-"))
    manager = ManagerProcess(name, steps, args, directory)
    manager.start()
    workers: list[subprocess.Popen[Any]] = []
    finished = False
    try:
        manager.ask({"command": "addresses"})
        console.print(f"manager process up: status {manager.status}, journal {directory / 'journal.sqlite3'}")
        workers += [
            start_worker(spec, manager.status, args.concurrency, str(directory), "--orphan-timeout", "30")
            for spec in worker_specs
            for _ in range(args.workers)
        ]
        deadline = time.monotonic() + 30
        while sum(manager.ask({"command": "stats"})["workers"].values()) < len(workers):
            if time.monotonic() > deadline:
                break
            gevent.sleep(0.1)
        started = time.monotonic()
        # the jobs beyond the kill point wait for the kill: fast workers cannot finish them all first
        held = held_until_the_kill(jobs, args.kill_manager_at)
        submit(manager, jobs[: len(jobs) - len(held)])
        console.print(
            f"submitted {len(jobs) - len(held)} jobs, each acknowledged once in the journal"
            + (f"; {len(held)} more once the manager was killed" if held else "")
        )
        killed_worker: list[int] = []
        restarts = 0
        columns = (
            TextColumn("{task.description:>16}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console, transient=False) as progress:
            overall = progress.add_task("all jobs", total=len(jobs))
            while time.monotonic() - started < args.timeout:
                stats = manager.ask({"command": "stats"})
                done = stats["completed"] + stats["failed"]
                progress.update(overall, completed=done)
                if done >= len(jobs):
                    finished = True
                    break
                if not restarts and stats["completed"] >= args.kill_manager_at * len(jobs):
                    pid = manager.kill()
                    console.print(
                        f"killed the manager process {pid} with SIGKILL at {stats['completed']} jobs"
                    )
                    manager.start()
                    restarts += 1
                    console.print(
                        "restarted it on the same port and journal; its workers rejoin by themselves"
                    )
                if held and (restarts or done >= len(jobs) - len(held)):  # killed, or failures kept it off
                    submit(manager, held)
                    console.print(f"submitted the other {len(held)} jobs")
                    held = []
                if (
                    args.kill_worker_at
                    and not killed_worker
                    and stats["completed"] >= args.kill_worker_at * len(jobs)
                ):
                    victim = workers[len(workers) // 2]
                    victim.send_signal(signal.SIGKILL)
                    killed_worker.append(victim.pid)
                    console.print(f"killed worker process {victim.pid} with SIGKILL")
                gevent.sleep(0.2 if restarts else 0.05)  # the kill comes soon after its point
        wall = time.monotonic() - started
        if finished and not restarts:  # the kill point is the last job, or failures kept it off
            console.print(
                f"the manager was never killed: fewer than {args.kill_manager_at:g} of the "
                f"{len(jobs)} jobs had completed while any was left"
            )
        views = [manager.ask({"command": "status", "job_id": job["id"]}) for job in jobs]
    finally:
        manager.stop()
        stop_workers(workers, terminate=False, timeout=8)  # told by the manager's SIGTERM, they leave
        stop_workers(workers)
    return summarize(console, steps, jobs, views, wall, restarts, killed_worker, finished, directory, args)


def held_until_the_kill(jobs: list[dict[str, Any]], kill_at: float) -> list[dict[str, Any]]:
    """The jobs submitted only once the manager was killed: those past the kill point and a margin.

    ``kill_at`` of the jobs must complete for the kill; a fifth more (at
    least one) are running or queued then, for the restarted manager to take
    over; the rest wait for it, and at least one does whenever the kill point
    comes before the last job. Without that, workers faster than the
    submissions could finish every job before the kill.
    """
    kill_point = math.ceil(kill_at * len(jobs))  # the run kills once this many completed
    if not 0 < kill_at < 1 or kill_point >= len(jobs):
        return []
    first = min(len(jobs) - 1, kill_point + max(1, len(jobs) // 5))
    return jobs[first:]


def submit(manager: ManagerProcess, jobs: list[dict[str, Any]]) -> None:
    for job in jobs:
        manager.ask({"command": "submit", "job": job})  # answered once in the journal


def summarize(
    console: Console,
    steps: list[str],
    jobs: list[dict[str, Any]],
    views: list[dict[str, Any]],
    wall: float,
    restarts: int,
    killed_worker: list[int],
    finished: bool,
    directory: Path,
    args: argparse.Namespace,
) -> int:
    completed = [view for view in views if view.get("state") == COMPLETED]
    runs = {step: sum(view.get("passed", []).count(step) for view in views) for step in steps}
    verified = (
        all(hash_matches(job, view.get("result")) for job, view in zip(jobs, views))
        if args.pipeline == "file-hash"
        else None
    )
    rows = [
        ("jobs submitted", str(len(jobs))),
        ("completed", str(len(completed))),
        ("manager restarts", str(restarts)),
        ("workers killed", str(len(killed_worker))),
    ]
    for step in steps:
        rows.append((f"{step} runs accepted", f"{runs[step]} (one per job: {runs[step] == len(jobs)})"))
    title = "pipeline summary (manager killed and restarted)"
    print_table(console, title, rows, len(completed), wall, verified)
    once = finished and len(completed) == len(jobs) and all(runs[step] == len(jobs) for step in steps)
    if args.keep_logs:
        console.print(f"the manager's journal and every log are in {directory}")
    else:
        shutil.rmtree(directory, ignore_errors=True)
    return verdict(
        console,
        once,
        verified,
        "[red]not every job completed exactly once[/red]",
        f"[green]all {len(jobs)} jobs completed, each exactly once[/green]",
    )
