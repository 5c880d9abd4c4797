"""What a user's step may do wrong (issue 20): too large a result, any BaseException, and Ctrl-C.

A real manager in this process (green) and real worker processes running
:class:`tests.library.pipeline_hostile_steps.Hostile`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest
import zmq.green

from agentzero.core import SocketManager
from agentzero.pipeline.manager import PipelineManager
from agentzero.pipeline.processes import start_worker, stop_workers
from agentzero.pipeline.protocol import COMPLETED, FAILED, QUEUED, new_job
from agentzero.zero import context as green_context
from tests.library.pipeline_fakes import wait_until
from tests.library.pipeline_hostile_steps import PIPELINES

pytestmark = pytest.mark.timeout(90)

HOSTILE = "tests.library.pipeline_hostile_steps:Hostile"
#: small enough that a test makes larger results cheaply
LIMIT = 64 * 1024


class Line:
    """A manager with the hostile pipelines, worker processes, and a client pushing jobs."""

    def __init__(self, **options) -> None:
        self.manager = PipelineManager(pipelines=PIPELINES, **options)
        self.addresses = self.manager.start()
        self.log_dir = tempfile.mkdtemp(prefix="az-pipeline-review3-")
        self.processes: list[subprocess.Popen] = []
        self.client = SocketManager(zmq.green, green_context)
        self.client.ensure_and_connect("jobs", zmq.green.PUSH, self.addresses["jobs"], 0)

    def spawn(self, step: str = HOSTILE, concurrency: int = 4) -> subprocess.Popen:
        process = start_worker(step, self.addresses["status"], concurrency, self.log_dir)
        self.processes.append(process)
        joined = len(self.manager.workers) + 1
        wait_until(lambda: len(self.manager.workers) >= joined, 30, "the worker joining")
        return process

    def run(self, jobs, timeout: float = 45) -> None:
        for job in jobs:
            assert self.client.send_safe("jobs", job, timeout=5)
        assert self.manager.wait(len(jobs), timeout=timeout), self.states()

    def states(self) -> dict:
        return {job.id: (job.state, job.error) for job in self.manager.jobs.values()}

    def worker_log(self) -> str:
        return "".join(
            open(os.path.join(self.log_dir, name), errors="replace").read()
            for name in sorted(os.listdir(self.log_dir))
        )

    def close(self) -> None:
        stop_workers(self.processes)
        self.client.close_all(linger=0)
        self.manager.stop()
        shutil.rmtree(self.log_dir, ignore_errors=True)


@pytest.fixture
def line():
    lines: list[Line] = []

    def make(**options) -> Line:
        options.setdefault("heartbeat_timeout", 2.0)
        lines.append(Line(**options))
        return lines[-1]

    yield make
    for made in lines:
        made.close()


def hostile(job_id: str, **instructions) -> dict:
    return new_job("hostile", instructions, job_id=job_id)


def test_results_and_errors_too_large_for_the_manager_fail_their_job_after_its_attempts(line):
    pipeline = line(max_message_size=LIMIT, max_attempts=2)
    worker = pipeline.spawn()
    jobs = [
        hostile("big-result", result_size=4 * LIMIT),
        # runs past a heartbeat, so the manager saw it start
        hostile("big-slow-result", result_size=4 * LIMIT, delay=1.2),
        hostile("big-error", **{"raise": "RuntimeError", "message_size": 4 * LIMIT}),
        hostile("big-failure", **{"raise": "JobFailed", "message_size": 4 * LIMIT}),
        hostile("fine-after-them"),
    ]
    pipeline.run(jobs)
    records = pipeline.manager.jobs
    for job_id in ("big-result", "big-slow-result"):
        record = records[job_id]
        assert record.state == FAILED, pipeline.states()
        assert record.attempts == 2 and record.retries == 1 and record.redispatches == 0
        assert record.error["name"] == "ReportTooLarge"
        assert record.error["module"] == "agentzero.pipeline.worker"
        message = record.error["traceback"]
        assert f"the result of job '{job_id}'" in message and f"max_message_size of {LIMIT}" in message
        assert len(message) < 1000
    error = records["big-error"]
    assert error.state == FAILED and error.attempts == 2 and error.error["name"] == "RuntimeError"
    assert error.error["traceback"].startswith("Traceback (most recent call last)")
    assert "characters cut" in error.error["traceback"] and len(error.error["traceback"]) < 10000
    failure = records["big-failure"]
    assert failure.state == FAILED and failure.attempts == 1  # JobFailed is never retried
    assert failure.error["reason"].startswith("yyyy") and len(failure.error["reason"]) <= 2000
    assert records["fine-after-them"].state == COMPLETED
    stats = pipeline.manager.stats()
    assert stats["workers_lost"] == 0 and stats["redispatches"] == 0
    assert "oversized event" not in stats["bad_messages"], stats["bad_messages"]
    assert worker.poll() is None


def test_an_error_still_too_large_once_cut_and_an_unsendable_result_are_errors_of_their_job(line):
    pipeline = line(max_message_size=4096, max_attempts=2)
    worker = pipeline.spawn()
    pipeline.run(
        [
            hostile("huge-error", **{"raise": "SystemExit", "message_size": 100_000}),
            hostile("unsendable", unsendable=True),
            hostile("fine"),
        ]
    )
    huge = pipeline.manager.jobs["huge-error"]
    assert huge.state == FAILED and huge.attempts == 2 and huge.error["name"] == "ReportTooLarge"
    assert "the error of job 'huge-error'" in huge.error["traceback"], huge.error
    unsendable = pipeline.manager.jobs["unsendable"]
    assert unsendable.state == FAILED and unsendable.attempts == 2
    assert unsendable.error["name"] == "SerializationError" and "surrogate" in unsendable.error["traceback"]
    assert pipeline.manager.jobs["fine"].state == COMPLETED
    assert pipeline.manager.stats()["bad_messages"] == {} and worker.poll() is None


def test_system_exit_keyboard_interrupt_and_other_base_exceptions_of_a_step_are_errors_of_its_job(line):
    pipeline = line(max_attempts=2)
    worker = pipeline.spawn()
    names = ("SystemExit", "KeyboardInterrupt", "Abort")
    once = [hostile(f"{name}-once", **{"raise": name, "until_attempt": 1}) for name in names]
    always = [hostile(f"{name}-always", **{"raise": name}) for name in names]
    pipeline.run(once + always)
    for name in names:
        recovered = pipeline.manager.jobs[f"{name}-once"]
        assert recovered.state == COMPLETED and recovered.result == {"ok": 2}, pipeline.states()
        assert recovered.retries == 1 and recovered.redispatches == 0
        failed = pipeline.manager.jobs[f"{name}-always"]
        assert failed.state == FAILED and failed.attempts == 2, pipeline.states()
        assert failed.error["name"] == name
        assert f"{name} raised on purpose (attempt 2)" in failed.error["traceback"]
    assert worker.poll() is None, "the worker process ended"
    assert pipeline.manager.stats()["workers_lost"] == 0
    pipeline.run(once + always + [hostile("after-them")])  # the same worker goes on
    after = pipeline.manager.jobs["after-them"]
    assert after.state == COMPLETED and after.passed[0][1] in pipeline.manager.workers


def test_ctrl_c_stops_a_worker_at_once_and_hands_its_jobs_back(line):
    pipeline = line()
    first = pipeline.spawn("noop", concurrency=2)
    jobs = [new_job("noop", {"delay": 6.0}, job_id=f"slow-{n}") for n in range(3)]
    for job in jobs:
        assert pipeline.client.send_safe("jobs", job, timeout=5)
    wait_until(
        lambda: sum(1 for job in pipeline.manager.jobs.values() if job.state == "running") == 2,
        10,
        "two jobs running",
    )
    interrupted = time.monotonic()
    first.send_signal(signal.SIGINT)
    assert first.wait(timeout=10) == 0, pipeline.worker_log()
    # the jobs had 5 s or more to go: the worker did not wait for them
    assert time.monotonic() - interrupted < 4.0, "the worker finished its jobs instead of handing them back"
    records = [pipeline.manager.jobs[job["id"]] for job in jobs]
    wait_until(lambda: all(record.state == QUEUED for record in records), 5, "the jobs queued again")
    stats = pipeline.manager.stats()
    assert stats["workers_lost"] == 0 and not pipeline.manager.workers  # it said it left
    assert all(record.redispatches == 1 for record in records)  # the two it ran and the one it held
    assert all(record.attempts == 0 and not record.passed for record in records)
    assert "Traceback" not in pipeline.worker_log()
    pipeline.spawn("noop", concurrency=3)
    assert pipeline.manager.wait(len(jobs), timeout=30), pipeline.states()
    assert all(record.state == COMPLETED for record in records)
    assert all(record.passed[0][1] in pipeline.manager.workers for record in records)
