"""The pipeline manager killed with SIGKILL at a random moment and restarted: jobs exactly once (issue 21).

The manager, its workers and their submitter are separate processes, as in
production: ``python -m agentzero.pipeline manager --port P --journal J``,
one ``step`` process per step of ``file-hash``. Each run submits jobs through
the status socket (acknowledged once journaled), kills the manager (and, in
the second scenario, a worker too) at a random moment, restarts it on the
same port and journal, and waits until every job completed. The workers
follow the restarted manager by themselves. The journal then must hold every
job once, completed, each step passed exactly once, with the right hash, and
no file left behind.

The soaks run 8 times by default in ``make test``: set
``PIPELINE_MANAGER_KILL_RUNS=20`` (the issue's count) and ``PIPELINE_KILL_SEED``
to soak longer or replay a run.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import gevent
import pytest
import zmq.green

from agentzero.core import SocketManager
from agentzero.pipeline.builtin_steps import file_content
from agentzero.pipeline.probe import ManagerUnreachable, ask_manager
from agentzero.pipeline.processes import spawn_pipeline, start_worker, stop_workers
from agentzero.pipeline.protocol import COMPLETED, new_job
from agentzero.util import get_free_tcp_port
from agentzero.zero import context as green_context
from tests.library.pipeline_runs import run_pipeline

ROOT = Path(__file__).resolve().parents[2]
STEPS = ["generate-file", "calculate-hash", "delete-file"]


class Site:
    """A manager process on a fixed port and journal, and one worker process per step."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.files = tmp_path / "files"
        self.journal = tmp_path / "journal.sqlite3"
        self.port = get_free_tcp_port("127.0.0.1")
        self.status = f"tcp://127.0.0.1:{self.port}"
        self.logs = tmp_path / "logs"
        self.logs.mkdir()
        self.manager: subprocess.Popen | None = None
        self.workers: dict[str, subprocess.Popen] = {}
        self.client = SocketManager(zmq.green, green_context)
        self.starts = 0

    def start_manager(self) -> None:
        self.starts += 1
        with open(self.logs / f"manager-{self.starts}.log", "wb") as log:
            self.manager = spawn_pipeline(
                "manager",
                "--port",
                str(self.port),
                "--journal",
                str(self.journal),
                "--heartbeat-timeout",
                "2",
                "--farewell",
                "3",
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def start_worker(self, step: str) -> None:
        self.workers[step] = start_worker(step, self.status, 2, str(self.logs), "--orphan-timeout", "30")

    def ask(self, request: dict, timeout: float = 20) -> dict:
        return ask_manager(self.client, self.status, request, timeout)

    def joined(self) -> int:
        try:
            return sum(self.ask({"command": "stats"}, timeout=1)["workers"].values())
        except ManagerUnreachable:
            return 0

    def close(self) -> None:
        if self.manager is not None and self.manager.poll() is None:
            self.manager.send_signal(signal.SIGTERM)  # it tells the workers, which leave
            try:
                self.manager.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.manager.kill()
                self.manager.wait()
        stop_workers(list(self.workers.values()), timeout=10)
        self.client.close_all(linger=0)


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTZERO_PIPELINE_DIR", str(tmp_path / "files"))
    made: list[Site] = []

    def make(path: Path) -> Site:
        path.mkdir()
        made.append(Site(path))
        return made[-1]

    yield make
    for one in made:
        one.close()


def one_run(site: Site, rng: random.Random, jobs: int, kill_a_worker: bool) -> None:
    site.start_manager()
    for step in STEPS:
        site.start_worker(step)
    deadline = time.monotonic() + 30
    while site.joined() < len(STEPS):
        assert time.monotonic() < deadline, "the workers did not join"
        gevent.sleep(0.1)
    submitted = [
        new_job("file-hash", {"size": 2000 + n, "seed": f"seed-{n}", "delay": 0.01}, job_id=f"job-{n}")
        for n in range(jobs)
    ]
    half = jobs // 2
    for job in submitted[:half]:
        assert site.ask({"command": "submit", "job": job})["job_id"] == job["id"]
    gevent.sleep(rng.uniform(0.0, 1.0))  # a random moment: jobs queued, running, finished
    site.manager.send_signal(signal.SIGKILL)
    site.manager.wait()
    if kill_a_worker:
        step = rng.choice(STEPS)
        site.workers[step].send_signal(signal.SIGKILL)
        site.workers[step].wait()
        site.start_worker(step)
    gevent.sleep(rng.uniform(0.0, 0.5))
    site.start_manager()
    for job in submitted[half - 2 :]:  # two of them again, as a submitter retrying would
        assert site.ask({"command": "submit", "job": job}, timeout=30)["job_id"] == job["id"]
    deadline = time.monotonic() + 60
    while True:
        stats = site.ask({"command": "stats"})
        if stats["completed"] + stats["failed"] >= jobs:
            break
        assert time.monotonic() < deadline, stats
        gevent.sleep(0.2)
    site.close()
    assert_exactly_once(site, submitted)


def assert_exactly_once(site: Site, submitted: list[dict]) -> None:
    with sqlite3.connect(f"file:{site.journal}?mode=ro", uri=True) as db:
        rows = {job_id: (state, json.loads(text)) for job_id, state, text in db.execute("SELECT * FROM jobs")}
    db.close()
    assert sorted(rows) == sorted(job["id"] for job in submitted), "each job once in the journal"
    runs_per_step = {step: 0 for step in STEPS}
    for job in submitted:
        state, record = rows[job["id"]]
        assert state == COMPLETED, (job["id"], state, record["error"])
        passed = [step for step, _ in record["passed"]]
        assert passed == STEPS, (job["id"], passed)
        for step in passed:
            runs_per_step[step] += 1
        seed, size = job["instructions"]["seed"], job["instructions"]["size"]
        assert record["result"]["sha256"] == hashlib.sha256(file_content(seed, size)).hexdigest()
    assert runs_per_step == {step: len(submitted) for step in STEPS}
    assert not list(site.files.glob("job-*.bin")), "a job left its file behind"


def _runs(default: int) -> tuple[int, random.Random]:
    runs = int(os.environ.get("PIPELINE_MANAGER_KILL_RUNS", str(default)))
    seed = int(os.environ.get("PIPELINE_KILL_SEED", str(time.time_ns() % 10**9)))
    print(f"PIPELINE_KILL_SEED={seed}")
    return runs, random.Random(seed)


@pytest.mark.timeout(120)
def test_the_manager_killed_once_and_restarted(site, tmp_path):
    _, rng = _runs(1)
    one_run(site(tmp_path / "run"), rng, jobs=30, kill_a_worker=False)


@pytest.mark.timeout(120)
def test_the_manager_and_a_worker_killed_together_and_restarted(site, tmp_path):
    _, rng = _runs(1)
    one_run(site(tmp_path / "run"), rng, jobs=30, kill_a_worker=True)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_manager_killed_at_a_random_moment_in_repeated_runs(site, tmp_path):
    runs, rng = _runs(8)
    for number in range(runs):
        one_run(site(tmp_path / f"run-{number}"), rng, jobs=40, kill_a_worker=False)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_manager_and_a_worker_killed_at_a_random_moment_in_repeated_runs(site, tmp_path):
    runs, rng = _runs(8)
    for number in range(runs):
        one_run(site(tmp_path / f"run-{number}"), rng, jobs=40, kill_a_worker=True)


@pytest.mark.timeout(120)
def test_run_kills_and_restarts_its_manager_and_shows_every_job_completed_once(tmp_path):
    """What ``make demo`` runs, smaller."""
    done = run_pipeline(
        tmp_path,
        "--jobs",
        "60",
        "--workers",
        "2",
        "--delay",
        "0.02",
        "--kill-worker-at",
        "0.3",
        "--kill-manager-at",
        "0.5",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "killed the manager process" in done.stdout and "restarted it on the same port" in done.stdout
    for step in STEPS:
        assert re.search(rf"{step} runs accepted\s*│\s*60 \(one per job: True\)", done.stdout), done.stdout
    assert "hashes verified" in done.stdout and "all 60 jobs completed, each exactly once" in done.stdout


def test_run_kills_the_manager_part_way_even_when_workers_outpace_the_submissions(tmp_path):
    """Jobs with no delay finished as fast as they were submitted: the kill came at 39 of 40, or never."""
    done = run_pipeline(
        tmp_path, "--jobs", "40", "--workers", "2", "--delay", "0", "--kill-manager-at", "0.5"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    killed = re.search(r"killed the manager process \d+ with SIGKILL at (\d+) jobs", done.stdout)
    assert killed, done.stdout
    assert 20 <= int(killed.group(1)) <= 28, done.stdout  # half, and the margin of 8 submitted beyond it
    assert "submitted the other 12 jobs" in done.stdout
    assert "all 40 jobs completed, each exactly once" in done.stdout


def test_make_demo_kills_and_restarts_the_manager():
    demo = (ROOT / "Makefile").read_text().split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    assert "--kill-manager-at" in demo and "--kill-worker-at" in demo
