"""Real worker processes killed (SIGKILL) or frozen (SIGSTOP) mid-run: every job's effects exactly once.

Each job must complete, pass each of its steps exactly once (no step is
dispatched again after its result was accepted), and leave no file behind.
Set ``PIPELINE_KILL_RUNS`` and ``PIPELINE_KILL_SEED`` to soak longer or
replay a failing run.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import tempfile
import time

import gevent
import pytest

from agentzero.pipeline.builtin_steps import file_content
from agentzero.pipeline.manager import PipelineManager
from agentzero.pipeline.processes import start_worker, stop_workers
from agentzero.pipeline.protocol import COMPLETED, new_job
from tests.library.pipeline_fakes import wait_until

STEPS = ["generate-file", "calculate-hash", "delete-file"]


class Line:
    """A manager in this process and worker processes per step, started and killed at will."""

    def __init__(self, **options) -> None:
        self.manager = PipelineManager(**options)
        self.addresses = self.manager.start()
        self.log_dir = tempfile.mkdtemp(prefix="az-pipeline-faults-")
        self.processes: dict[str, list[subprocess.Popen]] = {step: [] for step in STEPS}

    def spawn(self, job_type: str, count: int = 1, concurrency: int = 2) -> list[subprocess.Popen]:
        started = [
            start_worker(job_type, self.addresses["status"], concurrency, self.log_dir) for _ in range(count)
        ]
        self.processes[job_type] += started
        return started

    def alive(self, job_type: str) -> list[subprocess.Popen]:
        return [process for process in self.processes[job_type] if process.poll() is None]

    def joined(self, process: subprocess.Popen):
        return next((w for w in self.manager.workers.values() if w.pid == process.pid), None)

    def wait_for_everyone(self, timeout: float = 30) -> None:
        everyone = [process for step in STEPS for process in self.alive(step)]
        wait_until(lambda: all(self.joined(p) for p in everyone), timeout, "every worker joined")

    def close(self) -> None:
        stop_workers([process for step in STEPS for process in self.processes[step]])
        self.manager.stop()


@pytest.fixture
def line(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTZERO_PIPELINE_DIR", str(tmp_path / "files"))
    lines: list[Line] = []

    def make(**options) -> Line:
        made = Line(**options)
        lines.append(made)
        return made

    yield make
    for made in lines:
        made.close()


def file_jobs(prefix: str, count: int, delay: float) -> list[dict]:
    return [
        new_job(
            "file-hash", {"size": 1000 + n, "seed": f"{prefix}-{n}", "delay": delay}, job_id=f"{prefix}-{n}"
        )
        for n in range(count)
    ]


def assert_exactly_once(manager: PipelineManager, jobs: list[dict], files) -> None:
    """Each job completed with the right hash, passed each step once, never went back, left no file."""
    for job in jobs:
        record = manager.jobs[job["id"]]
        assert record.state == COMPLETED, (record.id, record.state, record.error)
        assert [step for step, _ in record.passed] == STEPS, (record.id, record.passed)
        order = [STEPS.index(step) for step, _ in record.dispatches]
        assert order == sorted(order), f"{record.id} was dispatched to a step it passed: {record.dispatches}"
        seed, size = job["instructions"]["seed"], job["instructions"]["size"]
        assert record.result["sha256"] == hashlib.sha256(file_content(seed, size)).hexdigest()
    assert not list(files.glob("job-*.bin")), "a job left its file behind"


def kill_one(pipe: Line, step: str, after: int, rng: random.Random, detection: list[float]) -> None:
    """SIGKILL a random worker of ``step`` once ``after`` more jobs passed it; start a replacement."""
    manager = pipe.manager
    target = manager.completed_per_step[step] + after
    wait_until(lambda: manager.completed_per_step[step] >= target, 30, f"{after} jobs through {step}")
    victim = rng.choice([process for process in pipe.alive(step) if pipe.joined(process)])
    record = pipe.joined(victim)
    victim.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    pipe.spawn(step, 1)  # a replacement, joining in a later run
    wait_until(lambda: record.id not in manager.workers, 10, f"the killed {step} worker dropped")
    detection.append(time.monotonic() - killed_at)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_sigkill_of_a_worker_of_each_step_at_a_random_moment_in_20_runs(line, tmp_path):
    runs = int(os.environ.get("PIPELINE_KILL_RUNS", "20"))
    seed = int(os.environ.get("PIPELINE_KILL_SEED", str(time.time_ns() % 10**9)))
    rng = random.Random(seed)
    print(f"PIPELINE_KILL_SEED={seed}")
    # a long heartbeat timeout: the kills are noticed by the socket monitors, or this test fails
    pipe = line(heartbeat_timeout=10.0)
    manager = pipe.manager
    for step in STEPS:
        pipe.spawn(step, 3)
    pipe.wait_for_everyone()
    detection: list[float] = []
    for run in range(runs):
        # two workers of each step at least: one is killed, one survives (replacements start meanwhile)
        wait_until(
            lambda: all(sum(1 for p in pipe.alive(step) if pipe.joined(p)) >= 2 for step in STEPS),
            30,
            "two workers per step",
        )
        jobs = file_jobs(f"r{run}", 24, delay=0.01)
        lost_before = manager.workers_lost
        killers = [gevent.spawn(kill_one, pipe, step, rng.randrange(0, 20), rng, detection) for step in STEPS]
        for job in jobs:
            manager.submit(job)
        assert manager.wait(len(manager.jobs), timeout=60), (run, seed, manager.stats())
        gevent.joinall(killers, timeout=30, raise_error=True)
        assert manager.workers_lost == lost_before + 3, (run, seed)
        assert_exactly_once(manager, jobs, tmp_path / "files")
    stats = manager.stats()
    assert stats["failed"] == 0 and stats["completed"] == 24 * runs
    assert stats["bad_messages"] == {}
    # noticed by the monitors, well before the 10 s heartbeat timeout
    assert max(detection) < 2.0, sorted(detection)[-5:]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_frozen_worker_is_dropped_and_taken_in_again_when_it_comes_back(line, tmp_path):
    pipe = line(heartbeat_timeout=1.0)
    manager = pipe.manager
    pipe.spawn("generate-file", 1)
    victim, _ = pipe.spawn("calculate-hash", 2, concurrency=2)
    pipe.spawn("delete-file", 1)
    pipe.wait_for_everyone()
    first = file_jobs("before", 60, delay=0.03)
    for job in first:
        manager.submit(job)
    record = wait_until(lambda: (w := pipe.joined(victim)) is not None and w.held and w, 30, "victim busy")
    victim.send_signal(signal.SIGSTOP)
    try:
        stopped_at = time.monotonic()
        held = set(record.held)
        wait_until(lambda: record.id not in manager.workers, 5, "the frozen worker dropped")
        assert time.monotonic() - stopped_at < 3.0
        # what it held was sent to the other hasher
        for job_id in held:
            job = manager.jobs[job_id]
            assert job.redispatches >= 1 or ("calculate-hash", record.id) in job.passed
        dispatched_to_victim = sum(
            j.dispatches.count(("calculate-hash", record.id)) for j in manager.jobs.values()
        )
    finally:
        victim.send_signal(signal.SIGCONT)
    back = wait_until(lambda: pipe.joined(victim), 10, "the worker taken in again")
    assert back is not record and back.id == record.id
    second = file_jobs("after", 60, delay=0.03)
    for job in second:
        manager.submit(job)
    assert manager.wait(len(manager.jobs), timeout=60), manager.stats()
    assert_exactly_once(manager, first + second, tmp_path / "files")
    again = sum(j.dispatches.count(("calculate-hash", record.id)) for j in manager.jobs.values())
    assert again > dispatched_to_victim, "the worker that came back got no work"
    stats = manager.stats()
    assert stats["failed"] == 0 and stats["workers_lost"] == 1
    assert stats["bad_messages"] == {}
